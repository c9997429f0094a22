"""Notebooks 08 and 09's exercises: the checkers pass a right answer and refuse the naive ones.

08, Exercise 3: the paired bootstrap interval behind ``compare``. Right answers (vectorised, a loop,
NumPy's percentile) pass; resampling the two models separately, drawing without replacement, the
symmetric normal interval, a 90% interval and the global random generator must fail with a hint.
09, Exercise 3: which positions of next-item training see their own target through the mask? The
reference is checked against a real Transformer stack; one-block and no-residual answers must fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from checker_support import not_answered, verdict

from course_lib.exercises.bert4rec import _leak_cases, check_sees_own_target, sees_own_target_reference
from course_lib.exercises.sasrec import _bootstrap_cases, bootstrap_reference, check_paired_bootstrap
from course_lib.layers import TransformerConfig, TransformerEncoder
from course_lib.stats import paired_difference


def refused_with(capsys, checker, answer, hint):
    out = verdict(capsys, checker, answer)
    assert "❌" in out and hint in out, out


# ---- 08: the paired bootstrap -------------------------------------------------------------------


def vectorised(a, b, n_resamples, generator):
    d = a - b
    means = d[torch.randint(len(d), (n_resamples, len(d)), generator=generator)].mean(1)
    return tuple(torch.quantile(means, torch.tensor([0.025, 0.975], dtype=means.dtype)).tolist())


def looped_numpy(a, b, n_resamples, generator):
    d = (a - b).numpy()
    means = [d[torch.randint(len(d), (len(d),), generator=generator).numpy()].mean() for _ in range(n_resamples)]
    return np.percentile(means, 2.5), np.percentile(means, 97.5)


def unpaired(a, b, n_resamples, generator):
    first = torch.randint(len(a), (n_resamples, len(a)), generator=generator)
    second = torch.randint(len(b), (n_resamples, len(b)), generator=generator)
    means = a[first].mean(1) - b[second].mean(1)
    return tuple(torch.quantile(means, torch.tensor([0.025, 0.975], dtype=means.dtype)).tolist())


def without_replacement(a, b, n_resamples, generator):
    d = a - b
    means = torch.stack([d[torch.randperm(len(d), generator=generator)].mean() for _ in range(200)])
    return tuple(torch.quantile(means, torch.tensor([0.025, 0.975], dtype=means.dtype)).tolist())


def normal_interval(a, b, n_resamples, generator):
    d = a - b
    half = 1.96 * d.std() / math.sqrt(len(d))
    return (d.mean() - half).item(), (d.mean() + half).item()


def ninety_percent(a, b, n_resamples, generator):
    d = a - b
    means = d[torch.randint(len(d), (n_resamples, len(d)), generator=generator)].mean(1)
    return tuple(torch.quantile(means, torch.tensor([0.05, 0.95], dtype=means.dtype)).tolist())


def global_generator(a, b, n_resamples, generator):
    return vectorised(a, b, n_resamples, None)


def library_shortcut(a, b, n_resamples, generator):
    diff = paired_difference(a, b, n_resamples=n_resamples)
    return diff.low, diff.high


def test_the_skewed_case_is_skewed_and_the_shared_case_shared():
    (_, a, b), (_, c, d) = _bootstrap_cases()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9  # the users' shared difficulty dominates
    low, high = bootstrap_reference(c, d)
    mean, se = (c - d).mean().item(), ((c - d).std() / math.sqrt(len(c))).item()
    assert (high - mean) - (mean - low) > 0.3 * se  # the bootstrap interval leans right: a normal one cannot match


@pytest.mark.parametrize("answer", [vectorised, looped_numpy], ids=["vectorised torch", "loop + numpy percentile"])
def test_a_right_bootstrap_passes(capsys, answer):
    assert "✅" in verdict(capsys, check_paired_bootstrap, answer)


@pytest.mark.parametrize("seed", range(8))
def test_a_right_bootstrap_passes_whatever_its_draws(capsys, seed):
    """Other random draws than the checker's own seeds still land within the tolerance (8 draw sets per case)."""

    def other_draws(a, b, n_resamples, generator):
        generator.manual_seed(generator.initial_seed() + 7919 * (seed + 1))  # deterministic: reproducible per call
        return vectorised(a, b, n_resamples, generator)

    assert "✅" in verdict(capsys, check_paired_bootstrap, other_draws)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (unpaired, "resampled A's and B's users separately"),
        (without_replacement, "with replacement"),
        (normal_interval, "symmetric around the mean"),
        (ninety_percent, "Too narrow"),
        (global_generator, "from `generator`"),
        (library_shortcut, "yourself"),
        (lambda a, b, n, g: vectorised(a, b, n, g)[::-1], "low <= high"),
        (lambda a, b, n, g: vectorised(a, b, n, g)[0], "pair (low, high)"),
        (lambda a, b, n, g: ("low", "high"), "should be a number"),
    ],
    ids=["unpaired", "without replacement", "normal interval", "90%", "global generator", "library shortcut",
         "(high, low)", "one number", "strings"],
)
def test_wrong_bootstraps_fail_with_a_hint(capsys, answer, hint):
    refused_with(capsys, check_paired_bootstrap, answer, hint)


