"""Check that the packages the series needs are installed: one [OK]/[FAIL] line each.

Run it from a terminal with ``python -m workflow_utils.env_check``.
"""

from __future__ import annotations

from importlib import metadata

from packaging.version import InvalidVersion, Version

# distribution name -> lowest version the series is tested against
REQUIRED: dict[str, str] = {
    "torch": "2.6",
    "torchvision": "0.21",
    "numpy": "1.24",
    "matplotlib": "3.7",
    "scikit-learn": "1.3",
    "pillow": "10",
    "tqdm": "4.66",
    "ipywidgets": "8.1",
}


def check_package(name: str, minimum: str) -> tuple[bool, str]:
    """Return (ok, line) for one package; the line names the fix when it fails."""
    if not isinstance(name, str) or not isinstance(minimum, str):
        raise TypeError(f"name and minimum must be strings, got {name!r} and {minimum!r}; e.g. check_package('torch', '2.6').")
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        return False, f"[FAIL] {name} >= {minimum}: not installed; run `make install`"
    try:
        ok = Version(installed) >= Version(minimum)
    except InvalidVersion:
        ok = False
    if ok:
        return True, f"[OK] {name} >= {minimum}"
    return False, f"[FAIL] {name} >= {minimum}: found an older version; run `make install`"


def check_environment(required: dict[str, str] | None = None) -> bool:
    """Print one line per required package; return True when all are fine."""
    results = [check_package(name, minimum) for name, minimum in (required or REQUIRED).items()]
    for _, line in results:
        print(line)
    return all(ok for ok, _ in results)


if __name__ == "__main__":
    raise SystemExit(0 if check_environment() else 1)
