"""The checkers of notebook 04's exercises: a right answer passes, the placeholder is "not answered
yet", and each typical wrong answer gets its own hint."""

from __future__ import annotations

import math

import pytest
import torch
from checker_support import not_answered, verdict

from course_lib.exercises.multi_head import (
    check_genre_only_projection,
    check_longest_history,
    check_wrong_view_source,
    genre_only_reference,
)

# ---------------------------------------------------------------- Exercise 1: the wrong view


def wrong_view_source(h, l, e, length, n_heads, d_head):  # noqa: E741
    return divmod((h * length + l) * d_head + e, n_heads * d_head)


def right_split_source(h, l, e, length, n_heads, d_head):  # noqa: E741 - where the CORRECT split reads from
    return l, h * d_head + e


def swapped(h, l, e, length, n_heads, d_head):  # noqa: E741
    position, feature = wrong_view_source(h, l, e, length, n_heads, d_head)
    return feature, position


def rows_of_d_head(h, l, e, length, n_heads, d_head):  # noqa: E741 - forgets that D = H * Dh
    return divmod((h * length + l) * d_head + e, d_head)


def test_the_wrong_view_answer_matches_torch():
    x = torch.arange(5 * 12).view(1, 5, 12)  # (1, L, D)
    view = x.view(1, 3, 5, 4)  # (1, H, L, Dh)
    for h in range(3):
        for l in range(5):  # noqa: E741
            for e in range(4):
                position, feature = wrong_view_source(h, l, e, 5, 3, 4)
                assert view[0, h, l, e] == x[0, position, feature]


@pytest.mark.parametrize(
    "answer",
    [wrong_view_source, lambda *a: torch.tensor(wrong_view_source(*a)), lambda *a: list(wrong_view_source(*a))],
    ids=["tuple", "tensor", "list"],
)
def test_wrong_view_right_answer_passes(capsys, answer):
    assert verdict(capsys, check_wrong_view_source, answer).startswith("✅")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_wrong_view_not_answered(capsys, answer):
    assert "not answered yet" in verdict(capsys, check_wrong_view_source, answer)


@pytest.mark.parametrize(
    "answer, hint",
    [
        (right_split_source, "where the RIGHT split"),
        (swapped, "position and feature are swapped"),
        (rows_of_d_head, "a row of x (one position) holds all D = H * Dh"),
        (lambda h, l, e, length, n_heads, d_head: (l % length, e), "A view keeps memory order"),  # noqa: E741
        (lambda *args: 3, "should be a pair (position, feature)"),
        (lambda *args: (0.5, 1), "should be a whole number"),
        (lambda *args: (100, 0), "outside x"),
    ],
    ids=["right split", "swapped", "rows of Dh", "other", "not a pair", "not whole", "outside"],
)
def test_wrong_view_wrong_answers_get_their_hint(capsys, answer, hint):
    out = verdict(capsys, check_wrong_view_source, answer)
    assert out.startswith("❌") and hint in out, out


# ---------------------------------------------------------------- Exercise 2: a genre-only head


def test_genre_only_right_answers_pass(capsys):
    assert verdict(capsys, check_genre_only_projection, genre_only_reference).startswith("✅")
    rotation = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0))).Q
    # the scores only see W W^T, so a rotated or negated projection is just as right
    assert verdict(capsys, check_genre_only_projection, lambda s: genre_only_reference(s) @ rotation).startswith("✅")
    assert verdict(capsys, check_genre_only_projection, lambda s: -genre_only_reference(s).double()).startswith("✅")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_genre_only_not_answered(capsys, answer):
    assert "not answered yet" in verdict(capsys, check_genre_only_projection, answer)


@pytest.mark.parametrize(
    "answer, hint",
    [
        (lambda s: s * torch.eye(8), "compares genre AND era at once"),
        (lambda s: torch.diag(torch.tensor([0.0] * 4 + [s] * 4)), "sits on the era features 4-7; the genre lives"),
        (lambda s: torch.diag(torch.tensor([s] * 4 + [0.5 * s] * 4)), "Rows 4-7 of W_Q and W_K must be 0"),
        (lambda s: s * torch.eye(4), "shape (8, 8)"),
        (lambda s: torch.zeros(8, 8), "so it attends uniformly"),
        (lambda s: torch.diag(torch.tensor([1.0] * 4 + [0.0] * 4)), "Use exactly the sharpness s"),
        (lambda s: [[s]], "should return a torch.Tensor"),
    ],
    ids=["s*I", "era", "some era", "shape", "zeros", "ignores sharpness", "not a tensor"],
)
def test_genre_only_wrong_answers_get_their_hint(capsys, answer, hint):
    out = verdict(capsys, check_genre_only_projection, answer)
    assert out.startswith("❌") and hint in out, out


def test_genre_only_hint_quotes_the_shares(capsys):
    out = verdict(capsys, check_genre_only_projection, lambda s: s * torch.eye(8))
    assert "same-genre" in out and "uniform attention" in out


# ---------------------------------------------------------------- Exercise 3: the longest history


def longest_history(budget_bytes, n_heads, batch_size):
    return math.isqrt(budget_bytes // (4 * n_heads * batch_size))


def test_longest_history_right_answers_pass(capsys):
    assert verdict(capsys, check_longest_history, longest_history).startswith("✅")
    as_float = lambda b, h, n: float(int((b / (4 * h * n)) ** 0.5))  # noqa: E731 - a float that is whole still counts
    assert verdict(capsys, check_longest_history, as_float).startswith("✅")


@pytest.mark.parametrize("answer", [None, not_answered])
def test_longest_history_not_answered(capsys, answer):
    assert "not answered yet" in verdict(capsys, check_longest_history, answer)


@pytest.mark.parametrize(
    "answer, hint",
    [
        (lambda b, h, n: math.isqrt(b // (h * n)), "not bytes. A float32 takes 4 bytes"),
        (lambda b, h, n: math.isqrt(b // (4 * n)), "heads keeps its own L x L"),
        (lambda b, h, n: math.isqrt(b // (4 * h)), "histories in the batch has its own weights"),
        (lambda b, h, n: longest_history(b, h, n) - 1, "still fits"),
        (lambda b, h, n: longest_history(b, h, n) + 1, "more than the budget"),
        (lambda b, h, n: (b / (4 * h * n)) ** 0.5, "whole number"),
    ],
    ids=["bytes", "heads", "batch", "one short", "one long", "not rounded"],
)
def test_longest_history_wrong_answers_get_their_hint(capsys, answer, hint):
    out = verdict(capsys, check_longest_history, answer)
    assert out.startswith("❌") and hint in out, out
