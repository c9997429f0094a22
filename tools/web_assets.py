"""The web assets of the offline slides and site (reveal.js, MathJax, require.js, the widget
renderer), installed from the npm registry, pinned and checksummed by package-lock.json.

    python tools/web_assets.py install [WEB_DIR]     (``make web``; WEB_DIR defaults to build/web)

``install`` runs ``npm ci`` (which checks every tarball against the lock file's ``integrity``
sha512 and refuses on a mismatch) in a fresh folder next to WEB_DIR, and only when that
succeeded swaps it in, with a stamp ``.installed`` holding the lock file's sha256: a failed or
interrupted download never leaves a half-installed WEB_DIR. Without ``npm`` it stops and says
what to install.

:func:`copy_assets` copies the files the pages load into an edition folder (``web/`` next to
the pages), so the folder is self-contained and can be published as is; :func:`check_offline`
fails loudly on any page that would still load something from another site.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "package-lock.json"
PACKAGE = ROOT / "package.json"
WEB_DIR = ROOT / "build" / "web"
STAMP = ".installed"
ASSETS = "web"  # the assets' folder inside an edition, next to the pages

# reveal.js's "white" theme takes its font from its own folder; nbconvert's default "simple"
# imports Google Fonts (as do beige, blood, league, moon, night, sky and solarized).
REVEAL_THEME = "white"

# What an edition needs from node_modules: (path in node_modules, files or folders to copy).
# MathJax's speech-rule engine (es5/sre, loaded only if a reader turns speech on in its menu)
# and the widget renderer's other builds and source maps are left out; the licence files go
# with the code (require.js carries its licence in its header).
NEEDED = {
    "reveal.js": [
        "dist/reveal.js", "dist/reveal.css", "plugin/notes/notes.js", "LICENSE",
        f"dist/theme/{REVEAL_THEME}.css", "dist/theme/fonts/source-sans-pro",  # the theme's fonts (local)
    ],
    "mathjax": ["es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2", "LICENSE"],
    "requirejs": ["require.js"],
    "@jupyter-widgets/html-manager": ["dist"],
}
SKIP_IN_WIDGETS = re.compile(r"\.map$|^embed\.js$|^libembed-amd\.js$")  # keeps embed.js.LICENSE.txt

# The URLs the templates are given (relative to a page in the edition folder).
REVEAL_PREFIX = f"{ASSETS}/reveal.js"
MATHJAX_URL = f"{ASSETS}/mathjax/es5/tex-chtml-full.js"
REQUIRE_JS_URL = f"{ASSETS}/requirejs/require.js"
WIDGETS_URL = f"{ASSETS}/@jupyter-widgets/html-manager/dist/embed-amd.js"

NPM_HINT = (
    "npm was not found. The offline slides and site take reveal.js and MathJax from the npm registry: "
    "install Node.js with npm (Debian/Ubuntu: `sudo apt-get install nodejs npm`; macOS: `brew install node`; "
    "Windows: https://nodejs.org), then run `make web` again."
)


class WebAssetsError(RuntimeError):
    """The web assets are missing, stale, or could not be installed; the message says what to do."""


def lock_digest(lock: Path = LOCK) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def install(web_dir: Path = WEB_DIR, *, package: Path = PACKAGE, lock: Path = LOCK, npm: str | None = None) -> Path:
    """``npm ci`` of ``package``/``lock`` into ``web_dir/node_modules`` (see the module doc). Returns node_modules.

    Raises:
        WebAssetsError: npm is missing, npm ci failed (e.g. an integrity mismatch), or ``web_dir``
            exists and is not a folder this tool made.
    """
    npm = npm or shutil.which("npm")
    if npm is None:
        raise WebAssetsError(NPM_HINT)
    web_dir = Path(web_dir)
    if web_dir.exists() and not (web_dir / STAMP).exists() and (not web_dir.is_dir() or any(web_dir.iterdir())):
        raise WebAssetsError(f"{web_dir} exists and was not made by `make web` (no {STAMP}); move it away and run again.")
    web_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{web_dir.name}.installing-", dir=web_dir.parent))
    fresh.chmod(0o755)
    try:
        shutil.copy(package, fresh / "package.json")
        shutil.copy(lock, fresh / "package-lock.json")
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        result = subprocess.run(command, cwd=fresh, capture_output=True, text=True)
        if result.returncode != 0:
            raise WebAssetsError(
                f"`npm ci` failed (exit {result.returncode}); {web_dir} was left as it was.\n"
                + (result.stderr or result.stdout)[-3000:]
            )
        missing = [name for name in NEEDED if not (fresh / "node_modules" / name).is_dir()]
        if missing:
            raise WebAssetsError(f"npm ci did not install {', '.join(missing)}: is {lock} the course's lock file?")
        (fresh / STAMP).write_text(lock_digest(lock) + "\n", encoding="utf-8")
        old = None
        if web_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{web_dir.name}.old-", dir=web_dir.parent))
            web_dir.replace(old / "web")
        fresh.replace(web_dir)
        if old is not None:
            shutil.rmtree(old)  # the previous install, made by this tool (it had the stamp)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh)  # the temporary folder made above by this call (a failed npm ci leaves nothing)
    return web_dir / "node_modules"


def node_modules(web_dir: Path = WEB_DIR, lock: Path = LOCK) -> Path:
    """The installed ``node_modules``, checked to match the lock file.

    Raises:
        WebAssetsError: not installed, or installed from another lock file (run ``make web``).
    """
    stamp = Path(web_dir) / STAMP
    if not stamp.exists():
        raise WebAssetsError(f"the web assets are not installed in {web_dir}: run `make web` (needs npm).")
    if stamp.read_text(encoding="utf-8").strip() != lock_digest(lock):
        raise WebAssetsError(f"{web_dir} was installed from another package-lock.json: run `make web` again.")
    return Path(web_dir) / "node_modules"


def copy_assets(modules: Path, edition: Path) -> list[Path]:
    """Copy the files in :data:`NEEDED` from ``modules`` (a node_modules folder) to ``edition/web/``.

    Returns the files written.

    Raises:
        WebAssetsError: a file is missing from ``modules``.
        OfflineError: a copied style sheet imports something from the network.
    """
    written = []
    for package, parts in NEEDED.items():
        for part in parts:
            source = Path(modules) / package / part
            if not source.exists():
                raise WebAssetsError(f"{source} is missing: run `make web` again (npm ci from package-lock.json).")
            files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
            for path in files:
                if package == "@jupyter-widgets/html-manager" and SKIP_IN_WIDGETS.search(path.name):
                    continue
                target = Path(edition) / ASSETS / package / path.relative_to(Path(modules) / package)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                if target.suffix == ".css":
                    check_offline(target.read_text(encoding="utf-8"), f"{ASSETS}/{package}/{part}")
                written.append(target)
    return written


# Anything a browser would fetch by itself: src=, <link href=, CSS url()/@import, ES imports.
_FETCHED = re.compile(
    r"""(?:\bsrc\s*=\s*|<link\b[^>]*\bhref\s*=\s*|url\(\s*|@import\s+|\bimport\s*\(?\s*|\bfrom\s+)["']?(https?:)?//[^\s"'<>)]+""",
    re.IGNORECASE,
)
# Hosts that serve scripts and styles: named anywhere in a page (e.g. in a script building a URL), they are an error.
CDN_HOSTS = re.compile(
    r"(?:unpkg\.com|cdnjs\.cloudflare\.com|cdn\.jsdelivr\.net|code\.jquery\.com|ajax\.googleapis\.com|"
    r"fonts\.googleapis\.com|fonts\.gstatic\.com|cdn\.plot\.ly|esm\.sh|cdn\.skypack\.dev)[^\s\"'<>)]*",
    re.IGNORECASE,
)


TEMPLATES = Path(__file__).resolve().parent / "templates"


def exporter_options() -> dict:
    """nbconvert exporter settings for the offline templates (``course_lab``, ``course_reveal``)
    and the local copies of MathJax, require.js and the widget renderer."""
    return {
        "extra_template_basedirs": [str(TEMPLATES)],
        "extra_template_paths": [str(TEMPLATES)],
        "mathjax_url": MATHJAX_URL,
        "require_js_url": REQUIRE_JS_URL,
        "widget_renderer_url": WIDGETS_URL,
    }


class OfflineError(RuntimeError):
    """A built page would load something from the network."""


def check_offline(page: str, name: str) -> None:
    """Raise :class:`OfflineError` listing every remote script, style, font or CDN URL in ``page``.

    Links a reader clicks (``<a href="https://...">``) are fine; anything the browser would fetch
    by itself, or any CDN host named anywhere, is not. ``name`` is used in the message.
    """
    found = []
    for match in list(_FETCHED.finditer(page)) + list(CDN_HOSTS.finditer(page)):
        line = page.count("\n", 0, match.start()) + 1
        found.append((line, match.group(0)))
    if "jp-Mermaid" in page:
        found.append((page.count("\n", 0, page.index("jp-Mermaid")) + 1, "a mermaid diagram (its renderer is not installed offline)"))
    if found:
        shown = "\n".join(f"  line {line}: {text[:160]}" for line, text in sorted(set(found))[:10])
        raise OfflineError(
            f"{name} would load from the network, which the offline editions must not:\n{shown}\n"
            "Add the file to package.json/package-lock.json and tools/web_assets.py (NEEDED), "
            "or override the template block that adds it (tools/templates/)."
        )


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "install" or len(argv) > 2:
        print(__doc__)
        return 2
    web_dir = Path(argv[1]) if len(argv) == 2 else WEB_DIR
    try:
        modules = install(web_dir)
    except WebAssetsError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"web assets: npm ci from {LOCK.name} -> {modules}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
