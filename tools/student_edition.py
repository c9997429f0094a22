"""Generate the student edition: every reference solution replaced by a placeholder.

    python tools/student_edition.py [--force] [SRC_DIR [OUT_DIR]]     (default: notebooks -> build/student)

The edition is built in a temporary folder and published by :mod:`output_folder`: it replaces
an earlier student edition only when nothing in it was changed. A student who worked in
``build/student/`` keeps every edit and every file: the build stops and says what it kept;
``--force`` (``make student FORCE=1``) rebuilds and renames each edited notebook to
``NN_name.mine-<date>-<time>.ipynb`` instead of replacing it. A folder the tool did not make
(``.``, ``notebooks``) is never written into.

For every ``notebooks/NN_*.ipynb`` (whatever exists), each block between a
``### BEGIN SOLUTION`` line and its ``### END SOLUTION`` line is replaced by

* inside a function: ``raise NotImplementedError("Exercise: write your code here")``
  under a ``# YOUR CODE HERE`` comment, at the block's indentation;
* outside a function (a block of ``name = value`` answers): ``name = None  # YOUR ANSWER HERE``
  for every name the block assigns.

The markers disappear, every output and execution count is removed, and the
``# NBVAL_CHECK_OUTPUT`` lines are dropped: the stored outputs they refer to are the
reference's ("passed"), so the student edition is checked by running it (no error, every
checker says "not answered yet"), not by comparing outputs. Other files next to the
notebooks are copied as they are. A malformed block (no END, nested BEGIN, an answer block
outside a function that assigns no name) stops the build with the notebook and cell named.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
import textwrap
from pathlib import Path

import nbformat
from output_folder import OutputFolderError, building, publish

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
STUB_COMMENT = "# YOUR CODE HERE"
STUB_RAISE = 'raise NotImplementedError("Exercise: write your code here")'
ANSWER_COMMENT = "# YOUR ANSWER HERE (replace None)"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"

class SolutionBlockError(ValueError):
    """A solution block the generator cannot turn into a stub (unbalanced or empty markers)."""


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _inside_function(lines: list[str], begin: int, indent: str) -> bool:
    """True when line ``begin`` (indented by ``indent``) lies in a ``def`` body.

    Walks back through the enclosing block headers (lines indented less than the current
    level) until a ``def`` (inside a function) or the top level (not inside one).
    """
    level = len(indent)
    for line in reversed(lines[:begin]):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        width = len(_indent(line))
        if width < level:
            if re.match(r"^\s*(async\s+def|def)\b", line):
                return True
            if re.match(r"^\s*class\b", line):
                return False
            level = width
            if level == 0:
                return False
    return False


def _assigned_names(block: str, where: str) -> list[str]:
    """Names bound at the top level of an answer block, in order of first assignment."""
    try:
        tree = ast.parse(textwrap.dedent(block))
    except SyntaxError as exc:
        raise SolutionBlockError(f"{where}: the solution block is not valid Python ({exc})") from exc
    names: list[str] = []

    def add(target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            if target.id not in names:
                names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                add(element)
        elif isinstance(target, ast.Starred):
            add(target.value)

    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                add(target)
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            add(statement.target)
    if not names:
        raise SolutionBlockError(
            f"{where}: a solution block outside a function must assign answers (`name = value`); "
            "this one assigns no name, so the student edition has no placeholder to give."
        )
    return names


def stub_source(source: str, where: str = "cell") -> tuple[str, int]:
    """Replace every solution block of one cell's source by its placeholder.

    Args:
        source: the code cell's source.
        where: a label for error messages (notebook and cell).

    Returns:
        ``(new_source, n_blocks)``: the source without solutions, and how many blocks were replaced.
    """
    lines = source.splitlines()
    out: list[str] = []
    blocks = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise SolutionBlockError(f"{where}, line {i + 1}: {END!r} without a {BEGIN!r} before it")
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        begin = i
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() in (BEGIN, END)), None)
        if end is None or lines[end].strip() != END:
            raise SolutionBlockError(f"{where}, line {begin + 1}: {BEGIN!r} needs a matching {END!r} (no nesting)")
        indent = _indent(line)
        body = "\n".join(lines[begin + 1 : end])
        if _inside_function(lines, begin, indent):
            out += [indent + STUB_COMMENT, indent + STUB_RAISE]
        else:
            out += [f"{indent}{name} = None  {ANSWER_COMMENT}" for name in _assigned_names(body, where)]
        blocks += 1
        i = end + 1
    return "\n".join(out), blocks


def _drop_check_mark(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() != CHECK_MARK]
    return "\n".join(lines).lstrip("\n")


def student_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> tuple[nbformat.NotebookNode, int]:
    """Return the student version of ``nb`` (a new object) and the number of exercise cells.

    Args:
        nb: a course notebook (nbformat v4).
        name: the notebook's name, for error messages.

    Returns:
        ``(student_nb, n_exercises)``; an exercise is a code cell holding at least one solution block.
    """
    nb = nbformat.from_dict(nb)  # a deep copy
    exercises = 0
    for index, cell in enumerate(nb.cells):
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in {"tags", "slideshow"}}
        if cell.cell_type != "code":
            continue
        source, blocks = stub_source(cell.source, where=f"{name}, cell {index}")
        exercises += blocks > 0
        cell.source = _drop_check_mark(source)
        cell.outputs = []
        cell.execution_count = None
    return nb, exercises


def build(src_dir: Path, out_dir: Path, *, force: bool = False) -> dict[str, int]:
    """Write the student edition of every ``NN_*.ipynb`` in ``src_dir`` into ``out_dir``.

    Returns ``{notebook file name: number of exercises}``.

    Raises:
        OutputFolderError: ``out_dir`` holds a student's work or is not a student-edition folder
            (see :mod:`output_folder`); nothing was written.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    notebooks = sorted(src_dir.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks named {NOTEBOOK_GLOB} in {src_dir}")
    if out_dir.resolve() == src_dir.resolve() or src_dir.resolve().is_relative_to(out_dir.resolve()):
        raise OutputFolderError(f"the student edition cannot be written into {out_dir}: it holds the course notebooks {src_dir}.")
    counts: dict[str, int] = {}
    with building(out_dir) as folder:
        for path in sorted(src_dir.iterdir()):
            if path in notebooks:
                nb, counts[path.name] = student_notebook(nbformat.read(path, as_version=4), path.name)
                nbformat.write(nb, folder / path.name)
            elif path.is_file() and not path.name.startswith(".") and path.suffix != ".ipynb":
                shutil.copy2(path, folder / path.name)
            elif path.is_dir() and not path.name.startswith((".", "__")):
                shutil.copytree(path, folder / path.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        for line in publish(folder, out_dir, tool="student edition", force=force):
            print(line)
    return counts


def main(argv: list[str]) -> int:
    force = "--force" in argv
    argv = [a for a in argv if a != "--force"]
    src = Path(argv[0]) if argv else Path("notebooks")
    out = Path(argv[1]) if len(argv) > 1 else Path("build/student")
    try:
        counts = build(src, out, force=force)
    except OutputFolderError as error:
        print(error, file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{name}: {n} exercise(s) stubbed")
    print(f"student edition: {len(counts)} notebooks, {sum(counts.values())} exercises -> {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
