"""Checkers for notebook 10 (user-interest evolution).

* :func:`check_time_bucket` - log-scale buckets of the gap between two events;
* :func:`check_multi_interest_pooling` - K queries' masked softmax over one history and the
  K pooled interest vectors;
* :func:`check_found_interests` - a judgement: does a model's grouping of each user's events follow
  the planted interests beyond the no-model reference "one group per user"? Decided by the
  per-user adjusted Rand index and its interval over users, on cases where comparing the matched
  agreement with chance, or with the dominant-interest reference, gives the wrong answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..attention import masked_softmax
from ..constants import PAD_ID
from ..data.shopworld import NOISE
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



def adjusted_rand_index(truth: np.ndarray, assigned: np.ndarray) -> float:
    """Adjusted Rand index of two labelings of the same events (Hubert & Arabie; scikit-learn's value).

    1 = the same grouping, about 0 = no better than chance, exactly 0 when one side puts every event
    in one group (and the other does not).
    """
    _, t = np.unique(truth, return_inverse=True)
    _, a = np.unique(assigned, return_inverse=True)
    table = np.zeros((t.max() + 1, a.max() + 1))
    np.add.at(table, (t, a), 1)  # contingency table
    pairs = lambda x: (x * (x - 1) / 2).sum()  # noqa: E731 - pairs of events inside each cell / group
    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), len(t) * (len(t) - 1) / 2
    expected = rows * cols / total
    top = (rows + cols) / 2
    if top == expected:  # both sides one group each, or both all singletons: identical groupings
        return 1.0
    return float((index - expected) / (top - expected))


def found_interests_reference(users: torch.Tensor, truth: torch.Tensor, assigned: torch.Tensor) -> bool:
    """True when the 95% interval (mean ± 1.96 standard errors) of the per-user adjusted Rand index,
    over users with at least 2 planted interests and noise events left out, lies above 0."""
    users, truth, assigned = (x.cpu().numpy() for x in (users, truth, assigned))
    real = truth != NOISE
    scores = []
    for user in np.unique(users[real]):
        mine = real & (users == user)
        if len(np.unique(truth[mine])) >= 2:
            scores.append(adjusted_rand_index(truth[mine], assigned[mine]))
    scores = np.asarray(scores)
    return bool(scores.mean() - 1.96 * scores.std(ddof=1) / math.sqrt(len(scores)) > 0)


@dataclass(frozen=True)
class RecoveryCase:
    """Events of many users, the model's grouping of them, and what a tempting rule concludes."""

    name: str  # what the assignment does
    users: torch.Tensor  # (E,) long user of each event
    truth: torch.Tensor  # (E,) long planted interest of each event, NOISE = -1 for a random event
    assigned: torch.Tensor  # (E,) long extracted interest 0..K-1 the model assigns to the event
    found: bool  # the right decision
    why: str  # the hint for a student who decides the other way


def _planted_events(g: torch.Generator, num_users: int = 150) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Users with 1-3 of 8 interests, 20-40 events, one interest dominant, about 8% noise events."""
    users, truth, slot = [], [], []
    for user in range(num_users):
        m = 1 + user % 3
        mine = torch.randperm(8, generator=g)[:m]
        n = int(torch.randint(20, 41, (1,), generator=g))
        shares = torch.tensor([0.6, 0.25, 0.15][:m])
        which = torch.multinomial(shares / shares.sum(), n, replacement=True, generator=g)  # (n,) slot 0..m-1
        interest = mine[which]
        interest[torch.rand(n, generator=g) < 0.08] = NOISE
        users.append(torch.full((n,), user))
        truth.append(interest)
        slot.append(which)
    return torch.cat(users), torch.cat(truth), torch.cat(slot)


def recovery_cases() -> list[RecoveryCase]:
    """The cases of :func:`check_found_interests`; each is far from the decision's edge."""
    g = torch.Generator().manual_seed(10)
    users, truth, slot = _planted_events(g)
    k = 4
    cases = [RecoveryCase(
        "queries that follow the planted interests (relabelled)", users, truth, (slot + 1) % k, True,
        "every event sits with the other events of its planted interest; the grouping is the planted one.")]
    cases.append(RecoveryCase(
        "every event of a user to one query", users, truth, torch.zeros_like(truth), False,
        "one group per user agrees with each user's dominant interest on most events, far above chance 1/K, yet it "
        "separates nothing: its adjusted Rand index is exactly 0 for every user with 2 or more interests (and 1, "
        "trivially, for a user with one interest: leave those users out)."))
    cases.append(RecoveryCase(
        "queries drawn at random", users, truth, torch.randint(0, k, truth.shape, generator=torch.Generator().manual_seed(5)), False,
        "a random grouping scores about 0 on the adjusted Rand index; its interval contains 0."))
    split = 2 * slot + torch.randint(0, 2, slot.shape, generator=g)  # each planted interest split over two queries
    cases.append(RecoveryCase(
        "each planted interest split over two queries", users, truth, split, True,
        "each query holds events of one planted interest only, so the grouping does follow the planted one, "
        "although matching one query per interest would agree on only about half of the events (below the "
        "dominant-interest reference). The adjusted Rand index needs no matching and is clearly above 0."))
    return cases


def check_found_interests(found_interests: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], bool]) -> None:
    """Check ``found_interests(users (E,), truth (E,), assigned (E,)) -> bool`` (a judgement)."""

    def trial() -> None:
        for case in recovery_cases():
            got = answered(call(found_interests, case.users.clone(), case.truth.clone(), case.assigned.clone()),
                           "the decision")
            if isinstance(got, torch.Tensor | np.ndarray) and np.prod(got.shape) == 1:
                got = got.item()  # a one-element tensor or array holding the bool
            expect(isinstance(got, bool | np.bool_), f"return True or False, got {got!r:.60}.")
            if bool(got) != case.found:
                raise Mismatch(f"{case.name}: you said {bool(got)}, the answer is {case.found}. {case.why}")

    report(run_check("Exercise 3 (did the model find several interests?)", trial,
                     "Decided by a score that gives one group per user 0, with its interval over users."))
