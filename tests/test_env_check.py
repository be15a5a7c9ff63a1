import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from workflow_utils import env_check
from workflow_utils.env_check import check_environment, check_package, lower_bound, required_packages


def test_installed_package_is_ok():
    ok, line = check_package("torch", "2.6")
    assert ok and line == "[OK] torch >= 2.6"


def test_missing_package_names_the_fix():
    ok, line = check_package("surely-not-installed-pkg", "1.0")
    assert not ok and "run `make install`" in line


def test_too_old_is_a_failure():
    ok, line = check_package("torch", "999.0")
    assert not ok and line.startswith("[FAIL] torch >= 999.0")


def test_check_environment_prints_one_line_each(capsys):
    assert check_environment({"torch": "2.6", "numpy": "1.0"}) is True
    assert capsys.readouterr().out.splitlines() == ["[OK] torch >= 2.6", "[OK] numpy >= 1.0"]


def test_lower_bound_reads_runtime_floors_only():
    assert lower_bound("torch>=2.6,<3") == ("torch", "2.6")
    assert lower_bound('selenium>=4.20; extra == "ui"') is None
    assert lower_bound("packaging") is None
    assert lower_bound('numpy>=1.24; python_version >= "3"') == ("numpy", "1.24")
    assert lower_bound('pywin32>=300; sys_platform == "no-such-platform"') is None


def test_required_packages_are_the_pyproject_floors_in_order():
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    expected = [(r.name, s.version) for r in map(Requirement, deps) for s in r.specifier if s.operator == ">="]
    assert list(required_packages().items()) == expected, "installed metadata is stale; run `make install`"


def test_notebook_00_shows_the_same_lines():
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "00_start_here.ipynb"
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    (cell,) = [c for c in cells if "check_environment()" in "".join(c["source"])]
    stored = "".join(cell["outputs"][0]["text"]).splitlines()
    assert stored == [f"[OK] {name} >= {minimum}" for name, minimum in required_packages().items()]
    assert stored[0] == "[OK] torch >= 2.6" and len(stored) == 8


def test_package_not_installed_is_one_fail_line(monkeypatch, capsys):
    monkeypatch.setattr(env_check, "PACKAGE", "surely-not-installed-pkg")
    assert check_environment() is False
    assert capsys.readouterr().out.splitlines() == [
        "[FAIL] surely-not-installed-pkg: not installed, so its requirements are unknown; run `make install`"
    ]
