"""The version matrix (`make test-matrix`): the same tests in throwaway environments, one table.

    python scripts/test_matrix.py lock newest floors py312 [--pytest-args "-k env_check"]

Each environment is a fresh virtual environment under build/matrix/NAME:

- lock:   Python 3.11 with requirements.txt, the lock that `make install` installs;
- newest: the newest Python (3.13) with the newest releases that pyproject.toml's ranges allow, used the way
  a hosted runtime (Colab, Kaggle) is: see below;
- floors: the lowest supported Python (3.10) with every direct dependency at its pyproject floor
  (`uv pip compile --resolution lowest-direct`; what they pull in resolves as usual);
- py312:  Python 3.12, between them, with the newest releases.

In each, the package is installed editable without dependencies and `make test`'s command runs: the unit
tests and strict nbval over every notebook.

`newest` starts as a hosted runtime does: the newest torch and torchvision preinstalled, IPython as old as
Colab keeps it (RUNTIME), Jupyter's kernel and nbval, no `make`, no clone. Every lesson notebook is copied
to a temporary folder outside the repository and run there under strict nbval, and the package gets in
only through the notebooks' own first cell, from a wheel built here that stands in for the public source
(WORKFLOW_UTILS_SOURCE); 00 runs first, alone, so its cell installs it, and the rest find it installed.
torch's and torchvision's versions and file lists (RECORD) must be the same before and after. Then the
rest of the course's extras are installed (not editable) for the unit tests and the solution notebooks. pip reads no configuration file (PIP_CONFIG_FILE=/dev/null) and
no PIP_* variable that chooses packages, so the versions are the registry's, and the table prints the
versions installed, read back from each environment. Python interpreters are found on PATH or under pyenv;
MATRIX_PYTHON_<NAME> (e.g. MATRIX_PYTHON_NEWEST=/usr/bin/python3.13) overrides. Exit status 1 when any
environment fails.

Each environment holds a CUDA build of PyTorch (about 6 GB), so it is deleted once its tests end
(`--keep` keeps it; its log and JUnit report always stay). When an install fails, the end of its log
and the free disk space are printed, so a CI log says why.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from filelock import FileLock, Timeout

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "matrix"
PYTHONS = {"lock": "3.11", "newest": "3.13", "floors": "3.10", "py312": "3.12"}
SHOWN = ["torch", "torchvision", "numpy", "matplotlib", "scikit-learn", "pillow", "ipywidgets", "jupyterlab", "nbval"]
# Transport settings only; anything that picks packages (indexes, find-links, constraints) is dropped.
PIP_KEEP = {"PIP_CERT", "PIP_CLIENT_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_TIMEOUT", "PIP_PROXY", "PIP_RETRIES"}
# `make test`'s command, with a report to count from.
PYTEST = ["-m", "pytest", "-n", "2", "--dist", "loadfile", "--ignore=tests/robustness", "-p", "no:cacheprovider"]
LOG_TAIL = 40  # lines of a failed install's log printed to the console
# What a hosted runtime has before a notebook runs: the newest torch and torchvision, IPython as Colab pins it
# (7.34, on Python 3.12), a Jupyter kernel; nbval and pytest-xdist run the notebooks.
HOSTED = "newest"
RUNTIME = ["torch", "torchvision", "ipython==7.34.0", "ipykernel", "nbval", "pytest", "pytest-xdist"]
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-cell-timeout=300", "-p", "no:cacheprovider"]


def find_python(env: str) -> str:
    """Return an interpreter of the environment's Python version, or exit with one line naming the fix."""
    version = PYTHONS[env]
    override = os.environ.get(f"MATRIX_PYTHON_{env.upper()}")
    candidates = [override] if override else []
    candidates.append(shutil.which(f"python{version}"))
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise SystemExit(
        f"test_matrix: no Python {version} for '{env}'; install it (e.g. `pyenv install {version}`) "
        f"or set MATRIX_PYTHON_{env.upper()} to its path"
    )


def clean_environ() -> dict[str, str]:
    """The environment for pip and the tests: no machine pip settings, one math thread per process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in PIP_KEEP}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def run(cmd: list[str], log, env: dict[str, str], cwd: Path | None = None) -> int:
    """Run a command (in the repository, or ``cwd``) with its output appended to the log; return its exit status."""
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    return subprocess.run(cmd, cwd=cwd or REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def fingerprint(python: Path, env: dict[str, str]) -> dict[str, str]:
    """torch's and torchvision's versions and a hash of each one's RECORD (every file it installed)."""
    code = (
        "import hashlib, json; from importlib import metadata as m\n"
        "print(json.dumps({n: m.version(n) + ' ' + hashlib.sha256(m.distribution(n).read_text('RECORD')"
        ".encode()).hexdigest()[:16] for n in ('torch', 'torchvision')}))"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=OUT)
    return json.loads(result.stdout) if result.returncode == 0 else {"error": result.stderr[-300:]}


