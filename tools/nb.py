"""Maintainer tool for the course notebooks.

    python tools/nb.py strip NOTEBOOK...     outputs stripped except `# NBVAL_CHECK_OUTPUT` cells
    python tools/nb.py refresh NOTEBOOK...   execute, then strip (refreshes the checked outputs)
    python tools/nb.py to-py NOTEBOOK OUT.py     write a percent-format script for editing
    python tools/nb.py from-py SCRIPT.py OUT.ipynb   build a notebook from such a script

Percent format: a line ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell
whose lines are each prefixed with ``# `` (or are a bare ``#``).

Stored notebooks keep outputs only in cells marked ``# NBVAL_CHECK_OUTPUT``: nbval
compares those against a fresh run, so the numbers quoted in the prose stay true.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
KERNEL = {"name": "attention-course", "display_name": "Python (attention-course)", "language": "python"}


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove outputs, execution counts and volatile metadata, except in checked cells."""
    nb.metadata = {
        "kernelspec": KERNEL,
        "language_info": {"name": "python"},
    }
    checked = 0
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in {"tags", "slideshow"}}
        if cell.cell_type != "code":
            continue
        if CHECK_MARK in cell.source:
            # nbval skips a cell with outputs but no execution count ("unrun reference cell"),
            # so checked cells are numbered 1, 2, ... in order: stable across refreshes.
            checked += 1
            cell.execution_count = checked
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = checked
        else:
            cell.execution_count = None
            cell.outputs = []
    return nb


def refresh(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name=KERNEL["name"], resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(strip(nb), path)


def to_py(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            body = "\n".join(("# " + line) if line else "#" for line in cell.source.splitlines())
            parts.append("# %% [markdown]\n" + body)
        else:
            parts.append("# %%\n" + cell.source)
    return "\n\n".join(parts) + "\n"


def from_py(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %% [markdown]"):
            blocks.append(("markdown", []))
        elif line.startswith("# %%"):
            blocks.append(("code", []))
        elif blocks:
            blocks[-1][1].append(line)
    for kind, lines in blocks:
        while lines and not lines[-1].strip():
            lines.pop()
        if kind == "markdown":
            source = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines)
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            nb.cells.append(nbformat.v4.new_code_cell("\n".join(lines)))
    for cell in nb.cells:
        cell.pop("id", None)
    nb.nbformat_minor = 4  # no cell ids: keeps diffs small
    return strip(nb)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in {"strip", "refresh", "to-py", "from-py"}:
        print(__doc__)
        return 2
    command, args = argv[0], argv[1:]
    if command == "strip":
        for name in args:
            path = Path(name)
            nbformat.write(strip(nbformat.read(path, as_version=4)), path)
    elif command == "refresh":
        for name in args:
            refresh(Path(name))
            print(f"refreshed {name}")
    elif command == "to-py":
        Path(args[1]).write_text(to_py(nbformat.read(args[0], as_version=4)), encoding="utf-8")
    else:
        nbformat.write(from_py(Path(args[0]).read_text(encoding="utf-8")), args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
