"""Checkers for notebook 02 (softmax and attention pooling).

Each ``check_*`` prints one line (pass, hint, or "not answered yet") and returns None;
it never raises, so an unanswered exercise does not stop the notebook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.autograd.functional
import torch.func
from torch import Tensor

from ..attention import masked_softmax
from .core import Mismatch, answered, call, expect, expect_close, forbid, report, run_check

__all__ = ["check_masked_pooling", "check_pooling_grad", "check_top_k_attention"]

POOLING_GRAD_EXERCISE = "Exercise 1 (the gradient of attention pooling, by hand)"
TOP_K_EXERCISE = "Exercise 2 (top-k attention)"
MASKED_POOLING_EXERCISE = "Exercise 3 (bug hunt: masked pooling)"

_BY_HAND_HINT = (
    "derive it by hand; autograd is what we check against. Write the gradient with the weights "
    "w = softmax(scores), the output o = w @ values and the upstream vector, without calling "
    "torch.autograd.grad, .backward() or torch.func."
)


class _UsedAutograd(Mismatch):
    """Raised (as a hint) when the student's code asks autograd for the gradient."""


def _refuse_autograd(*args: object, **kwargs: object) -> None:
    raise _UsedAutograd(_BY_HAND_HINT)


_AUTOGRAD_SHORTCUTS: tuple[tuple[object, str], ...] = (
    (torch.autograd, "grad"),
    (torch.autograd, "backward"),
    (torch.Tensor, "backward"),
    (torch.autograd.functional, "jacobian"),
    (torch.autograd.functional, "vjp"),
    (torch.func, "grad"),
    (torch.func, "grad_and_value"),
    (torch.func, "vjp"),
    (torch.func, "jacrev"),
    (torch.func, "jacfwd"),
)


@contextlib.contextmanager
def _autograd_forbidden() -> Iterator[None]:
    """Make the autograd shortcuts raise :class:`_UsedAutograd` inside the block; restore them after."""
    saved = [(owner, name, getattr(owner, name)) for owner, name in _AUTOGRAD_SHORTCUTS]
    try:
        for owner, name, _ in saved:
            setattr(owner, name, _refuse_autograd)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(
        torch.allclose(a.detach().to("cpu", torch.float64), b.to(torch.float64), atol=1e-5, rtol=1e-4)
    )


def _autograd_pooling_grad(scores: Tensor, values: Tensor, upstream: Tensor) -> Tensor:
    """The reference: d(upstream . o)/d scores with o = softmax(scores) @ values, by autograd (float64)."""
    scores = scores.detach().double().requires_grad_(True)  # (L,)
    output = torch.softmax(scores, dim=-1) @ values.double()  # (D,)
    (grad,) = torch.autograd.grad(output @ upstream.double(), scores)
    return grad  # (L,)


def _pooling_grad_cases() -> list[tuple[str, Tensor, Tensor, Tensor]]:
    """(description, scores (L,), values (L, D), upstream (D,)) for the gradient check."""
    generator = torch.Generator().manual_seed(5)
    cases = []
    for length, dim in ((5, 3), (4, 2), (7, 6)):
        scores = torch.randn(length, generator=generator) * 1.5
        values = torch.randn(length, dim, generator=generator)
        upstream = torch.randn(dim, generator=generator)
        cases.append((f"random scores (L={length}, D={dim})", scores, values, upstream))
    values = torch.randn(4, 3, generator=generator)
    upstream = torch.randn(3, generator=generator)
    cases.append(("equal scores (uniform weights)", torch.zeros(4), values, upstream))
    cases.append(("the scores [1000, 999, 0, -5] (a very large score)", torch.tensor([1000.0, 999.0, 0.0, -5.0]),
                  values, upstream))
    return cases