def hosted_notebooks(python: Path, log, env: dict[str, str], report: str) -> bool:
    """Strict nbval over every lesson, run as on a hosted runtime (see the module's docstring)."""
    wheelhouse = OUT / "wheelhouse"
    shutil.rmtree(wheelhouse, ignore_errors=True)
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(wheelhouse)]
    if run(build, log, env) != 0:
        return False
    (wheel,) = wheelhouse.glob("workflow_utils-*.whl")
    before = fingerprint(python, env)
    sanitize = ["--nbval-sanitize-with", str(REPO / "tests" / "nbval_sanitize.cfg")]
    with tempfile.TemporaryDirectory(prefix="hosted-notebooks-") as folder:  # as Colab's /content
        lessons = sorted(path.name for path in (REPO / "notebooks").glob("0*.ipynb"))
        for name in lessons:
            shutil.copy(REPO / "notebooks" / name, folder)
        first, rest = lessons[:1], lessons[1:]
        hosted_env = {**env, "WORKFLOW_UTILS_SOURCE": str(wheel)}
        pytest = [str(python), "-m", "pytest", *NBVAL, *sanitize, "--rootdir", folder]
        ok = run([*pytest, f"--junitxml={report}-hosted-1.xml", *first], log, hosted_env, cwd=Path(folder)) == 0
        parallel = ["-n", "2", "--dist", "loadfile", f"--junitxml={report}-hosted-2.xml", *rest]
        ok = run([*pytest, *parallel], log, hosted_env, cwd=Path(folder)) == 0 and ok
    after = fingerprint(python, env)
    log.write(f"\ntorch and torchvision before the notebooks: {before}\nafter: {after}\n")
    if after != before or "error" in before:
        log.write("test_matrix: the notebooks' install cell changed torch or torchvision\n")
        return False
    return ok


def install(name: str, python: Path, log, env: dict[str, str]) -> bool:
    """Install the environment's packages, then the package itself (editable, no dependencies)."""
    pip = [str(python), "-m", "pip", "install"]
    steps = []
    if name == "lock":
        steps.append([*pip, "-r", "requirements.txt"])
    elif name == HOSTED:  # the runtime's own packages first; the package comes in through a notebook
        steps.append([*pip, "--upgrade", "pip"])
        steps.append([*pip, *RUNTIME])
    elif name == "py312":
        steps.append([*pip, "--upgrade", "pip"])
        steps.append([*pip, "-e", ".[lab,test]"])  # a fresh environment: pip picks the newest allowed
    else:
        floors = OUT / "floors-requirements.txt"
        steps.append(
            [
                sys.executable,
                "-m",
                "uv",
                "pip",
                "compile",
                "pyproject.toml",
                "--extra",
                "lab",
                "--extra",
                "test",
                "--resolution",
                "lowest-direct",
                "--python-version",
                PYTHONS[name],
                "--quiet",
                "-o",
                str(floors),
            ]
        )
        steps.append([*pip, "-r", str(floors)])
    if name != HOSTED:
        steps.append([*pip, "--no-deps", "-e", "."])
        steps.append([str(python), "-m", "pip", "check"])
    return all(run(step, log, env) == 0 for step in steps)


def after_hosted(python: Path, log, env: dict[str, str]) -> bool:
    """The extras for the unit tests, installed as a user installs them (not editable), beside what the
    notebooks' install cell put there."""
    pip = [str(python), "-m", "pip", "install"]
    return run([*pip, ".[lab,test]"], log, env) == 0 and run([str(python), "-m", "pip", "check"], log, env) == 0


def installed_versions(python: Path, env: dict[str, str]) -> dict[str, str]:
    """Read back Python's version and the installed version of each package in SHOWN."""
    code = (
        "import json, platform; from importlib import metadata as m\n"
        "def v(n):\n    try: return m.version(n)\n    except m.PackageNotFoundError: return 'missing'\n"
        f"print(json.dumps({{'python': platform.python_version(), **{{n: v(n) for n in {SHOWN!r}}}}}))"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=OUT)
    return json.loads(result.stdout) if result.returncode == 0 else {"python": "?"}


