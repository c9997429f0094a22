"""The checkers of notebook 02: each prints a pass, a hint, or "not answered yet", and never raises."""

from __future__ import annotations

import pytest
import torch
from checker_support import not_answered, verdict

from course_lib.attention import masked_softmax
from course_lib.exercises.core import Status
from course_lib.exercises.softmax import check_stable_softmax, check_top_k_attention

# --- exercise 1: stable softmax with temperature ---------------------------------------


def stable_softmax(scores, temperature=1.0):
    scaled = scores / temperature
    shifted = scaled - scaled.amax(dim=-1, keepdim=True)
    exp = shifted.exp()
    return exp / exp.sum(dim=-1, keepdim=True)


def stable_softmax_logsumexp(scores, temperature=1.0):
    scaled = scores / temperature
    return (scaled - scaled.logsumexp(dim=-1, keepdim=True)).exp()


def naive_softmax(scores, temperature=1.0):
    exp = (scores / temperature).exp()
    return exp / exp.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("answer", [stable_softmax, stable_softmax_logsumexp, lambda s, t: torch.softmax(s / t, -1)])
def test_softmax_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_stable_softmax, answer).startswith("✅ Exercise 1")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_softmax_not_answered(capsys, answer):
    out = verdict(capsys, check_stable_softmax, answer)
    assert out.startswith("⏳ Exercise 1") and "not answered yet" in out


def _in_place(scores, temperature=1.0):
    scores -= scores.amax(dim=-1, keepdim=True)
    return torch.softmax(scores / temperature, dim=-1)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (naive_softmax, "subtract the largest score"),
        (lambda s, t: (s / t).exp(), "divide by their sum"),
        (lambda s, t: torch.softmax(s / t, dim=0), "normalised over the first dimension"),
        (lambda s, t: torch.softmax(s, dim=-1), "temperature has no effect"),
        (lambda s, t: torch.softmax(s * t, dim=-1), "don't multiply"),
        (lambda s, t: torch.softmax(s / t, dim=-1)[..., :-1], "the scores' shape"),
        (lambda s, t: torch.softmax(s / t, dim=-1).tolist(), "torch.Tensor"),
        (lambda s, t: (s / t).exp() / (s / t).exp().sum(), "differs from the reference"),
        (_in_place, "in place"),
    ],
    ids=["naive", "no-sum", "dim0", "no-temperature", "multiply", "shape", "list", "global-sum", "in-place"],
)
def test_softmax_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_stable_softmax, answer)
    assert out.startswith("❌ Exercise 1") and "Hint:" in out
    assert hint in out


def test_softmax_crashing_code_is_reported_not_raised(capsys):
    def needs_keyword(scores, *, temperature=1.0):  # called positionally, so it raises TypeError
        return torch.softmax(scores / temperature, dim=-1)

    out = verdict(capsys, check_stable_softmax, needs_keyword)
    assert out.startswith("❌ Exercise 1") and "TypeError" in out


# --- exercise 2: top-k hard attention -------------------------------------------------


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


def test_statuses_through_run_check(monkeypatch):
    """The checker's three outcomes carry the right status, not only the right symbol."""
    import course_lib.exercises.softmax as module

    results = []
    monkeypatch.setattr(module, "report", results.append)  # keep the CheckResult, print nothing
    for answer in (stable_softmax, naive_softmax, not_answered):
        module.check_stable_softmax(answer)
    assert [r.status for r in results] == [Status.PASSED, Status.FAILED, Status.NOT_ANSWERED]