def check_pooling_grad(student_pooling_grad: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
    """Check ``student_pooling_grad(scores (L,), values (L, D), upstream (D,)) -> (L,)``.

    The answer is d(upstream . o)/d scores for o = softmax(scores) @ values, derived by hand:
    autograd (``torch.autograd.grad``, ``Tensor.backward``, ``torch.func``) raises a hint inside
    the check and is put back afterwards.
    """

    def trial() -> None:
        fn = answered(student_pooling_grad, "your function")
        for where, scores, values, upstream in _pooling_grad_cases():
            expected = _autograd_pooling_grad(scores, values, upstream)  # (L,), computed before the ban
            weights = torch.softmax(scores.double(), dim=-1)  # (L,)
            output = weights @ values.double()  # (D,)
            along = values.double() @ upstream.double()  # (L,) v_j . g
            with _autograd_forbidden():
                got = answered(call(fn, scores.clone(), values.clone(), upstream.clone()), "the gradient")
            if not isinstance(got, Tensor):
                raise Mismatch(f"return a torch.Tensor of shape (L,), got {type(got).__name__}.")
            length, dim = values.shape
            if tuple(got.shape) == (length, dim):
                raise Mismatch(
                    f"your gradient has shape (L, D) = {(length, dim)}; the loss upstream . o is one number "
                    "and there are L scores, so its gradient has shape (L,): take the dot product with "
                    "the upstream vector."
                )
            expect(
                tuple(got.shape) == (length,),
                f"the gradient should have shape (L,) = ({length},), got {tuple(got.shape)} for {where}.",
            )
            got = got.detach().to("cpu", torch.float64)
            expect(
                bool(torch.isfinite(got).all()),
                f"your gradient contains NaN or inf for {where}: compute the weights with a stable softmax "
                "(subtract the largest score before exp).",
            )
            if not _close(got, expected):
                if _close(-got, expected):
                    raise Mismatch(f"the sign is flipped ({where}): the gradient points the way upstream . o grows.")
                if _close(got, weights * along) and not _close(weights * along, expected):
                    raise Mismatch(
                        f"you returned w_j (v_j . g) ({where}): you forgot that raising s_j also lowers every "
                        "other weight (they sum to 1). Differentiate the denominator of the softmax too."
                    )
                if _close(got, weights * (1 - weights) * along):
                    raise Mismatch(
                        f"you used only the diagonal of the softmax Jacobian, dw_j/ds_j = w_j (1 - w_j) ({where}); "
                        "s_j also changes every other weight: dw_i/ds_j = -w_i w_j for i != j."
                    )
                if _close(got, along - output @ upstream.double()):
                    raise Mismatch(f"almost ({where}): each term still needs the factor w_j.")
            expect_close(  # float32 inputs near 1000 carry errors of about 1e-5 into the weights
                got,
                expected,
                atol=1e-4,
                rtol=1e-3,
                what=f"the gradient for {where}",
                hint="write o = sum_i w_i v_i, use dw_i/ds_j = w_i (delta_ij - w_j), and dot with the upstream vector.",
            )

    report(
        run_check(
            POOLING_GRAD_EXERCISE,
            trial,
            success="It matches autograd, also for equal scores and a very large score.",
        )
    )


def _reference_top_k_attention(scores: Tensor, values: Tensor, k: int) -> tuple[Tensor, Tensor]:
    top = scores.topk(k, dim=-1).indices  # (B, k)
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, top, True)  # (B, L)
    weights = masked_softmax(scores, keep)  # (B, L)
    output = (weights.unsqueeze(-2) @ values).squeeze(-2)  # (B, D)
    return output, weights


