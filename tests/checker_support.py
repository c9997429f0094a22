"""Helpers shared by the tests of the exercise checkers (course_lib.exercises)."""

from __future__ import annotations

import pytest


def verdict(capsys: pytest.CaptureFixture[str], checker, *answers) -> str:
    """Run ``checker(*answers)`` and return the one line it printed (checkers print, they return nothing)."""
    assert checker(*answers) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a checker prints exactly one line, got {out!r}"
    return out


def not_answered(*args, **kwargs):
    """A student's untouched answer: the function body is still ``raise NotImplementedError``."""
    raise NotImplementedError
