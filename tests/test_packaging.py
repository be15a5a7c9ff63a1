"""The built wheel: every module ships, Requires-Dist covers every import, and it works outside the repo.

The wheel is built from a copy of the sources in a temp folder (so no build/ or *.egg-info
lands in the repo), installed without -e into a fresh virtual environment, and imported
from a folder outside the repo. To avoid a 5 GB torch install, the fresh environment sees
this environment's third-party packages through a .pth file that holds a plain path line:
such a line adds the folder to sys.path without running the .pth files in it, so the
editable install of workflow_utils there stays out of the picture (checked below).
Select it alone with ``make test-wheel`` or ``pytest -m wheel``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "workflow_utils"

# Runs inside the fresh environment: imports every module, reports where things came from.
PROBE = """
import importlib, json, sys
from importlib import metadata
from packaging.requirements import Requirement
imported = {name: importlib.import_module(name).__file__ for name in sys.argv[1:]}
unmet = []
for line in metadata.requires("workflow_utils"):
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        version = None
    if version is None or not req.specifier.contains(version, prereleases=True):
        unmet.append(f"{line} (found {version})")
print(json.dumps({
    "files": imported,
    "dist_location": str(metadata.distribution("workflow_utils").locate_file("")),
    "editable_hooks": sorted(m for m in sys.modules if "__editable__" in m),
    "unmet": unmet,
    "version": sys.modules["workflow_utils"].__version__,
}))
"""


def source_modules() -> list[str]:
    """Return the wheel paths every .py file of the package must have, e.g. 'workflow_utils/exercises/ex01.py'."""
    return sorted(path.relative_to(REPO).as_posix() for path in PACKAGE_DIR.rglob("*.py"))


def module_name(wheel_path: str) -> str:
    """Turn 'workflow_utils/exercises/__init__.py' into 'workflow_utils.exercises'."""
    parts = wheel_path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def third_party_imports(exclude: set[str] = frozenset(), only: set[str] | None = None) -> set[str]:
    """Return the top-level names the package imports that are neither stdlib nor its own (of the modules named in
    ``only``, or of all but those in ``exclude``, by file name)."""
    names: set[str] = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        if path.name in exclude or (only is not None and path.name not in only):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"workflow_utils", "__future__"}


def runtime_requirements(metadata_text: str) -> dict[str, Requirement]:
    """Return {canonical name: requirement} for the Requires-Dist lines outside any extra."""
    reqs = [Requirement(line) for line in Parser().parsestr(metadata_text).get_all("Requires-Dist", [])]
    return {canonicalize_name(r.name): r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a temp copy of pyproject.toml and the package."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copytree(PACKAGE_DIR, src / "workflow_utils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)]
    result = subprocess.run(cmd, check=False, cwd=src, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (found,) = dist.glob("workflow_utils-*.whl")
    return found


@pytest.fixture(scope="module")
def wheel_metadata(wheel: Path) -> str:
    """Return the METADATA text inside the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return zf.read(name).decode("utf-8")


