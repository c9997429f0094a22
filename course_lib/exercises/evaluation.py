"""Checkers for notebook 06 (MovieLens and honest evaluation).

Conventions of the exercises: ``scores`` is a 1-D tensor over the catalogue where entry
``c`` is the score of item id ``c + 1``; ``target`` is an item id; ``history`` a list of
item ids the user has already seen (removed from the ranking). The target is never in the
history: ``course_lib.metrics.evaluate`` leaves a user whose target is a seen item out of the
evaluation (``repeats="drop"``), because ranking the target while removing the other seen items
would give it away; so no case below has one.
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
    ([0.3, 0.8, 0.8, 0.1], 2, [3, 4], 1),  # its tie (item 3) was seen: nothing is left above
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


_REPORT_CASES = (  # (valid scores, test scores, expected index, what the case catches)
    ([0.10, 0.30, 0.20], [0.50, 0.20, 0.40], 1, "the best on validation is not the best on test"),
    ([math.nan, 0.20, 0.25], [0.05, 0.20, 0.15], 2, "a failed run (nan) cannot be chosen"),
    ([0.20, 0.30, 0.30], [0.30, 0.12, 0.10], 1, "a tie on validation goes to the earliest variant"),
    ([0.05, math.nan, 0.04, 0.05], [0.06, 0.30, 0.07, 0.02], 0, "nan in the middle, and a tie"),
)


def _report_answer(answer: object) -> tuple[int, float]:
    expect(
        isinstance(answer, tuple | list) and len(answer) == 2,
        f"return a pair `(index, number)`, got {type(answer).__name__}"
        f"{f' of length {len(answer)}' if isinstance(answer, tuple | list) else ''}.",
    )
    index, value = answer
    index = number(index, "the index")
    expect(float(index).is_integer(), f"the index should be a whole number, got {index!r}.")
    return int(index), float(number(value, "the number you report"))


def check_choose_and_report(choose_and_report: Callable[[list[float], list[float]], tuple[int, float]]) -> None:
    """Check ``choose_and_report(valid_scores, test_scores) -> (index, number)`` (choose on validation, report test)."""

    def trial() -> None:
        for valid, test, expected, catches in _REPORT_CASES:
            index, value = _report_answer(call(choose_and_report, list(valid), list(test)))
            best_test = max(range(len(test)), key=lambda i: test[i])
            expect(
                index != best_test or best_test == expected,
                f"for validation {valid} and test {test} you chose variant {index}, the best on TEST. Choosing on "
                "test makes the test number as optimistic as a validation maximum; choose on validation.",
            )
            expect(
                index == expected,
                f"for validation {valid} you chose variant {index}; the right choice is {expected} ({catches}). "
                "np.argmax returns the first nan it meets; np.nanargmax skips them and keeps the first maximum.",
            )
            expect(
                not math.isclose(value, valid[expected], rel_tol=1e-6) or math.isclose(value, test[expected], rel_tol=1e-6),
                f"you reported {value}, the chosen variant's VALIDATION score. It is the maximum of noisy numbers, "
                "biased upward by the choice itself; report the chosen variant's test score.",
            )
            expect(
                math.isclose(value, test[expected], rel_tol=1e-6),
                f"for validation {valid} and test {test} report variant {expected}'s test score "
                f"{test[expected]}, you reported {value}.",
            )

    report(run_check("What to report", trial, "Chosen on validation, reported on test, failed runs skipped."))
