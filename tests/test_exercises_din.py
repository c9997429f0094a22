"""Notebook 07's checkers: pass the reference, reject typical wrong answers with a hint, wait for a stub."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from checker_support import not_answered, verdict

from course_lib.exercises.din import check_ctr_loss, check_is_real_improvement, check_target_attention
from course_lib.stats import paired_difference


def paired_interval_above_zero(a, b):
    """The right answer: the 95% interval of the mean per-user difference lies above 0."""
    diff = a - b
    half = 1.96 * diff.std() / math.sqrt(diff.numel())
    return bool(diff.mean() - half > 0)


def bootstrap_above_zero(a, b):
    """Also right: a percentile bootstrap over users, in NumPy."""
    diff = (a - b).numpy()
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), size=(2000, len(diff)))].mean(axis=1)
    return bool(np.quantile(means, 0.025) > 0)


def higher_mean(a, b):
    return bool(a.mean() > b.mean())


def unpaired_intervals_apart(a, b):
    def interval(x):
        half = 1.96 * x.std() / math.sqrt(x.numel())
        return x.mean() - half, x.mean() + half
    return bool(interval(a)[0] > interval(b)[1])


def excludes_zero_either_side(a, b):
    diff = a - b
    half = 1.96 * diff.std() / math.sqrt(diff.numel())
    return bool(diff.mean() - half > 0 or diff.mean() + half < 0)


def with_the_library(a, b):
    return paired_difference(a, b).low > 0


def test_real_improvement_accepts_paired_intervals_t_or_bootstrap(capsys):
    assert "✅" in verdict(capsys, check_is_real_improvement, paired_interval_above_zero)
    assert "✅" in verdict(capsys, check_is_real_improvement, bootstrap_above_zero)
    assert "✅" in verdict(capsys, check_is_real_improvement, lambda a, b: torch.tensor(paired_interval_above_zero(a, b)))
    assert "✅" in verdict(capsys, check_is_real_improvement, lambda a, b: np.bool_(paired_interval_above_zero(a, b)))


def test_real_improvement_names_each_naive_rule(capsys):
    out = verdict(capsys, check_is_real_improvement, higher_mean)
    assert "❌" in out and "contains 0" in out and "Comparing means" in out
    out = verdict(capsys, check_is_real_improvement, unpaired_intervals_apart)
    assert "❌" in out and "overlap" in out and "each user's difference" in out
    out = verdict(capsys, check_is_real_improvement, excludes_zero_either_side)
    assert "❌" in out and "BELOW" in out
    out = verdict(capsys, check_is_real_improvement, lambda a, b: False)
    assert "❌" in out
    out = verdict(capsys, check_is_real_improvement, lambda a, b: True)
    assert "❌" in out
    out = verdict(capsys, check_is_real_improvement, with_the_library)
    assert "❌" in out and "paired_difference" in out
    out = verdict(capsys, check_is_real_improvement, lambda a, b: (a - b).mean())
    assert "❌" in out and "True or False" in out


def test_real_improvement_waits_for_the_stub(capsys):
    assert "not answered yet" in verdict(capsys, check_is_real_improvement, not_answered)
    assert "not answered yet" in verdict(capsys, check_is_real_improvement, None)


def test_real_improvement_check_keeps_the_random_state(capsys):
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    verdict(capsys, check_is_real_improvement, paired_interval_above_zero)
    torch.testing.assert_close(torch.rand(3), expected)


def right_target_attention(candidate, history, real):
    scores = (history @ candidate / math.sqrt(candidate.shape[-1])).masked_fill(~real, float("-inf"))
    weights = torch.softmax(scores, dim=0)
    return weights @ history, weights


def right_ctr_loss(pos, neg):
    return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
        neg, torch.zeros_like(neg))


def test_the_two_formula_exercises_still_pass_and_fail(capsys):
    assert "✅" in verdict(capsys, check_target_attention, right_target_attention)
    out = verdict(capsys, check_target_attention, lambda c, h, r: (torch.softmax(h @ c, 0) @ h, torch.softmax(h @ c, 0)))
    assert "❌" in out
    assert "✅" in verdict(capsys, check_ctr_loss, right_ctr_loss)
    one_mean = lambda pos, neg: F.binary_cross_entropy_with_logits(  # noqa: E731
        torch.cat([pos, neg.flatten()]), torch.cat([torch.ones_like(pos), torch.zeros(neg.numel())]))
    assert "❌" in verdict(capsys, check_ctr_loss, one_mean)
