"""Checkers for notebook 02 (softmax and attention pooling).

Each ``check_*`` prints one line (pass, hint, or "not answered yet") and returns None;
it never raises, so an unanswered exercise does not stop the notebook.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..attention import masked_softmax
from .core import Mismatch, answered, call, expect, expect_close, report, run_check

__all__ = ["check_stable_softmax", "check_top_k_attention"]

SOFTMAX_EXERCISE = "Exercise 1 (stable softmax with temperature)"
TOP_K_EXERCISE = "Exercise 2 (top-k hard attention)"

_STABLE_HINT = (
    "subtract the largest score of each row before exp (exp(s - max) cannot overflow, "
    "and the factor exp(-max) cancels between numerator and denominator)."
)


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(
        torch.allclose(a.detach().to("cpu", torch.float64), b.to(torch.float64), atol=1e-5, rtol=1e-4)
    )


def _call_softmax(fn: Callable, scores: Tensor, temperature: float) -> Tensor:
    before = scores.clone()
    got = answered(call(fn, scores, temperature), "the weights")
    if not isinstance(got, Tensor):
        raise Mismatch(f"return a torch.Tensor of weights, got {type(got).__name__}.")
    expect(
        torch.equal(scores, before),
        "your function changed the scores in place (e.g. `scores -= ...`); "
        "compute a new tensor instead (`shifted = scores - ...`).",
    )
    expect(
        tuple(got.shape) == tuple(scores.shape),
        f"the weights should have the scores' shape {tuple(scores.shape)}, got {tuple(got.shape)}.",
    )
    return got


def check_stable_softmax(student_softmax: Callable[[Tensor, float], Tensor]) -> None:
    """Check ``student_softmax(scores (..., L), temperature) -> weights (..., L)`` over the last dim."""

    def trial() -> None:
        fn = answered(student_softmax, "your function")
        generator = torch.Generator().manual_seed(3)

        scores = torch.tensor([2.0, 1.0, 0.0, -1.0])
        got = _call_softmax(fn, scores, 1.0)
        if _close(got, scores.exp()):
            raise Mismatch("these are exp(scores); divide by their sum so the weights add up to 1.")
        expect_close(
            got,
            torch.softmax(scores, dim=-1),
            what="softmax([2, 1, 0, -1])",
            hint="w_i = exp(s_i) / sum_j exp(s_j).",
        )

        batch = torch.randn(3, 5, generator=generator)
        got = _call_softmax(fn, batch, 1.0)
        if _close(got, torch.softmax(batch, dim=0)):
            raise Mismatch(
                "you normalised over the first dimension; normalise over the last one (the items, "
                "dim=-1, with keepdim=True) so that every row sums to 1."
            )
        expect_close(
            got,
            torch.softmax(batch, dim=-1),
            what="the weights of a (3, 5) batch of score rows",
            hint="take the max and the sum over the last dimension with keepdim=True, "
            "so each row is normalised on its own.",
        )

        for temperature in (0.5, 4.0):
            got = _call_softmax(fn, batch, temperature)
            if _close(got, torch.softmax(batch, dim=-1)):
                raise Mismatch("the temperature has no effect yet; use scores / temperature.")
            if _close(got, torch.softmax(batch * temperature, dim=-1)):
                raise Mismatch("divide the scores by the temperature, don't multiply.")
            expect_close(
                got,
                torch.softmax(batch / temperature, dim=-1),
                what=f"the weights at temperature {temperature}",
                hint="softmax(s / T): divide the scores by T before the exp.",
            )

        for name, extreme in (
            ("[1000, 999, 0]", torch.tensor([[1000.0, 999.0, 0.0]])),
            ("[-1000, -1001, -1002]", torch.tensor([[-1000.0, -1001.0, -1002.0]])),
        ):
            got = _call_softmax(fn, extreme, 1.0)
            expect(
                bool(torch.isfinite(got).all()),
                f"for the scores {name} (float32) your weights contain NaN or inf: {_STABLE_HINT}",
            )
            expect_close(
                got, torch.softmax(extreme, dim=-1), what=f"softmax({name})", hint=_STABLE_HINT
            )

        sharp = _call_softmax(fn, torch.tensor([[3.0, 2.9, -1.0]]), 1e-3)
        expect_close(
            sharp,
            torch.tensor([[1.0, 0.0, 0.0]]),
            what="the weights at temperature 0.001",
            hint=f"a tiny temperature gives huge scores s / T; {_STABLE_HINT}",
        )

    report(
        run_check(
            SOFTMAX_EXERCISE,
            trial,
            success="It matches torch.softmax, also for scores like 1000 and tiny temperatures.",
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

    report(run_check(TOP_K_EXERCISE, trial, success="k=1 is hard (argmax) attention, k=L ordinary softmax."))
