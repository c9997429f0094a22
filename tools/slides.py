"""reveal.js slides from the (executed) course notebooks, one deck per notebook.

    python tools/slides.py [--reveal-prefix URL] OUT_DIR EXECUTED_NOTEBOOK...

Slide boundaries come from the headings, set on a copy (the notebooks are never edited):
a Markdown cell starting with ``#`` or ``##`` opens a new slide (left/right arrows go from
section to section). Inside a section, a ``###`` heading, or a Markdown cell that follows a
code cell, opens a sub-slide (reveal.js's vertical direction: down arrow), so each step
"prose, code, output" gets a slide of its own; every other cell continues the current one.
Slides taller than the screen scroll. ``# NBVAL_CHECK_OUTPUT`` lines (test markers) are
dropped from the copy; solutions are shown (this is the instructor's edition). Then
``jupyter nbconvert --to slides`` does the rest (here through its Python API,
``SlidesExporter``), and an ``index.html`` links the decks in order.

The marked copies are also written to ``OUT_DIR/notebooks/``: they carry the slide metadata, so
an instructor who installs the optional JupyterLab 4 extension ``jupyterlab-rise`` (not part of
the course's environment) can present them live from JupyterLab.

reveal.js itself is loaded from a CDN (nbconvert's default, unpkg.com/reveal.js@4.0.2), so
viewing needs a network. ``--reveal-prefix`` points the decks at another copy of reveal.js 4
(``make slides REVEAL_PREFIX=reveal.js`` with that folder next to the decks, e.g. unpacked
from ``npm pack reveal.js@4.0.2``); note that nbconvert's template also takes require.js,
jQuery and MathJax from cdnjs.cloudflare.com, so fully offline viewing needs those too.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
from output_folder import OutputFolderError, building, publish

sys.path.insert(0, str(Path(__file__).resolve().parent))
from course_site import drop_check_marks, index_html, notebook_title, study_time  # noqa: E402

SLIDE = re.compile(r"^#{1,2}\s")  # "# Title", "## Section" -> new slide
SUBSLIDE = re.compile(r"^###\s")  # "### Part" -> sub-slide
# Long code lines wrap instead of running off the slide's right edge.
WRAP_CODE_CSS = "<style>.reveal .jp-InputArea pre { white-space: pre-wrap; overflow-wrap: anywhere; }</style>\n"


def slide_type(cell: nbformat.NotebookNode, previous: nbformat.NotebookNode | None) -> str:
    """``"slide"``, ``"subslide"`` or ``"-"`` (continue) for one cell.

    Args:
        cell: the cell.
        previous: the cell before it (None for the first cell, which always opens a slide).
    """
    if previous is None:
        return "slide"
    if cell.cell_type != "markdown":
        return "-"
    first = cell.source.lstrip("\n").split("\n", 1)[0]
    if SLIDE.match(first):
        return "slide"
    if SUBSLIDE.match(first) or previous.cell_type == "code":
        return "subslide"
    return "-"


def mark_slides(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with ``metadata.slideshow.slide_type`` set on every cell (see the module doc)."""
    nb = nbformat.from_dict(nb)  # a deep copy
    previous = None
    for cell in nb.cells:
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell, previous)}
        if cell.cell_type == "code":
            cell.source = drop_check_marks(cell.source)
        previous = cell
    return nb


def build(executed: list[Path], out_dir: Path, reveal_prefix: str | None = None, *, force: bool = False) -> list[Path]:
    """Write ``out_dir/<notebook>.slides.html`` per notebook, ``out_dir/index.html``, and the
    marked notebooks in ``out_dir/notebooks/``. Returns the decks, index last.

    Built in a temporary folder and published by :func:`output_folder.publish`: an earlier deck
    folder is replaced only if nobody changed it (``force`` keeps changes under backup names).
    """
    with building(out_dir) as folder:
        written = _write_decks(executed, folder, reveal_prefix)
        for line in publish(folder, out_dir, tool="slides", force=force):
            print(line)
    return [out_dir / path.relative_to(folder) for path in written]


def _write_decks(executed: list[Path], out_dir: Path, reveal_prefix: str | None) -> list[Path]:
    from nbconvert import SlidesExporter

    # A wider virtual page than nbconvert's default (960 x 700): code lines of ~100 characters fit.
    options = {"reveal_scroll": True, "reveal_number": "c/t", "reveal_width": "1280", "reveal_height": "800"}
    if reveal_prefix:
        options["reveal_url_prefix"] = reveal_prefix
    exporter = SlidesExporter(**options)
    (out_dir / "notebooks").mkdir(exist_ok=True)
    decks, entries = [], []
    for path in sorted(executed, key=lambda p: p.name):
        nb = nbformat.read(path, as_version=4)
        title = notebook_title(nb, path.stem)
        marked = mark_slides(nb)
        nbformat.write(marked, out_dir / "notebooks" / path.name)  # for live presenting (RISE)
        body, _ = exporter.from_notebook_node(marked, resources={"metadata": {"name": title}})
        deck = out_dir / f"{path.stem}.slides.html"
        deck.write_text(body.replace("</head>", WRAP_CODE_CSS + "</head>", 1), encoding="utf-8")
        decks.append(deck)
        entries.append((deck.name, title, study_time(nb)))
    note = "One reveal.js deck per notebook (arrow keys; Esc for the overview). Built by <code>make slides</code>."
    index = out_dir / "index.html"
    index.write_text(index_html(entries, "Attention for Recommendation: slides", note), encoding="utf-8")
    return decks + [index]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reveal-prefix", default=None, help="where reveal.js is loaded from (default: nbconvert's CDN)")
    parser.add_argument("--force", action="store_true", help="rebuild over changed decks, keeping the changes under backup names")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("notebooks", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        decks = build(args.notebooks, args.out_dir, args.reveal_prefix, force=args.force)
    except OutputFolderError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"slides: {len(decks) - 1} decks + index -> {decks[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
