"""The student edition (tools/student_edition.py): solutions replaced by placeholders, and it runs.

The generator is checked on a small fixture notebook (tests/fixtures/exercises_fixture.nb.json:
stored as ``.nb.json`` so that nbval does not collect it as a course notebook), then the whole
student edition of notebooks/ is generated into a temporary folder and every notebook is
executed: no cell may fail, and every exercise checker must say "not answered yet".
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import execute as execute_module  # noqa: E402
import student_edition  # noqa: E402
from execute import execute  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "exercises_fixture.nb.json"
NOTEBOOKS = sorted((ROOT / "notebooks").glob(student_edition.NOTEBOOK_GLOB))
NOT_ANSWERED = "not answered yet"


def _text(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", []))


@pytest.fixture(scope="module")
def fixture_student():
    nb, n_exercises = student_edition.student_notebook(nbformat.read(FIXTURE, as_version=4), FIXTURE.name)
    return nb, n_exercises


def test_fixture_solutions_and_markers_are_gone(fixture_student):
    nb, n_exercises = fixture_student
    assert n_exercises == 3
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    gone_lines = ("### BEGIN SOLUTION", "### END SOLUTION", "# NBVAL_CHECK_OUTPUT", "y = x + x", "x * factor", "rate = 1 / 2",
                  "pair: tuple = (1, 2)")
    for gone in gone_lines:
        assert gone not in code, f"{gone!r} is still in the student edition"
    assert code.count(student_edition.STUB_RAISE) == 2
    assert "rate = None" in code and "pair = None" in code and code.count("rate = None") == 1


def test_fixture_outputs_stripped_and_prose_kept(fixture_student):
    nb, _ = fixture_student
    original = nbformat.read(FIXTURE, as_version=4)
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert [c.source for c in nb.cells if c.cell_type == "markdown"] == [
        c.source for c in original.cells if c.cell_type == "markdown"
    ]
    assert nb.cells[-2].source == original.cells[-2].source, "cells without solutions stay as they are"


def test_fixture_stubs_keep_indentation_and_run(fixture_student):
    """Run the stubbed cells in-process: functions raise NotImplementedError, checkers say not answered."""
    nb, _ = fixture_student
    scaled_cell = next(c.source for c in nb.cells if "def scaled" in c.source)
    assert "\n        " + student_edition.STUB_RAISE in scaled_cell, "the stub keeps the block's indentation"
    namespace: dict = {}
    printed = io.StringIO()
    with redirect_stdout(printed):
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, "<student cell>", "exec"), namespace)  # noqa: S102 - our own fixture
    with pytest.raises(NotImplementedError):
        namespace["double"](1)
    assert namespace["rate"] is None and namespace["pair"] is None
    assert printed.getvalue().count(NOT_ANSWERED) == 3, printed.getvalue()
    assert "passed" not in printed.getvalue()


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "matching"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "no nesting"),
        ("### BEGIN SOLUTION\nprint('no answer')\n### END SOLUTION\n", "assigns no name"),
    ],
)
def test_malformed_blocks_are_refused_with_a_clear_message(source, message):
    with pytest.raises(student_edition.SolutionBlockError, match=message):
        student_edition.stub_source(source, where="fixture cell")


def test_build_writes_every_notebook(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    nb = nbformat.read(FIXTURE, as_version=4)
    nbformat.write(nb, src / "01_first.ipynb")
    nbformat.write(nb, src / "02_second.ipynb")
    (src / "picture.png").write_bytes(b"png")
    out = tmp_path / "student"
    counts = student_edition.build(src, out)
    assert counts == {"01_first.ipynb": 3, "02_second.ipynb": 3}
    assert sorted(p.name for p in out.iterdir()) == [".course-edition.json", "01_first.ipynb", "02_second.ipynb", "picture.png"]
    foreign = tmp_path / "somebody_elses"
    (foreign / "stale").mkdir(parents=True)
    with pytest.raises(student_edition.OutputFolderError, match="not written by this tool"):
        student_edition.build(src, foreign)
    assert [p.name for p in foreign.iterdir()] == ["stale"], "a folder the tool did not make is never written into"
    with pytest.raises(student_edition.OutputFolderError, match="holds the course notebooks"):
        student_edition.build(src, tmp_path)  # the folder that holds the notebooks themselves


@pytest.mark.parametrize("source", ["print(1 + 1)", "raise ValueError('a student error')"])
def test_execute_stops_the_kernel_it_started(source, tmp_path, monkeypatch):
    """Every executed notebook used to leave its kernel running (17 idle kernels per suite run)."""
    started = []

    class Recorded(execute_module.KernelManager):
        def start_kernel(self, **kwargs):
            started.append(self)
            return super().start_kernel(**kwargs)

    monkeypatch.setattr(execute_module, "KernelManager", Recorded)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    if source.startswith("raise"):
        with pytest.raises(Exception, match="a student error"):
            execute(nb, tmp_path)
    else:
        assert _text(execute(nb, tmp_path).cells[0]) == "2\n"
    assert len(started) == 1 and not started[0].is_alive(), "the kernel is stopped, also after a failing cell"


@pytest.fixture(scope="session")  # session: with workers, the module's tests interleave with the notebooks' cells
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    student_edition.build(ROOT / "notebooks", out)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_edition_runs_and_every_exercise_is_not_answered(path, student_dir, capsys):
    """Execute the student edition of one notebook top to bottom (outputs are not compared)."""
    original = nbformat.read(path, as_version=4)
    exercise_cells = [i for i, c in enumerate(original.cells) if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    nb = execute(nbformat.read(student_dir / path.name, as_version=4), student_dir)  # raises on any failing cell
    for i in exercise_cells:
        text = _text(nb.cells[i])
        assert text.count(NOT_ANSWERED) == 1, f"{path.name} cell {i}: expected one '{NOT_ANSWERED}' line, got:\n{text}"
        assert "passed" not in text and "Hint:" not in text, f"{path.name} cell {i}: {text}"
    total = sum(_text(c).count(NOT_ANSWERED) for c in nb.cells if c.cell_type == "code")
    assert total == len(exercise_cells), f"{path.name}: {total} '{NOT_ANSWERED}' lines for {len(exercise_cells)} exercises"
    with capsys.disabled():
        print(f"\n  student edition {path.name}: {total}/{len(exercise_cells)} exercises say '{NOT_ANSWERED}'", end="")
