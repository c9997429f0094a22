"""An ensemble of independently trained recommenders: the mean of their log-probabilities.

    log p_m(c | history) = log_softmax_c(s_m(c))          member m's distribution over the catalogue
    s(c)                 = (1 / M) sum_m log p_m(c | history)

Subtracting a member's log-normaliser shifts its whole row by one constant, so the ranking
is exactly that of the mean raw score; the normalisation makes ``s(c)`` the log-probability of
the members' geometric-mean distribution (up to one constant per user), which is what a reader
of the scores expects. A member with more spread-out scores (a lower temperature) weighs more
in either form.

Members are trained separately (different seeds), so ``loss`` refuses: train each member with
the shared loop, then wrap them (:func:`course_lib.bench.train_ensemble` does both for a
benchmark entry).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..data.batch import Batch
from .base import Recommender, check_candidates


class ScoreEnsemble(Recommender):
    """Mean of the members' log-softmax over the catalogue (see the module docstring).

    Args:
        members: at least one trained recommender, all over the same catalogue size I.
    """

    def __init__(self, members: Sequence[Recommender]) -> None:
        members = list(members)
        if not members or not all(isinstance(m, Recommender) for m in members):
            raise ValueError(f"ScoreEnsemble needs one or more Recommender members, got {[type(m).__name__ for m in members]}.")
        sizes = {m.num_items for m in members}
        if len(sizes) != 1:
            raise ValueError(f"every member must rank the same catalogue; their sizes I are {sorted(sizes)}.")
        super().__init__(sizes.pop())
        self.members = nn.ModuleList(members)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError("train each member on its own, then wrap them in a ScoreEnsemble (see course_lib.bench.train_ensemble).")

    def score_all(self, batch: Batch) -> Tensor:
        """(B, I) mean over members of ``log_softmax(member.score_all(batch))``."""
        log_probs = [torch.log_softmax(member.score_all(batch).float(), dim=-1) for member in self.members]  # M x (B, I)
        return torch.stack(log_probs).mean(dim=0)  # (B, I)

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        """(B, N) ensemble scores of candidates ``items`` (B, N); normalising needs the whole catalogue."""
        check_candidates(items, self.num_items, len(batch))
        return self.score_all(batch).gather(1, items - 1)  # column c is item c + 1
