"""The checkers of notebook 01: each prints a pass, a hint, or "not answered yet", and never raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from checker_support import not_answered, verdict

from course_lib.exercises.dot_products import check_cosine_scores, check_top_k_items

# --- exercise 1: cosine score matrix -------------------------------------------------


def cosine_by_normalising(users, items):
    users_unit = users / users.norm(dim=-1, keepdim=True)
    items_unit = items / items.norm(dim=-1, keepdim=True)
    return users_unit @ items_unit.T


def cosine_with_torch(users, items):
    return F.cosine_similarity(users[:, None, :], items[None, :, :], dim=-1)


def cosine_with_loops(users, items):
    out = torch.empty(users.shape[0], items.shape[0])
    for u, user in enumerate(users):
        for i, item in enumerate(items):
            out[u, i] = (user @ item) / (user.norm() * item.norm())
    return out


@pytest.mark.parametrize("answer", [cosine_by_normalising, cosine_with_torch, cosine_with_loops])
def test_cosine_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_cosine_scores, answer).startswith("✅ Exercise 1")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_cosine_not_answered(capsys, answer):
    out = verdict(capsys, check_cosine_scores, answer)
    assert out.startswith("⏳ Exercise 1") and "not answered yet" in out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda u, i: u @ i.T, "plain dot products"),
        (lambda u, i: (u / u.norm(dim=-1, keepdim=True)) @ i.T, "users' lengths only"),
        (lambda u, i: u @ (i / i.norm(dim=-1, keepdim=True)).T, "items' lengths only"),
        (lambda u, i: cosine_by_normalising(u, i).T, "rows should be users"),
        (lambda u, i: (u / u.norm()) @ (i / i.norm()).T, "differs from the reference"),
        (lambda u, i: cosine_by_normalising(u, i).numpy(), "torch.Tensor"),
        (lambda u, i: u.div_(u.norm(dim=-1, keepdim=True)) @ F.normalize(i, dim=-1).T, "in place"),
    ],
    ids=["dot", "users-only", "items-only", "transposed", "global-norm", "numpy", "in-place"],
)
def test_cosine_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_cosine_scores, answer)
    assert out.startswith("❌ Exercise 1") and "Hint:" in out
    assert hint in out


def test_cosine_crashing_code_is_reported_not_raised(capsys):
    def crashes(users, items):
        return users @ items  # (U, D) @ (I, D): shapes do not match

    out = verdict(capsys, check_cosine_scores, crashes)
    assert out.startswith("❌ Exercise 1") and "RuntimeError" in out


# --- exercise 2: top-k items per user -----------------------------------------------


def top_k_with_topk(scores, k):
    return torch.topk(scores, k, dim=-1).indices


def top_k_with_argsort(scores, k):
    return scores.argsort(dim=-1, descending=True)[:, :k]


def top_k_with_numpy(scores, k):
    order = np.argsort(-scores.numpy(), axis=-1)[:, :k]
    return torch.from_numpy(order)


@pytest.mark.parametrize("answer", [top_k_with_topk, top_k_with_argsort, top_k_with_numpy])
def test_top_k_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_top_k_items, answer).startswith("✅ Exercise 2")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_top_k_not_answered(capsys, answer):
    out = verdict(capsys, check_top_k_items, answer)
    assert out.startswith("⏳ Exercise 2") and "not answered yet" in out


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda s, k: torch.topk(s, k, dim=-1), "only the indices"),
        (lambda s, k: torch.topk(s, k, dim=-1).values, "`.indices`, not `.values`"),
        (lambda s, k: s.argsort(dim=-1)[:, :k], "lowest-scoring"),
        (lambda s, k: s.argsort(dim=-1)[:, -k:], "worst first"),
        (lambda s, k: torch.topk(s, k, dim=-1).indices.sort(dim=-1).values, "wrong order"),
        (lambda s, k: torch.topk(s, k, dim=0).indices, "shape (users, k)"),
        (lambda s, k: torch.topk(s, k, dim=-1).indices.float(), "integers"),
        (lambda s, k: torch.zeros(s.shape[0], k, dtype=torch.long), "wrong items"),
        (lambda s, k: torch.topk(s, k, dim=-1).indices.tolist(), "torch.Tensor"),
    ],
    ids=["pair", "values", "lowest", "worst-first", "unordered", "wrong-dim", "float", "zeros", "list"],
)
def test_top_k_wrong_answers_get_a_hint(capsys, answer, hint):
    out = verdict(capsys, check_top_k_items, answer)
    assert out.startswith("❌ Exercise 2") and "Hint:" in out
    assert hint in out


def test_top_k_crashing_code_is_reported_not_raised(capsys):
    out = verdict(capsys, check_top_k_items, lambda scores, k: scores.topk(k + 100, dim=-1).indices)
    assert out.startswith("❌ Exercise 2") and "RuntimeError" in out
