"""A recurrent baseline: a GRU reads the history in order and predicts the next item (GRU4Rec-style).

    h_l = GRU(h_{l-1}, dropout(E[item_l]))          one state per position, left to right
    s_l = dropout(h_l) W E^T                        scores of every item after position l

Everything else matches :mod:`course_lib.models.sasrec` — tied item embeddings, a target
at every position, full-catalogue cross-entropy — so a comparison isolates the encoder:
recurrence (one state squeezes the whole past, step by step) versus self-attention (every
position looks back at every earlier item directly).

Padding is skipped, not fed to the GRU: each row's real items are moved to the front and
packed (``pack_padded_sequence``), so a history's scores do not depend on how much padding
it carries or on which side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..constants import PAD_ID
from ..data.batch import Batch
from .base import Recommender, check_fields, check_ids, check_targets, item_embedding


@dataclass(frozen=True)
class GRURecConfig:
    num_items: int  # I; items are 1..I, PAD_ID = 0
    d_model: int = 64  # D, size of item embeddings and of the GRU state
    n_layers: int = 1  # stacked GRU layers
    dropout: float = 0.2  # on the input embeddings and on the GRU outputs
    init_std: float = 0.02  # standard deviation of the item embedding initialisation

    def __post_init__(self) -> None:
        check_fields(self, sizes=("num_items", "d_model", "n_layers"), rates=("dropout",), scales=("init_std",))


class GRURec(Recommender):
    """GRU over the history, behind the shared interface.

    Args:
        config: a :class:`GRURecConfig`.
    """

    def __init__(self, config: GRURecConfig) -> None:
        super().__init__(config.num_items)
        self.config = config
        self.item_embedding = item_embedding(config.num_items + 1, config.d_model, config.init_std)  # (I+1, D)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.d_model, config.d_model, num_layers=config.n_layers, batch_first=True)
        self.output = nn.Linear(config.d_model, config.d_model)  # W: state -> item-embedding space

    def forward(self, history: Tensor) -> Tensor:
        """GRU state after every position of the history.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded on either side.

        Returns:
            (B, L, D): row l summarises the real items up to and including l; zeros at padding.
        """
        check_ids(history, num_ids=self.num_items)
        real = history != PAD_ID  # (B, L)
        lengths = real.sum(dim=1)  # (B,)
        # real items first, in their order: a stable sort of "is padding" (False < True)
        order = torch.sort((~real).to(torch.uint8), dim=1, stable=True).indices  # (B, L)
        packed_items = history.gather(1, order)  # (B, L) real items, then padding
        x = self.dropout(self.item_embedding(packed_items))  # (B, L, D)
        packed = pack_padded_sequence(x, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=history.shape[1])  # (B, L, D)
        hidden = torch.zeros_like(out).scatter(1, order[..., None].expand_as(out), out)  # back to original slots
        return hidden * real[..., None]  # (B, L, D); an empty history's clamped step is zeroed too

    def item_scores(self, hidden: Tensor) -> Tensor:
        """Scores of every item: (..., D) -> (..., I); column c is item c + 1."""
        return self.output(self.dropout(hidden)) @ self.item_embedding.weight[1:].T  # (..., I)

    def score_all(self, batch: Batch) -> Tensor:
        hidden = self(batch.history)  # (B, L, D)
        real = batch.history != PAD_ID  # (B, L)
        last = (torch.arange(real.shape[1], device=real.device) * real).argmax(dim=1)  # (B,) newest real slot
        return self.item_scores(hidden[torch.arange(len(batch), device=real.device), last])  # (B, I)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Mean full-catalogue cross-entropy of the next item at every non-padding position."""
        if batch.seq_targets is None:
            raise ValueError("GRURec.loss needs batch.seq_targets (see training_windows).")
        keep = batch.seq_targets != PAD_ID  # (B, L)
        check_targets(batch.seq_targets[keep], self.num_items, "GRURec")
        hidden = self(batch.history)[keep]  # (P, D)
        return F.cross_entropy(self.item_scores(hidden), batch.seq_targets[keep] - 1)
