"""The machinery behind every exercise checker.

A notebook cell holds the reference solution between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, then calls a checker, e.g. ``check_softmax(my_softmax)``.
The checker prints one line and never raises, so a notebook always runs on:

* passed          -> "✅ <exercise>: passed."
* wrong answer    -> "❌ <exercise>: not yet. Hint: ..."
* not answered    -> "⏳ <exercise>: not answered yet ..." (the stub still raises
  ``NotImplementedError`` or the answer is still ``None``)

Checkers call the student's function through :func:`call`: a function that returns ``None``
after doing work is told it forgot ``return``, and one that runs longer than
:data:`TIME_LIMIT_SECONDS` (an endless loop) gets a hint instead of hanging the notebook.
Numbers are read with :func:`number`: any real number (Python or NumPy, int or float).
A check never changes the notebook's random state (torch, NumPy, ``random``): checkers draw
from local ``torch.Generator`` objects, and whatever else is drawn during a check (a layer's
initial weights, the student's own draws) is put back afterwards.
"""

from __future__ import annotations

import contextlib
import enum
import numbers
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

TIME_LIMIT_SECONDS = 5.0
"""How long one call of a student's function may run inside a check (POSIX main thread only;
elsewhere there is no limit, see :func:`_time_limit`)."""


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


class TooSlow(Mismatch):
    """Raised inside a check when one call of the student's function exceeds the time limit."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TooSlow` in the main thread after ``seconds``; no limit where SIGALRM is missing.

    Jupyter runs cells in the kernel's main thread, where ``signal.setitimer`` works on Linux and
    macOS. Elsewhere (Windows, a worker thread) the call simply runs without a limit. On exit
    the alarm is cancelled and the previous SIGALRM handler and timer are put back.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise TooSlow(
            f"your function did not finish within {seconds:g} s — is there a loop that never ends "
            "(a `while` whose condition never becomes False)?"
        )

    previous = signal.signal(signal.SIGALRM, stop)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)  # a timer already running (e.g. pytest-timeout's)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)  # None: set outside Python
        if outer > 0:  # give the outer timer back what it had left
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))


def call(fn: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Call the student's ``fn`` with a time limit; a ``None`` result is a forgotten ``return``.

    The student edition's placeholder raises ``NotImplementedError``, which still means "not
    answered yet"; ``None`` coming back from code the student wrote does not.
    """
    answered(fn, "your function")  # a function still set to None is not answered yet
    with _time_limit(TIME_LIMIT_SECONDS):
        result = fn(*args, **kwargs)
    if result is None:
        name = getattr(fn, "__name__", "<lambda>")
        function = "your function" if name.startswith("<") else f"your function `{name}`"
        raise Mismatch(f"{function} returned None — did you forget `return`?")
    return result


def names_used(fn: Callable[..., object]) -> set[str]:
    """Every global or attribute name that ``fn``'s code (nested functions included) refers to.

    ``causal_mask(...)``, ``attention.causal_mask(...)`` and ``torch.softmax(...)`` all leave the
    called name here, so a checker can tell that an exercise's forbidden shortcut was used.
    Names from an enclosing function's scope count too; the function's own local variables do not.
    Objects without Python code (a ``functools.partial``, a built-in) give an empty set.
    """
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    found: set[str] = set()
    pending = [code] if code is not None else []
    while pending:
        current = pending.pop()
        found.update(current.co_names + current.co_freevars)  # globals and attributes; names from an enclosing scope
        pending.extend(const for const in current.co_consts if hasattr(const, "co_names"))
    return found


def forbid(fn: Callable[..., object], forbidden: Iterable[str], hint: str) -> None:
    """Raise :class:`Mismatch` if ``fn`` refers to any of the ``forbidden`` names; ``hint`` says why."""
    used = sorted(names_used(fn) & set(forbidden))
    if used:
        listed = ", ".join(f"`{name}`" for name in used)
        raise Mismatch(f"your function calls {listed}, which this exercise asks you to do without: {hint}")


def number(value: object, what: str) -> numbers.Real:
    """``value`` as a real number, or raise :class:`Mismatch` naming what was given.

    Python and NumPy ints and floats are numbers as they are; a one-element tensor or array is
    read with ``.item()``. ``True``/``False`` are not numbers here.
    """
    answered(value, what)
    if isinstance(value, torch.Tensor | np.ndarray) and np.prod(value.shape) == 1:
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise Mismatch(f"{what} should be a number, got {type(value).__name__}.")
    return value


def _printable(exc: BaseException) -> str:
    """``str(exc)``, or a note when the exception's own ``__str__`` fails."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a student's exception may break in any way
        return "(its message could not be printed)"


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Restore the torch (CPU), NumPy and ``random`` generators' states on exit."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


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
        with _random_state_kept():
            trial()
    except (NotAnswered, NotImplementedError):
        return CheckResult(
            exercise,
            Status.NOT_ANSWERED,
            f"⏳ {exercise}: not answered yet. Replace the placeholder "
            "(`raise NotImplementedError` or `None`) with your code and run the cell again.",
        )
    except Mismatch as exc:
        return CheckResult(exercise, Status.FAILED, f"❌ {exercise}: not yet. Hint: {_printable(exc)}")
    except Exception as exc:  # noqa: BLE001 - any crash in student code becomes a hint
        return CheckResult(
            exercise,
            Status.FAILED,
            f"❌ {exercise}: your code raised {type(exc).__name__}: {_printable(exc)}",
        )
    message = f"✅ {exercise}: passed." + (f" {success}" if success else "")
    return CheckResult(exercise, Status.PASSED, message)


def report(result: CheckResult) -> None:
    """Print the result's message for the student.

    ``check_*`` functions end with ``report(run_check(...))`` and return None, so a
    checker called on a cell's last line prints its verdict once and echoes nothing.
    """
    print(result.message)
