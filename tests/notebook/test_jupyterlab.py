"""Chapter 1 read in JupyterLab: run it, move the slider off the grid, the figure is recomputed.

A real JupyterLab server (loopback address, a token, no browser) and headless
Chromium: the chapter is opened as a learner would, with its parameters cell
untouched, so the explorer must choose the live mode by itself. The server and
its kernel are shut down whatever happens, and killed if they do not stop.
"""

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from srlib.book import build as book

pytestmark = pytest.mark.slow

CHAPTER = "01_score_is_a_projector.ipynb"
GRID = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]  # chapter 1's sigmas: 0.07 lies between two grid points


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, token: str, method: str = "GET"):
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture
def jupyterlab(tmp_path):
    """``(base URL, token, server process)`` of a JupyterLab serving a copy of chapter 1."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy2(book.ROOT / "notebooks" / CHAPTER, root / CHAPTER)
    config = tmp_path / "config"
    config.mkdir()
    # Nothing of the user's JupyterLab set-up is read or written; no request leaves the machine.
    (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"allow_root": True}, "LabApp": {
        "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate", "extension_manager": "readonly",
        "expose_app_in_browser": True,  # window.jupyterapp: run all cells as the Run menu does
        "user_settings_dir": str(tmp_path / "settings"), "workspaces_dir": str(tmp_path / "workspaces")}}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**book.kernel_env(), "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = tmp_path / "jupyterlab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    children = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"JupyterLab exited: {log.read_text()[-2000:]}"
            try:
                api(f"{base}/api/status", token)
                break
            except OSError:
                assert time.monotonic() < deadline, f"JupyterLab did not answer: {log.read_text()[-2000:]}"
                time.sleep(0.5)
        yield base, token, server
    finally:
        if server.poll() is None:
            children = psutil.Process(server.pid).children(recursive=True)  # the kernel
            try:
                api(f"{base}/api/shutdown", token, "POST")  # stops the kernels, then the server
            except OSError:
                server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        _, alive = psutil.wait_procs(children, timeout=15)
        for process in alive:
            process.kill()
        assert not alive, f"JupyterLab left {alive} running (killed now)"


def test_chapter_1_in_jupyterlab_recomputes_the_figure_between_grid_points(jupyterlab, browser):
    base, token, server = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}", wait_until="load")
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=120_000)
        page.evaluate("""async () => {
            const panel = window.jupyterapp.shell.currentWidget;
            await panel.sessionContext.ready;
            await panel.revealed;
            window.jupyterapp.commands.execute('notebook:run-all-cells');
        }""")
        # Every code cell has run (an execution count) and the kernel is idle again.
        page.wait_for_function("""() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const cells = panel.content.widgets.filter(c => c.model.type === 'code');
            return panel.sessionContext.session.kernel.status === 'idle'
                && cells.every(c => c.model.executionCount !== null);
        }""", timeout=300_000, polling=500)
        failed = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
            .filter(c => c.model.type === 'code')
            .flatMap(c => c.model.outputs.toJSON())
            .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)""")
        assert failed == []

        # The explorer chose the live mode by itself: a numeric slider above an Output widget.
        explorer = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(".widget-output"))
        assert explorer.count() == 1
        readout = explorer.locator(".widget-readout")
        figure = explorer.locator(".widget-output img")
        figure.wait_for(timeout=60_000)
        assert float(readout.inner_text()) == pytest.approx(0.1)  # the chapter's start value

        def set_sigma(value: float) -> tuple[str, bytes]:
            """Type ``value`` into the slider's readout; the (src, pixels) of the figure the kernel sends back."""
            before = figure.get_attribute("src")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type(str(value))
            page.keyboard.press("Enter")
            page.wait_for_function("before => { const img = document.querySelector('.widget-output img');"
                                   " return img !== null && img.src !== before; }",
                                   arg=before, timeout=120_000, polling=200)
            assert float(readout.inner_text()) == pytest.approx(value)
            return figure.get_attribute("src"), figure.screenshot()

        start = figure.get_attribute("src"), figure.screenshot()
        between = set_sigma(0.07)
        assert not any(abs(0.07 - s) < 1e-9 for s in GRID)
        grid_point = set_sigma(0.05)
        # 0.07 gave a figure of its own: neither the start (0.1) nor its grid neighbour 0.05.
        for other in (start, grid_point):
            assert between[0] != other[0] and between[1] != other[1]
        assert errors == []
    finally:
        page.close()
