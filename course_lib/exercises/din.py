"""Checkers for notebook 07 (target attention, DIN).

Each ``check_*`` takes the student's function, prints a pass, a hint or "not answered
yet", and returns None; it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..attention import masked_softmax
from ..stats import paired_difference
from .core import Mismatch, answered, call, expect, expect_close, forbid, report, run_check

__all__ = ["check_ctr_loss", "check_is_real_improvement", "check_target_attention"]


def _reference_target_attention(candidate: Tensor, history: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    scores = history @ candidate / math.sqrt(candidate.shape[-1])  # (L,)
    weights = masked_softmax(scores, real)  # (L,)
    return weights @ history, weights  # (D,), (L,)


def check_target_attention(fn: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]] | None) -> None:
    """Check ``fn(candidate (D,), history (L, D), real (L,) bool) -> (pooled (D,), weights (L,))``.

    weights = softmax over the real items of ``history @ candidate / sqrt(D)`` (0 on padding);
    pooled = weights @ history.
    """

    def trial() -> None:
        answered(fn, "target_attention")
        for seed, (length, dim) in enumerate(((4, 2), (7, 8), (12, 16))):
            g = torch.Generator().manual_seed(seed)
            candidate, history = torch.randn(dim, generator=g), torch.randn(length, dim, generator=g)
            real = torch.ones(length, dtype=torch.bool)
            real[: seed + 1] = False  # left padding
            history[~real] = 0.0
            got = answered(call(fn, candidate, history, real), "the value returned by your function")
            if not (isinstance(got, tuple) and len(got) == 2):
                raise Mismatch("return a pair (pooled, weights).")
            pooled, weights = got
            expected_pooled, expected_weights = _reference_target_attention(candidate, history, real)
            if isinstance(weights, Tensor) and weights.shape == expected_weights.shape and bool((weights[~real] != 0).any()):
                raise Mismatch("padding positions got weight: fill their scores with a very negative number "
                               "(or use course_lib.attention.masked_softmax) before the softmax.")
            unscaled = masked_softmax(history @ candidate, real)
            if isinstance(weights, Tensor) and weights.shape == unscaled.shape and torch.allclose(weights.float(), unscaled, atol=1e-5) \
                    and not torch.allclose(unscaled, expected_weights, atol=1e-5):
                raise Mismatch("divide the scores by sqrt(D) before the softmax (scaled dot product).")
            expect_close(weights, expected_weights, what=f"weights for L={length}, D={dim}",
                         hint="scores = history @ candidate / sqrt(D); softmax over the real items only.", atol=1e-5)
            expect_close(pooled, expected_pooled, what=f"pooled vector for L={length}, D={dim}",
                         hint="the pooled vector is the weighted sum of the history rows: weights @ history.", atol=1e-5)

    report(run_check("Exercise 1 (target attention)", trial, "Each candidate now gets its own summary of the history."))


def check_ctr_loss(fn: Callable[[Tensor, Tensor], Tensor] | None) -> None:
    """Check ``fn(positive_logits (B,), negative_logits (B, K)) -> scalar``, the balanced BCE of DIN.

    ``mean over positives of -log sigmoid(s+)`` plus ``mean over negatives of -log(1 - sigmoid(s-))``.
    """

    def trial() -> None:
        answered(fn, "ctr_loss")
        for seed, (size, k) in enumerate(((3, 1), (5, 4), (8, 16))):
            g = torch.Generator().manual_seed(seed)
            pos, neg = 3 * torch.randn(size, generator=g), 3 * torch.randn(size, k, generator=g)
            got = answered(call(fn, pos, neg), "the loss")
            expected = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
                neg, torch.zeros_like(neg))
            if isinstance(got, Tensor) and got.numel() == 1 and k > 1:
                logits = torch.cat([pos, neg.flatten()])
                labels = torch.cat([torch.ones(size), torch.zeros(size * k)])
                if torch.allclose(got.float(), F.binary_cross_entropy_with_logits(logits, labels), atol=1e-5):
                    raise Mismatch("that averages over all B(1+K) examples, so the positives weigh only 1/(1+K); "
                                   "take the mean over positives and the mean over negatives separately and add them.")
                if torch.allclose(got.float(), F.binary_cross_entropy_with_logits(logits, 1 - labels), atol=1e-5):
                    raise Mismatch("the labels are swapped: positives get label 1, negatives label 0.")
                softmax_ce = F.cross_entropy(torch.cat([pos[:, None], neg], 1), torch.zeros(size, dtype=torch.long))
                if torch.allclose(got.float(), softmax_ce, atol=1e-5):
                    raise Mismatch("that is a softmax over the 1 + K candidates; CTR-style training scores each "
                                   "(user, item) pair on its own with a sigmoid: binary cross-entropy.")
            expect_close(got, expected, what=f"the loss for B={size}, K={k}",
                         hint="mean of -log sigmoid(pos) plus mean of -log(1 - sigmoid(neg)) = -log sigmoid(-neg) "
                         "(F.binary_cross_entropy_with_logits with labels 1 and 0, one call per class).", atol=1e-5)

    report(run_check("Exercise 2 (CTR loss with sampled negatives)", trial,
                     "The same loss as course_lib.models.din.DIN.loss on one prefix."))


def _improvement_cases() -> list[tuple[Tensor, Tensor, bool, str]]:
    """Per-user metric values of two models on the same users, the right verdict, and the naive rule it catches.

    Every user has a difficulty shared by both models (an easy user is easy for both), as on real data.
    The margins are wide: the paired t interval and a bootstrap over users agree on every case.
    """
    g = torch.Generator().manual_seed(7)
    users = 400
    difficulty = torch.rand(users, generator=g, dtype=torch.float64)  # (U,) what both models share

    def noise(scale: float) -> Tensor:
        return scale * torch.randn(users, generator=g, dtype=torch.float64)

    def shifted(a: Tensor, b: Tensor, mean: float) -> Tensor:  # move a so that mean(a - b) is exactly `mean`
        return a - (a - b).mean() + mean

    b1 = difficulty + noise(0.02)
    small_but_paired = shifted(b1 + noise(0.02), b1, 0.006)  # t = 6 paired; the unpaired intervals overlap
    b2 = difficulty + noise(0.3)
    noisy = shifted(difficulty + noise(0.3), b2, 0.004)  # higher mean, paired interval far across 0
    b3 = difficulty + noise(0.02)
    worse = shifted(b3 + noise(0.02), b3, -0.006)  # an interval that excludes 0, below it
    b4 = difficulty + noise(0.05)
    clearly_better = shifted(b4 + noise(0.05), b4, 0.05)
    return [
        (small_but_paired, b1, True, "unpaired"),
        (noisy, b2, False, "means"),
        (worse, b3, False, "sign"),
        (clearly_better, b4, True, "obvious"),
    ]


_IMPROVEMENT_HINTS = {
    "unpaired": "A beats B on these users (the per-user differences a_u - b_u have mean {mean:+.4f} and a 95% interval "
                "[{low:+.4f}, {high:+.4f}]), yet you said no. Two separate intervals of the means overlap because users "
                "differ a lot from each other; every user is measured under both models, so look at each user's difference.",
    "means": "mean(a) > mean(b) here, but the interval of the mean per-user difference, [{low:+.4f}, {high:+.4f}], "
             "contains 0: a difference of {mean:+.4f} is within the luck of which users were drawn. Comparing means is not enough.",
    "sign": "the interval of the mean difference, [{low:+.4f}, {high:+.4f}], excludes 0 but lies BELOW it: A is worse "
            "than B. A real improvement needs the whole interval above 0.",
    "obvious": "A is better than B on almost every user (mean difference {mean:+.4f}, interval [{low:+.4f}, {high:+.4f}]); "
               "your function said no.",
}


def check_is_real_improvement(fn: Callable[[Tensor, Tensor], bool] | None) -> None:
    """Check ``fn(per_user_a (U,), per_user_b (U,)) -> bool``: is model A really better than model B?

    Right: True exactly when the 95% interval of the mean per-user difference ``a_u - b_u`` (the users are
    the same, in the same order) lies entirely above 0. Cases where comparing means, comparing two
    unpaired intervals, or asking only "does the interval exclude 0?" gives the wrong answer.
    """

    def trial() -> None:
        answered(fn, "is_real_improvement")
        forbid(fn, ("compare", "paired_difference", "ttest_rel"),
               "compute the per-user differences and their interval yourself (mean ± 1.96 · sd / √n is enough).")
        for a, b, expected, catches in _improvement_cases():
            got = answered(call(fn, a.clone(), b.clone()), "the value returned by your function")
            if isinstance(got, Tensor) and got.numel() == 1:
                got = got.item()
            expect(isinstance(got, bool | np.bool_), f"return True or False (a decision), got {got!r}.")
            if bool(got) != expected:
                interval = paired_difference(a, b, method="t")  # the library's paired interval, for the hint
                raise Mismatch(_IMPROVEMENT_HINTS[catches].format(mean=interval.mean, low=interval.low, high=interval.high))

    report(run_check("Exercise 3 (is it a real improvement?)", trial,
                     "Same users, so pair them; and only an interval wholly above 0 is an improvement."))
