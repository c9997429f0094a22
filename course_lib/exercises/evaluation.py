"""Checkers for notebook 06 (MovieLens and honest evaluation).

Conventions of the exercises: ``scores`` is a 1-D tensor over the catalogue where entry
``c`` is the score of item id ``c + 1``; ``target`` is an item id; ``history`` a list of
item ids the user has already seen (removed from the ranking, the target never is).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .core import call, expect, number, report, run_check

_CASES = (  # (scores, target, history, expected pessimistic rank) - hand-checkable
    ([0.9, 0.1, 0.5, 0.7], 3, [], 3),  # items 1 (0.9) and 4 (0.7) beat item 3 (0.5)
    ([0.9, 0.1, 0.5, 0.7], 3, [1], 2),  # item 1 was seen: only item 4 is left above
    ([0.5, 0.5, 0.5, 0.2], 2, [], 3),  # tied with items 1 and 3: ranks below both
    ([0.2, 0.2, 0.9, 0.2], 1, [3], 3),  # item 3 seen; tied with 2 and 4
    ([0.3, 0.8, 0.8, 0.1], 2, [2, 4], 2),  # the target is in the history: still ranked
)


def _random_case(seed: int) -> tuple[list[float], int, list[int], int]:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (30,), generator=g).float() / 5  # many ties
    target = int(torch.randint(1, 31, (1,), generator=g))
    history = [int(i) for i in torch.randperm(30, generator=g)[:8] + 1 if int(i) + 1 != target]
    ranked = [c for c in range(30) if c + 1 not in history and c + 1 != target]
    rank = 1 + sum(bool(scores[c] >= scores[target - 1]) for c in ranked)
    return scores.tolist(), target, history, rank


def _cases():
    return list(_CASES) + [_random_case(seed) for seed in range(5)]


def check_pessimistic_rank(rank_of_target: Callable[[torch.Tensor, int, list[int]], int]) -> None:
    """Check ``rank_of_target(scores, target, history) -> int`` (1-based, ties pessimistic)."""

    def trial() -> None:
        for scores, target, history, expected in _cases():
            got = number(call(rank_of_target, torch.tensor(scores), target, list(history)), "the rank")
            expect(
                got == expected,
                f"for scores {scores[:6]}{'...' if len(scores) > 6 else ''}, target {target}, history {history[:6]} "
                f"the rank is {expected}, you returned {got!r}. Count the items that are not in the history "
                "(the target excepted) whose score is >= the target's, and add 1. Remember entry c is item c + 1.",
            )

    report(run_check("Pessimistic rank", trial, "Ties and seen items are handled as the library does."))


def check_ndcg_at_k(ndcg_at_k: Callable[[torch.Tensor, int, list[int], int], float]) -> None:
    """Check ``ndcg_at_k(scores, target, history, k) -> float`` for one user."""

    def trial() -> None:
        for scores, target, history, rank in _cases():
            for k in (1, 3, 10):
                expected = 1.0 / math.log2(rank + 1) if rank <= k else 0.0
                got = number(call(ndcg_at_k, torch.tensor(scores), target, list(history), k), "NDCG@K")
                expect(
                    abs(got - expected) < 1e-6,
                    f"for target rank {rank} and K={k} NDCG@K is {expected:.4f}, you returned {got:.4f}. "
                    "With one relevant item, NDCG@K = 1 / log2(rank + 1) when rank <= K, else 0 "
                    "(log base 2, rank counted from 1).",
                )

    report(run_check("NDCG@K for one user", trial, "It matches course_lib.metrics."))
