"""BERT4Rec: bidirectional self-attention trained by cloze (Sun et al., CIKM 2019).

    e_l = E[item_l] + P[L-1-l]                  item embedding + learned position (counted from the newest)
    h   = BidirectionalTransformer(dropout(e))  every position sees every real position
    s_l = h_l E^T + b                           scores of every item at position l

Items are 1..I and ``PAD_ID = 0`` as everywhere; BERT4Rec adds one more token,
``MASK_ID = I + 1``, which hides an item from the model. It is an input token only: it is
never a target and never scored (and it has nothing to do with the *attention masks*,
which are boolean tensors saying who may attend to whom).

**Cloze training.** In each training sequence a random share ``mask_prob`` of the real
items is replaced by ``MASK_ID`` and the model predicts the hidden items from both sides
(full-catalogue cross-entropy at the hidden positions). Padding is never hidden. A
sequence in which no item was drawn gets its newest item hidden, so every sequence
teaches something and the task the model is tested on (hide the last) is always seen.

**Prediction.** Append ``MASK_ID`` after the history (dropping the oldest item if the
history already fills all L positions) and read the scores at that last position.

A bidirectional model cannot be trained on "predict the next item at every position" as
SASRec is: position l would see item l+1 in its input. The cloze task is what makes the
bidirectional mask legitimate.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import padding_mask
from ..constants import PAD_ID
from ..data.batch import Batch
from ..layers import LearnedPositionalEncoding, TransformerConfig, TransformerEncoder, positions_from_newest
from .base import AttentionMaps, Recommender, check_fields, check_ids, item_embedding


def mask_token_id(num_items: int) -> int:
    """``MASK_ID = I + 1``, the id of BERT4Rec's hiding token for a catalogue of I items."""
    return num_items + 1


