"""reveal.js slides from the (executed) course notebooks, one deck per notebook.

    python tools/slides.py [--force] [--web-modules DIR] OUT_DIR EXECUTED_NOTEBOOK...

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

The decks work offline: reveal.js 5, MathJax 3, require.js and the widget renderer are copied
from ``build/web/node_modules`` (``make web``: npm ci from package-lock.json) into
``OUT_DIR/web/``, the deck template is ``tools/templates/course_reveal`` (nbconvert's reveal
template without its CDN links), and a deck that would still load anything from another site
stops the build (:func:`web_assets.check_offline`). The folder can be published as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import web_assets
from output_folder import OutputFolderError, building, publish

sys.path.insert(0, str(Path(__file__).resolve().parent))
from course_site import drop_check_marks, index_html, notebook_title, study_time  # noqa: E402

SLIDE = re.compile(r"^#{1,2}\s")  # "# Title", "## Section" -> new slide
SUBSLIDE = re.compile(r"^###\s")  # "### Part" -> sub-slide
# Long code lines wrap instead of running off the slide's right edge; headings keep their case
# (reveal.js's white theme, used because its font is local, would print them in capitals).
WRAP_CODE_CSS = (
    "<style>.reveal .jp-InputArea pre { white-space: pre-wrap; overflow-wrap: anywhere; }\n"
    ".reveal h1, .reveal h2, .reveal h3, .reveal h4 { text-transform: none; }</style>\n"
)


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


def build(executed: list[Path], out_dir: Path, *, modules: Path | None = None, force: bool = False) -> list[Path]:
    """Write ``out_dir/<notebook>.slides.html`` per notebook, ``out_dir/index.html``, the
    marked notebooks in ``out_dir/notebooks/`` and the web assets in ``out_dir/web/``.
    Returns the decks, index last.

    Built in a temporary folder and published by :func:`output_folder.publish`: an earlier deck
    folder is replaced only if nobody changed it (``force`` keeps changes under backup names).

    Args:
        modules: the node_modules folder to copy the web assets from (default: ``make web``'s).

    Raises:
        web_assets.WebAssetsError: the web assets are not installed (nothing is written).
        web_assets.OfflineError: a deck would load something from the network (nothing is written).
    """
    modules = web_assets.node_modules() if modules is None else modules
    with building(out_dir) as folder:
        written = _write_decks(executed, folder)
        web_assets.copy_assets(modules, folder)
        for line in publish(folder, out_dir, tool="slides", force=force):
            print(line)
    return [out_dir / path.relative_to(folder) for path in written]


def _write_decks(executed: list[Path], out_dir: Path) -> list[Path]:
    from nbconvert import SlidesExporter

    # A wider virtual page than nbconvert's default (960 x 700): code lines of ~100 characters fit.
    options = {"reveal_scroll": True, "reveal_number": "c/t", "reveal_width": "1280", "reveal_height": "800"}
    options |= web_assets.exporter_options()
    exporter = SlidesExporter(
        template_name="course_reveal", reveal_url_prefix=web_assets.REVEAL_PREFIX, reveal_theme=web_assets.REVEAL_THEME, **options
    )
    (out_dir / "notebooks").mkdir(exist_ok=True)
    decks, entries = [], []
    for path in sorted(executed, key=lambda p: p.name):
        nb = nbformat.read(path, as_version=4)
        title = notebook_title(nb, path.stem)
        marked = mark_slides(nb)
        nbformat.write(marked, out_dir / "notebooks" / path.name)  # for live presenting (RISE)
        body, _ = exporter.from_notebook_node(marked, resources={"metadata": {"name": title}})
        deck = out_dir / f"{path.stem}.slides.html"
        web_assets.check_offline(body, deck.name)
        deck.write_text(body.replace("</head>", WRAP_CODE_CSS + "</head>", 1), encoding="utf-8")
        decks.append(deck)
        entries.append((deck.name, title, study_time(nb)))
    note = "One reveal.js deck per notebook (arrow keys; Esc for the overview). Built by <code>make slides</code>."
    index = out_dir / "index.html"
    index.write_text(index_html(entries, "Attention for Recommendation: slides", note), encoding="utf-8")
    return decks + [index]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--web-modules", type=Path, default=None, help="node_modules to copy reveal.js and MathJax from (default: make web's)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild over changed decks, keeping the changes under backup names")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("notebooks", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        decks = build(args.notebooks, args.out_dir, modules=args.web_modules, force=args.force)
    except (OutputFolderError, web_assets.WebAssetsError, web_assets.OfflineError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"slides: {len(decks) - 1} decks + index -> {decks[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
