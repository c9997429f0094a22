"""course_lib.stats (paired intervals) against scipy, and the per-user metrics that feed it."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from course_lib.metrics import Evaluation, compare
from course_lib.stats import mean_and_sd, paired_difference


def _paired_samples(n: int = 300, effect: float = 0.02, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    user_ease = rng.random(n)  # shared by both models: what pairing removes
    a = np.clip(user_ease + effect + rng.normal(0, 0.05, n), 0, 1)
    b = np.clip(user_ease + rng.normal(0, 0.05, n), 0, 1)
    return a, b


def test_t_interval_equals_scipys_paired_t_test():
    a, b = _paired_samples()
    ours = paired_difference(a, b, method="t")
    theirs = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert ours.mean == pytest.approx(np.mean(a - b), abs=1e-12)
    assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), abs=1e-12)


def test_bootstrap_interval_agrees_with_scipys_percentile_bootstrap():
    a, b = _paired_samples(effect=0.01)
    ours = paired_difference(a, b, method="bootstrap", n_resamples=20_000, seed=1)
    theirs = scipy_stats.bootstrap((a - b,), np.mean, method="percentile", n_resamples=20_000,
                                   random_state=np.random.default_rng(2)).confidence_interval
    width = theirs.high - theirs.low
    assert ours.low == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours.high == pytest.approx(theirs.high, abs=0.05 * width)


def test_pairing_is_what_narrows_the_interval():
    a, b = _paired_samples(effect=0.01)
    paired = paired_difference(a, b, method="t")
    unpaired = scipy_stats.ttest_ind(a, b).confidence_interval(0.95)  # ignores that the users are the same
    assert paired.excludes_zero and not (unpaired.low > 0 or unpaired.high < 0)
    assert paired.high - paired.low < 0.25 * (unpaired.high - unpaired.low)


def test_bootstrap_is_seeded_and_leaves_the_global_random_state_alone():
    a, b = _paired_samples()
    state = np.random.get_state()[1].copy()
    first, second = paired_difference(a, b, seed=3), paired_difference(a, b, seed=3)
    assert first == second and np.array_equal(np.random.get_state()[1], state)
    assert paired_difference(a, b, seed=4) != first


def test_no_difference_gives_an_interval_around_zero_and_accepts_tensors():
    a, _ = _paired_samples()
    same = paired_difference(torch.tensor(a), torch.tensor(a))
    assert same.mean == 0 and same.low == 0 and same.high == 0 and not same.excludes_zero
    assert str(paired_difference(a, a[::-1].copy(), method="t")).endswith("(95% t interval, 300 users)")


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "message"),
    [
        ([0.1, 0.2, 0.3], [0.1, 0.2], {}, "same users: got 3 and 2"),
        ([0.1, float("nan")], [0.1, 0.2], {}, "NaN or inf"),
        ([0.1], [0.2], {}, "at least 2 users"),
        ([[0.1, 0.2]], [[0.1, 0.2]], {}, "1-D"),
        ([0.1, 0.2], [0.1, 0.3], {"method": "welch"}, "method must be one of"),
        ([0.1, 0.2], [0.1, 0.3], {"confidence": 95}, "confidence must lie in"),
        ([0.1, 0.2], [0.1, 0.3], {"n_resamples": 10}, "at least 100"),
    ],
    ids=["lengths", "nan", "one-user", "2-D", "method", "percent-confidence", "few-resamples"],
)
def test_bad_input_is_refused_with_a_message_that_names_the_problem(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b, **kwargs)


def test_mean_and_sd_over_seeds():
    assert mean_and_sd([0.0429, 0.0412, 0.0446]) == pytest.approx(
        (statistics.mean([0.0429, 0.0412, 0.0446]), statistics.stdev([0.0429, 0.0412, 0.0446])))
    with pytest.raises(ValueError, match="at least 2 runs"):
        mean_and_sd([0.04])


def _evaluation(ranks, users=None) -> Evaluation:
    ranks = torch.tensor(ranks)
    users = torch.arange(len(ranks)) if users is None else torch.tensor(users)
    return Evaluation(ranks=ranks, aucs=None, users=users, num_candidates=100)


def test_per_user_values_are_the_metrics_before_averaging():
    evaluation = _evaluation([1, 3, 12, 2])
    assert evaluation.per_user("HR@10").tolist() == [1.0, 1.0, 0.0, 1.0]
    expected_ndcg = [1.0, 1 / math.log2(4), 0.0, 1 / math.log2(3)]
    assert evaluation.per_user("NDCG@10").tolist() == pytest.approx(expected_ndcg)
    assert evaluation.per_user("MRR").tolist() == pytest.approx([1, 1 / 3, 1 / 12, 1 / 2])
    for name in ("HR@10", "NDCG@10", "HR@1", "NDCG@5", "MRR"):
        assert evaluation[name] == pytest.approx(evaluation.metrics((1, 5, 10))[name])
    with pytest.raises(KeyError, match="sampled evaluation"):
        evaluation.per_user("AUC")


def test_compare_pairs_two_evaluations_of_the_same_users_only():
    better, worse = _evaluation([1, 2, 1, 3, 1, 2]), _evaluation([4, 2, 30, 3, 8, 50])
    result = compare(better, worse, "NDCG@10", method="t")
    manual = paired_difference(better.per_user("NDCG@10"), worse.per_user("NDCG@10"), method="t")
    assert result == manual and result.mean > 0
    with pytest.raises(ValueError, match="same users in the same order"):
        compare(better, _evaluation([4, 2, 30, 3, 8, 50], users=[1, 0, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="got 6 and 5 users"):
        compare(better, _evaluation([4, 2, 30, 3, 8]))
