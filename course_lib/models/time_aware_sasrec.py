"""Time-aware SASRec: SASRec whose inputs also say how long ago the previous event was.

SASRec's positions count *events*: "three items back" means the same whether those three
items came in one evening or over a year. Here every history event also gets a learned
vector for the log-scale bucket of the time gap since the event before it
(:mod:`course_lib.data.time_buckets`), added to the input like the position vectors:

    x_l = E[item_l] + P[L-1-l] + T[bucket(t_l - t_{l-1})]          T[NO_GAP] = 0
    h   = CausalTransformer(dropout(x))                              as in SASRec

A long gap marks a new session (a possible switch of interest), a short one a burst of
related events; attention can use both because they are part of each key and query.

Why the gap to the *previous* event and not the gap of every event to the newest one? This
model predicts the next item at every position of a training window. With gaps to the newest
event, position l would see the time of the window's last event, which lies in its future:
not causal. The gap to the previous event looks only backwards, so changing anything at a
later position leaves every earlier output unchanged (tested). TiSASRec (Li et al., WSDM 2020)
goes further and puts the bucketed interval |t_q - t_k| of every query/key pair inside
attention; that needs an attention layer with a pairwise term and is left as an exercise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..attention import padding_mask
from ..constants import PAD_ID
from ..data.batch import Batch
from ..data.time_buckets import NO_GAP, TimeBucketConfig, gaps_to_previous, log_time_buckets
from .sasrec import SASRec, SASRecConfig

if TYPE_CHECKING:  # the benchmark imports the models; import it lazily to avoid a cycle
    from ..bench import BenchData, BenchRun, Mode


@dataclass(frozen=True)
class TimeAwareSASRecConfig(SASRecConfig):
    time_unit_seconds: float = 60.0  # width of the first gap bucket (seconds); buckets grow x2 from there
    num_time_buckets: int = 20  # gap buckets including NO_GAP = 0 (padding / no earlier event in the window)

    @property
    def buckets(self) -> TimeBucketConfig:
        """The :class:`TimeBucketConfig` of the gaps."""
        return TimeBucketConfig(unit_seconds=self.time_unit_seconds, num_buckets=self.num_time_buckets)


class TimeAwareSASRec(SASRec):
    """SASRec plus a learned embedding of the bucketed gap since the previous event.

    Same interface as :class:`SASRec` (``loss``, ``score``, ``score_all``); it reads
    ``batch.history_times`` besides ``batch.history``.

    Args:
        config: a :class:`TimeAwareSASRecConfig`.
    """

    def __init__(self, config: TimeAwareSASRecConfig) -> None:
        super().__init__(config)
        self.time_buckets = config.buckets
        self.time_embedding = nn.Embedding(config.num_time_buckets, config.d_model, padding_idx=NO_GAP)  # (num_buckets, D)
        nn.init.normal_(self.time_embedding.weight, std=config.init_std)
        with torch.no_grad():
            self.time_embedding.weight[NO_GAP].zero_()

    def gap_buckets(self, history: Tensor, history_times: Tensor) -> Tensor:
        """(B, L) bucket of the gap since the previous event; ``NO_GAP`` at padding and the oldest event."""
        if history_times.shape != history.shape:
            raise ValueError(f"history_times must match history {tuple(history.shape)}, got {tuple(history_times.shape)}.")
        gaps, valid = gaps_to_previous(history_times, history != PAD_ID)  # (B, L), (B, L)
        return log_time_buckets(gaps, valid=valid, config=self.time_buckets)

    def forward(
        self, history: Tensor, history_times: Tensor | None = None, *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Hidden state after every position of the history.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded, right-aligned (newest at L-1).
            history_times: (B, L) long unix seconds of each event, oldest first (required).
            return_attention: also return the attention weights of every layer.

        Returns:
            (B, L, D) hidden states, and if asked the weights (B, n_layers, H, L, L).
        """
        if history_times is None:
            raise ValueError("TimeAwareSASRec needs the event times: call model(history, history_times) (batch.history_times).")
        self._check_history(history)
        length = history.shape[1]
        steps_back = torch.arange(length - 1, -1, -1, device=history.device)  # (L,) L-1 .. 0
        x = self.positions(self.embed_items(history), positions=steps_back)  # (B, L, D)
        x = x + self.time_embedding(self.gap_buckets(history, history_times))  # (B, L, D)
        x = self.embedding_dropout(x)
        return self.encoder(x, attn_mask=padding_mask(history), return_attention=return_attention)

    def hidden_states(self, batch: Batch) -> Tensor:
        """(B, L, D) hidden states from the batch's items and event times (SASRec's loss and scores use this)."""
        return self(batch.history, batch.history_times)


def train_time_aware_sasrec(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """Benchmark entry: SASRec's settings (:func:`course_lib.bench.sasrec_settings`) plus gap buckets."""
    from ..bench import train_sasrec_variant  # imported here: course_lib.bench imports this module

    return train_sasrec_variant(TimeAwareSASRec, TimeAwareSASRecConfig, data, mode, seed, device)
