"""Helpers for the tests of the offline editions and the workflow linter: the web assets
(installed by `make web`, or stand-ins), and the system's Chromium."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import web_assets  # noqa: E402

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    """``COURSE_CHROMIUM``, else Debian's chromium, else one on the PATH; None if absent (the browser tests skip)."""
    override = os.environ.get("COURSE_CHROMIUM", "").strip()
    if override:
        return override
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)



def needs_chromium() -> pytest.MarkDecorator:
    """Skip, saying how to get one, when :func:`chromium` finds no browser."""
    return pytest.mark.skipif(
        chromium() is None,
        reason="no Chromium found (install Debian's `chromium`, as .ci/run does, or set COURSE_CHROMIUM)",
    )

def installed_modules() -> Path:
    """build/web/node_modules from package-lock.json, installed now (npm ci) if it is not yet.

    Skips the calling test when the assets are not installed and npm is not there to install them.
    """
    try:
        return web_assets.node_modules()
    except web_assets.WebAssetsError:
        if shutil.which("npm") is None:
            pytest.skip("npm not found and the web assets are not installed (install nodejs and npm, then `make web`)")
    web_assets.WEB_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(web_assets.WEB_DIR.parent / ".web-install.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return web_assets.node_modules()
        except web_assets.WebAssetsError:
            return web_assets.install()


def stand_in_modules(folder: Path) -> Path:
    """A node_modules folder with a small placeholder for every file the editions copy (no npm needed)."""
    for package, parts in web_assets.NEEDED.items():
        for part in parts:
            path = folder / package / part
            if Path(part).suffix or part.endswith("LICENSE"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"/* stand-in for {package}/{part} */\n", encoding="utf-8")
            else:  # a folder: one file in it
                path.mkdir(parents=True, exist_ok=True)
                (path / "stand-in.txt").write_text("stand-in\n", encoding="utf-8")
    return folder
