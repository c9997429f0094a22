"""Real-browser check: JupyterLab + the course kernel + ipywidgets, driven in headless Chromium.

Starts JupyterLab (this interpreter's, on a free localhost port, token auth) on a temporary
folder holding a COPY of notebook 02 (JupyterLab autosaves outputs into what it opens, so never
the original), opens it in headless Chromium through Playwright using the system's browser
(Debian's ``chromium``; no browser download), runs all cells, moves the temperature slider with
the keyboard and checks that the widget rendered (slider, picture, printed line) and that its
output changed. A screenshot is saved in the test's temporary folder.

Skipped only when no Chromium executable is found (set ``COURSE_CHROMIUM`` to point at one);
``.ci/run`` installs Debian's ``chromium`` on CI machines.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from web_support import chromium, needs_chromium

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = next(iter(sorted((ROOT / "notebooks").glob("02_*.ipynb"))), None)
KERNEL_NAME = "attention-course"
SERVER_START_S = 90  # JupyterLab start-up limit (a cold start on a busy 2-core machine is slow)
RUN_ALL_S = 120  # limit for "Run All Cells" to finish
CHROMIUM = chromium()
pytestmark = [
    needs_chromium(),
    pytest.mark.timeout(300),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_lab_settings(settings_dir: Path) -> None:
    """JupyterLab user settings for a test: every cell in the DOM, no news/update requests."""
    notebook = settings_dir / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True)
    (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    apputils = settings_dir / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def _start_lab(root_dir: Path, state_dir: Path, port: int, token: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(state_dir / "config"),
        JUPYTER_RUNTIME_DIR=str(state_dir / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(state_dir / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state_dir / "workspaces"),
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        MKL_NUM_THREADS=env.get("MKL_NUM_THREADS", "1"),
    )
    _write_lab_settings(state_dir / "settings")
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(state_dir / "jupyterlab.log", "wb")  # noqa: SIM115 - closed with the process
    # Own session: stopping the process group also stops the kernels JupyterLab started.
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_server(process: subprocess.Popen, port: int, token: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer on port {port} within {SERVER_START_S} s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=15)


def _kernel_registered() -> bool:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME in KernelSpecManager().find_kernel_specs()


def test_notebook_02_runs_in_jupyterlab_and_the_temperature_slider_works(tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    assert NOTEBOOK is not None, "notebook 02 not found in notebooks/"
    assert _kernel_registered(), f"the Jupyter kernel '{KERNEL_NAME}' is not registered (run `make setup`)"

    root_dir = tmp_path / "lab"
    root_dir.mkdir()
    shutil.copy(NOTEBOOK, root_dir / NOTEBOOK.name)  # a copy: JupyterLab saves into what it opens
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    server = _start_lab(root_dir, state_dir, port, token)
    try:
        _wait_for_server(server, port, token, state_dir / "jupyterlab.log")
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                _drive_notebook_02(page, port, token, tmp_path)
            finally:
                browser.close()
    finally:
        _stop(server)


def _drive_notebook_02(page, port: int, token: str, tmp_path: Path) -> None:
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}")
    notebook = page.locator(".jp-NotebookPanel .jp-Notebook").first
    notebook.wait_for(state="visible")
    # The course kernel starts and becomes idle (the toolbar's indicator shows the status).
    page.locator(".jp-NotebookPanel .jp-Toolbar-kernelName", has_text=KERNEL_NAME).first.wait_for(timeout=90_000)
    _wait_idle(page)

    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").first.click()  # the "Run" menu
    page.locator(".lm-Menu .lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()

    # The run starts (cells queued show [*]:), then ends: either every code cell has an
    # execution count, or JupyterLab stopped at a failing cell (nothing queued, some cells not run).
    prompts = "[...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')]"
    page.wait_for_function(f"() => {prompts}.some(p => p.textContent.includes('*'))", timeout=30_000)
    page.wait_for_function(
        f"() => {prompts}.length > 0 && !{prompts}.some(p => p.textContent.includes('*'))",
        timeout=RUN_ALL_S * 1000,
    )
    not_run = page.evaluate(f"() => {prompts}.filter(p => !/\\[\\d+\\]/.test(p.textContent)).length")
    if not_run:
        stderr = page.locator('.jp-NotebookPanel [data-mime-type="application/vnd.jupyter.stderr"]')
        failures = [text for text in stderr.all_inner_texts() if "Error" in text]
        pytest.fail(f"Run All Cells stopped with {not_run} cells not run; errors shown:\n" + "\n".join(failures)[-3000:])
    _wait_idle(page)

    slider_widget = page.locator(".widget-slider", has_text="T").first
    slider_widget.scroll_into_view_if_needed()
    slider_widget.wait_for(state="visible")
    explorer = page.locator(".widget-vbox", has=slider_widget).last
    output = explorer.locator(".widget-output")
    output.get_by_text("max weight", exact=False).wait_for()
    assert output.locator("img").count() >= 1, "the temperature explorer shows no picture"
    before = output.inner_text()
    readout_before = slider_widget.locator(".widget-readout").inner_text()
    page.screenshot(path=str(tmp_path / "notebook02_before.png"))

    handle = slider_widget.locator(".noUi-handle").first
    handle.focus()
    for _ in range(10):  # ten steps of 0.05 in log10: T goes from 1 to about 3.16
        handle.press("ArrowRight")
    readout_after = slider_widget.locator(".widget-readout").inner_text()
    assert readout_after != readout_before, f"the slider's value did not change ({readout_before})"
    # The callback re-runs in the kernel: wait for the output of the slider's final value.
    page.wait_for_function(
        """([el, expected]) => el.innerText.includes(expected)""",
        arg=[output.element_handle(), f"T = {readout_after}:"],
        timeout=60_000,
    )
    _wait_idle(page)
    after = output.inner_text()
    output.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "notebook02_slider_moved.png"))
    print(f"\n  slider {readout_before} -> {readout_after}; output: {before.strip()!r} -> {after.strip()!r}")
    assert "T = 1:" in before and "T = 1:" not in after, f"the output did not follow the slider: {before!r} -> {after!r}"
    assert output.locator("img").count() >= 1, "the picture disappeared after moving the slider"


def _wait_idle(page) -> None:
    """Wait until the notebook's kernel reports idle (the toolbar's execution indicator)."""
    page.wait_for_function(
        """() => {
            const el = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
            return el !== null && el.getAttribute('data-status') === 'idle';
        }""",
        timeout=90_000,
    )
