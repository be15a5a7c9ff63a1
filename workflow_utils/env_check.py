"""Check that the packages the series needs are installed: one [OK]/[FAIL] line each.

Run it from a terminal with ``python -m workflow_utils.env_check``. The list is not kept
here: it is read from the installed package's metadata, i.e. from ``dependencies`` in
``pyproject.toml`` as of the last ``make install``. ``packaging``, which this module imports
itself, is not listed. Each package is also looked up as Python would import it, so a student's
own ``tqdm.py`` that hides the installed ``tqdm`` is a failure, not an ``[OK]``.

The package carries the lock's pins (``locked.txt``, written by ``make lock`` from
``requirements.txt``), so on a laptop or a hosted runtime alike a ``[NOTE]`` line follows for each listed package whose installed version differs from the lock's:
the notebooks' stored outputs were made with the lock, so printed numbers may differ in the last
digit. An ``[INFO]`` line says where this runs (Colab, Kaggle, CI or local), the OS, Python, PyTorch's
version and the accelerator, for a bug report; a last ``[INFO]`` line names the CPU math kernels
PyTorch picked on this machine and its thread count: why a figure a notebook says "can differ between
machines" differs here. Used in 00_start_here, "Check your environment".
"""

from __future__ import annotations

import importlib.util
import os
import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

PACKAGE = "workflow_utils"
NOT_LISTED = {"packaging"}  # env_check imports it itself: were it missing, this module could not run
# The name `import` uses, where it is not the distribution's name.
IMPORT_NAMES = {"scikit-learn": "sklearn", "pillow": "PIL"}
LOCK = Path(__file__).with_name("locked.txt")  # the lock's pins, carried by the package
LOCK_PIN = re.compile(r"^[A-Za-z0-9][\w.-]*==")


def lower_bound(requirement: str) -> tuple[str, str] | None:
    """Return (name, minimum) for a runtime 'name>=minimum' requirement, else None."""
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None  # an optional extra (lab, test, ui) or another platform's package
    floors = [spec.version for spec in req.specifier if spec.operator == ">="]
    return (req.name, floors[0]) if floors and req.name not in NOT_LISTED else None


def required_packages(package: str = PACKAGE) -> dict[str, str]:
    """Return {distribution: minimum} from the installed package's runtime requirements."""
    pairs = (lower_bound(line) for line in metadata.requires(package) or [])
    return dict(pair for pair in pairs if pair is not None)


def check_package(name: str, minimum: str) -> tuple[bool, str]:
    """Return (ok, line) for one package; the line names the fix when it fails."""
    if not isinstance(name, str) or not isinstance(minimum, str):
        raise TypeError(
            f"name and minimum must be strings, got {name!r} and {minimum!r}; e.g. check_package('torch', '2.6')."
        )
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        return False, f"[FAIL] {name} >= {minimum}: not installed; run `make install`"
    try:
        ok = Version(installed) >= Version(minimum)
    except InvalidVersion:
        ok = False
    if not ok:
        return False, f"[FAIL] {name} >= {minimum}: found an older version; run `make install`"
    shadow = shadowing_file(name)
    if shadow is not None:
        return False, (
            f"[FAIL] {name} >= {minimum}: `import {import_name(name)}` finds {shadow}, not the installed "
            "package; rename that file or folder"
        )
    return True, f"[OK] {name} >= {minimum}"


def import_name(name: str) -> str:
    """The module name `import` uses for a distribution (``scikit-learn`` -> ``sklearn``)."""
    return IMPORT_NAMES.get(name.lower(), name.replace("-", "_"))


def shadowing_file(name: str) -> str | None:
    """Return the file that `import` would load instead of the installed distribution, or None.

    The module is located as Python would import it (the current folder first), without running it.
    """
    try:
        spec = importlib.util.find_spec(import_name(name))
        location = Path(metadata.distribution(name).locate_file("")).resolve()
    except (ImportError, ValueError, metadata.PackageNotFoundError):
        return None
    origin = spec.origin if spec is not None and spec.origin not in (None, "namespace") else None
    if origin is None:
        return None
    found = Path(origin).resolve()
    return None if location in found.parents else str(found)


def locked_versions(lock: Path | None = None) -> dict[str, str]:
    """Return {distribution: version} pinned by the lock (default: the package's copy), or {} without one."""
    try:
        text = (LOCK if lock is None else lock).read_text(encoding="utf-8")
    except OSError:
        return {}
    if "make lock" not in text.partition("\n\n")[0]:
        return {}  # a requirements.txt that is not ours
    pinned = {}
    for line in text.splitlines():
        if LOCK_PIN.match(line):  # "name==version ; marker \\": the marker picks this Python's line
            req = Requirement(line.rstrip(" \\"))
            if req.marker is None or req.marker.evaluate():
                pinned[req.name.lower()] = next(iter(req.specifier)).version
    return pinned


