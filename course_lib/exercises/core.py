"""The machinery behind every exercise checker.

A notebook cell holds the reference solution between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, then calls a checker, e.g. ``check_softmax(my_softmax)``.
The checker prints one line and never raises, so a notebook always runs on:

* passed          -> "✅ <exercise>: passed."
* wrong answer    -> "❌ <exercise>: not yet. Hint: ..."
* not answered    -> "⏳ <exercise>: not answered yet ..." (the stub still raises
  ``NotImplementedError`` or the answer is still ``None``)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import torch


class Status(enum.Enum):
    """The verdict of a check: passed, failed (with a hint) or not answered yet."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_ANSWERED = "not answered"


@dataclass(frozen=True)
class CheckResult:
    """What a check found: the exercise, its :class:`Status` and the line shown to the student."""

    exercise: str  # the exercise's name as shown to the student
    status: Status
    message: str  # the line printed for the student


class NotAnswered(Exception):
    """Raised inside a check when the student's answer is still the stub."""


class Mismatch(Exception):
    """Raised inside a check when the answer is wrong; its text is the hint."""


def answered(value: object, what: str = "your answer") -> object:
    """Return ``value``, or raise :class:`NotAnswered` if it is still ``None`` or ``...``."""
    if value is None or value is Ellipsis:
        raise NotAnswered(what)
    return value


def expect(condition: bool, hint: str) -> None:
    """Raise :class:`Mismatch` with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise Mismatch(hint)


def expect_close(
    actual: object,
    expected: torch.Tensor,
    *,
    what: str,
    hint: str,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """Check that ``actual`` is a tensor of ``expected``'s shape with close values.

    Args:
        actual: what the student's code returned.
        expected: the reference tensor.
        what: a short name of the quantity ("the weights"), used in the messages.
        hint: what to look at when the values differ.
    """
    answered(actual, what)
    if not isinstance(actual, torch.Tensor):
        raise Mismatch(f"{what} should be a torch.Tensor, got {type(actual).__name__}.")
    if tuple(actual.shape) != tuple(expected.shape):
        raise Mismatch(
            f"{what} should have shape {tuple(expected.shape)}, got {tuple(actual.shape)}."
        )
    actual = actual.detach().to("cpu", torch.float64)
    expected = expected.detach().to("cpu", torch.float64)
    if not torch.isfinite(actual).all():
        raise Mismatch(f"{what} contains NaN or inf. {hint}")
    if not torch.allclose(actual, expected, atol=atol, rtol=rtol):
        worst = (actual - expected).abs().max().item()
        raise Mismatch(f"{what} differs from the reference by up to {worst:.3g}. {hint}")


def run_check(exercise: str, trial: Callable[[], None], success: str = "") -> CheckResult:
    """Run ``trial`` (which calls the student's code and raises on a problem) and judge it.

    Args:
        exercise: the exercise's name, shown in the message.
        trial: a function that raises :class:`NotAnswered`, ``NotImplementedError`` or
            :class:`Mismatch`, or returns normally when the answer is right.
        success: an optional sentence added to the pass message.

    Returns:
        The :class:`CheckResult`; :func:`report` prints it.
    """
    try:
        trial()
    except (NotAnswered, NotImplementedError):
        return CheckResult(
            exercise,
            Status.NOT_ANSWERED,
            f"⏳ {exercise}: not answered yet. Replace the placeholder "
            "(`raise NotImplementedError` or `None`) with your code and run the cell again.",
        )
    except Mismatch as exc:
        return CheckResult(exercise, Status.FAILED, f"❌ {exercise}: not yet. Hint: {exc}")
    except Exception as exc:  # noqa: BLE001 - any crash in student code becomes a hint
        return CheckResult(
            exercise,
            Status.FAILED,
            f"❌ {exercise}: your code raised {type(exc).__name__}: {exc}",
        )
    message = f"✅ {exercise}: passed." + (f" {success}" if success else "")
    return CheckResult(exercise, Status.PASSED, message)


def report(result: CheckResult) -> None:
    """Print the result's message for the student.

    ``check_*`` functions end with ``report(run_check(...))`` and return None, so a
    checker called on a cell's last line prints its verdict once and echoes nothing.
    """
    print(result.message)