# ---- 09: does next-item training see its own target? -------------------------------------------


def stack_dependence(attn_mask: torch.Tensor, n_layers: int, seed: int) -> torch.Tensor:
    """(L,) bool from a real stack: does output l move when only input l + 1 changes?"""
    length = attn_mask.shape[0]
    torch.manual_seed(seed)
    stack = TransformerEncoder(TransformerConfig(d_model=8, n_heads=2, n_layers=n_layers, dropout=0.0, causal=False)).eval()
    x = torch.randn(1, length, 8, dtype=torch.float64)
    stack = stack.double()
    moved = torch.zeros(length, dtype=torch.bool)
    with torch.no_grad():
        base = stack(x, attn_mask=attn_mask)
        for l in range(length - 1):
            changed = x.clone()
            changed[0, l + 1] += torch.linspace(-1.0, 1.0, 8, dtype=torch.float64)  # not a constant: LayerNorm would remove it
            moved[l] = not torch.allclose(stack(changed, attn_mask=attn_mask)[0, l], base[0, l], atol=1e-12, rtol=0)
    return moved


@pytest.mark.parametrize("case", range(len(_leak_cases())), ids=[c[0] for c in _leak_cases()])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_reference_matches_a_real_transformer_stack(case, seed):
    name, mask, n_layers = _leak_cases()[case]
    assert torch.equal(sees_own_target_reference(mask, n_layers), stack_dependence(mask, n_layers, seed)), name


@pytest.mark.parametrize("seed", range(4))
def test_the_reference_matches_a_real_stack_on_random_masks(seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(6, 6, generator=g) < 0.3
    for n_layers in (1, 2, 3):
        assert torch.equal(sees_own_target_reference(mask, n_layers), stack_dependence(mask, n_layers, seed))


def one_block_only(attn_mask, n_layers):
    out = torch.zeros(attn_mask.shape[0], dtype=torch.bool)
    out[:-1] = torch.diagonal(attn_mask, offset=1)
    return out


def no_residual(attn_mask, n_layers):
    reach = torch.linalg.matrix_power(attn_mask.double(), n_layers) > 0
    out = torch.zeros(attn_mask.shape[0], dtype=torch.bool)
    out[:-1] = torch.diagonal(reach, offset=1)
    return out


def last_position_too(attn_mask, n_layers):
    out = sees_own_target_reference(attn_mask, n_layers).clone()
    out[-1] = True
    return out


def reachability_by_loop(attn_mask, n_layers):
    """A student's version: breadth-first spreading, one block at a time."""
    length = attn_mask.shape[0]
    out = torch.zeros(length, dtype=torch.bool)
    for l in range(length - 1):
        known = {l}
        for _ in range(n_layers):
            known |= {j for k in known for j in range(length) if attn_mask[k, j]}
        out[l] = (l + 1) in known
    return out


def test_sees_own_target_passes_right_answers(capsys):
    assert "✅" in verdict(capsys, check_sees_own_target, sees_own_target_reference)
    assert "✅" in verdict(capsys, check_sees_own_target, reachability_by_loop)
    assert "✅" in verdict(capsys, check_sees_own_target, lambda m, n: sees_own_target_reference(m, n).int())


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (one_block_only, "one block only"),
        (no_residual, "residual"),
        (last_position_too, "outside the window"),
        (lambda m, n: torch.zeros(m.shape[0], dtype=torch.bool), "expected"),
        (lambda m, n: sees_own_target_reference(m, n)[:-1], "(L,)"),
        (lambda m, n: sees_own_target_reference(m, n).tolist(), "tensor"),
    ],
    ids=["one block", "no residual", "last position", "never leaks", "too short", "a list"],
)
def test_sees_own_target_refuses_wrong_answers(capsys, answer, hint):
    refused_with(capsys, check_sees_own_target, answer, hint)


# ---- both -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("checker", [check_paired_bootstrap, check_sees_own_target])
def test_an_unanswered_exercise_says_so(capsys, checker):
    assert "⏳" in verdict(capsys, checker, not_answered)
    assert "⏳" in verdict(capsys, checker, None)