def check_top_k_attention(
    student_top_k_attention: Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor]],
) -> None:
    """Check ``student_top_k_attention(scores (B, L), values (B, L, D), k) -> (output (B, D), weights (B, L))``."""

    def trial() -> None:
        fn = answered(student_top_k_attention, "your function")
        generator = torch.Generator().manual_seed(4)
        batch, length, dim = 3, 6, 4
        scores = torch.randn(batch, length, generator=generator) * 2
        values = torch.randn(batch, length, dim, generator=generator)
        for k in (2, 1, length, 3):
            where = f"(k={k}, scores {tuple(scores.shape)}, values {tuple(values.shape)})"
            result = answered(call(fn, scores.clone(), values.clone(), k), "the result")
            expect(
                isinstance(result, tuple) and len(result) == 2,
                f"return a pair (output, weights), got {type(result).__name__}.",
            )
            output, weights = result
            expected_output, expected_weights = _reference_top_k_attention(scores, values, k)
            for got, expected, name in ((output, expected_output, "output"), (weights, expected_weights, "weights")):
                answered(got, f"the {name}")
                if not isinstance(got, Tensor):
                    raise Mismatch(f"the {name} should be a torch.Tensor, got {type(got).__name__}.")
                expect(
                    tuple(got.shape) == tuple(expected.shape),
                    f"the {name} should have shape {tuple(expected.shape)}, got {tuple(got.shape)} {where}.",
                )
            weights = weights.detach().to("cpu", torch.float64)
            kept = expected_weights > 0
            expect(
                bool(torch.isfinite(weights).all()),
                f"the weights contain NaN or inf {where}; fill the dropped scores with a large "
                "negative number or use masked_softmax, and make sure each row keeps k items.",
            )
            expect(
                bool((weights[~kept].abs() < 1e-6).all()),
                f"items outside the top {k} must get weight 0 {where}; drop (mask) them before "
                "the softmax.",
            )
            if k > 1 and _close(weights, kept.double() / k):
                raise Mismatch(
                    f"every kept item got weight 1/k {where}; weight the kept items by the softmax "
                    "of their scores instead (a better score earns more weight)."
                )
            expect(
                bool(torch.allclose(weights.sum(-1), torch.ones(batch, dtype=torch.float64), atol=1e-5)),
                f"each row of weights should sum to 1, got sums {weights.sum(-1).tolist()} {where}; "
                "renormalise: the softmax runs over the kept scores only.",
            )
            expect_close(
                weights,
                expected_weights,
                what=f"the weights {where}",
                hint="softmax over the k best scores of each row (torch.topk(..., dim=-1)), 0 elsewhere."
                + (" With k=1 this is the one-hot argmax." if k == 1 else ""),
            )
            expect_close(
                output,
                expected_output,
                what=f"the output {where}",
                hint="the output is the weighted sum of the values: "
                "(weights.unsqueeze(-2) @ values).squeeze(-2), shape (B, D).",
            )

    report(
        run_check(
            TOP_K_EXERCISE,
            trial,
            success="k=L is ordinary softmax; only k=1 (the one-hot argmax) is hard attention.",
        )
    )


def _reference_masked_pooling(history: Tensor, query: Tensor, attn_mask: Tensor) -> tuple[Tensor, Tensor]:
    scores = (history @ query.unsqueeze(-1)).squeeze(-1)  # (B, L)
    weights = masked_softmax(scores, attn_mask)  # (B, L), a fully masked row is all zeros
    return (weights.unsqueeze(-2) @ history).squeeze(-2), weights  # (B, D), (B, L)


def _masked_pooling_cases() -> list[tuple[str, Tensor, Tensor, Tensor]]:
    """(description, history (B, L, D), query (B, D), attn_mask (B, L)) in the order the bugs are diagnosed."""
    generator = torch.Generator().manual_seed(6)
    batch, length, dim = 3, 5, 4
    history = torch.randn(batch, length, dim, generator=generator)
    query = torch.randn(batch, dim, generator=generator)
    attn_mask = torch.tensor(
        [[True, True, True, False, False], [True, False, True, True, False], [True, True, True, True, True]]
    )
    huge_history = history * 30.0  # scores in the hundreds or thousands: exp overflows in float32
    huge_query = query * 30.0
    empty = attn_mask.clone()
    empty[1] = False  # a user with no history at all
    return [
        ("ordinary scores", history, query, attn_mask),
        ("large scores (hundreds to thousands)", huge_history, huge_query, attn_mask),
        ("a batch whose second row is fully masked", history, query, empty),
    ]


