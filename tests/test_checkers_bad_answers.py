"""Every exercise checker against the answers a student really writes (issue 15, defect 9).

A function that does work but forgets ``return`` is told so (it was "not answered yet" for 31 of
the 32 checkers); the student edition's placeholder still reads "not answered yet"; a check
leaves the notebook's random state as it found it; an exception whose message cannot be
printed, a NumPy integer, an endless loop: each gets a verdict, never a crash or a hang.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random

import numpy as np
import pytest
import torch
from checker_support import not_answered, verdict

import course_lib.exercises as exercises
from course_lib.exercises import core
from course_lib.exercises.scale import check_kv_cache_bytes


def function_checkers() -> list:
    """Every ``check_*`` in course_lib.exercises whose answer is a function (31 of the 32)."""
    found = []
    for module_info in pkgutil.iter_modules(exercises.__path__):
        module = importlib.import_module(f"{exercises.__name__}.{module_info.name}")
        for name, checker in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("check_") and checker.__module__ == module.__name__ and checker is not check_kv_cache_bytes:
                found.append(checker)
    return sorted(found, key=lambda c: c.__name__)


CHECKERS = function_checkers()


def test_the_list_of_checkers_is_complete():
    assert len(CHECKERS) == 31


def did_work_but_forgot_return(*args, **kwargs):
    total = sum(1 for _ in args)  # noqa: F841 - the work whose result never comes back


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_function_that_returns_none_is_told_it_forgot_return(capsys, checker):
    out = verdict(capsys, checker, did_work_but_forgot_return)
    assert "❌" in out and "did_work_but_forgot_return returned None. Did you forget `return`?" in out, out


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_the_student_editions_placeholder_is_still_not_answered(capsys, checker):
    assert "⏳" in verdict(capsys, checker, not_answered)
    assert "⏳" in verdict(capsys, checker, None)


def draws_then_answers_nonsense(*args, **kwargs):
    torch.rand(5)
    np.random.rand(5)
    random.random()
    return torch.zeros(1)


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_check_leaves_the_global_random_state_as_it_found_it(capsys, checker):
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    expected = torch.rand(3), np.random.rand(3), random.random()
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    verdict(capsys, checker, draws_then_answers_nonsense)  # the checker's draws and the student's
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("__str__ itself fails")


def raises_unprintable(*args, **kwargs):
    raise Unprintable


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_an_exception_that_cannot_be_printed_is_reported_by_its_type(capsys, checker):
    out = verdict(capsys, checker, raises_unprintable)
    assert "❌" in out and "raised Unprintable: (its message could not be printed)" in out


def test_numeric_answers_may_be_any_real_number_type(capsys):
    right = 2 * 2 * 50 * 64 * 4
    for answer in (right, np.int64(right), np.float32(right), float(right), torch.tensor(right)):
        assert "✅" in verdict(capsys, lambda a=answer: check_kv_cache_bytes(a, n_layers=2, length=50, d_model=64))
    assert "❌" in verdict(capsys, lambda: check_kv_cache_bytes(True, n_layers=2, length=50, d_model=64))


def loops_for_ever(*args, **kwargs):
    while True:
        pass


@pytest.mark.timeout(60)
@pytest.mark.parametrize("checker", CHECKERS[:3] + CHECKERS[-3:], ids=lambda c: c.__name__)
def test_an_endless_loop_becomes_a_hint_within_the_time_limit(capsys, checker, monkeypatch):
    monkeypatch.setattr(core, "TIME_LIMIT_SECONDS", 0.2)
    out = verdict(capsys, checker, loops_for_ever)
    assert "❌" in out and "did not finish within 0.2 s" in out
