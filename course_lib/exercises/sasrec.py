"""Checkers for notebook 08 (SASRec: causal self-attention over the history).

* :func:`check_next_item_loss` - the full-catalogue cross-entropy at every position of a
  window, with the padding positions left out;
* :func:`check_attention_by_distance` - the recency profile of causal attention;
* :func:`check_paired_bootstrap` - the paired bootstrap interval that ``compare`` reports: resample
  users with replacement, take quantiles of the mean difference. Checked against a long-run reference
  on cases where resampling the models separately, or a symmetric normal interval, lands elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..attention import causal_mask, masked_softmax, padding_mask
from ..constants import PAD_ID
from ..models.sasrec import attention_by_distance
from ..stats import paired_difference
from .core import Mismatch, answered, call, expect, expect_close, forbid, number, report, run_check


def _loss_case(seed: int, *, batch: int = 3, length: int = 6, items: int = 9, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, dim, generator=g)  # (B, L, D)
    item_embeddings = torch.randn(items + 1, dim, generator=g)  # (I + 1, D), row 0 = PAD_ID
    seq_targets = torch.randint(1, items + 1, (batch, length), generator=g)  # (B, L)
    for row in range(batch):
        seq_targets[row, : row * 2] = PAD_ID  # row 0 full, later rows padded on the left
    keep = seq_targets != PAD_ID
    logits = hidden[keep] @ item_embeddings[1:].T  # (P, I)
    return hidden, item_embeddings, seq_targets, F.cross_entropy(logits, seq_targets[keep] - 1)


def check_next_item_loss(next_item_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``next_item_loss(hidden (B, L, D), item_embeddings (I+1, D), seq_targets (B, L)) -> scalar``."""

    def trial() -> None:
        for seed in range(4):
            hidden, item_embeddings, seq_targets, expected = _loss_case(seed)
            got = answered(call(next_item_loss, hidden, item_embeddings, seq_targets), "the loss")
            if not isinstance(got, torch.Tensor) or got.numel() != 1:
                raise Mismatch(f"return a scalar tensor (the mean over target positions), got {got!r:.60}.")
            logits_everywhere = hidden.reshape(-1, hidden.shape[-1]) @ item_embeddings[1:].T  # (B*L, I)
            with_padding = F.cross_entropy(logits_everywhere, (seq_targets.reshape(-1) - 1).clamp_min(0))
            expect(
                not torch.isclose(got.detach().reshape(()), with_padding).item(),
                "padding positions (seq_targets == PAD_ID) have no target: leave them out of the mean.",
            )
            expect_close(
                got.reshape(()),
                expected,
                what="the mean cross-entropy",
                hint="keep = seq_targets != PAD_ID; logits = hidden[keep] @ item_embeddings[1:].T (row 0 is PAD_ID, "
                "so column c is item c + 1); F.cross_entropy(logits, seq_targets[keep] - 1).",
                atol=1e-5,
                rtol=1e-5,
            )

    report(run_check("Exercise 1 (next-item loss at every position)", trial, "It is the loss SASRec.loss computes."))


def _attention_case(seed: int, *, batch: int = 3, length: int = 7):
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, 20, (batch, length), generator=g)
    for row in range(batch):
        history[row, : row * 2] = PAD_ID  # different amounts of left padding
    scores = torch.randn(batch, length, length, generator=g)
    mask = causal_mask(length) & padding_mask(history)[:, 0]  # (B, L, L), True = may attend
    return masked_softmax(scores, mask), history


