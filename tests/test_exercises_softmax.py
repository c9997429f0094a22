"""The checkers of notebook 02: each prints a pass, a hint, or "not answered yet", and never raises."""

from __future__ import annotations

import pytest
import torch
from checker_support import not_answered, verdict

from course_lib.attention import masked_softmax
from course_lib.exercises.core import Status
from course_lib.exercises.softmax import check_masked_pooling, check_pooling_grad, check_top_k_attention

# --- exercise 1: the gradient of attention pooling, by hand ---------------------------


def pooling_grad(scores, values, upstream):
    weights = torch.softmax(scores, dim=-1)  # (L,)
    return weights * (values @ upstream - (weights @ values) @ upstream)  # (L,)


def pooling_grad_jacobian(scores, values, upstream):
    weights = (scores - scores.logsumexp(dim=-1)).exp()  # (L,)
    jacobian = torch.diag(weights) - torch.outer(weights, weights)  # (L, L) dw_i / ds_j
    return jacobian @ (values @ upstream)  # (L,)


@pytest.mark.parametrize("answer", [pooling_grad, pooling_grad_jacobian])
def test_pooling_grad_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_pooling_grad, answer).startswith("✅ Exercise 1")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_pooling_grad_not_answered(capsys, answer):
    out = verdict(capsys, check_pooling_grad, answer)
    assert out.startswith("⏳ Exercise 1") and "not answered yet" in out


def _naive_weights(scores, values, upstream):
    exp = scores.exp()  # overflows for a score of 1000
    weights = exp / exp.sum()
    return weights * (values @ upstream - (weights @ values) @ upstream)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda s, v, g: torch.softmax(s, -1) * (v @ g), "forgot that raising s_j also lowers every other weight"),
        (lambda s, v, g: -pooling_grad(s, v, g), "the sign is flipped"),
        (lambda s, v, g: (w := torch.softmax(s, -1)) * (1 - w) * (v @ g), "only the diagonal of the softmax Jacobian"),
        (lambda s, v, g: (w := torch.softmax(s, -1))[:, None] * (v - w @ v) * g, "shape (L, D)"),
        (lambda s, v, g: (w := torch.softmax(s, -1))[:, None] * (v - w @ v), "shape (L, D)"),
        (lambda s, v, g: v @ g - (torch.softmax(s, -1) @ v) @ g, "the factor w_j"),
        (_naive_weights, "stable softmax"),
        (lambda s, v, g: pooling_grad(s, v, g)[:-1], "should have shape (L,)"),
        (lambda s, v, g: pooling_grad(s, v, g).tolist(), "torch.Tensor"),
        (lambda s, v, g: pooling_grad(s, v, g) + 0.01, "differs from the reference"),
    ],
    ids=["no-minus-o-g", "sign", "jacobian-diagonal", "shape-LD", "no-upstream", "no-w", "naive-softmax", "short",
         "list", "off"],
)
def test_pooling_grad_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_pooling_grad, answer)
    assert out.startswith("❌ Exercise 1") and "Hint:" in out
    assert hint in out


def _by_backward(scores, values, upstream):
    scores = scores.clone().requires_grad_(True)
    (torch.softmax(scores, -1) @ values @ upstream).backward()
    return scores.grad


def _by_autograd_grad(scores, values, upstream):
    scores = scores.clone().requires_grad_(True)
    return torch.autograd.grad(torch.softmax(scores, -1) @ values @ upstream, scores)[0]


def _by_torch_func(scores, values, upstream):
    return torch.func.grad(lambda s: torch.softmax(s, -1) @ values @ upstream)(scores)


def _by_jacobian(scores, values, upstream):
    return torch.autograd.functional.jacobian(lambda s: torch.softmax(s, -1) @ values @ upstream, scores)


@pytest.mark.parametrize("answer", [_by_backward, _by_autograd_grad, _by_torch_func, _by_jacobian],
                         ids=["backward", "autograd.grad", "func.grad", "functional.jacobian"])
def test_pooling_grad_refuses_autograd_and_puts_it_back(capsys, answer):
    grad, backward, func_grad = torch.autograd.grad, torch.Tensor.backward, torch.func.grad
    out = verdict(capsys, check_pooling_grad, answer)
    assert out.startswith("❌ Exercise 1") and "derive it by hand; autograd is what we check against" in out
    assert torch.autograd.grad is grad and torch.Tensor.backward is backward and torch.func.grad is func_grad
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x**2).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(torch.autograd.grad((x**3).sum(), x)[0], torch.tensor([3.0, 12.0]))


