"""The checkers of notebook 01: each prints a pass, a hint, or "not answered yet", and never raises."""

from __future__ import annotations

import math

import pytest
import torch
from checker_support import not_answered, verdict

from course_lib.exercises.dot_products import check_top_k_unseen, check_winning_stretch

# --- exercise 1: how long must an item be to win? -------------------------------------


def stretch_by_ratio(users, items, item):
    scores = users @ items.T
    own = scores[:, item]
    others = scores.clone()
    others[:, item] = -math.inf
    best = others.amax(dim=1)
    return torch.where(own > 0, best / own, torch.full_like(own, math.inf))


def stretch_with_loops(users, items, item):
    out = []
    for user in users:
        own = float(user @ items[item])
        best = max(float(user @ other) for j, other in enumerate(items) if j != item)
        out.append(best / own if own > 0 else math.inf)
    return torch.tensor(out)


@pytest.mark.parametrize("answer", [stretch_by_ratio, stretch_with_loops])
def test_stretch_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_winning_stretch, answer).startswith("✅ Exercise 1")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_stretch_not_answered(capsys, answer):
    assert "not answered yet" in verdict(capsys, check_winning_stretch, answer)


def _upside_down(users, items, item):
    return 1 / stretch_by_ratio(users, items, item)


def _including_itself(users, items, item):
    scores = users @ items.T
    own = scores[:, item]
    return torch.where(own > 0, scores.amax(dim=1) / own, torch.full_like(own, math.inf))


def _no_inf(users, items, item):
    scores = users @ items.T
    others = scores.clone()
    others[:, item] = -math.inf
    return others.amax(dim=1) / scores[:, item]  # negative factors for users who dislike the item


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (_upside_down, "upside down"),
        (_including_itself, "includes the item itself"),
        (_no_inf, "return `math.inf`"),
        (lambda users, items, item: stretch_by_ratio(users, items, item).ceil(), "wrong factors"),
        (lambda users, items, item: stretch_by_ratio(users, items, item)[:, None], "one factor per user"),
        (lambda users, items, item: stretch_by_ratio(users, items, item).tolist(), "torch.Tensor"),
    ],
    ids=["upside-down", "itself", "no-inf", "rounded-up", "shape", "list"],
)
def test_stretch_wrong_answers_get_their_hint(capsys, answer, hint):
    out = verdict(capsys, check_winning_stretch, answer)
    assert out.startswith("❌ Exercise 1") and hint in out, out


def test_stretch_in_place_change_is_caught(capsys):
    def stretches_the_catalogue(users, items, item):
        items[item] *= 1.0 + 1e-3
        return stretch_by_ratio(users, items, item)

    assert "in place" in verdict(capsys, check_winning_stretch, stretches_the_catalogue)


# --- exercise 2: top-k unseen items ----------------------------------------------------


def unseen_with_masked_fill(scores, seen, k):
    return scores.masked_fill(seen, float("-inf")).topk(k, dim=-1).indices


def unseen_with_argsort(scores, seen, k):
    ranked = torch.where(seen, torch.full_like(scores, -1e30), scores).argsort(dim=-1, descending=True)
    return ranked[:, :k]


@pytest.mark.parametrize("answer", [unseen_with_masked_fill, unseen_with_argsort])
def test_unseen_passes_for_correct_answers(capsys, answer):
    assert verdict(capsys, check_top_k_unseen, answer).startswith("✅ Exercise 2")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_unseen_not_answered(capsys, answer):
    assert "not answered yet" in verdict(capsys, check_top_k_unseen, answer)


def _overwrites(scores, seen, k):
    scores[seen] = float("-inf")
    return scores.topk(k, dim=-1).indices


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda scores, seen, k: scores.topk(k, dim=-1).indices, "already seen"),
        (lambda scores, seen, k: (scores * ~seen).topk(k, dim=-1).indices, "score of 0"),
        (lambda scores, seen, k: scores.masked_fill(seen, 0.0).topk(k, dim=-1).indices, "score of 0"),
        (lambda scores, seen, k: scores.masked_fill(seen, float("-inf")).topk(k, dim=-1), "pair"),
        (lambda scores, seen, k: scores.masked_fill(seen, float("-inf")).topk(k, dim=-1).values, "integers"),
        (lambda scores, seen, k: scores.masked_fill(seen, float("inf")).topk(k, dim=-1, largest=False).indices,
         "wrong items"),
        (_overwrites, "in place"),
    ],
    ids=["not-masked", "times-not-seen", "zero-fill", "pair", "values", "lowest", "in-place"],
)
def test_unseen_wrong_answers_get_their_hint(capsys, answer, hint):
    out = verdict(capsys, check_top_k_unseen, answer)
    assert out.startswith("❌ Exercise 2") and hint in out, out
