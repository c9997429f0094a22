"""Helpers shared by the tests of the exercise checkers (course_lib.exercises)."""

from __future__ import annotations

import pytest
import torch

from course_lib import PAD_ID


def verdict(capsys: pytest.CaptureFixture[str], checker, *answers) -> str:
    """Run ``checker(*answers)`` and return the one line it printed (checkers print, they return nothing)."""
    assert checker(*answers) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a checker prints exactly one line, got {out!r}"
    return out


def not_answered(*args, **kwargs):
    """A student's untouched answer: the function body is still ``raise NotImplementedError``."""
    raise NotImplementedError


def erasure_answer(score, history):
    """A right answer to notebook 15's Exercise 1: score drop when each real position is set to PAD_ID."""
    out = torch.zeros(len(history))
    for pos in range(len(history)):
        if history[pos] != PAD_ID:
            cut = history.clone()
            cut[pos] = PAD_ID
            out[pos] = score(history[None])[0] - score(cut[None])[0]
    return out
