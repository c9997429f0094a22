"""Checkers for notebook 15 (trust and pitfalls).

Each ``check_*`` takes the student's function, prints a pass, a hint or "not answered
yet", and returns None; it never raises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..constants import PAD_ID
from ..explain import mass_on_truth
from .core import Mismatch, answered, call, expect_close, report, run_check

__all__ = ["check_erasure", "check_mass_on_truth"]


def check_erasure(fn: Callable[[Callable[[Tensor], Tensor], Tensor], Tensor] | None) -> None:
    """Check ``fn(score, history (L,)) -> (L,)``: ``score(h) - score(h with position l set to PAD_ID)``.

    ``score`` takes a (B, L) batch of histories and returns (B,) scores; padding positions
    get importance 0.
    """

    def trial() -> None:
        answered(fn, "erasure")
        for seed, length in enumerate((4, 7, 10)):
            g = torch.Generator().manual_seed(seed)
            weights = torch.randn(30, generator=g)

            def score(h: Tensor, weights: Tensor = weights) -> Tensor:  # (B, L) -> (B,): a non-linear toy model
                return torch.tanh(weights[h].sum(-1)) + (h == 3).any(-1).float()

            history = torch.randint(1, 30, (length,), generator=g)
            history[: seed + 1] = PAD_ID
            got = answered(call(fn, score, history.clone()), "the value returned by your function")
            expected = torch.zeros(length)
            full = score(history[None])[0]
            for pos in range(length):
                if history[pos] != PAD_ID:
                    cut = history.clone()
                    cut[pos] = PAD_ID
                    expected[pos] = full - score(cut[None])[0]
            if isinstance(got, Tensor) and got.shape == expected.shape and torch.allclose(got.float(), -expected, atol=1e-5) \
                    and expected.abs().max() > 0:
                raise Mismatch("the sign is flipped: importance = score(full) - score(erased), "
                               "positive when the event raised the score.")
            expect_close(got, expected, what=f"erasure importances for L={length}",
                         hint="for each real position l: copy the history, set position l to PAD_ID, "
                         "score it, and subtract from the full score; padding positions get 0.", atol=1e-5)

    report(run_check("Exercise 1 (erasure importance)", trial,
                     "For a model without positions, like this one, that is course_lib.explain.erasure_importance for one history."))


def check_mass_on_truth(fn: Callable[[Tensor, Tensor, Tensor], Tensor] | None) -> None:
    """Check ``fn(importance (B, L), relevant (B, L), real (B, L)) -> (B,)``, see :func:`course_lib.explain.mass_on_truth`."""

    def trial() -> None:
        answered(fn, "mass_on_truth")
        for seed, (size, length) in enumerate(((2, 5), (4, 9), (6, 12))):
            g = torch.Generator().manual_seed(seed)
            importance = torch.randn(size, length, generator=g) + 0.3
            relevant = torch.rand(size, length, generator=g) < 0.4
            real = torch.rand(size, length, generator=g) < 0.8
            real[:, 0] = True
            importance[:, 0] = 1.0  # every row has some positive mass on a real event
            got = answered(call(fn, importance, relevant, real), "the value returned by your function")
            expected = mass_on_truth(importance, relevant, real).float()
            no_clamp = ((importance * real * relevant).sum(1) / (importance * real).sum(1)).float()
            if isinstance(got, Tensor) and got.shape == expected.shape and torch.allclose(got.float(), no_clamp, atol=1e-5) \
                    and not torch.allclose(no_clamp, expected, atol=1e-5):
                raise Mismatch("negative importances must count as 0 (clamp them) before taking the share.")
            expect_close(got, expected, what=f"shares for B={size}, L={length}",
                         hint="share = sum over real relevant events of max(a, 0) / sum over real events of max(a, 0).",
                         atol=1e-5)

    report(run_check("Exercise 2 (importance mass on the truth)", trial,
                     "A uniform importance would score relevant / real events; compare with that."))
