"""Browser tests: run only when named (`make test-ui`, or `pytest tests/ui`), never as part of `make test`.

Without Chromium, ChromeDriver or Selenium they skip with one line saying what to install; in CI
(CI=true) they fail instead, so a CI machine without a browser cannot pass them by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import uikit

HERE = Path(__file__).resolve().parent


def _named(config: pytest.Config) -> bool:
    """Whether the command line points at this folder or a file in it."""
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the browser tests out of runs that did not ask for them (`make test` collects tests/)."""
    if HERE in collection_path.parents and not _named(config):
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "notebook(name): the test uses that notebook after Run All (run right after it)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each notebook's widget tests right after its Run All test, so the run is reused, not repeated."""

    def notebook_of(item: pytest.Item) -> str | None:
        if HERE not in Path(item.path).parents:
            return None
        marker = item.get_closest_marker("notebook")
        if marker:
            return marker.args[0]
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("name") if callspec else None

    order = {id(item): position for position, item in enumerate(items)}
    first_use: dict[str, int] = {}
    for item in items:
        name = notebook_of(item)
        if name:
            first_use.setdefault(name, order[id(item)])
    items.sort(key=lambda item: (first_use.get(notebook_of(item) or "", order[id(item)]), order[id(item)]))


@pytest.fixture(scope="session")
def browser_ready() -> None:
    """Skip (or fail, in CI) with one line when there is no browser to drive."""
    reason = uikit.missing_browser()
    if reason and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)
    shutil.rmtree(uikit.SHOTS, ignore_errors=True)  # only this run's screenshots in build/ui/


@pytest.fixture(scope="session")
def lab_server(browser_ready, tmp_path_factory):
    """JupyterLab from `make lab`, serving a temporary copy of notebooks/ (the repo is never written)."""
    server = uikit.start_lab(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lab(lab_server):
    """One Chromium showing JupyterLab, shared by the JupyterLab tests."""
    driver = uikit.chromium()
    yield uikit.LabPage(driver, lab_server)
    driver.quit()
