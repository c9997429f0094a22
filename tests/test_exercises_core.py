"""The checker machinery: pass, wrong answer with a hint, not answered, crash in student code."""

import torch

from course_lib.attention import softmax
from course_lib.exercises import Status, answered, call, expect, expect_close, report, run_check


def _trial_for(student):
    def trial():
        x = torch.tensor([[1.0, 2.0, 3.0]])
        expect_close(call(student, x), softmax(x), what="the weights", hint="normalise over the last axis.")

    return trial


def test_pass(capsys):
    result = run_check("Exercise 1", _trial_for(lambda x: torch.softmax(x, -1)), success="Well done.")
    assert result.status is Status.PASSED
    report(result)
    assert capsys.readouterr().out == "✅ Exercise 1: passed. Well done.\n"


def test_wrong_values_give_the_hint():
    result = run_check("Exercise 1", _trial_for(lambda x: torch.softmax(x, 0)))
    assert result.status is Status.FAILED
    assert "differs from the reference" in result.message and "normalise over the last axis" in result.message


def test_wrong_shape_is_named():
    result = run_check("Exercise 1", _trial_for(lambda x: torch.softmax(x, -1)[0]))
    assert result.status is Status.FAILED and "shape (1, 3), got (3,)" in result.message


def test_nan_is_reported():
    result = run_check("Exercise 1", _trial_for(lambda x: x * float("nan")))
    assert result.status is Status.FAILED and "NaN" in result.message


def test_stub_raising_not_implemented_is_not_answered(capsys):
    def stub(x):
        raise NotImplementedError

    result = run_check("Exercise 1", _trial_for(stub))
    assert result.status is Status.NOT_ANSWERED
    report(result)
    assert "not answered yet" in capsys.readouterr().out


def test_an_answer_still_none_is_not_answered():
    assert run_check("Exercise 1", _trial_for(None)).status is Status.NOT_ANSWERED
    assert run_check("Exercise 2", lambda: answered(None)).status is Status.NOT_ANSWERED
    assert run_check("Exercise 2", lambda: answered(...)).status is Status.NOT_ANSWERED


def test_a_function_returning_none_forgot_return():
    def my_softmax(x):
        x.softmax(-1)  # the work is done, the result is dropped

    result = run_check("Exercise 1", _trial_for(my_softmax))
    assert result.status is Status.FAILED
    assert result.message == "❌ Exercise 1: not yet. Hint: your function `my_softmax` returned None — did you forget `return`?"


def test_crash_in_student_code_becomes_a_message_not_an_exception():
    result = run_check("Exercise 1", _trial_for(lambda x: x @ torch.ones(5)))
    assert result.status is Status.FAILED and "your code raised RuntimeError" in result.message


def test_non_tensor_answer_and_expect():
    assert "torch.Tensor, got list" in run_check("E", _trial_for(lambda x: [0.1])).message
    result = run_check("E", lambda: expect(1 + 1 == 3, "arithmetic"))
    assert result.status is Status.FAILED and result.message.endswith("Hint: arithmetic")


def test_names_used_sees_globals_attributes_and_nested_code_but_not_locals():
    import torch

    from course_lib.attention import causal_mask
    from course_lib.exercises.core import names_used

    def answer(items):
        lower = torch.ones(3, 3).tril()  # a local: not reported
        helper = lambda: causal_mask(3)  # noqa: E731 - a nested code object
        return lower, helper

    used = names_used(answer)
    assert {"torch", "ones", "tril", "causal_mask"} <= used and "lower" not in used and "helper" not in used
    assert names_used(print) == set(), "a built-in has no Python code to read"


def test_forbid_names_the_shortcut_and_lets_other_code_through():
    import pytest

    from course_lib.exercises.core import Mismatch, forbid

    def uses_softmax(scores):
        return scores.softmax(-1)

    with pytest.raises(Mismatch, match=r"calls `softmax`.*by hand"):
        forbid(uses_softmax, ["softmax", "log_softmax"], "by hand")
    forbid(lambda scores: scores.exp() / scores.exp().sum(), ["softmax"], "by hand")  # nothing forbidden: no error
