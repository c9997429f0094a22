"""The slides and the site work with the network off: a deck and a page built from a small
fixture (slide headings, formulas, a stored slider) are opened from disk in headless Chromium
with every request that is not a local file blocked and recorded.

Checked: nothing was requested from the network and no local file was missing; the deck is a
reveal.js deck (``Reveal.isReady()``, one slide per ``#``/``##`` heading); MathJax typeset every
formula (``mjx-container`` elements, no ``$`` left in the text); the page's slider is drawn by
the local widget renderer. Screenshots of a formula slide and of the page are saved in the
test's temporary folder (CI keeps them as an artifact).

Uses the web assets of ``make web`` (installs them with npm if needed) and Debian's chromium;
skipped, saying why, when Chromium, Playwright, or both npm and the installed assets are absent.
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
from web_support import chromium, installed_modules, needs_chromium  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "offline_fixture.nb.json"
CHROMIUM = chromium()
pytestmark = [
    needs_chromium(),
    pytest.mark.timeout(180),
]


def _fixture() -> nbformat.NotebookNode:
    return nbformat.read(FIXTURE, as_version=4)


def _slide_headings(nb: nbformat.NotebookNode) -> int:
    """Markdown cells opening with a ``#`` or ``##`` heading (counted here, not by tools/slides.py)."""
    return sum(1 for c in nb.cells if c.cell_type == "markdown" and re.match(r"#{1,2} ", c.source.lstrip("\n")))


def _formulas(nb: nbformat.NotebookNode) -> int:
    """``$...$`` and ``$$...$$`` spans in the Markdown cells."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return len(re.findall(r"\$\$.+?\$\$|\$[^$]+\$", text, flags=re.DOTALL))


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """(deck, page, screenshot folder): the fixture built into a deck and a site page."""
    modules = installed_modules()
    folder = tmp_path_factory.mktemp("offline")
    notebook = folder / "98_offline.ipynb"
    nbformat.write(_fixture(), notebook)
    decks = slides.build([notebook], folder / "slides", modules=modules)
    pages = course_site.build([notebook], folder / "site", modules=modules)
    return decks[0], pages[0], folder


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--disable-dev-shm-usage"])
        try:
            yield chrome
        finally:
            chrome.close()


class _Offline:
    """A page whose every non-file request is blocked and recorded, with failed files and script errors."""

    def __init__(self, browser, viewport):
        self.context = browser.new_context(viewport=viewport)
        self.blocked, self.failed, self.errors = [], [], []
        self.context.route(re.compile(r"^(?!file:)"), self._block)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("requestfailed", lambda request: self.failed.append(f"{request.url} ({request.failure})"))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _block(self, route):
        self.blocked.append(route.request.url)
        route.abort("internetdisconnected")

    def check_nothing_left_the_machine(self):
        assert self.blocked == [], f"requests to the network: {self.blocked}"
        local_failures = [f for f in self.failed if f.startswith("file:")]
        assert local_failures == [], f"local files that failed to load: {local_failures}"
        assert self.errors == [], f"script errors: {self.errors}"

    def wait_for_mathjax(self) -> None:
        self.page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        self.page.evaluate("() => MathJax.startup.promise")


def test_deck_is_a_reveal_deck_with_typeset_formulas(editions, browser):
    deck, _, folder = editions
    nb = _fixture()
    offline = _Offline(browser, {"width": 1280, "height": 800})
    try:
        page = offline.page
        page.goto(deck.as_uri())
        page.wait_for_function("() => window.Reveal && Reveal.isReady()")
        assert page.evaluate("() => Reveal.getTotalSlides()") == _slide_headings(nb) == 4
        offline.wait_for_mathjax()
        typeset = page.locator(".reveal .slides mjx-container").count()
        assert typeset == _formulas(nb) == 6, f"{typeset} formulas typeset"
        text = page.evaluate("() => document.querySelector('.reveal .slides').textContent")
        assert "$" not in text, "raw $...$ left in the slides"
        page.evaluate("() => Reveal.slide(1)")  # the slide with the formulas
        page.wait_for_function("() => Reveal.getIndices().h === 1")
        page.wait_for_timeout(900)  # the slide transition's animation
        page.screenshot(path=str(folder / "offline_slide.png"))
        offline.check_nothing_left_the_machine()
    finally:
        offline.context.close()


def test_page_typesets_formulas_and_draws_the_stored_slider(editions, browser):
    _, site_page, folder = editions
    nb = _fixture()
    offline = _Offline(browser, {"width": 1100, "height": 900})
    try:
        page = offline.page
        page.goto(site_page.as_uri())
        offline.wait_for_mathjax()
        typeset = page.locator(".jp-Notebook mjx-container").count()
        assert typeset == _formulas(nb), f"{typeset} formulas typeset"
        text = page.evaluate("() => document.querySelector('.jp-Notebook').textContent")
        assert "$" not in text, "raw $...$ left in the page"
        page.locator(".widget-slider").first.wait_for(state="visible")  # drawn by web/ 's widget renderer
        assert "k" in page.locator(".widget-slider .widget-label").first.inner_text()
        page.screenshot(path=str(folder / "offline_page.png"), full_page=True)
        offline.check_nothing_left_the_machine()
    finally:
        offline.context.close()