def lock_notes(names: list[str], locked: dict[str, str], where: str = "local") -> list[str]:
    """``[NOTE]`` lines for the packages whose installed release is not the lock's: one per package, each
    naming `make install`; on Colab or Kaggle, which keep their own versions, one line that says so.

    A local build label is not a difference: PyTorch's CPU-only build of the locked 2.15.0 is "2.15.0+cpu".
    """
    differ = []
    for name in names:
        pinned = locked.get(name.lower())
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if pinned is not None and _release(installed) != _release(pinned):
            differ.append((name, installed, pinned))
    if differ and where in ("Colab", "Kaggle"):
        return [
            f"[NOTE] {len(differ)} of these packages are not the lock's versions, as expected on {where}, which "
            "keeps its own: printed numbers may differ in the last printed digit"
        ]
    return [
        f"[NOTE] {name} {installed} is installed, the lock has {pinned}: printed numbers "
        "may differ in the last printed digit (`make install` installs the lock)"
        for name, installed, pinned in differ
    ]


def _release(version: str) -> str:
    """The version without a local build label ("2.15.0+cpu" -> "2.15.0")."""
    try:
        return Version(version).public
    except InvalidVersion:
        return version


def where_running(environ=None) -> str:
    """Colab, Kaggle, CI or local, read from the variables each sets (``COLAB_RELEASE_TAG``,
    ``KAGGLE_KERNEL_RUN_TYPE``, ``CI=true``)."""
    environ = os.environ if environ is None else environ
    if environ.get("COLAB_RELEASE_TAG"):
        return "Colab"
    if environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "Kaggle"
    if environ.get("CI", "").lower() == "true":
        return "CI"
    return "local"


def platform_line() -> str:
    """One ``[INFO]`` line for a bug report: where this runs, the OS, Python, PyTorch and its accelerator."""
    import platform

    system = platform.system()
    os_name = f"macOS {platform.mac_ver()[0]}" if system == "Darwin" else f"{system} {platform.release()}"
    try:
        import torch
    except Exception:  # noqa: BLE001 - a missing or broken torch is reported by its own [FAIL] line
        torch_part = "PyTorch did not import"
    else:
        try:
            if torch.cuda.is_available():
                kind = "ROCm" if getattr(torch.version, "hip", None) else "CUDA"
                accelerator = f"{kind} ({torch.cuda.get_device_name(0)})"
            elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                accelerator = "Apple GPU (mps)"
            else:
                accelerator = "none (CPU only)"
        except Exception as exc:  # noqa: BLE001 - a GPU that fails to answer is worth reporting as such
            accelerator = f"error ({type(exc).__name__})"
        torch_part = f"PyTorch {torch.__version__}, accelerator: {accelerator}"
    return (
        f"[INFO] running on: {where_running()}, {os_name} {platform.machine()}, "
        f"Python {platform.python_version()}, {torch_part}"
    )


def kernels_line() -> str:
    """One ``[INFO]`` line: the CPU kernels PyTorch uses here (``torch.backends.cpu``), MKL or not, threads.

    Different kernels add numbers in a different order, so the last bits of a float32 result differ between
    machines; the notebooks print only the digits that every kernel agrees on. ``MKL_CBWR`` and
    ``ATEN_CPU_CAPABILITY`` (which force a kernel) are named when set.
    """
    try:
        import torch
    except Exception:  # noqa: BLE001 - a missing or broken torch is reported by its own [FAIL] line
        return "[INFO] CPU math kernels: unknown (PyTorch did not import)"
    forced = [f"{name}={os.environ[name]}" for name in ("ATEN_CPU_CAPABILITY", "MKL_CBWR") if os.environ.get(name)]
    mkl = "with MKL" if torch.backends.mkl.is_available() else "without MKL"
    threads = torch.get_num_threads()
    return (
        f"[INFO] CPU math kernels: {torch.backends.cpu.get_cpu_capability()} {mkl}, {threads} "
        f"thread{'s' if threads != 1 else ''}" + (f" (forced: {', '.join(forced)})" if forced else "")
    )


def check_environment(required: dict[str, str] | None = None) -> bool:
    """Print one line per required package, then lock notes; return True when all are fine."""
    if required is None:
        try:
            required = required_packages(PACKAGE)
        except metadata.PackageNotFoundError:
            print(f"[FAIL] {PACKAGE}: not installed, so its requirements are unknown; run `make install`")
            print(platform_line())
            return False
    results = [check_package(name, minimum) for name, minimum in required.items()]
    for _, line in results:
        print(line)
    for line in lock_notes(list(required), locked_versions(), where_running()):
        print(line)
    print(platform_line())
    print(kernels_line())
    return all(ok for ok, _ in results)


if __name__ == "__main__":
    raise SystemExit(0 if check_environment() else 1)
