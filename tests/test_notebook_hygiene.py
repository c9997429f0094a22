"""Stored notebooks are clean: outputs only where nbval checks them, no errors, the course's structure."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1)), f"notebooks must be numbered 01, 02, ... without gaps: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_only_in_checked_cells_and_no_errors(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        checked = _source(cell).lstrip().startswith(CHECK_MARK)
        assert not any(o.get("output_type") == "error" for o in outputs), f"{path.name} cell {i}: stored error"
        if checked:
            assert outputs, f"{path.name} cell {i}: marked {CHECK_MARK} but has no stored output to check"
        else:
            assert not outputs, f"{path.name} cell {i}: stored output in a cell nbval does not check (run tools/nb.py strip)"
            assert cell.get("execution_count") is None, f"{path.name} cell {i}: stale execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_course_structure(path):
    cells = _cells(path)
    header = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and header.startswith(f"# {path.name[:2]}"), f"{path.name}: header cell"
    for part in ("What you will learn", "Prerequisites", "Estimated time"):
        assert part in header, f"{path.name}: the header cell must say '{part}'"
    first_code = next(_source(c) for c in cells if c["cell_type"] == "code")
    assert "set_seed(" in first_code and "get_device()" in first_code, f"{path.name}: first code cell sets the seed and device"
    assert any(c["cell_type"] == "markdown" and _source(c).startswith("## Summary") for c in cells), f"{path.name}: summary"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_have_solution_markers_and_a_checked_checker(path):
    exercises = [c for c in _cells(path) if "### BEGIN SOLUTION" in _source(c)]
    assert 1 <= len(exercises) <= 3 or path.name.startswith(("14", "15")), f"{path.name}: 1-3 exercises expected"
    for cell in exercises:
        src = _source(cell)
        assert src.count("### BEGIN SOLUTION") == src.count("### END SOLUTION"), f"{path.name}: unbalanced markers"
        assert src.lstrip().startswith(CHECK_MARK), f"{path.name}: exercise cells are checked by nbval"
        after = src.rsplit("### END SOLUTION", 1)[1]
        assert re.search(r"\bcheck_\w+\(", after), f"{path.name}: a checker call must follow the solution"
        text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
        assert "passed" in text and "not yet" not in text, f"{path.name}: the stored solution must pass its check"


HEADING_COMMENT = re.compile(r"^\s*#\s*#{1,6}\s+\S")  # "# ## Title": a markdown heading hidden in a comment
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_section_heading_hides_in_a_code_cell(path):
    """Headings are markdown cells (STYLE.md rule 17): a `# ## ...` comment is no heading and no slide."""
    hidden = [f"cell {i}: {line.strip()!r}" for i, cell in enumerate(_cells(path)) if cell["cell_type"] == "code"
              for line in _source(cell).splitlines()
              if HEADING_COMMENT.match(line) and line.strip() not in SOLUTION_MARKERS]
    assert not hidden, f"{path.name}: move these headings into markdown cells: {hidden}"


def test_the_heading_rule_catches_a_hidden_heading_and_spares_the_solution_markers():
    assert HEADING_COMMENT.match("# ## 3. Training") and HEADING_COMMENT.match("## Results")
    assert not HEADING_COMMENT.match("# a comment") and not HEADING_COMMENT.match("x = 1  # ## not at the start")
    assert all(HEADING_COMMENT.match(marker) for marker in SOLUTION_MARKERS), "the markers need the exemption"