def count(reports: list[Path]) -> dict[str, int]:
    """Passed, failed (failures and errors) and skipped tests from JUnit XML reports."""
    cases = [case for report in reports if report.exists() for case in ET.parse(report).getroot().iter("testcase")]
    failed = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    return {"passed": len(cases) - failed - skipped, "failed": failed, "skipped": skipped}


def free_gib(path: Path) -> float:
    """Free disk space, in GiB, on the file system that holds ``path``."""
    return shutil.disk_usage(path).free / 2**30


def log_tail(log_path: Path, lines: int = LOG_TAIL) -> str:
    """The last ``lines`` lines of a log, each indented, for the console."""
    text = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return "\n".join("    " + line for line in text)


def run_env(name: str, pytest_args: list[str], keep: bool = False) -> dict:
    """Build one environment from scratch and run the tests in it; return its row.

    The environment is deleted afterwards unless ``keep``; a failed install prints its log's end.
    """
    python_exe = find_python(name)
    venv = OUT / name
    guard = FileLock(OUT / f"{name}.lock")  # held until this process ends
    try:  # two matrix runs at once would delete each other's environment half-way through its install
        guard.acquire(timeout=0)
    except Timeout:
        raise SystemExit(f"test_matrix: another run is building '{name}' in {venv}; wait for it to end") from None
    shutil.rmtree(venv, ignore_errors=True)
    env = clean_environ()
    start = time.monotonic()
    log_path = OUT / f"{name}.log"
    with log_path.open("w", encoding="utf-8") as log:
        ok = run([python_exe, "-m", "venv", str(venv)], log, env) == 0
        python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        ok = ok and install(name, python, log, env)
        report = OUT / f"{name}.xml"
        reports = [report, *(OUT / f"{name}.xml-hosted-{i}.xml" for i in (1, 2))]
        for old in reports:
            old.unlink(missing_ok=True)
        status = "install failed"
        tests = PYTEST
        if ok and name == HOSTED:
            hosted = hosted_notebooks(python, log, env, str(report))
            ok = after_hosted(python, log, env)
            tests = [*PYTEST, "--ignore-glob=notebooks/0*.ipynb"]  # the lessons ran above, as on a hosted runtime
        versions = installed_versions(python, env) if ok else {}
        if ok:
            code = run([str(python), *tests, f"--junitxml={report}", *pytest_args], log, env)
            status = "passed" if code == 0 else f"failed (pytest exit {code})"
            if name == HOSTED and not hosted:
                status = "failed (the lessons as on a hosted runtime)"
    if not keep:
        shutil.rmtree(venv, ignore_errors=True)
    row = {
        "env": name,
        "status": status,
        "minutes": round((time.monotonic() - start) / 60, 1),
        "log": str(log_path),
        **versions,
        **count(reports),
    }
    print(
        f"test_matrix: {name}: {status}, {row['passed']} passed, {row['failed']} failed, {row['skipped']} skipped "
        f"({row['minutes']} min; log {log_path.relative_to(REPO)})",
        flush=True,
    )
    if status == "install failed":
        print(
            f"test_matrix: {name}: the install's last {LOG_TAIL} lines ({free_gib(OUT):.1f} GiB free on "
            f"{OUT.relative_to(REPO)}'s disk):\n{log_tail(log_path)}",
            flush=True,
        )
    return row


def table(rows: list[dict]) -> str:
    """A Markdown table: environment, installed versions, passed/failed."""
    heads = ["environment", "python", *SHOWN, "passed", "failed", "skipped", "result"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in rows:
        cells = [
            row["env"],
            row.get("python", "?"),
            *(row.get(n, "?") for n in SHOWN),
            row["passed"],
            row["failed"],
            row["skipped"],
            row["status"],
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def run_matrix(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="*", default=list(PYTHONS), choices=list(PYTHONS))
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. '-k env_check'")
    parser.add_argument("--keep", action="store_true", help="keep each environment (about 6 GB) after its tests")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    for env in args.envs:  # fail early, before any environment is built, when an interpreter is missing
        find_python(env)
    rows = [run_env(env, args.pytest_args.split(), keep=args.keep) for env in args.envs]
    text = table(rows)
    stamp = time.strftime("%Y-%m-%d")
    (OUT / "results.md").write_text(f"Version matrix, {stamp}\n\n{text}\n", encoding="utf-8")
    (OUT / "results.json").write_text(json.dumps({"date": stamp, "rows": rows}, indent=1), encoding="utf-8")
    print(f"\nVersion matrix, {stamp}\n{text}")
    passed, failed = sum(r["passed"] for r in rows), sum(r["failed"] for r in rows)
    print(f"matrix: {passed} passed, {failed} failed")
    return 0 if all(r["status"] == "passed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(run_matrix())
