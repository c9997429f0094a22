"""Popularity: score every item by how often it occurs in the training data.

The same top items for everyone; the baseline any personalised model must beat. Counts
come from training events only (never validation or test targets).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..constants import PAD_ID
from ..data.batch import Batch
from ..data.split import SequenceSplit
from .base import Recommender, check_candidates


class Popularity(Recommender):
    """Scores = training counts. Nothing to train: build it with :meth:`from_split`."""

    def __init__(self, counts: Tensor) -> None:
        """Args: counts: (I + 1,) training count per item id (entry PAD_ID ignored)."""
        super().__init__(int(counts.shape[0]) - 1)
        counts = counts.clone().float()  # float32 (exact for counts below 2**24; MPS has no float64)
        counts[PAD_ID] = 0.0
        self.register_buffer("counts", counts)  # (I + 1,)

    @classmethod
    def from_split(cls, split: SequenceSplit) -> Popularity:
        """Count every item in the training part of the split."""
        return cls(torch.from_numpy(split.train_item_counts().astype(np.float32)))

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError("Popularity is not trained by gradient descent; use Popularity.from_split(split).")

    def score_all(self, batch: Batch) -> Tensor:
        return self.counts[1:].expand(len(batch), -1)  # (B, I)

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        check_candidates(items, self.num_items, len(batch))
        return self.counts[items]  # (B, N)