def check_attention_by_distance(student: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``student(weights (B, L, L), history (B, L)) -> (L,)`` mean weight per distance."""

    def trial() -> None:
        # worked case: one user, three items, weights chosen by hand
        weights = torch.tensor([[[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.1, 0.3, 0.6]]])
        history = torch.tensor([[5, 6, 7]])
        got = answered(call(student, weights, history), "the recency profile")
        if not isinstance(got, torch.Tensor) or got.shape != (3,):
            raise Mismatch(f"return a tensor of shape (L,) = (3,), got {getattr(got, 'shape', type(got).__name__)}.")
        expect_close(
            got, torch.tensor([(1.0 + 0.75 + 0.6) / 3, (0.25 + 0.3) / 2, 0.1]), what="the profile of the worked case",
            hint="distance d = query position - key position; average weights[b, q, q - d] over every q with q - d >= 0.",
        )
        for seed in range(3):
            weights, history = _attention_case(seed)
            got = call(student, weights, history)
            expected, _ = attention_by_distance(weights, history)
            expect_close(
                got, expected, what="the profile with padding",
                hint="leave out every pair whose query or key is padding (history == PAD_ID), "
                "then average the remaining weights that share a distance.",
            )

    report(run_check("Exercise 2 (attention by distance)", trial, "It matches course_lib.models.attention_by_distance."))


# Exercise 3: the paired bootstrap behind `compare` --------------------------------------------

BOOTSTRAP_RESAMPLES = 10_000  # what the checker passes as n_resamples
_TOLERANCE = 0.2  # in standard errors of the mean difference; a right answer lands within ~0.11


def _users_differ(seed: int, users: int, shift: float, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-user scores of two models that share each user's difficulty: ``a - b`` has mean exactly ``shift``."""
    g = torch.Generator().manual_seed(seed)
    difficulty = torch.rand(users, generator=g, dtype=torch.float64) ** 2  # (U,) easy and hard users, shared
    d = noise * torch.randn(users, generator=g, dtype=torch.float64)  # (U,) per-user difference
    d = d - d.mean() + shift  # its mean is exactly `shift`
    return difficulty + d / 2, difficulty - d / 2


def _mostly_zero(seed: int, users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NDCG-like scores: B scores 0 for most users, A adds a large gain for a few (a right-skewed difference)."""
    g = torch.Generator().manual_seed(seed)

    def uniform() -> torch.Tensor:
        return torch.rand(users, generator=g, dtype=torch.float64)  # (U,)

    base = (uniform() < 0.3) * uniform()  # (U,) 0 for 70% of users
    gain = (uniform() < 0.08) * (0.5 + 0.5 * uniform())  # (U,) a big gain for about 8% of users
    return base + gain, base


def _bootstrap_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, a, b): users whose difficulty both models share, and a small skewed case."""
    return [("300 users sharing their difficulty", *_users_differ(41, 300, 0.02, 0.05)),
            ("60 users, mostly zero (like NDCG@10)", *_mostly_zero(42, 60))]


def bootstrap_reference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """The library's paired bootstrap (:func:`course_lib.stats.paired_difference`) with 100,000 resamples."""
    result = paired_difference(a, b, n_resamples=100_000, seed=12_345)
    return result.low, result.high


def _interval(got: object) -> tuple[float, float]:
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise Mismatch(f"return the interval as a pair (low, high), got {type(got).__name__}.")
    low, high = (float(number(end, "each end of the interval")) for end in got)
    expect(math.isfinite(low) and math.isfinite(high), f"the interval ({low}, {high}) should be finite.")
    expect(low <= high, f"return (low, high) with low <= high, got ({low:.4f}, {high:.4f}).")
    return low, high


def _bootstrap_hint(name: str, got: tuple[float, float], ref: tuple[float, float], mean: float, se: float) -> str:
    (low, high), width = got, ref[1] - ref[0]
    shown = f"case '{name}': expected about ({ref[0]:+.4f}, {ref[1]:+.4f}), got ({low:+.4f}, {high:+.4f})."
    if high - low < 0.05 * width:
        return (f"{shown} Every resample gave (almost) the same mean: draw U users *with replacement* "
                "(torch.randint(U, (n_resamples, U), generator=generator)), so some users come twice and some not at all.")
    if high - low > 1.5 * width:
        return (f"{shown} Far too wide: you resampled A's and B's users separately. Draw one set of users per "
                "resample and take the difference d_u = a_u - b_u of the *same* users, so what they share cancels.")
    if abs((high - mean) - (mean - low)) < 0.1 * se < abs((ref[1] - mean) - (mean - ref[0])):
        return (f"{shown} Your interval is symmetric around the mean, like mean ± 1.96 · sd / sqrt(U); on skewed data "
                "the bootstrap's is not: take the 2.5% and 97.5% quantiles of the resampled means themselves.")
    if high - low < 0.92 * width:
        return f"{shown} Too narrow: a 95% interval cuts 2.5% from each end (quantiles 0.025 and 0.975)."
    return f"{shown} Resample users with replacement, average d = a - b over each resample, take the 0.025 and 0.975 quantiles."


def check_paired_bootstrap(fn: Callable[[torch.Tensor, torch.Tensor, int, torch.Generator], tuple] | None) -> None:
    """Check ``fn(a (U,), b (U,), n_resamples, generator) -> (low, high)``: the paired bootstrap's 95% interval.

    Right: the 2.5% and 97.5% quantiles of ``mean(a[idx] - b[idx])`` over ``n_resamples`` draws of U user
    indices with replacement, drawn from ``generator`` only; within 0.2 standard errors of a 100,000-resample
    reference. Cases where resampling the models separately, drawing without replacement, a symmetric
    normal interval or a 90% interval land visibly elsewhere.
    """

    def trial() -> None:
        answered(fn, "paired_bootstrap")
        forbid(fn, ("compare", "paired_difference", "bootstrap", "ttest_rel"),
               "draw the resamples and take the quantiles yourself.")
        for seed, (name, a, b) in enumerate(_bootstrap_cases()):
            runs = [_interval(call(fn, a.clone(), b.clone(), BOOTSTRAP_RESAMPLES, torch.Generator().manual_seed(seed)))
                    for _ in range(2)]
            if runs[0] != runs[1]:
                raise Mismatch("two calls with generators seeded alike gave different intervals: draw every random "
                               "number from `generator` (e.g. torch.randint(..., generator=generator)), not the global one.")
            diff = a - b
            mean, se = diff.mean().item(), (diff.std() / math.sqrt(diff.numel())).item()
            ref = bootstrap_reference(a, b)
            if max(abs(runs[0][0] - ref[0]), abs(runs[0][1] - ref[1])) > _TOLERANCE * se:
                raise Mismatch(_bootstrap_hint(name, runs[0], ref, mean, se))

    report(run_check("Exercise 3 (a paired bootstrap)", trial,
                     "The same interval as course_lib.stats.paired_difference, from your own resamples."))
