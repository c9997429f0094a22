"""Paired comparisons: is model A better than model B on the same users, and by how much?

Two evaluations of the same users give one metric value per user for each model, ``a_u`` and
``b_u``. The per-user differences ``d_u = a_u - b_u`` remove what the users share (an easy user
is easy for both models), so their mean has a much narrower interval than the difference of two
separately estimated means. Two 95% intervals for the mean difference ``d̄``:

* **paired t**: ``d̄ ± t_{0.975, n-1} · s_d / √n`` with ``s_d`` the standard deviation of the
  ``d_u`` (``ddof=1``); what ``scipy.stats.ttest_rel(a, b).confidence_interval()`` gives.
* **bootstrap over users** (percentile): resample the ``n`` users with replacement, recompute
  ``d̄``, take the 2.5% and 97.5% quantiles of those means. It makes no normality assumption,
  which matters for metrics such as NDCG@10 that are 0 for most users. Seeded: the same call
  gives the same interval.

An interval that excludes 0 says the difference is larger than the noise of *which users were
drawn*; it says nothing about the noise of training (run several seeds for that, and report
their mean ± sd with :func:`mean_and_sd`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

Method = Literal["bootstrap", "t"]
METHODS: tuple[str, ...] = ("bootstrap", "t")


@dataclass(frozen=True)
class PairedDifference:
    """The mean per-user difference ``a - b`` and its interval."""

    mean: float  # mean over users of a_u - b_u
    low: float  # lower end of the interval
    high: float  # upper end of the interval
    n_users: int  # number of paired users
    confidence: float  # e.g. 0.95
    method: str  # "bootstrap" or "t"

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return (f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}] "
                f"({self.confidence:.0%} {self.method} interval, {self.n_users} users)")


def _per_user(values: object, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must hold one value per user (a 1-D sequence), got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf; every user needs a finite metric value.")
    return array


def paired_difference(
    a: Sequence[float] | np.ndarray | torch.Tensor,
    b: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    method: Method = "bootstrap",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """Mean of ``a - b`` over users with a ``confidence`` interval.

    Args:
        a, b: per-user metric values of two models, the same users in the same order (U,).
        method: "bootstrap" (percentile, resampling users) or "t" (paired t interval).
        confidence: the interval's coverage, in (0, 1).
        n_resamples: bootstrap resamples (ignored by "t").
        seed: seed of the bootstrap's own NumPy generator (the global random state is untouched).

    Returns:
        A :class:`PairedDifference`.
    """
    a, b = _per_user(a, "a"), _per_user(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold the same users: got {a.shape[0]} and {b.shape[0]} values.")
    if a.shape[0] < 2:
        raise ValueError(f"a paired interval needs at least 2 users, got {a.shape[0]}.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    diff = a - b  # (U,)
    n, mean = diff.shape[0], float(diff.mean())
    tail = (1.0 - confidence) / 2
    if method == "t":
        from scipy import stats as scipy_stats  # here, not at the top: importing scipy.stats costs every kernel 0.8 s

        half = scipy_stats.t.ppf(1.0 - tail, df=n - 1) * diff.std(ddof=1) / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        if n_resamples < 100:
            raise ValueError(f"n_resamples must be at least 100 for a stable interval, got {n_resamples}.")
        generator = np.random.default_rng(seed)
        means = np.empty(n_resamples)
        for start in range(0, n_resamples, 1000):  # in chunks: (1000, U) indices at a time
            stop = min(start + 1000, n_resamples)
            means[start:stop] = diff[generator.integers(0, n, size=(stop - start, n))].mean(axis=1)
        low, high = (float(q) for q in np.quantile(means, [tail, 1.0 - tail]))
    return PairedDifference(mean, float(low), float(high), n, confidence, method)


def mean_and_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of a metric over several seeds."""
    array = _per_user(values, "values")
    if array.shape[0] < 2:
        raise ValueError(f"mean ± sd needs at least 2 runs, got {array.shape[0]}.")
    return float(array.mean()), float(array.std(ddof=1))
