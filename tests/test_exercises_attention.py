"""The checkers of notebook 03: each prints a pass, a hint, or "not answered yet", and never raises."""

from __future__ import annotations

import math

import pytest
import torch
from checker_support import not_answered, verdict

from course_lib import PAD_ID
from course_lib.attention import causal_mask, combine_masks, padding_mask, scaled_dot_product_attention
from course_lib.exercises import attention as checkers
from course_lib.exercises.attention import check_causal_padding_mask, check_masked_attention, check_newest_positions
from course_lib.exercises.core import Status, run_check
from course_lib.layers import positions_from_newest


def test_public_api():
    assert set(checkers.__all__) == {
        "check_masked_attention",
        "check_causal_padding_mask",
        "check_newest_positions",
        "masked_attention_trial",
        "causal_padding_mask_trial",
        "newest_positions_trial",
    }
    assert all(callable(getattr(checkers, name)) for name in checkers.__all__)


# --- exercise 3: masked attention ---------------------------------------------------------


def _scores(q, k, scale=None):
    return q @ k.transpose(-2, -1) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)


def attention_fill_and_zero(q, k, v, attn_mask):
    """The notebook's solution: finite fill, softmax, then zero the masked keys."""
    scores = _scores(q, k).masked_fill(~attn_mask, torch.finfo(q.dtype).min)
    weights = torch.softmax(scores, dim=-1) * attn_mask
    return weights @ v, weights


def attention_from_course_lib(q, k, v, attn_mask):
    return scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


def attention_where_after_inf(q, k, v, attn_mask):
    """-inf fill, then replace the NaN rows with zeros: forward right, gradients finite too."""
    weights = torch.softmax(_scores(q, k).masked_fill(~attn_mask, float("-inf")), dim=-1)
    weights = torch.where(attn_mask.any(dim=-1, keepdim=True), weights, torch.zeros_like(weights))
    return weights @ v, weights


def attention_as_list(q, k, v, attn_mask):
    return list(attention_fill_and_zero(q, k, v, attn_mask))


@pytest.mark.parametrize(
    "answer", [attention_fill_and_zero, attention_where_after_inf, attention_as_list]
)
def test_masked_attention_passes_for_correct_answers(capsys, answer):
    out = verdict(capsys, check_masked_attention, answer)
    assert out.startswith("✅ Exercise 3") and "passed" in out


@pytest.mark.parametrize("answer", [None, not_answered, lambda q, k, v, m: (None, None)])
def test_masked_attention_not_answered(capsys, answer):
    out = verdict(capsys, check_masked_attention, answer)
    assert out.startswith("⏳ Exercise 3") and "not answered yet" in out


def _inf_fill(q, k, v, m):
    w = torch.softmax(_scores(q, k).masked_fill(~m, float("-inf")), dim=-1)
    return w @ v, w


def _big_negative_fill(q, k, v, m):
    w = torch.softmax(_scores(q, k).masked_fill(~m, -1e9), dim=-1)
    return w @ v, w


def _no_scaling(q, k, v, m):
    w = torch.softmax(_scores(q, k, scale=1.0).masked_fill(~m, -1e9), dim=-1) * m
    return w @ v, w


def _divided_by_d(q, k, v, m):
    w = torch.softmax(_scores(q, k, scale=1 / q.shape[-1]).masked_fill(~m, -1e9), dim=-1) * m
    return w @ v, w


def _softmax_over_queries(q, k, v, m):
    w = torch.softmax(_scores(q, k).masked_fill(~m, -1e9), dim=-2) * m
    return w @ v, w


def _mask_inverted(q, k, v, m):
    w = torch.softmax(_scores(q, k).masked_fill(m, -1e9), dim=-1) * ~m
    return w @ v, w


def _wrong_output(q, k, v, m):
    _, w = attention_fill_and_zero(q, k, v, m)
    return w @ v + 1.0, w


def _weights_transposed(q, k, v, m):
    out, w = attention_fill_and_zero(q, k, v, m)
    return out, w.transpose(-2, -1)


def _detached(q, k, v, m):
    out, w = attention_fill_and_zero(q.detach(), k.detach(), v.detach(), m)
    return out, w


