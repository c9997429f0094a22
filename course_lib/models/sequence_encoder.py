"""The sequence encoder every SASRec-like model is made of: item vectors -> causal self-attention.

    F   = item_encoder.table()                  (I + 1, D)  every item's vector, computed once per call
    e_l = F[item_l]                             (B, L, D)   the history's item vectors (PAD_ID -> 0)
    x_l = e_l + P[pos_l] (+ T[gap_l])           positions, and optionally the time-gap bucket
    h   = CausalTransformer(dropout(x))         (B, L, D)   position l attends to positions <= l only

Its parts, each exchangeable through :class:`SASRecConfig` or the item encoder a model owns:

* **item vectors** ``F``: any item encoder (:mod:`course_lib.models.item_encoders`: an ID
  table, frozen text, the multimodal or the metadata encoder). The encoder does not own it:
  the model computes the table once and passes it here, so inputs and the tied output layer
  read the very same vectors.
* **positions** ``P``: ``"newest"`` counts slots back from the newest event (``P[L-1-l]``),
  which with right-aligned, left-padded histories makes the output independent of how much
  padding precedes the history; ``"oldest"`` counts real events from the oldest one, so that
  a new event never moves an earlier one and a key/value cache stays valid (notebook 14).
* **time gaps** ``T`` (optional, notebook 10): a learned vector for the log-scale bucket of
  the gap since the *previous* event (:mod:`course_lib.data.time_buckets`). A long gap marks
  a new session (a possible switch of interest), a short one a burst of related events.
  Why the gap to the previous event and not to the newest one? The models predict the next
  item at every position of a training window; with gaps to the newest event, position l
  would see the time of the window's last event, which lies in its future: not causal. The
  gap to the previous event looks only backwards (tested). TiSASRec (Li et al., WSDM 2020)
  goes further and puts the interval |t_q - t_k| of every query/key pair inside attention.
* **the Transformer**: pre-LN causal blocks (:class:`~course_lib.layers.TransformerEncoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from ..attention import padding_mask
from ..constants import PAD_ID
from ..data.time_buckets import NO_GAP, TimeBucketConfig, gaps_to_previous, log_time_buckets
from ..layers import LearnedPositionalEncoding, TransformerConfig, TransformerEncoder, positions_from_newest, positions_from_oldest
from .base import check_ids, check_right_aligned, item_embedding
from .item_encoders import ItemLookup

PositionAnchor = Literal["newest", "oldest"]


@dataclass(frozen=True)
class SASRecConfig:
    num_items: int  # I; items are 1..I, PAD_ID = 0
    max_len: int = 50  # L, the longest history the model reads (one position vector each)
    d_model: int = 64  # D, size of item/position embeddings and of every hidden vector
    n_heads: int = 2  # H, attention heads per block (D divisible by H)
    n_layers: int = 2  # causal Transformer blocks
    dropout: float = 0.2  # on embeddings, attention weights, FFN and residual branches
    norm_first: bool = True  # pre-LN blocks (stable without warm-up); False = post-LN as in the paper
    init_std: float = 0.02  # standard deviation of the item/position (and time-gap) embedding initialisation
    positions: PositionAnchor = "newest"  # "newest": P[L-1-l]; "oldest": the p-th real event gets P[p] (streaming)
    time_gaps: TimeBucketConfig | None = None  # add a learned vector per gap-to-the-previous-event bucket (None = off)

    def __post_init__(self) -> None:
        if self.positions not in ("newest", "oldest"):
            raise ValueError(f"positions must be 'newest' or 'oldest', got {self.positions!r}.")
        if self.time_gaps is not None and not isinstance(self.time_gaps, TimeBucketConfig):
            raise TypeError(f"time_gaps must be a TimeBucketConfig or None, got {type(self.time_gaps).__name__}.")
        for name in ("max_len", "d_model", "n_heads", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")


class SequenceEncoder(nn.Module):
    """Item vectors + positions (+ time gaps) -> causal Transformer: one hidden state per history slot.

    Args:
        config: a :class:`SASRecConfig`.
    """

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.config = config
        self.lookup = ItemLookup()  # e_l = F[item_l]
        self.positions = LearnedPositionalEncoding(config.d_model, config.max_len, init_std=config.init_std)  # P
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.transformer = TransformerEncoder(
            TransformerConfig(
                d_model=config.d_model,
                n_heads=config.n_heads,
                n_layers=config.n_layers,
                dropout=config.dropout,
                norm_first=config.norm_first,
                causal=True,
            )
        )
        self.time_gaps = None  # T, one vector per gap bucket (T[NO_GAP] = 0)
        if config.time_gaps is not None:
            self.time_gaps = item_embedding(config.time_gaps.num_buckets, config.d_model, config.init_std, padding_idx=NO_GAP)

    def slot_positions(self, history: Tensor) -> Tensor:
        """Position index of every slot: (L,) ``L-1 .. 0`` (newest-anchored) or (B, L) (oldest-anchored)."""
        if self.config.positions == "newest":
            return positions_from_newest(history.shape[1], device=history.device)  # (L,)
        return positions_from_oldest(history != PAD_ID)  # (B, L)

    def gap_buckets(self, history: Tensor, history_times: Tensor) -> Tensor:
        """(B, L) bucket of the gap since the previous event; ``NO_GAP`` at padding and the oldest event."""
        if history_times is None:
            raise ValueError("this model reads the time gaps between events: pass history_times (batch.history_times).")
        if history_times.shape != history.shape:
            raise ValueError(f"history_times must match history {tuple(history.shape)}, got {tuple(history_times.shape)}.")
        gaps, valid = gaps_to_previous(history_times, history != PAD_ID)  # (B, L), (B, L)
        return log_time_buckets(gaps, valid=valid, config=self.config.time_gaps)

    def forward(self, history: Tensor, history_times: Tensor | None = None, *, table: Tensor) -> tuple[Tensor, Tensor]:
        """Hidden state after every slot of the history, and the attention weights of every layer.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded, right-aligned (newest at L-1).
            history_times: (B, L) long unix seconds of each event, oldest first (needed with time gaps).
            table: (I + 1, D) the item table ``F`` (row ``PAD_ID`` zero).

        Returns:
            hidden (B, L, D): ``h_l`` summarises items up to and including l; and weights
            (B, n_layers, H, L, L): row l is zero beyond l and on padding.
        """
        check_ids(history, max_len=self.config.max_len, num_ids=table.shape[0] - 1)
        check_right_aligned(history, "The sequence encoder (SASRec, the capstone)")
        x = self.lookup(history, table)  # (B, L, D) e_l
        x = self.positions(x, positions=self.slot_positions(history))  # + P[pos_l]
        if self.time_gaps is not None:
            x = x + self.time_gaps(self.gap_buckets(history, history_times))  # + T[gap_l]
        x = self.embedding_dropout(x)
        # padding keys are never attended to; the Transformer adds (ANDs) the causal mask itself
        return self.transformer(x, attn_mask=padding_mask(history), return_attention=True)
