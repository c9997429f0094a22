"""Checkers for notebook 10 (user-interest evolution).

* :func:`check_time_bucket` - log-scale buckets of the gap between two events;
* :func:`check_multi_interest_pooling` - K queries' masked softmax over one history and the
  K pooled interest vectors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attention import masked_softmax
from ..constants import PAD_ID
from ..data.time_buckets import TimeBucketConfig, log_time_buckets
from .core import Mismatch, answered, call, expect, expect_close, report, run_check


def check_time_bucket(time_bucket: Callable[[torch.Tensor, float, int], torch.Tensor]) -> None:
    """Check ``time_bucket(gaps (N,) seconds, unit_seconds, num_buckets) -> (N,) long`` bucket ids 1..num_buckets-1."""

    def trial() -> None:
        hand = torch.tensor([0, 59, 60, 179, 180, 419, 420, 10**7])  # unit 60 s, 5 buckets: 1 1 2 2 3 3 4 4
        cases = [(hand, 60.0, 5)]
        g = torch.Generator().manual_seed(0)
        cases += [(torch.randint(0, 10**8, (40,), generator=g), unit, n) for unit, n in ((1.0, 12), (3600.0, 8), (30.0, 20))]
        for gaps, unit, n in cases:
            got = answered(call(time_bucket, gaps, unit, n), "the buckets")
            expected = log_time_buckets(gaps, config=TimeBucketConfig(unit_seconds=unit, num_buckets=n))
            if not isinstance(got, torch.Tensor) or got.shape != gaps.shape:
                got_shape = getattr(got, "shape", type(got).__name__)
                raise Mismatch(f"return one bucket per gap, a tensor of shape {tuple(gaps.shape)}, got {got_shape}.")
            expect(not got.is_floating_point(), "bucket ids are integers: end with .long().")
            wrong = (got != expected).nonzero()
            if len(wrong):
                i = int(wrong[0])
                raise Mismatch(
                    f"with unit {unit:g} s and {n} buckets, a gap of {int(gaps[i])} s should be bucket {int(expected[i])}, "
                    f"got {int(got[i])}. bucket = 1 + min(floor(log2(1 + gap / unit)), num_buckets - 2)."
                )

    report(run_check("Exercise 1 (log-scale time buckets)", trial, "It matches course_lib.data.time_buckets.log_time_buckets."))


def _pooling_case(seed: int, *, batch: int = 3, length: int = 6, k: int = 3, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    items = torch.randn(batch, length, dim, generator=g)  # (B, L, D)
    scores = 3 * torch.randn(batch, k, length, generator=g)  # (B, K, L)
    history = torch.randint(1, 9, (batch, length), generator=g)  # (B, L)
    for row in range(batch):
        history[row, : row * 2] = PAD_ID  # more left padding in each row
    history[-1] = PAD_ID  # the last row is an empty history
    weights = masked_softmax(scores, (history != PAD_ID)[:, None, :])  # (B, K, L)
    return items, scores, history, weights @ items, weights


def check_multi_interest_pooling(
    student: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
) -> None:
    """Check ``student(items (B, L, D), scores (B, K, L), history (B, L)) -> (interests (B, K, D), weights (B, K, L))``."""

    def trial() -> None:
        for seed in range(3):
            items, scores, history, interests, weights = _pooling_case(seed)
            answer = answered(call(student, items, scores, history), "the pooling")
            if not isinstance(answer, tuple) or len(answer) != 2:
                raise Mismatch("return a pair (interests, weights).")
            got_interests, got_weights = answer
            expect_close(
                got_weights, weights, what="the weights",
                hint="softmax over the history axis (the last one) of the scores, with padding (history == PAD_ID) "
                "left out: e.g. masked_softmax(scores, (history != PAD_ID)[:, None, :]); an empty history gets zeros, not NaN.",
            )
            expect_close(
                got_interests, interests, what="the interests",
                hint="interest k is the weighted sum of the history's item vectors: weights @ items, (B, K, L) @ (B, L, D).",
            )

    report(run_check("Exercise 2 (multi-interest pooling)", trial, "It is what MultiInterest.forward computes."))
