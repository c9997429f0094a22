"""Per-notebook execution times, printed after the run and written to build/notebook_times.md.

At the repository root so that its hooks see the notebook items that nbval collects from
notebooks/ (a conftest.py inside tests/ only sees the tests there).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUDGET_SECONDS = 90  # each notebook's budget on a 2-core CPU (reported, not enforced)

_seconds: dict[str, float] = defaultdict(float)
_failed: set[str] = set()
_first_seen: dict[str, float] = {}
_last_seen: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if not path.endswith(".ipynb"):
        return
    now = time.perf_counter()
    _first_seen.setdefault(path, now - report.duration)
    _last_seen[path] = now
    _seconds[path] += report.duration
    if report.failed:
        _failed.add(path)


def _device_name() -> str:
    import torch

    from course_lib import get_device

    try:
        device = get_device()
    except (RuntimeError, ValueError) as exc:
        return f"unknown ({exc})"
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    lines = [
        f"Notebook execution times (device: {_device_name()}; budget {BUDGET_SECONDS} s each)",
        "",
        "| notebook | seconds | status |",
        "|---|---:|---|",
    ]
    for path in sorted(_seconds):
        wall = _last_seen[path] - _first_seen[path]
        status = "failed" if path in _failed else ("over budget" if wall > BUDGET_SECONDS else "ok")
        lines.append(f"| {Path(path).name} | {wall:.1f} | {status} |")
    lines.append(f"| total | {sum(_last_seen[p] - _first_seen[p] for p in _seconds):.1f} | |")
    terminalreporter.write_sep("=", "notebook times")
    for line in lines:
        terminalreporter.write_line(line)
    out = ROOT / "build" / "notebook_times.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
