"""Rank only a subset of the catalogue (e.g. the new items), with the shared evaluation.

``evaluate(CandidateSubset(model, items), batches)`` ranks each target among ``items``
only: every other item gets the lowest float score, which with pessimistic ties puts it
below any candidate. Useful for "recommend among the new arrivals" in cold start, where
the chance level is exactly computable (:func:`course_lib.data.cold_start.chance_metrics`).
Only HR@K, NDCG@K and MRR are meaningful on the result (AUC counts the removed items as
beaten).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.batch import Batch
from .base import Recommender


class CandidateSubset(Recommender):
    """Wrap a recommender so that only ``items`` can be ranked.

    Args:
        model: any recommender.
        items: (N,) item ids 1..I that stay candidates.
    """

    def __init__(self, model: Recommender, items: Tensor) -> None:
        super().__init__(model.num_items)
        items = torch.as_tensor(items, dtype=torch.long)
        if items.ndim != 1 or items.numel() == 0 or items.min() < 1 or items.max() > model.num_items:
            raise ValueError(f"items must be a non-empty 1-D list of item ids in 1..{model.num_items}, got {items!r:.80}.")
        self.model = model
        allowed = torch.zeros(model.num_items, dtype=torch.bool)
        allowed[items - 1] = True
        self.register_buffer("allowed", allowed, persistent=False)  # (I,) True = a candidate

    def score_all(self, batch: Batch) -> Tensor:
        scores = self.model.score_all(batch)  # (B, I)
        return scores.masked_fill(~self.allowed, torch.finfo(scores.dtype).min)
