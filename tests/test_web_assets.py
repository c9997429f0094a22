"""tools/web_assets.py without npm or a browser: the offline check, the asset copy, and an
install that fails (npm missing, npm ci failing) leaving what was there untouched."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import course_site  # noqa: E402
import slides  # noqa: E402
import web_assets  # noqa: E402
from web_support import stand_in_modules  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "offline_fixture.nb.json"


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js"></script>',
        "<script src='//example.org/lib.js'></script>",
        '<link rel="stylesheet" href="https://example.org/theme.css">',
        "<style>@import url(https://fonts.googleapis.com/css?family=Lato);</style>",
        '<script type="module">import mermaid from "https://example.org/mermaid.mjs";</script>',
        "<script>var src = 'https://unpkg.com/' + '@jupyter-widgets/html-manager';</script>",
        '<img src="https://example.org/figure.png">',
        '<div class="jp-Mermaid"><pre class="mermaid">graph LR; a-->b</pre></div>',
    ],
)
def test_check_offline_refuses_what_a_browser_would_fetch(snippet):
    page = f"<html><head></head><body>\n{snippet}\n</body></html>"
    with pytest.raises(web_assets.OfflineError, match=r"(?s)page\.html would load from the network.*line 2"):
        web_assets.check_offline(page, "page.html")


def test_check_offline_accepts_local_assets_and_links_a_reader_clicks():
    page = (
        '<script src="web/requirejs/require.js"></script><link href="web/reveal.js/dist/reveal.css" rel="stylesheet">'
        '<a href="https://grouplens.org/datasets/movielens/">MovieLens</a> <img src="data:image/png;base64,iVBOR">'
    )
    web_assets.check_offline(page, "page.html")  # no error


def test_a_page_that_would_load_from_a_cdn_stops_the_build_and_writes_nothing(tmp_path):
    nb = nbformat.read(FIXTURE, as_version=4)
    nb.cells[1].source += '\n\n<img src="https://example.org/figure.png">'
    notebook = tmp_path / "98_offline.ipynb"
    nbformat.write(nb, notebook)
    modules = stand_in_modules(tmp_path / "node_modules")
    for build, out in ((course_site.build, tmp_path / "site"), (slides.build, tmp_path / "slides")):
        with pytest.raises(web_assets.OfflineError, match="example.org/figure.png"):
            build([notebook], out, modules=modules)
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary folder left behind"


def test_copy_assets_names_a_missing_file(tmp_path):
    modules = stand_in_modules(tmp_path / "node_modules")
    (modules / "mathjax" / "es5" / "tex-chtml-full.js").unlink()
    with pytest.raises(web_assets.WebAssetsError, match=r"mathjax/es5/tex-chtml-full\.js is missing: run `make web`"):
        web_assets.copy_assets(modules, tmp_path / "site")


def test_editions_need_the_installed_assets(tmp_path):
    with pytest.raises(web_assets.WebAssetsError, match="not installed.*run `make web`"):
        web_assets.node_modules(tmp_path / "web")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / web_assets.STAMP).write_text("0" * 64 + "\n")
    with pytest.raises(web_assets.WebAssetsError, match="another package-lock.json"):
        web_assets.node_modules(tmp_path / "web")


def test_install_without_npm_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(web_assets.shutil, "which", lambda name: None)
    with pytest.raises(web_assets.WebAssetsError, match=r"npm was not found.*apt-get install nodejs npm"):
        web_assets.install(tmp_path / "web")
    assert not (tmp_path / "web").exists()


def test_a_failed_npm_ci_leaves_the_previous_install_and_no_half_written_folder(tmp_path):
    web = tmp_path / "web"
    (web / "node_modules").mkdir(parents=True)
    (web / web_assets.STAMP).write_text("previous\n")
    fake_npm = tmp_path / "npm"  # what npm ci does on a tarball whose sha512 is not the lock's
    fake_npm.write_text("#!/bin/sh\nmkdir -p node_modules/reveal.js\necho 'npm error code EINTEGRITY' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    with pytest.raises(web_assets.WebAssetsError, match=r"(?s)`npm ci` failed \(exit 1\).*EINTEGRITY"):
        web_assets.install(web, npm=str(fake_npm))
    assert (web / web_assets.STAMP).read_text() == "previous\n", "the previous install is untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npm", "web"], "no half-installed folder left"


def test_install_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "notes.txt").write_text("mine")
    with pytest.raises(web_assets.WebAssetsError, match="was not made by `make web`"):
        web_assets.install(tmp_path / "web", npm="/bin/false")
    assert (tmp_path / "web" / "notes.txt").read_text() == "mine"
