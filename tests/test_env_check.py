import json
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from workflow_utils import env_check
from workflow_utils.env_check import (
    check_environment,
    check_package,
    lock_notes,
    locked_versions,
    lower_bound,
    required_packages,
    shadowing_file,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli, a test dependency there, is the same parser
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_installed_package_is_ok():
    ok, line = check_package("torch", "2.6")
    assert ok and line == "[OK] torch >= 2.6"


def test_missing_package_names_the_fix():
    ok, line = check_package("surely-not-installed-pkg", "1.0")
    assert not ok and "run `make install`" in line


def test_too_old_is_a_failure():
    ok, line = check_package("torch", "999.0")
    assert not ok and line.startswith("[FAIL] torch >= 999.0")


def test_check_environment_prints_one_line_each(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(env_check, "LOCK", tmp_path / "no-lock.txt")  # no [NOTE] lines, in any environment
    assert check_environment({"torch": "2.6", "numpy": "1.0"}) is True
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["[OK] torch >= 2.6", "[OK] numpy >= 1.0"]
    assert lines[2:] == [env_check.platform_line(), env_check.kernels_line()]


def test_lower_bound_reads_runtime_floors_only():
    assert lower_bound("torch>=2.6,<3") == ("torch", "2.6")
    assert lower_bound('selenium>=4.20; extra == "ui"') is None
    assert lower_bound("packaging") is None
    assert lower_bound("packaging>=22") is None  # env_check's own import is not listed
    assert lower_bound('numpy>=1.24; python_version >= "3"') == ("numpy", "1.24")
    assert lower_bound('pywin32>=300; sys_platform == "no-such-platform"') is None


def test_required_packages_are_the_pyproject_floors_in_order():
    pyproject = REPO / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    expected = [
        (r.name, s.version)
        for r in map(Requirement, deps)
        for s in r.specifier
        if s.operator == ">=" and r.name != "packaging"
    ]
    assert list(required_packages().items()) == expected, "installed metadata is stale; run `make install`"


def test_notebook_00_shows_the_same_lines():
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "00_start_here.ipynb"
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    (cell,) = [c for c in cells if "check_environment()" in "".join(c["source"])]
    stored = "".join(cell["outputs"][0]["text"]).splitlines()
    assert stored[:-2] == [f"[OK] {name} >= {minimum}" for name, minimum in required_packages().items()]
    assert stored[0] == "[OK] torch >= 2.8" and len(stored) == 12
    assert stored[-2].startswith("[INFO] running on: ") and stored[-1].startswith("[INFO] CPU math kernels: ")


@pytest.mark.parametrize(
    ("environ", "where"),
    [
        ({"COLAB_RELEASE_TAG": "release-colab-2026"}, "Colab"),
        ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "Kaggle"),
        ({"CI": "true"}, "CI"),
        ({"CI": "false"}, "local"),
        ({}, "local"),
    ],
)
def test_where_running_reads_the_variables_each_platform_sets(environ, where):
    assert env_check.where_running(environ) == where


def test_the_platform_line_names_place_os_python_and_accelerator(monkeypatch):
    import platform

    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    line = env_check.platform_line()
    assert line.startswith("[INFO] running on: Kaggle, ") and platform.machine() in line
    assert f"Python {platform.python_version()}, PyTorch " in line and "accelerator: " in line


def test_package_not_installed_is_one_fail_line(monkeypatch, capsys):
    monkeypatch.setattr(env_check, "PACKAGE", "surely-not-installed-pkg")
    assert check_environment() is False
    assert capsys.readouterr().out.splitlines() == [
        "[FAIL] surely-not-installed-pkg: not installed, so its requirements are unknown; run `make install`",
        env_check.platform_line(),  # a broken install is what gets reported: say where it runs
    ]


def test_a_file_that_shadows_a_package_is_a_failure(tmp_path, monkeypatch):
    """A student's own tqdm.py in the working folder hides the package: said, with the file found."""
    (tmp_path / "tqdm.py").write_text("raise SystemExit('not the real tqdm')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tqdm", raising=False)
    assert shadowing_file("tqdm") == str((tmp_path / "tqdm.py").resolve())
    ok, line = check_package("tqdm", "4.66")
    assert not ok
    assert line == (
        f"[FAIL] tqdm >= 4.66: `import tqdm` finds {(tmp_path / 'tqdm.py').resolve()}, not the installed package; "
        "rename that file or folder"
    )


def test_installed_packages_are_not_shadowed():
    assert [name for name in required_packages() if shadowing_file(name)] == []
    assert shadowing_file("scikit-learn") is None and shadowing_file("pillow") is None  # sklearn, PIL


LOCK_TEXT = """# This file was autogenerated by uv via the following command:
#    make lock
numpy==1.0.0 ; python_full_version < '3.0' \\
    --hash=sha256:00
numpy==NUMPY ; python_full_version >= '3.0' \\
    --hash=sha256:11
    # via workflow-utils
torch==0.0.1 \\
    --hash=sha256:22
"""


def test_locked_versions_follow_the_markers(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text(LOCK_TEXT.replace("NUMPY", "2.0.0"), encoding="utf-8")
    assert locked_versions(lock) == {"numpy": "2.0.0", "torch": "0.0.1"}
    assert locked_versions(tmp_path / "missing.txt") == {}
    (tmp_path / "other.txt").write_text("numpy==1.0\n", encoding="utf-8")
    assert locked_versions(tmp_path / "other.txt") == {}, "a requirements file that is not our lock"


def test_lock_notes_name_each_difference(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text(LOCK_TEXT.replace("NUMPY", metadata.version("numpy")), encoding="utf-8")
    notes = lock_notes(["numpy", "torch", "surely-not-installed-pkg"], locked_versions(lock))
    assert notes == [
        f"[NOTE] torch {metadata.version('torch')} is installed, the lock has 0.0.1: printed numbers may differ "
        "in the last printed digit (`make install` installs the lock)"
    ]


def test_a_local_build_label_is_not_a_difference_and_hosted_runtimes_get_one_line(tmp_path, monkeypatch):
    lock = tmp_path / "requirements.txt"
    lock.write_text(LOCK_TEXT.replace("NUMPY", "0.0.2"), encoding="utf-8")
    installed = {"torch": "0.0.1+cpu", "numpy": "2.0.0"}  # the CPU-only build of the locked torch; another numpy
    monkeypatch.setattr(env_check.metadata, "version", lambda name: installed[name])
    assert lock_notes(["torch", "numpy"], locked_versions(lock)) == [
        "[NOTE] numpy 2.0.0 is installed, the lock has 0.0.2: printed numbers may differ in the last printed digit "
        "(`make install` installs the lock)"
    ]
    installed["torch"] = "0.0.3"
    for where in ("Colab", "Kaggle"):  # no `make install` there: the runtime keeps its own versions
        assert lock_notes(["torch", "numpy"], locked_versions(lock), where) == [
            f"[NOTE] 2 of these packages are not the lock's versions, as expected on {where}, which keeps its own: "
            "printed numbers may differ in the last printed digit"
        ]
    assert len(lock_notes(["torch", "numpy"], locked_versions(lock), "CI")) == 2


def test_the_course_environment_matches_the_lock_or_says_so(capsys):
    """In the environment `make install` builds, env_check prints no note; elsewhere one per difference."""
    locked = locked_versions()
    assert {"torch", "torchvision", "numpy"} <= locked.keys(), "requirements.txt is the lock"
    check_environment()
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[NOTE]")]
    differ = [n for n in required_packages() if metadata.version(n) != locked.get(n)]
    assert [note.split()[1] for note in notes] == differ


def test_nbval_drops_the_lock_notes_and_nothing_else():
    """The version matrix runs 00 on other versions: its [NOTE] lines must not fail strict nbval there."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((REPO / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8"))
    text = "[OK] torch >= 2.8\n[NOTE] torch 2.8.0 is installed, the lock has 2.15.0: ...\n[OK] numpy >= 1.24\n"
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    assert text == "[OK] torch >= 2.8\n[OK] numpy >= 1.24\n"


def test_nbval_compares_only_our_words_of_the_kernels_line():
    """The [INFO] kernels line differs between machines by design; its own words are still compared."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((REPO / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8"))

    def sanitized(text):
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    here = "[OK] pillow >= 10\n[INFO] CPU math kernels: AVX512 with MKL, 2 threads\n"
    laptop = "[OK] pillow >= 10\n[INFO] CPU math kernels: DEFAULT without MKL, 8 threads (forced: MKL_CBWR=AVX2)\n"
    assert sanitized(here) == sanitized(laptop) == "[OK] pillow >= 10\n[INFO] CPU math kernels: THIS MACHINE'S\n"
    assert sanitized("[INFO] CPU kernels: AVX2\n") == "[INFO] CPU kernels: AVX2\n"  # other words stay compared


def test_kernels_line_names_the_forced_kernels(monkeypatch):
    import torch

    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("MKL_CBWR", raising=False)
    line = env_check.kernels_line()
    assert line.startswith(f"[INFO] CPU math kernels: {torch.backends.cpu.get_cpu_capability()} ")
    assert "forced" not in line and line.endswith(("thread", "threads"))
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    assert env_check.kernels_line().endswith("(forced: MKL_CBWR=AVX2)")


def test_kernels_line_without_torch_is_a_line_not_a_crash(monkeypatch):
    """With torch missing, check_environment prints its [FAIL] line and must still finish."""
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert env_check.kernels_line() == "[INFO] CPU math kernels: unknown (PyTorch did not import)"