def _in_place(q, k, v, m):
    q.mul_(1.0 / math.sqrt(q.shape[-1]))
    w = torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~m, -1e9), dim=-1) * m
    return w @ v, w


def _nan_gradients(q, k, v, m):
    """An additive -inf mask, NaN patched after the softmax: right forward pass, NaN gradients."""
    additive = torch.zeros(m.shape).masked_fill(~m, float("-inf"))
    w = torch.softmax(_scores(q, k) + additive, dim=-1)
    w = torch.where(torch.isnan(w), torch.zeros_like(w), w)
    return w @ v, w


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (_inf_fill, "exp(-inf - (-inf)) = NaN"),
        (_big_negative_fill, "uniform weights"),
        (_no_scaling, "without scaling"),
        (_divided_by_d, "divided the scores by d"),
        (_softmax_over_queries, "over the queries"),
        (_mask_inverted, "True in attn_mask means 'may attend'"),
        (_wrong_output, "weights @ v"),
        (_weights_transposed, "should have shape"),
        (lambda q, k, v, m: attention_fill_and_zero(q, k, v, m)[0], "return the pair"),
        (lambda q, k, v, m: attention_fill_and_zero(q, k, v, m) + (None,), "return the pair"),
        (lambda q, k, v, m: tuple(x.numpy() for x in attention_fill_and_zero(q, k, v, m)), "torch.Tensor"),
        (_detached, "not connected to q, k and v"),
        (_in_place, "in place"),
        (_nan_gradients, "gradient of"),
    ],
    ids=[
        "inf-fill", "big-negative", "no-scale", "by-d", "wrong-axis", "inverted", "output", "transposed",
        "single-tensor", "triple", "numpy", "detached", "in-place", "nan-grad",
    ],
)
def test_masked_attention_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_masked_attention, answer)
    assert out.startswith("❌ Exercise 3") and "Hint:" in out
    assert hint in out


def test_nan_gradient_example_really_has_a_right_forward_pass():
    """Guards the test above: _nan_gradients must differ from the solution only backwards."""
    q, k, v, m = checkers._attention_cases()[0]
    for a, b in zip(_nan_gradients(q, k, v, m), attention_fill_and_zero(q, k, v, m)):
        torch.testing.assert_close(a, b)


def test_masked_attention_crashing_code_is_reported_not_raised(capsys):
    def crashes(q, k, v, attn_mask):
        return q @ v  # (.., Lq, D) @ (.., Lk, Dv): shapes do not match

    out = verdict(capsys, check_masked_attention, crashes)
    assert out.startswith("❌ Exercise 3") and "RuntimeError" in out


def test_reference_cases_contain_fully_masked_rows():
    """The checker would not test the trap if its cases had no empty rows."""
    for q, k, _v, mask in checkers._attention_cases():
        full = torch.broadcast_to(mask, (q @ k.transpose(-2, -1)).shape)  # (..., Lq, Lk)
        assert (~full.any(dim=-1)).any() and full.any(dim=-1).any()


# --- exercise 1: causal + padding mask -------------------------------------------------------


def mask_by_hand(items):
    length = items.shape[-1]
    lower = torch.ones(length, length, dtype=torch.bool).tril()  # (L, L)
    return lower & (items != PAD_ID)[:, None, :]  # (B, L, L)


def mask_with_course_lib(items):
    return combine_masks(causal_mask(items.shape[1]), padding_mask(items))  # (B, 1, L, L)


def mask_with_loops(items):
    batch, length = items.shape
    out = torch.zeros(batch, length, length, dtype=torch.bool)
    for b in range(batch):
        for i in range(length):
            for j in range(i + 1):
                out[b, i, j] = bool(items[b, j] != PAD_ID)
    return out


@pytest.mark.parametrize("answer", [mask_by_hand, mask_with_loops])
def test_causal_padding_mask_passes_for_correct_answers(capsys, answer):
    out = verdict(capsys, check_causal_padding_mask, answer)
    assert out.startswith("✅ Exercise 1") and "passed" in out


@pytest.mark.parametrize("answer", [None, not_answered])
def test_causal_padding_mask_not_answered(capsys, answer):
    out = verdict(capsys, check_causal_padding_mask, answer)
    assert out.startswith("⏳ Exercise 1") and "not answered yet" in out