def cloze(
    sequences: Tensor, *, mask_id: int, mask_prob: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Hide a random share of the real items of each sequence behind ``mask_id``.

    Each real item (not ``PAD_ID``) is hidden with probability ``mask_prob``; a sequence
    with at least one real item where nothing was drawn gets its newest (right-most) real
    item hidden. Random numbers are drawn on the CPU from ``generator``.

    Args:
        sequences: (B, L) item ids, ``PAD_ID``-padded.
        mask_id: the hiding token's id (``MASK_ID = I + 1``).
        mask_prob: probability of hiding each real item, in (0, 1].
        generator: a CPU ``torch.Generator`` (explicit, so runs repeat).

    Returns:
        inputs (B, L): the sequences with hidden items replaced by ``mask_id``;
        labels (B, L): the hidden item ids at hidden positions, ``PAD_ID`` elsewhere.
    """
    if sequences.ndim != 2:
        raise ValueError(f"cloze expects item ids (B, L), got shape {tuple(sequences.shape)}.")
    if not 0.0 < mask_prob <= 1.0:
        raise ValueError(f"mask_prob must lie in (0, 1], got {mask_prob}.")
    if (sequences == mask_id).any():
        raise ValueError(f"sequences already contain MASK_ID = {mask_id}; pass the original item ids.")
    real = sequences != PAD_ID  # (B, L)
    draws = torch.rand(sequences.shape, generator=generator).to(sequences.device)  # (B, L) on the CPU, then moved
    hidden = real & (draws < mask_prob)  # (B, L)
    empty = real.any(dim=1) & ~hidden.any(dim=1)  # (B,) rows with items but nothing drawn
    positions = torch.arange(sequences.shape[1], device=sequences.device)  # (L,)
    newest = torch.where(real, positions, -1).amax(dim=1)  # (B,) index of the right-most real item
    hidden[empty, newest[empty]] = True
    inputs = torch.where(hidden, torch.full_like(sequences, mask_id), sequences)
    labels = torch.where(hidden, sequences, torch.full_like(sequences, PAD_ID))
    return inputs, labels


def append_mask_token(history: Tensor, mask_id: int) -> Tensor:
    """Put ``mask_id`` after the newest item of right-aligned histories, keeping L positions.

    Args:
        history: (B, L) item ids, right-aligned (newest at L-1, ``PAD_ID`` on the left).
        mask_id: ``MASK_ID``.

    Returns:
        (B, L): the last L-1 history items followed by ``mask_id`` (the oldest item drops
        out when the history was full).
    """
    if history.ndim != 2 or history.shape[1] < 1:
        raise ValueError(f"history must be item ids (B, L) with L >= 1, got {tuple(history.shape)}.")
    real = history != PAD_ID
    left_aligned = real.any(dim=1) & ~real[:, -1]  # a row with items but padding at the newest slot
    if left_aligned.any():
        raise ValueError(
            "append_mask_token needs right-aligned histories (newest item at position L-1, padding on the "
            "left); build batches with align='right' (the default of evaluation_batches)."
        )
    hidden = torch.full_like(history[:, :1], mask_id)  # (B, 1)
    return torch.cat([history[:, 1:], hidden], dim=1)  # (B, L)


@dataclass(frozen=True)
class BERT4RecConfig:
    num_items: int  # I; items are 1..I, PAD_ID = 0, MASK_ID = I + 1
    max_len: int = 50  # L, positions the model reads (prediction: L-1 history items + MASK_ID)
    d_model: int = 64  # D, size of item/position embeddings and of every hidden vector
    n_heads: int = 2  # H, attention heads per block (D divisible by H)
    n_layers: int = 2  # bidirectional Transformer blocks
    dropout: float = 0.2  # on embeddings, attention weights, FFN and residual branches
    mask_prob: float = 0.2  # share of real items hidden behind MASK_ID in each training sequence
    norm_first: bool = True  # pre-LN blocks (stable without warm-up); False = post-LN as in BERT
    init_std: float = 0.02  # standard deviation of the item/position embedding initialisation

    def __post_init__(self) -> None:
        check_fields(self, sizes=("num_items", "max_len", "d_model", "n_heads", "n_layers"), rates=("dropout",),
                     scales=("init_std",))
        if isinstance(self.mask_prob, bool) or not isinstance(self.mask_prob, numbers.Real) or not 0.0 < self.mask_prob <= 1.0:
            raise ValueError(f"BERT4RecConfig.mask_prob must lie in (0, 1] (0 would hide nothing), got {self.mask_prob!r}.")


class BERT4Rec(Recommender):
    """Bidirectional Transformer over the history, trained by cloze, behind the shared interface.

    Args:
        config: a :class:`BERT4RecConfig`.
    """

    def __init__(self, config: BERT4RecConfig) -> None:
        super().__init__(config.num_items)
        self.config = config
        self.mask_id = mask_token_id(config.num_items)  # MASK_ID = I + 1
        # rows: PAD_ID = 0, items 1..I, MASK_ID = I + 1
        self.item_embedding = item_embedding(config.num_items + 2, config.d_model, config.init_std)  # (I+2, D)
        self.output_bias = nn.Parameter(torch.zeros(config.num_items))  # (I,) b, one per item
        self.positions = LearnedPositionalEncoding(config.d_model, config.max_len, init_std=config.init_std)
        self.embedding_norm = nn.LayerNorm(config.d_model)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(
            TransformerConfig(
                d_model=config.d_model,
                n_heads=config.n_heads,
                n_layers=config.n_layers,
                dropout=config.dropout,
                norm_first=config.norm_first,
                causal=False,  # bidirectional: the BERT side of notebook 05
            )
        )

    def encode(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Hidden state at every position of a token sequence (items and ``MASK_ID``), and the weights.

        Args:
            tokens: (B, L) ids in 0..I+1 (``PAD_ID``, items, ``MASK_ID``), right-aligned.

        Returns:
            (B, L, D) hidden states and the weights (B, n_layers, H, L, L); padding columns are zero.
        """
        check_ids(tokens, "tokens", max_len=self.config.max_len, num_ids=self.mask_id)
        x = self.positions(self.item_embedding(tokens), positions=positions_from_newest(tokens.shape[1], device=tokens.device))
        x = self.embedding_dropout(self.embedding_norm(x))  # (B, L, D)
        # only padding is hidden from attention; no causal mask: every position sees both sides
        return self.encoder(x, attn_mask=padding_mask(tokens), return_attention=True)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, L, D) hidden states of token ids (B, L) (see :meth:`encode`)."""
        return self.encode(tokens)[0]

    def item_scores(self, hidden: Tensor) -> Tensor:
        """Scores of every item from hidden states: (..., D) -> (..., I); column c is item c + 1.

        Output weights are the input item embeddings (tied); PAD_ID and MASK_ID get no column.
        """
        return hidden @ self.item_embedding.weight[1 : self.num_items + 1].T + self.output_bias  # (..., I)

    def prediction_input(self, batch: Batch) -> Tensor:
        """(B, L'): the history with ``MASK_ID`` appended (L' = min(L + 1, max_len))."""
        history = batch.history
        if history.shape[1] < self.config.max_len:  # room left: append without dropping anything
            history = torch.cat([torch.full_like(history[:, :1], PAD_ID), history], dim=1)
        return append_mask_token(history, self.mask_id)

    def score_all(self, batch: Batch) -> Tensor:
        """Scores (B, I) read at the appended ``MASK_ID``."""
        hidden = self(self.prediction_input(batch))  # (B, L, D)
        return self.item_scores(hidden[:, -1])  # (B, I)

    def attention(self, batch: Batch, items: Tensor | None = None) -> AttentionMaps:
        """Every layer's weights (B, n_layers, H, L, L) over the prediction input (the history + ``MASK_ID``)."""
        with torch.no_grad():
            _, weights = self.encode(self.prediction_input(batch))
        return AttentionMaps(layers=weights)

    def training_sequences(self, batch: Batch) -> Tensor:
        """The item sequences to cloze: (B, L) from a training batch.

        From training windows (``seq_targets``, right-aligned) the sequence is the window's
        targets, i.e. the events it covers shifted by one (the newest training event at
        L-1); otherwise the history followed by ``targets`` if given, else the history.
        """
        if batch.seq_targets is not None:
            return batch.seq_targets
        if batch.targets is not None:
            return torch.cat([batch.history[:, 1:], batch.targets[:, None]], dim=1)
        return batch.history

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Full-catalogue cross-entropy at the hidden positions of a cloze batch."""
        sequences = self.training_sequences(batch)  # (B, L)
        inputs, labels = cloze(sequences, mask_id=self.mask_id, mask_prob=self.config.mask_prob, generator=generator)
        hidden = self(inputs)  # (B, L, D)
        hidden_positions = labels != PAD_ID  # (B, L)
        if not hidden_positions.any():
            raise ValueError("the batch has no real items to hide; every sequence is padding.")
        logits = self.item_scores(hidden[hidden_positions])  # (P, I)
        return F.cross_entropy(logits, labels[hidden_positions] - 1)  # item id t is column t - 1
