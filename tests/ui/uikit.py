"""Helpers for the browser tests: headless Chromium through Selenium, JupyterLab started by `make lab`.

Selenium is imported inside the functions, so this module (and the test files) import without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "ui"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
# Chromium as root in a container, with nothing that phones home (the machine may have no network).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, in one line, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed; run `pip install -e .[ui]`"
    for path, package, variable in (
        (CHROMIUM, "chromium", "CHROMIUM"),
        (CHROMEDRIVER, "chromium-driver", "CHROMEDRIVER"),
    ):
        if not path.is_file():
            return f"{path} not found; install it with `apt-get install {package}` (or point {variable}= at it)"
    if shutil.which("make") is None:
        return "make not found; the tests start JupyterLab through `make lab`"
    return None


def chromium(width: int = 1400, height: int = 1000, offline: bool = False):
    """A fresh headless Chromium (own empty profile) whose console messages can be read."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    if offline:  # do not wait for pages to load: the speaker view's window never reports that it has
        options.page_load_strategy = "none"
    for flag in (
        *CHROMIUM_FLAGS,
        f"--window-size={width},{height}",
        f"--user-data-dir={tempfile.mkdtemp(prefix='ui-chromium-')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL" if offline else "OFF"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    # the page gets exactly width x height pixels (a headless window keeps some for its pretend toolbars)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    # the page has focus, as a window a person uses has: headless Chromium 150 gives it none, and JupyterLab's
    # current notebook (which its menus act on) is the one that last had focus
    driver.execute_cdp_cmd("Emulation.setFocusEmulationEnabled", {"enabled": True})
    if offline:  # every request that is not a local file fails, and the performance log lists it
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
    return driver


def severe_console_messages(driver) -> list[str]:
    """Console messages at level SEVERE since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requested_urls(driver) -> list[str]:
    """URLs the page asked for since the last call (from the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def screenshot(driver, name: str, show=None) -> Path:
    """Save what the browser shows as build/ui/<name>.png, for a person to look at, ``show`` in the middle."""
    if show is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", show)
        time.sleep(0.3)  # cells laid out lazily may shift once they come into view
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", show)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


AXE_VERSION = "4.14.1"
# the "integrity" field of axe-core 4.14.1 in the npm registry
AXE_SHA512 = "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="


def axe_source() -> str:
    """axe-core's script, fetched from the npm registry once (pinned SHA-512) and kept in this venv."""
    sys.path.insert(0, str(ROOT / "slides"))
    import npm_package

    folder = npm_package.install("axe-core", AXE_VERSION, AXE_SHA512, ("axe.min.js", "LICENSE"))
    return (folder / "axe.min.js").read_text(encoding="utf-8")


AXE_RUN_JS = """
const [context, options, done] = arguments;
axe.run(context || document, options).then(r => done(r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
}))), e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"""


def axe_violations(driver, impacts=("critical", "serious"), context=None, options=None) -> list[dict]:
    """Run axe-core (WCAG 2 A and AA rules) on the page the browser shows; the violations of ``impacts``.

    Each violation is ``{"id", "impact", "help", "nodes": [{"target", "summary"}]}`` (the first five
    nodes). ``context`` is a CSS selector to check only part of the page; ``options`` axe's run options.
    """
    driver.set_script_timeout(120)  # axe takes a few seconds on a long page
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        driver.execute_script(axe_source())
    # preload False: axe would fetch the page's style sheets, which Chromium refuses over file:// (console errors)
    run_options = options or {
        "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        "preload": False,
    }
    violations = driver.execute_async_script(AXE_RUN_JS, context, run_options)
    return [v for v in violations if v["impact"] in impacts]


def describe_violations(violations: list[dict]) -> str:
    """One line per violation, for an assertion message."""
    return "\n".join(
        f"{v['impact']} {v['id']}: {v['help']} at " + "; ".join(n["target"] for n in v["nodes"]) for v in violations
    )


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """A JupyterLab started by `make lab`, serving a temporary copy of the notebooks."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def open_url(self, path: str) -> str:
        """The address of a notebook in a fresh workspace (no tabs restored from earlier tests)."""
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def shut_down_kernels(self) -> None:
        """End every kernel the server runs (a closed tab leaves its kernel running)."""
        for session in json.loads(self._call("GET", "/api/sessions")):
            self._call("DELETE", f"/api/sessions/{session['id']}")

    def _call(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def stop(self) -> None:
        """Stop make and JupyterLab (which shuts its kernels down)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def lab_environment(home: Path) -> dict[str, str]:
    """Environment for the server: its own config, settings, workspaces and runtime folders; one math thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for name in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
    ):
        folder = home / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    env.pop("JUPYTER_PATH", None)
    return env


def start_lab(workdir: Path, timeout: float = 90) -> LabServer:
    """Copy notebooks/ into ``workdir`` and serve it with `make lab` on a free loopback port."""
    root = workdir / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns("data", "models", ".ipynb_checkpoints"))
    port, token = free_port(), os.urandom(16).hex()
    venv = Path(sys.prefix)
    lab_args = f"--ip=127.0.0.1 --port={port} --no-browser --IdentityProvider.token={token} --expose-app-in-browser"
    command = [
        "make",
        "--no-print-directory",
        "-C",
        str(ROOT),
        "-o",
        str(venv / ".installed"),
        "lab",
        f"VENV={venv}",
        f"LAB_DIR={root}",
        f"LAB_ARGS={lab_args}",
    ]
    log = workdir / "jupyterlab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=lab_environment(workdir / "jupyter"),
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, root, process, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"`make lab` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(ready, timeout, "JupyterLab to answer on /api/status", interval=0.5)
    except BaseException:
        server.stop()
        raise
    return server


# The open notebook as JupyterLab's own model sees it (the server runs with --expose-app-in-browser).
NOTEBOOK_STATE_JS = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.context || !panel.context.isReady) return null;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return {
  path: panel.context.path,
  dirty: panel.context.model.dirty,
  kernel: kernel ? kernel.status : null,
  cells: panel.content.widgets.map(cell => ({
    type: cell.model.type,
    state: cell.model.type === 'code' ? cell.model.executionState : null,
    count: cell.model.type === 'code' ? cell.model.executionCount : null,
    tags: cell.model.getMetadata('tags') || [],
    outputs: cell.model.type === 'code' ? cell.model.outputs.toJSON() : [],
  })),
};
"""
# Remember every cell that starts running from now on, so a finished run can be told from one not yet started.
WATCH_RUNS_JS = """
const panel = window.jupyterapp.shell.currentWidget;
window.uiTestRuns = 0;
for (const cell of panel.content.widgets) {
  cell.model.stateChanged.connect((model, change) => {
    if (change.name === 'executionState' && change.newValue === 'running') window.uiTestRuns += 1;
  });
}
"""


class LabPage:
    """One JupyterLab tab in Chromium: open a notebook, use its menus, read its state."""

    def __init__(self, driver, server: LabServer) -> None:
        self.driver, self.server = driver, server
        self.last_run: tuple[str, dict] | None = None  # (notebook, state) after the latest Run All

    def ran(self, path: str) -> dict:
        """The state of ``path`` after Run All: reused when it is the notebook just run, else run now."""
        if self.last_run is None or self.last_run[0] != path:
            self.open(path)
            self.run_all()
        return self.last_run[1]

    def state(self) -> dict | None:
        """Dirty flag, kernel status and every cell (type, execution state and count, tags, outputs)."""
        return self.driver.execute_script(NOTEBOOK_STATE_JS)

    def open(self, path: str, timeout: float = 120) -> dict:
        """Open a notebook in a fresh workspace and wait until its kernel is idle."""
        self.last_run = None
        # leave the previous notebook without JupyterLab's "unsaved changes?" prompt, which headless Chromium
        # blocks with a console error (a notebook that restored saved widgets is marked modified: see test_lab)
        self.driver.execute_script(
            "const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            "if (p && p.context && p.context.model) { p.context.model.dirty = false; }"
        )
        self.driver.get("about:blank")
        self.server.shut_down_kernels()  # one kernel at a time: the machine may have two cores
        self.driver.get(self.server.open_url(path))

        def ready():
            state = self.state()
            return state if state and state["path"] == path and state["kernel"] == "idle" else None

        return wait_for(ready, timeout, f"{path} to open with an idle kernel")

    def menu(self, top: str, item: str) -> None:
        """Click a main-menu entry, e.g. menu("Run", "Run All Cells")."""
        from selenium.webdriver.common.by import By

        self.driver.find_element(
            By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][normalize-space()='{top}']"
        ).click()
        entry = f"//li[contains(@class,'lm-Menu-item')][.//div[contains(@class,'lm-Menu-itemLabel')][normalize-space()='{item}']]"
        wait_for(lambda: self.driver.find_elements(By.XPATH, entry), 10, f"menu entry {top} > {item}")[0].click()

    def run_all(self, menu: tuple[str, str] = ("Run", "Run All Cells"), timeout: float = 300) -> dict:
        """Run every cell from a menu and wait until nothing runs and the kernel is idle again."""
        self.driver.execute_script(WATCH_RUNS_JS)
        self.menu(*menu)
        if menu[0] == "Kernel":  # "Restart Kernel and Run All Cells…" asks first
            self.click_dialog_button("Restart")

        def finished():
            state = self.state()
            started = self.driver.execute_script("return window.uiTestRuns")
            busy = any(cell["state"] == "running" for cell in state["cells"])
            return state if started and not busy and state["kernel"] == "idle" else None

        state = wait_for(finished, timeout, f"Run All to finish ({menu[1]})", interval=0.5)
        self.last_run = (state["path"], state)
        return state

    def click_dialog_button(self, label: str) -> None:
        """Press a button of the modal dialog that is open."""
        from selenium.webdriver.common.by import By

        xpath = f"//div[contains(@class,'jp-Dialog')]//button[normalize-space()='{label}']"
        wait_for(lambda: self.driver.find_elements(By.XPATH, xpath), 10, f"dialog button {label!r}")[0].click()

    def cell_node(self, index: int):
        """The DOM node of cell ``index``, its outputs (or else its input) scrolled to the top of the view."""
        return self.driver.execute_script(
            """const cell = window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]];
            (cell.node.querySelector('.jp-Cell-outputWrapper') || cell.node).scrollIntoView({block: 'start'});
            return cell.node;""",
            index,
        )

    def in_cell(self, index: int, script: str) -> Any:
        """Run ``script`` (JavaScript, the cell's node as ``arguments[0]``) on cell ``index``, scrolled into
        view, all in one call; None while JupyterLab has the cell detached (it redraws cells as they
        scroll), so that `wait_for` tries again instead of failing on a node that went stale between
        two calls."""
        return self.driver.execute_script(
            """const cell = window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]];
            (cell.node.querySelector('.jp-Cell-outputWrapper') || cell.node).scrollIntoView({block: 'start'});
            if (!cell.node.isConnected) return null;
            return (function () {"""
            + script
            + """}).apply(null, [cell.node]);""",
            index,
        )

    def click_in_cell(self, index: int, css: str, timeout: float = 10) -> None:
        """Click, as a person does, the element ``css`` inside cell ``index``, trying again while the
        cell is being redrawn."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        def clicked() -> bool:
            try:
                self.cell_node(index).find_element(By.CSS_SELECTOR, css).click()
            except StaleElementReferenceException:
                return False
            return True

        wait_for(clicked, timeout, f"{css} in cell {index} to be clickable")

    def find_cell(self, text: str) -> int:
        """Index of the first cell whose source contains ``text``."""
        index = self.driver.execute_script(
            "return window.jupyterapp.shell.currentWidget.content.widgets.findIndex(c => c.model.sharedModel.getSource().includes(arguments[0]))",
            text,
        )
        assert index >= 0, f"no cell contains {text!r}"
        return index

    def page_text(self) -> str:
        """All text of the page, including cells scrolled out of view."""
        return self.driver.execute_script("return document.body.textContent")
