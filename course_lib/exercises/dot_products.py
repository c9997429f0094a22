"""Checkers for notebook 01 (dot products).

Each ``check_*`` prints one line (pass, hint, or "not answered yet") and returns None;
it never raises, so an unanswered exercise does not stop the notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .core import Mismatch, answered, call, expect, report, run_check

__all__ = ["check_top_k_unseen", "check_winning_stretch"]

STRETCH_EXERCISE = "Exercise 1 (how long must an item be to win?)"
UNSEEN_EXERCISE = "Exercise 2 (recommend only what the user has not seen)"

# the catalogue and users of notebook 01
_ITEMS = torch.tensor([[3.0, 0.0], [2.0, 1.0], [0.0, 3.0], [1.0, 2.0], [5.0, 4.0]])
_USERS = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 2.0]])


def _reference_stretch(users: Tensor, items: Tensor, item: int) -> Tensor:
    scores = users @ items.T  # (U, I)
    own = scores[:, item]  # (U,)
    others = torch.cat([scores[:, :item], scores[:, item + 1 :]], dim=1).amax(dim=1)  # (U,)
    return torch.where(own > 0, others / own, torch.full_like(own, math.inf))


def _stretch_cases() -> list[tuple[Tensor, Tensor, int]]:
    generator = torch.Generator().manual_seed(11)
    users = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 2.0], [-1.0, 0.5], [3.0, 3.0]])
    cases = [(_USERS, _ITEMS, 3), (_USERS, _ITEMS, 2), (users, _ITEMS, 0), (users, _ITEMS, 4)]
    for n_users, n_items, dim in ((6, 7, 3), (4, 9, 5)):
        items = torch.rand(n_items, dim, generator=generator) + 0.1  # positive features: positive scores
        cases.append((torch.randn(n_users, dim, generator=generator), items, n_items // 2))
    return cases


def _as_float(x: Tensor) -> Tensor:
    return x.detach().to("cpu", torch.float64)


def _same(a: Tensor, b: Tensor) -> bool:
    """Equal shapes and values, where inf must meet inf."""
    a, b = _as_float(a), _as_float(b)
    if a.shape != b.shape or not torch.equal(torch.isinf(a), torch.isinf(b)):
        return False
    finite = torch.isfinite(b)
    return bool(torch.allclose(a[finite], b[finite], atol=1e-5, rtol=1e-4))


def check_winning_stretch(student_winning_stretch: Callable[[Tensor, Tensor, int], Tensor]) -> None:
    """Check ``student_winning_stretch(users (U, D), items (I, D), item) -> (U,)`` smallest winning factors."""

    def trial() -> None:
        fn = answered(student_winning_stretch, "your function")
        for users, items, item in _stretch_cases():
            where = f"(users {tuple(users.shape)}, items {tuple(items.shape)}, item={item})"
            items_before = items.clone()
            got = answered(call(fn, users.clone(), items, item), "the stretch factors")
            if not isinstance(got, Tensor):
                raise Mismatch(f"return a torch.Tensor with one factor per user, got {type(got).__name__}.")
            expect(torch.equal(items, items_before), "your function changed `items` in place; stretch a copy "
                   "(`items.clone()`), or better, compute the factor without stretching anything.")
            expected = _reference_stretch(users, items, item)
            expect(tuple(got.shape) == tuple(expected.shape),
                   f"return one factor per user, shape {tuple(expected.shape)}, got {tuple(got.shape)} {where}.")
            if _same(got, expected):
                continue
            scores = users @ items.T
            own = scores[:, item]
            positive = own > 0
            best_other = scores.masked_fill(torch.arange(items.shape[0]) == item, -math.inf).amax(dim=1)
            if _same(got[positive], expected[positive]):
                raise Mismatch(f"some user's score with the item is <= 0 {where}: stretching multiplies that "
                               "score by c > 0, so it never becomes the best; return `math.inf` (float('inf')) "
                               "for those users.")
            if _same(got[positive], (own / best_other)[positive]):
                raise Mismatch(f"your ratio is upside down {where}: stretching by c multiplies the item's score "
                               "by c, so it wins once c * own >= best other score, i.e. c = best other / own.")
            if _same(got[positive], (scores.amax(dim=1) / own)[positive]):
                raise Mismatch(f"the best score you compare with includes the item itself {where}: then the "
                               "factor is never below 1, although an item that already wins needs no stretch. "
                               "Take the maximum over the OTHER items.")
            raise Mismatch(f"wrong factors {where}: expected {[round(v, 3) for v in expected.tolist()]}, "
                           f"got {[round(v, 3) for v in _as_float(got).tolist()]}.")

    report(run_check(STRETCH_EXERCISE, trial, success="Cosine never needs a stretch: its ranking ignores length."))


def _reference_unseen(scores: Tensor, seen: Tensor, k: int) -> Tensor:
    return scores.masked_fill(seen, -math.inf).topk(k, dim=-1).indices  # (U, k)


def _unseen_cases() -> list[tuple[Tensor, Tensor, int]]:
    generator = torch.Generator().manual_seed(12)
    notebook_scores = _USERS @ _ITEMS.T  # (3, 5)
    notebook_seen = torch.tensor([[True, False, False, False, True], [False, False, True, False, True],
                                  [False, False, False, False, True]])
    negative = -torch.rand(4, 8, generator=generator) - 0.5  # every score negative
    negative_seen = torch.rand(4, 8, generator=generator) < 0.4
    negative_seen[:, :4] = False  # at least four unseen items per user
    scores = torch.randn(5, 10, generator=generator)
    seen = torch.rand(5, 10, generator=generator) < 0.5
    seen[:, :3] = False
    return [(notebook_scores, notebook_seen, 2), (negative, negative_seen, 3), (scores, seen, 3)]


def check_top_k_unseen(student_top_k_unseen: Callable[[Tensor, Tensor, int], Tensor]) -> None:
    """Check ``student_top_k_unseen(scores (U, I), seen bool (U, I), k) -> (U, k)`` unseen items, best first."""

    def trial() -> None:
        fn = answered(student_top_k_unseen, "your function")
        for scores, seen, k in _unseen_cases():
            where = f"(scores {tuple(scores.shape)}, k={k})"
            scores_before = scores.clone()
            got = answered(call(fn, scores, seen.clone(), k), "the recommended items")
            expect(torch.equal(scores, scores_before), "your function changed `scores` in place "
                   "(e.g. `scores[seen] = ...`); the caller still needs the real scores: work on a copy.")
            if isinstance(got, tuple) and len(got) == 2:
                raise Mismatch("you returned a pair (values, indices); return only the item indices.")
            if not isinstance(got, Tensor):
                raise Mismatch(f"return a torch.Tensor of item indices, got {type(got).__name__}.")
            expected = _reference_unseen(scores, seen, k)
            expect(tuple(got.shape) == tuple(expected.shape),
                   f"the result should have shape (users, k) = {tuple(expected.shape)}, got {tuple(got.shape)} {where}.")
            expect(not got.is_floating_point(), f"return item indices (integers), got dtype {got.dtype} {where}.")
            got = got.to("cpu", torch.long)
            if torch.equal(got, expected):
                continue
            if torch.equal(got, scores.topk(k, dim=-1).indices):
                raise Mismatch(f"these are the best items including ones the user has already seen {where}; "
                               "rule out the seen items before taking the top k.")
            if torch.equal(got, (scores * ~seen).topk(k, dim=-1).indices) or torch.equal(
                    got, scores.masked_fill(seen, 0.0).topk(k, dim=-1).indices):
                raise Mismatch(f"you gave seen items a score of 0 {where}; when every real score is negative "
                               "a 0 still wins. Give them -inf (`masked_fill(seen, float('-inf'))`).")
            if bool(seen.gather(1, got.clamp(0, scores.shape[1] - 1)).any()):
                raise Mismatch(f"some recommended items were already seen {where}.")
            raise Mismatch(f"wrong items {where}: expected {expected.tolist()}, got {got.tolist()}.")

    report(run_check(UNSEEN_EXERCISE, trial))
