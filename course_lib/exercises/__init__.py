"""Exercise checkers, one file per notebook topic.

Each ``check_*`` function takes the student's answer (usually a function), prints a
pass, a hint, or "not answered yet", and returns None. It never raises, so an
unanswered exercise does not stop the notebook. The machinery is in ``core``.
"""

from .core import CheckResult, Mismatch, NotAnswered, Status, answered, call, expect, expect_close, number, report, run_check

__all__ = [
    "CheckResult",
    "Mismatch",
    "NotAnswered",
    "Status",
    "answered",
    "call",
    "expect",
    "expect_close",
    "number",
    "report",
    "run_check",
]