def test_pooling_grad_puts_autograd_back_after_a_crash(capsys):
    def crashes(scores, values, upstream):
        raise RuntimeError("boom")

    backward = torch.Tensor.backward
    out = verdict(capsys, check_pooling_grad, crashes)
    assert out.startswith("❌ Exercise 1") and "RuntimeError" in out
    assert torch.Tensor.backward is backward


# --- exercise 2: top-k attention -------------------------------------------------------


def top_k_attention(scores, values, k):
    top = scores.topk(k, dim=-1).indices
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, top, True)
    weights = masked_softmax(scores, keep)
    return (weights.unsqueeze(-2) @ values).squeeze(-2), weights


def top_k_attention_fill(scores, values, k):
    threshold = scores.topk(k, dim=-1).values[..., -1:]  # k-th best score of each row
    weights = torch.softmax(scores.masked_fill(scores < threshold, float("-inf")), dim=-1)
    return torch.einsum("bl,bld->bd", weights, values), weights


@pytest.mark.parametrize("answer", [top_k_attention, top_k_attention_fill])
def test_top_k_attention_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_top_k_attention, answer).startswith("✅ Exercise 2")


@pytest.mark.parametrize("answer", [None, not_answered, lambda s, v, k: (None, None)])
def test_top_k_attention_not_answered(capsys, answer):
    out = verdict(capsys, check_top_k_attention, answer)
    assert out.startswith("⏳ Exercise 2") and "not answered yet" in out


def _no_renormalising(scores, values, k):
    _, weights = top_k_attention(scores, values, scores.shape[-1])  # softmax over all items
    top = scores.topk(k, dim=-1).indices
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, top, True)
    weights = weights * keep
    return (weights.unsqueeze(-2) @ values).squeeze(-2), weights


def _uniform(scores, values, k):
    top = scores.topk(k, dim=-1).indices
    weights = torch.zeros_like(scores).scatter(-1, top, 1.0 / k)
    return (weights.unsqueeze(-2) @ values).squeeze(-2), weights


def _full_softmax(scores, values, k):
    return top_k_attention(scores, values, scores.shape[-1])


def _mean_output(scores, values, k):
    _, weights = top_k_attention(scores, values, k)
    return values.mean(dim=-2), weights


def _bottom_k(scores, values, k):
    return top_k_attention(-scores, values, k)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (_no_renormalising, "renormalise"),
        (_uniform, "weight 1/k"),
        (_full_softmax, "must get weight 0"),
        (_mean_output, "weighted sum of the values"),
        (_bottom_k, "must get weight 0"),
        (lambda s, v, k: top_k_attention(s, v, k)[1], "pair (output, weights)"),
        (lambda s, v, k: (top_k_attention(s, v, k)[0], top_k_attention(s, v, k)[1][:, :-1]), "shape"),
    ],
    ids=["no-renormalising", "uniform", "full-softmax", "mean-output", "bottom-k", "weights-only", "shape"],
)
def test_top_k_attention_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_top_k_attention, answer)
    assert out.startswith("❌ Exercise 2") and "Hint:" in out
    assert hint in out


def test_top_k_attention_crashing_code_is_reported_not_raised(capsys):
    out = verdict(capsys, check_top_k_attention, lambda s, v, k: top_k_attention(s, v, k + 100))
    assert out.startswith("❌ Exercise 2") and "RuntimeError" in out


# --- exercise 3: bug hunt, masked pooling ----------------------------------------------


def masked_pooling(history, query, attn_mask):
    scores = (history @ query.unsqueeze(-1)).squeeze(-1)  # (B, L)
    weights = masked_softmax(scores, attn_mask)  # (B, L)
    return (weights.unsqueeze(-2) @ history).squeeze(-2), weights


def masked_pooling_by_hand(history, query, attn_mask):
    scores = torch.einsum("bld,bd->bl", history, query)  # (B, L)
    scores = scores.masked_fill(~attn_mask, torch.finfo(scores.dtype).min)
    exp = (scores - scores.amax(dim=-1, keepdim=True)).exp() * attn_mask  # masked exps are 0
    weights = exp / exp.sum(dim=-1, keepdim=True).clamp_min(1e-30)  # a fully masked row: 0 / tiny = 0
    return torch.einsum("bl,bld->bd", weights, history), weights