def _ones(items):
    return torch.ones(items.shape[1], items.shape[1], dtype=torch.bool)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda items: ~mask_by_hand(items), "swapped"),
        (lambda items: _ones(items).triu() & (items != PAD_ID)[:, None, :], "transposed"),
        (lambda items: _ones(items).tril().expand(items.shape[0], -1, -1), "padded keys are still allowed"),
        (lambda items: (items != PAD_ID)[:, None, :].expand(-1, items.shape[1], -1), "later keys"),
        (lambda items: _ones(items).tril() & (items != PAD_ID)[:, :, None], "padded *queries*"),
        (lambda items: mask_by_hand(items).float(), "boolean"),
        (
            lambda items: torch.zeros(mask_by_hand(items).shape).masked_fill(~mask_by_hand(items), float("-inf")),
            "additive float mask",
        ),
        (lambda items: mask_by_hand(items)[0], "shape (B, L, L)"),
        (lambda items: mask_by_hand(items).tolist(), "torch.Tensor"),
        (lambda items: _ones(items).tril(-1) & (items != PAD_ID)[:, None, :], "wrong at"),
        (lambda items: items.fill_(PAD_ID) != PAD_ID, "in place"),
    ],
    ids=[
        "inverted", "upper", "causal-only", "padding-only", "query-padding", "float", "additive",
        "one-history", "list", "strict-lower", "in-place",
    ],
)
def test_causal_padding_mask_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_causal_padding_mask, answer)
    assert out.startswith("❌ Exercise 1") and "Hint:" in out
    assert hint in out


def test_causal_padding_mask_hard_coded_length_fails(capsys):
    fixed = mask_by_hand(checkers._mask_cases()[0])  # right for the first case only
    out = verdict(capsys, check_causal_padding_mask, lambda items: fixed)
    assert out.startswith("❌ Exercise 1")


# --- exercise 2: positions counted from the newest item ---------------------------------------


def positions_by_flip(x, table):
    """The notebook's solution: the first L rows of the table, reversed (oldest slot first)."""
    return x + table[: x.shape[1]].flip(0)  # (B, L, D) + (L, D)


def positions_with_course_lib(x, table):
    return x + table[positions_from_newest(x.shape[1])]


def positions_with_a_loop(x, table):
    out = x.clone()
    length = x.shape[1]
    for slot in range(length):
        out[:, slot] = out[:, slot] + table[length - 1 - slot]
    return out


@pytest.mark.parametrize("answer", [positions_by_flip, positions_with_a_loop])
def test_newest_positions_passes_for_correct_answers(capsys, answer):
    out = verdict(capsys, check_newest_positions, answer)
    assert out.startswith("✅ Exercise 2") and "passed" in out


@pytest.mark.parametrize("answer", [None, not_answered, lambda x, table: ...])
def test_newest_positions_not_answered(capsys, answer):
    out = verdict(capsys, check_newest_positions, answer)
    assert out.startswith("⏳ Exercise 2") and "not answered yet" in out


def _left_counted(x, table):
    return x + table[: x.shape[1]]


def _one_based(x, table):
    return x + table[1 : x.shape[1] + 1].flip(0)


def _from_table_end(x, table):
    return x + table.flip(0)[: x.shape[1]]


def _table_tail(x, table):
    return x + table[-x.shape[1] :]


def _past_the_table(x, table):
    rows, length = table.shape[0], x.shape[1]
    return x + table[torch.arange(rows, rows - length, -1)]  # rows P .. P-L+1: row P does not exist


def _in_place(x, table):
    x += table[: x.shape[1]].flip(0)
    return x


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (_left_counted, "counted positions from the left"),
        (_one_based, "off by one"),
        (_from_table_end, "end of the table"),
        (_table_tail, "end of the table"),
        (_past_the_table, "ran past the position table"),
        (lambda x, table: table[: x.shape[1]].flip(0).expand_as(x), "position vectors alone"),
        (lambda x, table: x.clone(), "unchanged"),
        (lambda x, table: x - table[: x.shape[1]].flip(0), "subtracted"),
        (lambda x, table: x + table[: x.shape[1]].flip(0) * 2, "position_table[L-1-l]"),
        (_in_place, "in place"),
        (lambda x, table: positions_by_flip(x, table)[0], "shape of x"),
        (lambda x, table: positions_by_flip(x, table).tolist(), "torch.Tensor"),
    ],
    ids=[
        "left", "one-based", "table-end", "table-tail", "index-error", "positions-only", "unchanged",
        "subtracted", "doubled", "in-place", "one-history", "list",
    ],
)
def test_newest_positions_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_newest_positions, answer)
    assert out.startswith("❌ Exercise 2") and "Hint:" in out
    assert hint in out