@pytest.fixture(scope="module")
def fresh_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the python of a new venv holding the wheel (no -e) and seeing our third-party packages."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    assert purelib.is_dir(), f"the fresh venv has no {purelib}"
    (purelib / "outer_site_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    # --ignore-installed: where the outer environment holds workflow_utils installed (not editable), as the
    # hosted-like matrix environment does, pip would call it satisfied and put nothing in the fresh venv.
    install = [*pip, "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    return python


def run_outside_repo(python: Path, *args: str) -> subprocess.CompletedProcess:
    """Run python isolated (-I: no cwd, no PYTHONPATH on sys.path) from a folder outside the repo."""
    workdir = python.parents[2]
    assert REPO not in workdir.parents, f"{workdir} must lie outside the repo"
    cmd = [str(python), "-I", "-B", *args]
    return subprocess.run(cmd, check=False, cwd=workdir, capture_output=True, text=True, timeout=300)


def test_wheel_ships_every_module(wheel: Path) -> None:
    """Every .py of the package, the exercises included, is in the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = [path for path in source_modules() if path not in names]
    assert missing == []
    exercises = sorted(n for n in names if n.startswith("workflow_utils/exercises/ex"))
    assert exercises == sorted(p for p in source_modules() if p.startswith("workflow_utils/exercises/ex"))
    assert len(exercises) >= 7  # one module per lesson notebook
    assert "workflow_utils/locked.txt" in names, "env_check's copy of the lock's pins is not in the wheel"


def pyproject() -> dict:
    """Return the [project] table of pyproject.toml (tomllib, or tomli on Python 3.10)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def import_owners() -> dict[str, set[str]]:
    """Map each top-level import name to the installed distributions that ship it.

    Read from each distribution's RECORD, not from `importlib.metadata.packages_distributions()`,
    which on Python 3.10 reads only `top_level.txt` (absent from many wheels, numpy's among them).
    """
    owners: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        for file in dist.files or []:
            top = file.parts[0] if file.parts else ""
            if top.endswith((".dist-info", ".egg-info", ".data")) or top in ("..", "__pycache__", ""):
                continue
            name = top[:-3] if top.endswith(".py") else top
            if name.isidentifier() and (len(file.parts) > 1 or top.endswith(".py")):
                owners.setdefault(name, set()).add(dist.metadata["Name"])
    return owners


def test_version_is_read_from_metadata(wheel_metadata: str) -> None:
    """pyproject.toml holds the one version: the wheel and workflow_utils.__version__ carry it."""
    import workflow_utils

    assert Parser().parsestr(wheel_metadata)["Version"] == pyproject()["version"]
    assert workflow_utils.__version__ == metadata.version("workflow_utils") == pyproject()["version"]


# Modules that run only with an extra installed, and the extra: their imports may come from it.
EXTRA_MODULES = {"grade.py": "lab"}  # the grader, which instructors run where the lab extra is installed


def extra_requirements(metadata_text: str, extra: str) -> set[str]:
    """The canonical names of the Requires-Dist lines of ``extra``."""
    reqs = [Requirement(line) for line in Parser().parsestr(metadata_text).get_all("Requires-Dist", [])]
    return {canonicalize_name(r.name) for r in reqs if r.marker is not None and r.marker.evaluate({"extra": extra})}


def test_requires_dist_covers_every_import(wheel_metadata: str) -> None:
    """Each third-party import of the package maps to a runtime Requires-Dist of the wheel; a module run only with
    an extra (EXTRA_MODULES) may also import what that extra requires."""
    required = runtime_requirements(wheel_metadata)
    owners = import_owners()
    imports = third_party_imports(exclude=set(EXTRA_MODULES))
    for module, extra in EXTRA_MODULES.items():
        covered = required.keys() | extra_requirements(wheel_metadata, extra)
        uncovered = {
            name: owners.get(name)
            for name in third_party_imports(only={module})
            if not {canonicalize_name(d) for d in owners.get(name, [])} & covered
        }
        assert uncovered == {}, f"{module}: add these to the {extra} extra in pyproject.toml"
    assert {"torch", "numpy", "matplotlib", "sklearn", "PIL", "tqdm", "ipywidgets", "packaging"} <= imports
    uncovered = {
        name: owners.get(name)
        for name in imports
        if not {canonicalize_name(d) for d in owners.get(name, [])} & required.keys()
    }
    assert uncovered == {}, "add these to [project] dependencies in pyproject.toml"


def test_installed_wheel_imports_every_module_outside_repo(wheel: Path, fresh_python: Path) -> None:
    """All modules, ex01..ex07 included, import from the fresh venv, not from the repo."""
    modules = [module_name(path) for path in source_modules()]
    result = run_outside_repo(fresh_python, "-c", PROBE, *modules)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    venv = fresh_python.parents[1]
    assert sorted(report["files"]) == sorted(modules) and len(modules) >= 18
    outside = {name: f for name, f in report["files"].items() if venv not in Path(f).parents}
    assert outside == {}, "modules imported from somewhere other than the fresh venv"
    assert venv in Path(report["dist_location"]).parents
    assert report["editable_hooks"] == [], "the repo's editable install leaked into the fresh venv"
    assert report["unmet"] == []
    assert report["version"] == pyproject()["version"]


def test_env_check_in_fresh_venv_lists_pyproject_floors(fresh_python: Path) -> None:
    """`python -m workflow_utils.env_check` from the wheel prints one [OK] line per pyproject floor."""
    deps = pyproject()["dependencies"]
    floors = [
        (r.name, s.version)
        for r in map(Requirement, deps)
        for s in r.specifier
        if s.operator == ">=" and r.name != "packaging"  # env_check's own import is not listed
    ]
    result = run_outside_repo(fresh_python, "-m", "workflow_utils.env_check")
    assert result.returncode == 0, result.stdout + result.stderr
    # [NOTE] lines name versions that are not the lock's: none in the course environment, some elsewhere
    lines = [line for line in result.stdout.splitlines() if not line.startswith("[NOTE] ")]
    assert lines[:-2] == [f"[OK] {name} >= {minimum}" for name, minimum in floors]
    assert lines[-2].startswith("[INFO] running on: ")  # where, the OS, Python, PyTorch, the accelerator
    assert lines[-1].startswith("[INFO] CPU math kernels: ")  # which kernels this machine uses
