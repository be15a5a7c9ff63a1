"""``make`` for the tests that run it: skipped with the reason where there is none, failed in CI (issue 28).

Windows and some macOS set-ups have no ``make``. A test that reads or runs a Makefile recipe calls
``need_make()`` first: without ``make`` it is skipped with one line saying why, except under ``CI=true``,
where it fails, so a CI machine without ``make`` cannot pass by skipping (as the browser tests in
``tests/ui`` do).
"""

from __future__ import annotations

import os
import shutil

import pytest


def need_make() -> str:
    """The path of ``make``; without one, skip the calling test (fail it when ``CI=true``)."""
    make = shutil.which("make")
    if make is None:
        reason = "make not found; this test reads the Makefile's recipes (install GNU make, or run it in WSL)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return make