def check_masked_pooling(
    student_masked_pooling: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]],
) -> None:
    """Check ``student_masked_pooling(history (B, L, D), query (B, D), attn_mask (B, L)) -> (output (B, D), weights (B, L))``.

    ``attn_mask`` is boolean, True = may attend. Each planted bug of the broken version (softmax over
    the axis of size 1, masked scores filled with 0, no max subtraction) and a fully masked row
    that is not all zeros get their own hint.
    """

    def trial() -> None:
        fn = answered(student_masked_pooling, "your function")
        forbid(fn, ("softmax", "log_softmax", "masked_softmax", "scaled_dot_product_attention"),
               "fill the masked scores, subtract the row maximum, exponentiate and normalise yourself.")
        for where, history, query, attn_mask in _masked_pooling_cases():
            result = answered(call(fn, history.clone(), query.clone(), attn_mask.clone()), "the result")
            expect(
                isinstance(result, tuple) and len(result) == 2,
                f"return a pair (output, weights), got {type(result).__name__}.",
            )
            output, weights = result
            expected_output, expected_weights = _reference_masked_pooling(history, query, attn_mask)
            batch, length, dim = history.shape
            for got, name in ((output, "output"), (weights, "weights")):
                answered(got, f"the {name}")
                if not isinstance(got, Tensor):
                    raise Mismatch(f"the {name} should be a torch.Tensor, got {type(got).__name__}.")
            if tuple(weights.shape) == (batch, length, 1):
                weights = weights.squeeze(-1)  # a column of weights is fine if its values are right
            expect(
                tuple(weights.shape) == (batch, length),
                f"the weights should have shape (B, L) = {(batch, length)}, got {tuple(weights.shape)} ({where}).",
            )
            expect(
                tuple(output.shape) == (batch, dim),
                f"the output should have shape (B, D) = {(batch, dim)}, got {tuple(output.shape)} ({where}).",
            )
            weights = weights.detach().to("cpu", torch.float64)
            allowed = attn_mask & attn_mask.any(dim=-1, keepdim=True)  # (B, L) allowed, in a row that attends
            several = allowed & (attn_mask.sum(dim=-1, keepdim=True) > 1)
            if bool((weights[several] - 1).abs().lt(1e-6).all()):
                raise Mismatch(
                    f"every allowed item gets weight 1 ({where}): the softmax runs over the last axis of the "
                    "(B, L, 1) scores, which has size 1. Normalise over the items: squeeze the scores to "
                    "(B, L) and use dim=-1."
                )
            rows = attn_mask.any(dim=-1)  # (B,) rows with at least one allowed item
            if not bool(torch.isfinite(weights[rows]).all()):
                raise Mismatch(
                    f"your weights contain NaN or inf for {where}: exp overflows above about 88 in "
                    "float32. Subtract the largest allowed score of each row before exp."
                )
            if bool((weights[~attn_mask & rows[:, None]].abs() > 1e-6).any()):
                raise Mismatch(
                    f"masked items get weight > 0 ({where}). Filling their scores with 0 does not remove "
                    "them: 0 is an ordinary score, larger than every negative one. Fill with "
                    "torch.finfo(dtype).min (or zero their exp) before normalising."
                )
            sums = weights.sum(dim=-1)[rows]  # (rows with an allowed item,)
            expect(
                bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-5)),
                f"the weights of each row should sum to 1, got sums {[round(s, 3) for s in sums.tolist()]} "
                f"({where}). If you subtract a maximum, take it over the allowed scores only (fill the masked "
                "ones first): a masked score filled with 0 can be larger than every allowed one, and then "
                "every allowed exp underflows to 0.",
            )
            if not bool(rows.all()):
                empty_weights = weights[~rows]
                if not bool(torch.isfinite(empty_weights).all()):
                    raise Mismatch(
                        "a fully masked row (a user with no history) gives NaN: -inf - (-inf) or 0 / 0. "
                        "Fill with a finite torch.finfo(dtype).min, zero the masked exps, and divide by the "
                        "sum clamped away from 0 so that row gets weights 0 and output 0."
                    )
                expect(
                    bool((empty_weights.abs() < 1e-6).all()),
                    "a fully masked row (a user with no history) should get weights 0 and output 0, "
                    f"got weights {[round(w, 3) for w in empty_weights[0].tolist()]}: zero the exps of masked "
                    "items and divide by the sum clamped away from 0 (e.g. .clamp_min(1e-30)).",
                )
            expect_close(
                weights,
                expected_weights,
                what=f"the weights ({where})",
                hint="scores = history @ query per row, then a softmax over the allowed items of each row.",
            )
            expect_close(
                output,
                expected_output,
                what=f"the output ({where})",
                hint="the output is the weighted sum of the history rows: (weights.unsqueeze(-2) @ history).squeeze(-2).",
            )

    report(
        run_check(
            MASKED_POOLING_EXERCISE,
            trial,
            success="Normalised over the items, masked keys at 0, no overflow, an empty row all zeros.",
        )
    )
