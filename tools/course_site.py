"""The rendered course: one HTML page per executed notebook, plus an index linking them in order.

    python tools/course_site.py [--force] OUT_DIR EXECUTED_NOTEBOOK...   (``make site`` runs it on build/executed/)

Pages keep every output (pictures, tables, printed checks) and the reference solutions (this
is the instructor's edition; ``# NBVAL_CHECK_OUTPUT`` test-marker lines are left out). Widgets
are shown in the state they had when the notebook was executed (moving a slider needs a running
kernel, i.e. JupyterLab). Each page gets a small bar linking the index and the previous and
next notebooks; the index lists the notebooks with the title of each one's
first heading and its estimated study time.

The site works offline: MathJax 3, require.js and the widget renderer are copied from
``build/web/node_modules`` (``make web``) into ``OUT_DIR/web/``, pages use the template
``tools/templates/course_lab`` (nbconvert's lab template without its CDN links), and a page that
would still load anything from another site stops the build (see tools/web_assets.py).
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import nbformat
import web_assets
from output_folder import OutputFolderError, building, publish

INDEX_TITLE = "Attention for Recommendation"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
NAV_STYLE = (
    "position:sticky;top:0;z-index:100;background:#f5f5f5;border-bottom:1px solid #ddd;"
    "padding:6px 16px;font:14px sans-serif"
)


def notebook_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The text of the notebook's first Markdown heading (e.g. ``01 · Dot products``), else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", cell.source, flags=re.MULTILINE)
            if match:
                return match.group(1)
    return fallback


def study_time(nb: nbformat.NotebookNode) -> str:
    """The header cell's "Estimated time" text (e.g. ``45 minutes``), or an empty string."""
    header = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    match = re.search(r"Estimated time:?\**:?\s*([^\n]+)", header)
    return match.group(1).strip().rstrip(".") if match else ""


def drop_check_marks(source: str) -> str:
    """A code cell's source without its ``# NBVAL_CHECK_OUTPUT`` lines (test markers, noise to a reader)."""
    return "\n".join(line for line in source.splitlines() if line.strip() != CHECK_MARK).lstrip("\n")


def page_name(path: Path, suffix: str = ".html") -> str:
    return path.stem + suffix


def index_html(entries: list[tuple[str, str, str]], heading: str, note: str) -> str:
    """An index page. ``entries``: ``(href, title, study time)`` in reading order."""
    items = "\n".join(
        f'<li><a href="{html.escape(href)}">{html.escape(title)}</a>'
        + (f' <span class="time">({html.escape(time)})</span>' if time else "")
        + "</li>"
        for href, title, time in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<style>
body {{ font: 17px/1.5 sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #222; }}
li {{ margin: .4em 0; }} .time {{ color: #777; }} .note {{ color: #555; font-size: 15px; }}
</style></head>
<body>
<h1>{html.escape(heading)}</h1>
<p class="note">{note}</p>
<ol>
{items}
</ol>
</body></html>
"""


def _with_nav(page: str, links: list[tuple[str, str]]) -> str:
    bar = " · ".join(f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for href, label in links)
    body = re.search(r"<body[^>]*>", page)
    if body is None:
        return page
    return page[: body.end()] + f'\n<nav style="{NAV_STYLE}">{bar}</nav>\n' + page[body.end() :]


def build(executed: list[Path], out_dir: Path, *, modules: Path | None = None, force: bool = False) -> list[Path]:
    """Write ``out_dir/<notebook>.html`` for each executed notebook, ``out_dir/index.html`` and
    the web assets in ``out_dir/web/``.

    Built in a temporary folder and published by :func:`output_folder.publish`: an earlier site is
    replaced only if nobody changed it (``force`` keeps changes under backup names).

    Args:
        modules: the node_modules folder to copy the web assets from (default: ``make web``'s).

    Returns the pages written, index last.

    Raises:
        web_assets.WebAssetsError: the web assets are not installed (nothing is written).
        web_assets.OfflineError: a page would load something from the network (nothing is written).
    """
    modules = web_assets.node_modules() if modules is None else modules
    with building(out_dir) as folder:
        written = _write_pages(executed, folder)
        web_assets.copy_assets(modules, folder)
        for line in publish(folder, out_dir, tool="course site", force=force):
            print(line)
    return [out_dir / path.relative_to(folder) for path in written]


def _write_pages(executed: list[Path], out_dir: Path) -> list[Path]:
    from nbconvert import HTMLExporter

    executed = sorted(executed, key=lambda p: p.name)
    notebooks = [nbformat.read(path, as_version=4) for path in executed]
    titles = [notebook_title(nb, path.stem) for nb, path in zip(notebooks, executed)]
    exporter = HTMLExporter(template_name="course_lab", **web_assets.exporter_options())
    pages = []
    for i, (nb, path) in enumerate(zip(notebooks, executed)):
        nb = nbformat.from_dict(nb)  # a copy, without the test markers
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = drop_check_marks(cell.source)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": titles[i]}})
        links = [("index.html", "↑ course index")]
        if i > 0:
            links.append((page_name(executed[i - 1]), f"← {titles[i - 1]}"))
        if i + 1 < len(executed):
            links.append((page_name(executed[i + 1]), f"{titles[i + 1]} →"))
        page = out_dir / page_name(path)
        web_assets.check_offline(body, page.name)
        page.write_text(_with_nav(body, links), encoding="utf-8")
        pages.append(page)
    note = (
        "Every notebook of the course, executed, with its outputs. Widgets show the state they had "
        "when the page was built; to move a slider, open the notebook in JupyterLab (<code>make lab</code>)."
    )
    entries = [(page_name(p), t, study_time(nb)) for p, t, nb in zip(executed, titles, notebooks)]
    index = out_dir / "index.html"
    index.write_text(index_html(entries, INDEX_TITLE, note), encoding="utf-8")
    return pages + [index]


def main(argv: list[str]) -> int:
    force = "--force" in argv
    argv = [a for a in argv if a != "--force"]
    if len(argv) < 2:
        print(__doc__)
        return 2
    try:
        pages = build([Path(a) for a in argv[1:]], Path(argv[0]), force=force)
    except (OutputFolderError, web_assets.WebAssetsError, web_assets.OfflineError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"rendered course: {len(pages) - 1} pages + index -> {pages[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
