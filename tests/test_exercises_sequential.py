"""Notebooks 08 and 09's judgement exercises: the checkers pass a right answer and refuse the naive ones.

08, Exercise 3: is a difference between two models on the same users real? The right rule is the
paired 95% interval; comparing means, or two separate (unpaired) intervals, must fail.
09, Exercise 3: which positions of next-item training see their own target through the mask? The
reference is checked against a real Transformer stack; one-block and no-residual answers must fail.
"""

from __future__ import annotations

import math

import pytest
import torch
from checker_support import not_answered, verdict

from course_lib.exercises.bert4rec import _leak_cases, check_sees_own_target, sees_own_target_reference
from course_lib.exercises.sasrec import _paired_cases, check_paired_verdict
from course_lib.layers import TransformerConfig, TransformerEncoder
from course_lib.stats import paired_difference

# ---- 08: is the difference real? -------------------------------------------------------------


def paired_rule(a, b):
    d = a - b
    half = 1.96 * d.std() / math.sqrt(len(d))
    return "a" if d.mean() - half > 0 else "b" if d.mean() + half < 0 else "tie"


def paired_t_numpy(a, b):
    import numpy as np
    from scipy import stats

    d = np.asarray(a) - np.asarray(b)
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(len(d)))
    return "a" if low > 0 else "b" if high < 0 else "tie"


def compare_means(a, b):
    return "a" if a.mean() > b.mean() else "b" if a.mean() < b.mean() else "tie"


def unpaired_intervals(a, b):
    n = len(a)
    a_low, a_high = a.mean() - 1.96 * a.std() / math.sqrt(n), a.mean() + 1.96 * a.std() / math.sqrt(n)
    b_low, b_high = b.mean() - 1.96 * b.std() / math.sqrt(n), b.mean() + 1.96 * b.std() / math.sqrt(n)
    return "a" if a_low > b_high else "b" if b_low > a_high else "tie"


def unpaired_difference(a, b):
    n = len(a)
    d, half = a.mean() - b.mean(), 1.96 * math.sqrt(a.var() / n + b.var() / n)
    return "a" if d - half > 0 else "b" if d + half < 0 else "tie"


def library_shortcut(a, b):
    diff = paired_difference(a, b)
    return "a" if diff.low > 0 else "b" if diff.high < 0 else "tie"


def test_the_cases_are_what_their_names_say():
    for name, a, b, right in _paired_cases():
        boot, t = paired_difference(a, b), paired_difference(a, b, method="t")
        assert paired_rule(a, b) == right, name
        for interval in (boot, t):  # every reasonable paired interval agrees on the verdict
            assert ("a" if interval.low > 0 else "b" if interval.high < 0 else "tie") == right, (name, interval)
    names = [case[0] for case in _paired_cases()]
    first, second = _paired_cases()[0], _paired_cases()[1]
    assert unpaired_intervals(first[1], first[2]) == "tie" and unpaired_difference(first[1], first[2]) == "tie", names[0]
    assert compare_means(second[1], second[2]) == "a", names[1]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # scipy's interval of identical models
@pytest.mark.parametrize("answer", [paired_rule, paired_t_numpy], ids=["1.96 sd/sqrt(n)", "scipy t interval"])
def test_a_paired_interval_passes(capsys, answer):
    assert "✅" in verdict(capsys, check_paired_verdict, answer)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (compare_means, "positive mean difference is not enough"),
        (unpaired_intervals, "pair them"),
        (unpaired_difference, "pair them"),
        (lambda a, b: "tie" if paired_rule(a, b) == "tie" else {"a": "b", "b": "a"}[paired_rule(a, b)], "expected"),
        (lambda a, b: paired_rule(a, b).upper(), 'one of the strings "a", "b" or "tie"'),
        (lambda a, b: paired_rule(a, b) == "a", 'one of the strings "a", "b" or "tie"'),
        (library_shortcut, "yourself"),
    ],
    ids=["compare means", "unpaired intervals overlap", "unpaired difference", "sign flipped", "capital letters", "a bool",
         "library shortcut"],
)
def test_the_naive_rules_fail_with_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_paired_verdict, answer)
    assert "❌" in out and hint in out, out


def test_paired_verdict_not_answered(capsys):
    assert "⏳" in verdict(capsys, check_paired_verdict, not_answered)
    assert "⏳" in verdict(capsys, check_paired_verdict, None)


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
    out = verdict(capsys, check_sees_own_target, answer)
    assert "❌" in out and hint in out, out


def test_sees_own_target_not_answered(capsys):
    assert "⏳" in verdict(capsys, check_sees_own_target, not_answered)
    assert "⏳" in verdict(capsys, check_sees_own_target, None)
