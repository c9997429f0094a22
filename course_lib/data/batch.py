"""The batch every recommender in the course consumes.

One dataclass serves training and evaluation, for every model from popularity to the
multimodal capstone. Item ids run 1..I with ``PAD_ID = 0`` marking empty history slots;
users are indexed 0..U-1. Optional fields are ``None`` when a batch does not carry them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A batch of user histories with what to predict.

    Shapes: B users, L history positions, S seen items.

    * ``history`` holds the most recent input items, padded with ``PAD_ID``. Whether the
      padding is on the left (``align="right"``: the newest item at position L-1) or on the
      right (``align="left"``) is chosen when the batch is built.
    * ``targets`` is the next item after the history (evaluation, CTR-style training).
    * ``seq_targets[b, l]`` is the item that follows ``history[b, l]`` (sequence
      training, every position a prediction), ``PAD_ID`` where there is none.
    * ``seen`` lists every item of the user's *full* input history (not cut to L), which
      the evaluation excludes from the ranking.
    """

    users: Tensor  # (B,) long, user index 0..U-1
    history: Tensor  # (B, L) long, item ids; PAD_ID = no item
    history_times: Tensor  # (B, L) long, unix seconds of each history event; 0 at padding
    targets: Tensor | None = None  # (B,) long, the item to predict after the history
    target_times: Tensor | None = None  # (B,) long, unix seconds of the target event
    seq_targets: Tensor | None = None  # (B, L) long, the item after each position; PAD_ID = none
    seen: Tensor | None = None  # (B, S) long, the full input history, PAD_ID-padded (for exclusion)

    def __post_init__(self) -> None:
        if self.history.ndim != 2:
            raise ValueError(f"Batch.history must be (B, L), got shape {tuple(self.history.shape)}.")
        size = self.history.shape[0]
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if not isinstance(value, Tensor):
                raise TypeError(f"Batch.{field.name} must be a torch.Tensor, got {type(value).__name__}.")
            if value.shape[0] != size:
                raise ValueError(
                    f"Batch.{field.name} has {value.shape[0]} rows but history has {size}; every field is batch-first."
                )
        if self.history_times.shape != self.history.shape:
            raise ValueError(
                f"Batch.history_times must match history {tuple(self.history.shape)}, got {tuple(self.history_times.shape)}."
            )
        if self.seq_targets is not None and self.seq_targets.shape != self.history.shape:
            raise ValueError(
                f"Batch.seq_targets must match history {tuple(self.history.shape)}, got {tuple(self.seq_targets.shape)}."
            )

    def __len__(self) -> int:
        return self.history.shape[0]

    @property
    def excluded(self) -> Tensor:
        """(B, S) long: the items the evaluation removes from the ranking (``seen`` or, if absent, ``history``)."""
        return self.history if self.seen is None else self.seen

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor moved to ``device`` (models never store a device)."""
        moved = {
            field.name: (value.to(device) if isinstance(value := getattr(self, field.name), Tensor) else value)
            for field in dataclasses.fields(self)
        }
        return Batch(**moved)
