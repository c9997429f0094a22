"""Checkers for notebook 14 (attention at scale).

* :func:`check_online_logsumexp` - the softmax normaliser computed chunk by chunk with a
  running maximum and a running sum;
* :func:`check_kv_cache_bytes` - how much memory a key/value cache holds.

Each ``check_*`` prints one line (pass, hint, or "not answered yet") and returns None.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .core import Mismatch, answered, call, expect, expect_close, number, report, run_check

__all__ = ["check_kv_cache_bytes", "check_online_logsumexp"]

LOGSUMEXP_EXERCISE = "Exercise 1 (online log-sum-exp)"
CACHE_EXERCISE = "Exercise 2 (the size of a key/value cache)"


def _logsumexp_cases() -> list[tuple[Tensor, int]]:
    g = torch.Generator().manual_seed(14)
    return [
        (torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 2),  # chunk size that does not divide L
        (torch.tensor([1000.0, 1000.0, 999.0, -5.0]), 1),  # exp(1000) overflows float32
        (torch.tensor([-3.0, 10.0, 2.0, 11.0, 0.5, 12.0]), 4),  # the maximum rises in a later chunk
        (torch.randn(3, 7, generator=g) * 4, 3),  # several rows at once
        (torch.randn(2, 5, generator=g), 50),  # one chunk holds everything
    ]


def check_online_logsumexp(online_logsumexp: Callable[[Tensor, int], Tensor]) -> None:
    """Check ``online_logsumexp(scores (..., L), chunk_size) -> (...)`` against ``torch.logsumexp``."""

    def trial() -> None:
        fn = answered(online_logsumexp, "your function")
        for scores, chunk_size in _logsumexp_cases():
            got = answered(call(fn, scores.clone(), chunk_size), "the log-sum-exp")
            expected = torch.logsumexp(scores, dim=-1)
            if isinstance(got, Tensor) and got.shape == expected.shape and not torch.isfinite(got).all():
                raise Mismatch(
                    f"got {got.tolist()} for scores {scores.tolist()}: exp overflowed. Keep a running maximum m "
                    "and sum exp(score - m) instead of exp(score)."
                )
            if isinstance(got, Tensor) and got.shape == expected.shape and chunk_size < scores.shape[-1]:
                last = torch.logsumexp(scores[..., (scores.shape[-1] - 1) // chunk_size * chunk_size :], dim=-1)
                expect(
                    not torch.allclose(got.double(), last.double()),
                    "that is the log-sum-exp of the last chunk only: carry the running sum over from chunk to chunk.",
                )
            expect_close(
                got,
                expected,
                what=f"online_logsumexp of a {tuple(scores.shape)} tensor with chunk_size={chunk_size}",
                hint="when a chunk raises the maximum from m to m', multiply the running sum by exp(m - m') "
                "before adding the chunk's sum of exp(score - m'); at the end return m + log(sum).",
            )

    report(run_check(LOGSUMEXP_EXERCISE, trial, "This (m, s) pair is all a fused kernel keeps per query row."))


def check_kv_cache_bytes(answer: object, *, n_layers: int, length: int, d_model: int, bytes_per_value: int = 4) -> None:
    """Check the number of bytes of one user's key/value cache after ``length`` events.

    Args:
        answer: the student's number.
        n_layers: Transformer blocks of the model.
        length: cached events L.
        d_model: D (all heads together: H x Dh = D).
        bytes_per_value: 4 for float32.
    """

    def trial() -> None:
        got = number(answer, "cache_bytes")
        expected = 2 * n_layers * length * d_model * bytes_per_value
        factors = (
            "a key and a value vector (x 2) of D floats for each of the L events, in each of the n_layers layers, at 4 bytes per float32"
        )
        expect(
            got != expected * length,
            "the cache grows linearly with L (one key and one value vector per event and layer), not with L x L.",
        )
        if 0 < got < expected and expected % got == 0:
            raise Mismatch(f"your number is {expected // int(got)}x too small. The cache holds {factors}: which factor is missing?")
        expect(got == expected, f"got {got}. The cache holds {factors}.")

    report(run_check(CACHE_EXERCISE, trial, "Linear in L, unlike the L x L attention matrix."))