def planted(history, query, attn_mask, *, size_one_axis=False, fill=None, subtract_max=True, zero_masked=True):
    """The notebook's broken pooling with any subset of its bugs (and the fully masked row's guard)."""
    fill = torch.finfo(history.dtype).min if fill is None else fill
    scores = (history @ query.unsqueeze(-1)).masked_fill(~attn_mask.unsqueeze(-1), fill)  # (B, L, 1)
    if not size_one_axis:
        scores = scores.squeeze(-1)  # (B, L)
    if subtract_max:
        scores = scores - scores.amax(dim=-1, keepdim=True)
    exp = scores.exp()
    if zero_masked:
        exp = exp * (attn_mask.unsqueeze(-1) if size_one_axis else attn_mask)
    weights = exp / exp.sum(dim=-1, keepdim=True).clamp_min(1e-30) if zero_masked else exp / exp.sum(dim=-1, keepdim=True)
    weights = weights.reshape(attn_mask.shape)  # (B, L)
    return (weights.unsqueeze(-2) @ history).squeeze(-2), weights


@pytest.mark.parametrize("answer", [masked_pooling_by_hand, planted])
def test_masked_pooling_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_masked_pooling, answer).startswith("✅ Exercise 3")


@pytest.mark.parametrize("answer", [None, not_answered, lambda h, q, m: (None, None)])
def test_masked_pooling_not_answered(capsys, answer):
    out = verdict(capsys, check_masked_pooling, answer)
    assert out.startswith("⏳ Exercise 3") and "not answered yet" in out


def _as_shown(history, query, attn_mask):
    """The broken function exactly as the notebook shows it: all three bugs."""
    return planted(history, query, attn_mask, size_one_axis=True, fill=0.0, subtract_max=False, zero_masked=False)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (_as_shown, "the softmax runs over the last axis of the (B, L, 1) scores"),
        (lambda h, q, m: planted(h, q, m, size_one_axis=True), "the softmax runs over the last axis"),
        (lambda h, q, m: planted(h, q, m, fill=0.0, zero_masked=False), "masked items get weight > 0"),
        (lambda h, q, m: planted(h, q, m, fill=0.0), "take it over the allowed scores only"),
        (lambda h, q, m: planted(h, q, m, subtract_max=False), "Subtract the largest allowed score"),
        (lambda h, q, m: planted(h, q, m, zero_masked=False), "should get weights 0 and output 0"),
        (lambda h, q, m: planted(h, q, m, fill=float("-inf"), zero_masked=False), "gives NaN"),
        (lambda h, q, m: planted(h, q, m, fill=-1e9, zero_masked=False), "should get weights 0 and output 0"),
        (lambda h, q, m: (h.mean(dim=1), masked_pooling(h, q, m)[1]), "weighted sum of the history rows"),
        (lambda h, q, m: masked_pooling(h, q, m)[0], "pair (output, weights)"),
        (lambda h, q, m: (masked_pooling(h, q, m)[0][:, :-1], masked_pooling(h, q, m)[1]), "the output should have shape"),
    ],
    ids=["as-shown", "size-one-axis", "fill-zero", "fill-zero-max", "no-max", "empty-row-uniform", "empty-row-nan",
         "fill-1e9", "mean-output", "weights-missing", "output-shape"],
)
def test_masked_pooling_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_masked_pooling, answer)
    assert out.startswith("❌ Exercise 3") and "Hint:" in out
    assert hint in out


def test_statuses_through_run_check(monkeypatch):
    """The checker's three outcomes carry the right status, not only the right symbol."""
    import course_lib.exercises.softmax as module

    results = []
    monkeypatch.setattr(module, "report", results.append)  # keep the CheckResult, print nothing
    for answer in (pooling_grad, _by_backward, not_answered):
        module.check_pooling_grad(answer)
    for answer in (masked_pooling_by_hand, _as_shown, not_answered):
        module.check_masked_pooling(answer)
    assert [r.status for r in results] == [Status.PASSED, Status.FAILED, Status.NOT_ANSWERED] * 2


def test_masked_pooling_refuses_the_softmax_the_bug_hunt_asks_you_to_write(capsys):
    out = verdict(capsys, check_masked_pooling, masked_pooling)  # calls the library's masked_softmax
    assert out.startswith("❌ Exercise 3") and "your function calls `masked_softmax`" in out, out

    def with_torch_softmax(history, query, attn_mask):
        scores = (history @ query.unsqueeze(-1)).squeeze(-1).masked_fill(~attn_mask, -1e30)
        weights = torch.softmax(scores, dim=-1) * attn_mask
        return (weights.unsqueeze(-2) @ history).squeeze(-2), weights

    assert "your function calls `softmax`" in verdict(capsys, check_masked_pooling, with_torch_softmax)
