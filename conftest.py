"""Suite-wide hooks: parallel workers that do not fight, and per-notebook execution times.

At the repository root so that its hooks see the notebook items that nbval collects from
notebooks/ (a conftest.py inside tests/ only sees the tests there).

* Threads: every notebook kernel runs with ``OMP_NUM_THREADS=2`` (unless set), the count the
  checked outputs were made with.
* Workers (pytest-xdist; ``make test`` runs ``-n 2 --dist loadgroup``): the student-edition run
  of a notebook and every cell of it form one work unit, so they run on one worker, in that
  order: the student edition trains, and nbval (with ``COURSE_RUN_CACHE=1``) loads those runs
  (:mod:`course_lib.run_cache`). Units of notebooks are queued first, the unit tests fill in.
  Idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) and each worker's own tests take
  ``cores // workers`` threads, so two workers share two cores without spinning against each other.
* The unit tests never see ``COURSE_RUN_CACHE``: they train for real and write nothing to data/.
* Times: printed after the run and written to build/notebook_times.md.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
BUDGET_SECONDS = 90  # each notebook's budget on a 2-core CPU (reported, not enforced)
# The checked outputs were made with two torch threads (the 2-core CI machine). A CPU sum split over
# another number of threads rounds differently, and a trained model drifts from the stored numbers.
KERNEL_THREADS = 2
RUN_CACHE_ENV_VAR = "COURSE_RUN_CACHE"  # course_lib.run_cache.ENV_VAR (not imported here: torch would load before the threads are set)
STUDENT_EDITION_TESTS = "tests/test_student_edition.py"

_seconds: dict[str, float] = defaultdict(float)
_failed: set[str] = set()
_first_seen: dict[str, float] = {}
_last_seen: dict[str, float] = {}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", str(KERNEL_THREADS))  # every notebook kernel inherits it
    workers = getattr(config, "workerinput", {}).get("workercount")
    if workers:
        # Idle OpenMP threads sleep instead of spinning: with two processes on two cores a spinning
        # thread takes the core the other process needs (a 60-step SASRec run: 4 s alone, 27 s beside
        # another busy process). Inherited by the kernels, which keep KERNEL_THREADS threads, so
        # notebooks compute exactly what they compute alone; this worker's own tests take a share.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch

        torch.set_num_threads(max(1, _cores() // int(workers)))


def notebook_group(nodeid: str) -> str | None:
    """The notebook a test belongs to: a cell of it (nbval) or the run of its student edition."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return Path(path).stem
    if path == STUDENT_EDITION_TESTS and nodeid.endswith(".ipynb]"):
        return Path(nodeid.rsplit("[", 1)[1][: -len("]")]).stem
    return None


def pytest_collection_modifyitems(config, items):
    """With workers, the notebooks (the longest units) are queued first, the unit tests fill in after."""
    if config.getoption("dist", "no") == "loadgroup":
        items.sort(key=lambda item: notebook_group(item.nodeid) is None)  # stable: each group keeps its order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: one work unit per notebook (student edition, then every cell), one per other test.

    xdist's own loadgroup reads ``xdist_group`` marks by rewriting node ids, which pytest 9 no longer
    allows; the unit here is computed from the node id instead.
    """
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebookGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return notebook_group(nodeid) or nodeid

    return NotebookGroups(config, log)


@pytest.fixture(autouse=True)
def _unit_tests_train_for_real(request, monkeypatch):
    """Unit tests run without the run cache; the student-edition runs keep it (they fill it for nbval)."""
    if request.node.nodeid.split("::", 1)[0] != STUDENT_EDITION_TESTS:
        monkeypatch.delenv(RUN_CACHE_ENV_VAR, raising=False)


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
    if not _seconds or hasattr(terminalreporter.config, "workerinput"):  # the controller prints the table
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
