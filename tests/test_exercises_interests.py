"""The checkers of notebook 10: each prints a pass, a hint, or "not answered yet", and never raises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from checker_support import not_answered, verdict
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from course_lib import PAD_ID
from course_lib.attention import masked_softmax
from course_lib.data.shopworld import NOISE
from course_lib.exercises.interests import (
    adjusted_rand_index,
    check_found_interests,
    check_multi_interest_pooling,
    check_time_bucket,
    found_interests_reference,
    recovery_cases,
)


def _bucket(gaps, unit, n):
    return 1 + torch.floor(torch.log2(1 + gaps.double() / unit)).clamp(max=n - 2).long()


def _pooling(items, scores, history):
    weights = masked_softmax(scores, (history != PAD_ID)[:, None, :])
    return weights @ items, weights


@pytest.mark.parametrize(
    ("answer", "mark", "hint"),
    [
        (_bucket, "✅", "passed"),
        (lambda g, u, n: _bucket(g, u, n) - 1, "❌", "should be bucket 1, got 0"),  # forgot the + 1 (NO_GAP is 0)
        (lambda g, u, n: 1 + torch.floor(torch.log2(1 + g.double() / u)).long(), "❌", "num_buckets - 2"),  # no clipping
        (lambda g, u, n: _bucket(g, u, n).double(), "❌", "integers"),
        (lambda g, u, n: None, "❌", "forget `return`"),
        (not_answered, "⏳", "not answered"),
    ],
)
def test_check_time_bucket(capsys, answer, mark, hint):
    out = verdict(capsys, check_time_bucket, answer)
    assert out.startswith(mark) and hint in out, out


@pytest.mark.parametrize(
    ("answer", "mark", "hint"),
    [
        (_pooling, "✅", "passed"),
        (lambda i, s, h: (torch.softmax(s, -1) @ i, torch.softmax(s, -1)), "❌", "padding"),  # padding not masked
        (lambda i, s, h: (torch.softmax(s.masked_fill((h == PAD_ID)[:, None], float("-inf")), -1) @ i,
                          torch.softmax(s.masked_fill((h == PAD_ID)[:, None], float("-inf")), -1)), "❌", "NaN"),
        (lambda i, s, h: (_pooling(i, s, h)[1].transpose(1, 2).sum(-1, keepdim=True) * 0, _pooling(i, s, h)[1]), "❌", "interests"),
        (lambda i, s, h: _pooling(i, s, h)[0], "❌", "pair"),
        (not_answered, "⏳", "not answered"),
    ],
)
def test_check_multi_interest_pooling(capsys, answer, mark, hint):
    out = verdict(capsys, check_multi_interest_pooling, answer)
    assert out.startswith(mark) and hint in out, out



def _ari_per_user(users, truth, assigned, *, min_interests=2):
    users, truth, assigned = users.numpy(), truth.numpy(), assigned.numpy()
    scores = []
    for user in np.unique(users):
        mine = (users == user) & (truth != NOISE)
        if len(np.unique(truth[mine])) >= min_interests:
            scores.append(adjusted_rand_score(truth[mine], assigned[mine]))
    return np.array(scores)


def _found(users, truth, assigned):  # right: the interval of the mean ARI over users with 2+ interests
    scores = _ari_per_user(users, truth, assigned)
    return bool(scores.mean() - 1.96 * scores.std(ddof=1) / math.sqrt(len(scores)) > 0)


def _matched_agreement(users, truth, assigned):
    """Share of real events whose query is the one matched (Hungarian, on the counts) to their planted interest."""
    users, truth, assigned = users.numpy(), truth.numpy(), assigned.numpy()
    hits = total = dominant = 0
    for user in np.unique(users):
        mine = (users == user) & (truth != NOISE)
        labels = np.unique(truth[mine])
        counts = np.array([[np.sum((truth[mine] == g) & (assigned[mine] == k)) for k in range(8)] for g in labels])
        rows, cols = linear_sum_assignment(counts, maximize=True)
        hits += counts[rows, cols].sum()
        dominant += counts.sum(1).max()
        total += mine.sum()
    return hits / total, dominant / total


def _above_chance(users, truth, assigned):  # naive: the matched agreement beats chance 1/K
    return bool(_matched_agreement(users, truth, assigned)[0] > 1 / 4)


def _above_dominant(users, truth, assigned):  # naive: the matched agreement beats the dominant-interest reference
    agreement, dominant = _matched_agreement(users, truth, assigned)
    return bool(agreement > dominant)


def _every_user(users, truth, assigned):  # users with one interest kept: ARI 1 for one group
    scores = _ari_per_user(users, truth, assigned, min_interests=1)
    return bool(scores.mean() - 1.96 * scores.std(ddof=1) / math.sqrt(len(scores)) > 0)


def _mean_only(users, truth, assigned):  # no interval: any positive mean counts
    return bool(_ari_per_user(users, truth, assigned).mean() > 0)


@pytest.mark.parametrize(
    ("answer", "mark", "hint"),
    [
        (_found, "✅", "passed"),
        (found_interests_reference, "✅", "passed"),
        (lambda u, t, a: torch.tensor(_found(u, t, a)), "✅", "passed"),  # a one-element tensor is read as its bool
        (_above_chance, "❌", "far above chance 1/K"),
        (_above_dominant, "❌", "below the dominant-interest reference"),
        (_every_user, "❌", "leave those users out"),
        (_mean_only, "❌", "its interval contains 0"),
        (lambda u, t, a: float(_ari_per_user(u, t, a).mean()), "❌", "return True or False"),
        (lambda u, t, a: None, "❌", "forget `return`"),
        (not_answered, "⏳", "not answered"),
    ],
)
def test_check_found_interests(capsys, answer, mark, hint):
    out = verdict(capsys, check_found_interests, answer)
    assert out.startswith(mark) and hint in out, out


@pytest.mark.parametrize("seed", range(4))
def test_adjusted_rand_index_matches_scikit_learn(seed):
    g = np.random.default_rng(seed)
    for n, groups in ((30, 3), (12, 1), (50, 6), (5, 5)):
        truth, assigned = g.integers(0, groups, n), g.integers(0, max(1, groups - 1), n)
        assert adjusted_rand_index(truth, assigned) == pytest.approx(adjusted_rand_score(truth, assigned), abs=1e-12)
    assert adjusted_rand_index(np.zeros(8), np.zeros(8)) == 1.0 == adjusted_rand_score(np.zeros(8), np.zeros(8))


def test_recovery_cases_catch_each_naive_rule_and_sit_far_from_the_edge():
    cases = recovery_cases()
    for case in cases:
        events = (case.users, case.truth, case.assigned)
        assert found_interests_reference(*events) == _found(*events) == case.found
        scores = _ari_per_user(*events)
        mean, half = scores.mean(), 1.96 * scores.std(ddof=1) / math.sqrt(len(scores))
        clearly_outside, clearly_inside = abs(mean) > 1.15 * half, abs(mean) < 0.5 * half  # 0 vs the interval
        assert half == 0 or clearly_outside or clearly_inside, f"{case.name} sits near the decision's edge"
    for naive in (_above_chance, _above_dominant, _every_user, _mean_only):  # each tempting rule fails on some case
        assert any(naive(c.users, c.truth, c.assigned) != c.found for c in cases), naive.__name__


def test_check_found_interests_leaves_the_random_state_alone(capsys):
    torch.manual_seed(3)
    before = torch.rand(3)
    torch.manual_seed(3)
    verdict(capsys, check_found_interests, _found)
    assert torch.equal(torch.rand(3), before)
