"""Checkers for notebook 01 (dot products).

Each ``check_*`` prints one line (pass, hint, or "not answered yet") and returns None;
it never raises, so an unanswered exercise does not stop the notebook.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .core import Mismatch, answered, call, expect, expect_close, report, run_check

__all__ = ["check_cosine_scores", "check_top_k_items"]

COSINE_EXERCISE = "Exercise 1 (cosine score matrix)"
TOP_K_EXERCISE = "Exercise 2 (top-k items per user)"


def _reference_cosine(users: Tensor, items: Tensor) -> Tensor:
    users_unit = users / users.norm(dim=-1, keepdim=True)  # (U, D)
    items_unit = items / items.norm(dim=-1, keepdim=True)  # (I, D)
    return users_unit @ items_unit.T  # (U, I)


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(
        a.detach().to("cpu", torch.float64), b.to(torch.float64), atol=1e-5, rtol=1e-4
    )


def _cosine_cases() -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(1)
    cases = [
        # the catalogue of notebook 01: lengths differ a lot, so dot and cosine differ
        (
            torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
            torch.tensor([[3.0, 0.0], [2.0, 1.0], [0.0, 3.0], [1.0, 2.0], [5.0, 4.0]]),
        )
    ]
    for users, items, dim in ((4, 6, 2), (3, 7, 8), (5, 2, 16)):
        scale = torch.rand(items, 1, generator=generator) * 5 + 0.5  # very different lengths
        cases.append(
            (
                torch.randn(users, dim, generator=generator),
                torch.randn(items, dim, generator=generator) * scale,
            )
        )
    return cases


def check_cosine_scores(student_cosine_scores: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``student_cosine_scores(users (U, D), items (I, D)) -> (U, I)`` cosine similarities."""

    def trial() -> None:
        fn = answered(student_cosine_scores, "your function")
        for users, items in _cosine_cases():
            users_before, items_before = users.clone(), items.clone()
            got = answered(call(fn, users, items), "the score matrix")
            expected = _reference_cosine(users, items)
            if not isinstance(got, Tensor):
                raise Mismatch(f"return a torch.Tensor of shape (U, I), got {type(got).__name__}.")
            expect(
                torch.equal(users, users_before) and torch.equal(items, items_before),
                "your function changed its inputs in place (e.g. `users /= ...`); "
                "compute new tensors instead so the caller's vectors stay as they were.",
            )
            if got.shape == expected.T.shape and got.shape != expected.shape:
                raise Mismatch(
                    f"the shape is {tuple(got.shape)}, but rows should be users and columns items "
                    f"{tuple(expected.shape)}: put the users on the left, `users_unit @ items_unit.T`."
                )
            if _close(got, users @ items.T):
                raise Mismatch(
                    "these are the plain dot products. Divide each one by |user| * |item| "
                    "(or normalise both sets of vectors to length 1 first)."
                )
            if _close(got, (users / users.norm(dim=-1, keepdim=True)) @ items.T):
                raise Mismatch(
                    "you divided by the users' lengths only; divide by the items' lengths too "
                    "(the item lengths are what lets a long item win every ranking)."
                )
            if _close(got, users @ (items / items.norm(dim=-1, keepdim=True)).T):
                raise Mismatch(
                    "you divided by the items' lengths only; divide by each user's length too, "
                    "so that every value lies in [-1, 1]."
                )
            expect_close(
                got,
                expected,
                what=f"the score matrix for {users.shape[0]} users x {items.shape[0]} items",
                hint="cosine(u, i) = <u, i> / (|u| |i|); the norms are taken over the last "
                "dimension (the features): `x.norm(dim=-1, keepdim=True)`.",
            )

    report(
        run_check(
            COSINE_EXERCISE,
            trial,
            success="Scaling an item vector no longer changes its cosine score.",
        )
    )


def _reference_top_k(scores: Tensor, k: int) -> Tensor:
    return scores.topk(k, dim=-1).indices  # (U, k), best first


def _top_k_cases() -> list[tuple[Tensor, int]]:
    generator = torch.Generator().manual_seed(2)
    notebook_scores = torch.tensor(  # users x items, like notebook 01's dot products but without ties
        [[6.0, 4.0, 0.0, 2.0, 10.0], [0.0, 1.0, 3.0, 2.0, 4.0], [3.0, 3.5, 3.2, 2.9, 9.0]]
    )
    return [
        (notebook_scores, 1),
        (notebook_scores, 3),
        (torch.randn(4, 10, generator=generator), 3),
        (torch.randn(2, 6, generator=generator), 6),
    ]


def check_top_k_items(student_top_k_items: Callable[[Tensor, int], Tensor]) -> None:
    """Check ``student_top_k_items(scores (U, I), k) -> (U, k)`` item indices, best first."""

    def trial() -> None:
        fn = answered(student_top_k_items, "your function")
        for scores, k in _top_k_cases():
            got = answered(call(fn, scores.clone(), k), "the top-k indices")
            expected = _reference_top_k(scores, k)
            where = f"(scores of shape {tuple(scores.shape)}, k={k})"
            if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], Tensor):
                raise Mismatch(
                    "you returned a pair (values, indices), e.g. the whole result of torch.topk; "
                    "return only the indices: `torch.topk(scores, k, dim=-1).indices`."
                )
            if not isinstance(got, Tensor):
                raise Mismatch(f"return a torch.Tensor of item indices, got {type(got).__name__}.")
            expect(
                tuple(got.shape) == tuple(expected.shape),
                f"the result should have shape (users, k) = {tuple(expected.shape)}, got "
                f"{tuple(got.shape)} {where}. Take the top k along the items, dim=-1.",
            )
            if got.is_floating_point():
                if _close(got, scores.topk(k, dim=-1).values):
                    raise Mismatch(
                        "you returned the best scores; return the item indices (their positions) "
                        "instead: `.indices`, not `.values`."
                    )
                raise Mismatch(f"item indices are integers, got dtype {got.dtype} {where}.")
            got = got.to("cpu", torch.long)
            if torch.equal(got, expected):
                continue
            if torch.equal(got, scores.topk(k, dim=-1, largest=False).indices):
                raise Mismatch(
                    f"these are the k lowest-scoring items {where}; recommend the highest "
                    "(`largest=True`, the default of torch.topk)."
                )
            if torch.equal(got, expected.flip(-1)):
                raise Mismatch(f"right items, but worst first {where}; list the best item first.")
            if torch.equal(got.sort(dim=-1).values, expected.sort(dim=-1).values):
                raise Mismatch(f"right items, wrong order {where}; sort them best first.")
            raise Mismatch(f"wrong items {where}: expected {expected.tolist()}, got {got.tolist()}.")

    report(run_check(TOP_K_EXERCISE, trial))
