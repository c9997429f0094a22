"""Slides (tools/slides.py) and the rendered course (tools/course_site.py), on the fixture notebook.

`make slides` and `make site` run these on the executed course; here they run on a small
fixture, without executing anything, to check slide boundaries, titles, links and markers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import course_site  # noqa: E402
import slides  # noqa: E402
from web_support import stand_in_modules  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "exercises_fixture.nb.json"


@pytest.fixture
def fixture_nb():
    return nbformat.read(FIXTURE, as_version=4)


def test_slide_boundaries_follow_headings_and_steps(fixture_nb):
    marked = slides.mark_slides(fixture_nb)
    kinds = [c.metadata["slideshow"]["slide_type"] for c in marked.cells]
    # title | setup code | "## Exercise 1" | code | "## Exercise 2" | code | "## Exercise 3" | code | code | "## Summary"
    assert kinds == ["slide", "-", "slide", "-", "slide", "-", "slide", "-", "-", "slide"]
    assert all("slideshow" not in c.metadata for c in fixture_nb.cells), "the original notebook is not changed"


@pytest.mark.parametrize(
    "source, previous, expected",
    [
        ("### A part\ntext", "markdown", "subslide"),
        ("Prose after a code cell.", "code", "subslide"),
        ("Prose after prose.", "markdown", "-"),
        ("## Section\n", "code", "slide"),
        ("#Not a heading (no space)", "markdown", "-"),
    ],
)
def test_slide_type(source, previous, expected):
    cell = nbformat.v4.new_markdown_cell(source)
    before = nbformat.v4.new_code_cell("x = 1") if previous == "code" else nbformat.v4.new_markdown_cell("text")
    assert slides.slide_type(cell, before) == expected


def test_title_and_study_time(fixture_nb):
    assert course_site.notebook_title(fixture_nb, "fallback") == "99 · Fixture"
    assert course_site.study_time(fixture_nb) == "5 minutes"
    assert course_site.notebook_title(nbformat.v4.new_notebook(), "fallback") == "fallback"


def _two_notebooks(tmp_path, fixture_nb) -> list[Path]:
    paths = []
    for number in ("02", "01"):  # given out of order: the index must put them in order
        nb = nbformat.from_dict(fixture_nb)
        nb.cells[0].source = nb.cells[0].source.replace("# 99 · Fixture", f"# {number} · Fixture {number}")
        path = tmp_path / f"{number}_fixture.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def test_site_pages_index_and_navigation(tmp_path, fixture_nb):
    modules = stand_in_modules(tmp_path / "node_modules")
    pages = course_site.build(_two_notebooks(tmp_path, fixture_nb), tmp_path / "site", modules=modules)
    assert [p.name for p in pages] == ["01_fixture.html", "02_fixture.html", "index.html"]
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'href="([^"]+)"', index) == ["01_fixture.html", "02_fixture.html"]
    assert "01 · Fixture 01" in index and "(5 minutes)" in index
    first = pages[0].read_text(encoding="utf-8")
    assert 'href="index.html"' in first and 'href="02_fixture.html"' in first
    assert "NBVAL_CHECK_OUTPUT" not in first, "test markers are left out of the pages"
    assert "passed." in first, "stored outputs are kept"
    assert 'src="web/mathjax/es5/tex-chtml-full.js"' in first, "MathJax from the site's own folder"
    assert (tmp_path / "site" / "web" / "mathjax" / "es5" / "tex-chtml-full.js").is_file(), "the assets are copied"


def test_slides_decks_and_index(tmp_path, fixture_nb):
    modules = stand_in_modules(tmp_path / "node_modules")
    decks = slides.build(_two_notebooks(tmp_path, fixture_nb), tmp_path / "slides", modules=modules)
    assert [p.name for p in decks] == ["01_fixture.slides.html", "02_fixture.slides.html", "index.html"]
    deck = decks[0].read_text(encoding="utf-8")
    assert '"web/reveal.js/dist/reveal.js"' in deck, "reveal.js from the deck's own folder"
    assert (tmp_path / "slides" / "web" / "reveal.js" / "dist" / "reveal.js").is_file(), "the assets are copied"
    assert deck.count("<section") >= 5, "one section per slide"
    assert slides.WRAP_CODE_CSS in deck
    assert "NBVAL_CHECK_OUTPUT" not in deck
    marked = nbformat.read(tmp_path / "slides" / "notebooks" / "01_fixture.ipynb", as_version=4)
    assert marked.cells[0].metadata["slideshow"] == {"slide_type": "slide"}, "marked copy for RISE"