def test_position_cases_tell_the_wrong_countings_apart():
    """Each wrong counting differs from the right one on some case (else the checker could not see it)."""
    cases = checkers._position_cases()
    assert any(table.shape[0] > x.shape[1] for x, table in cases) and any(table.shape[0] == x.shape[1] for x, table in cases)
    for wrong in (_left_counted, _one_based, _from_table_end, _table_tail):
        assert any(
            table.shape[0] > x.shape[1] and not torch.allclose(wrong(x, table), positions_by_flip(x, table))
            for x, table in cases
        ), wrong.__name__


def test_left_counted_positions_break_padding_invariance():
    """The property the exercise is about: extra left padding leaves newest-relative vectors alone."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, generator=generator)  # (B, L, D)
    table = torch.randn(7, 3, generator=generator)  # (P, D)
    padded = torch.cat([torch.randn(2, 3, 3, generator=generator), x], dim=1)  # (B, L + 3, D): 3 more slots on the left
    torch.testing.assert_close(positions_by_flip(padded, table)[:, 3:], positions_by_flip(x, table))
    assert not torch.allclose(_left_counted(padded, table)[:, 3:], _left_counted(x, table))


# --- all checkers: the machinery ------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        42,
        "attention",
        lambda *args: 1 / 0,
        lambda *args: ("a", "b"),
        lambda *args: (torch.zeros(1), torch.zeros(1)),
        lambda *args: torch.tensor(float("nan")),
        lambda *args: iter([]),
    ],
    ids=["int", "str", "zero-division", "strings", "tiny-tensors", "nan-scalar", "iterator"],
)
@pytest.mark.parametrize("checker", [check_masked_attention, check_causal_padding_mask, check_newest_positions])
def test_checkers_never_raise(capsys, checker, answer):
    out = verdict(capsys, checker, answer)
    assert out.startswith("❌ Exercise")


def test_run_check_statuses_for_the_trials():
    """The trials behind the checkers give the three statuses through core.run_check."""
    trial = checkers.masked_attention_trial
    passed = run_check("ex", lambda: trial(attention_fill_and_zero))
    failed = run_check("ex", lambda: trial(_big_negative_fill))
    stub = run_check("ex", lambda: trial(not_answered))
    assert passed.status is Status.PASSED and passed.message.startswith("✅ ex")
    assert failed.status is Status.FAILED and "uniform" in failed.message
    assert stub.status is Status.NOT_ANSWERED

    trial = checkers.causal_padding_mask_trial
    assert run_check("ex", lambda: trial(mask_by_hand)).status is Status.PASSED
    assert run_check("ex", lambda: trial(lambda items: ~mask_by_hand(items))).status is Status.FAILED
    assert run_check("ex", lambda: trial(None)).status is Status.NOT_ANSWERED

    trial = checkers.newest_positions_trial
    assert run_check("ex", lambda: trial(positions_by_flip)).status is Status.PASSED
    assert run_check("ex", lambda: trial(_left_counted)).status is Status.FAILED
    assert run_check("ex", lambda: trial(not_answered)).status is Status.NOT_ANSWERED


@pytest.mark.parametrize(
    ("checker", "answer", "forbidden"),
    [
        (check_causal_padding_mask, mask_with_course_lib, "`causal_mask`, `combine_masks`, `padding_mask`"),
        (check_newest_positions, positions_with_course_lib, "`positions_from_newest`"),
        (check_masked_attention, attention_from_course_lib, "`scaled_dot_product_attention`"),
    ],
    ids=["mask", "positions", "attention"],
)
def test_the_library_shortcut_the_exercise_forbids_is_refused(capsys, checker, answer, forbidden):
    out = verdict(capsys, checker, answer)
    assert out.startswith("❌") and f"your function calls {forbidden}" in out, out
