"""An ensemble of independently trained recommenders: the mean of their log-probabilities.

    log p_m(c | history) = log_softmax_c(s_m(c))          member m's distribution over the catalogue
    s(c)                 = (1 / M) sum_m log p_m(c | history)

Subtracting a member's log-normaliser shifts its whole row by one constant, so the ranking
is exactly that of the mean raw score; the normalisation makes ``s(c)`` the log-probability of
the members' geometric-mean distribution (up to one constant per user), which is what a reader
of the scores expects. A member with more spread-out scores (a lower temperature) weighs more
in either form.

Members are trained separately (different seeds), so ``loss`` refuses: train each member with
the shared loop, then wrap them. :func:`train_ensemble` does both for a benchmark entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..data.batch import Batch
from .base import Recommender

if TYPE_CHECKING:  # the benchmark imports the models; import it lazily to avoid a cycle
    from ..bench import BenchData, BenchRun, Mode


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
        raise NotImplementedError("train each member on its own (see train_ensemble), then wrap them in a ScoreEnsemble.")

    def score_all(self, batch: Batch) -> Tensor:
        """(B, I) mean over members of ``log_softmax(member.score_all(batch))``."""
        log_probs = [torch.log_softmax(member.score_all(batch).float(), dim=-1) for member in self.members]  # M x (B, I)
        return torch.stack(log_probs).mean(dim=0)  # (B, I)

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        """(B, N) ensemble scores of candidates ``items`` (B, N); normalising needs the whole catalogue."""
        return self.score_all(batch).gather(1, items - 1)  # column c is item c + 1


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member ``member`` in benchmark run ``seed`` (distinct for every pair)."""
    return 1000 * seed + member


def train_ensemble(
    train: Callable[[BenchData, Mode, int, torch.device], BenchRun],
    size: int,
    data: BenchData,
    mode: Mode,
    seed: int,
    device: torch.device,
) -> BenchRun:
    """Train ``size`` members with ``train`` (seeds :func:`member_seed`) and wrap them in a :class:`ScoreEnsemble`.

    Returns:
        A ``BenchRun``: the ensemble, the members' total seconds, and the epochs of one member
        (the most any member trained).
    """
    from ..bench import BenchRun

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an int >= 1 (members to train), got {size!r}.")
    runs = [train(data, mode, member_seed(seed, m), device) for m in range(size)]
    if any((run.test is None) != (runs[0].test is None) for run in runs):
        raise ValueError("every member must read the same test batches (the same history length L).")
    return BenchRun(
        ScoreEnsemble([run.model for run in runs]), sum(run.seconds for run in runs), max(run.epochs for run in runs),
        runs[0].test,
    )
