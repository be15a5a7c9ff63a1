"""Check that the packages the series needs are installed: one [OK]/[FAIL] line each.

Run it from a terminal with ``python -m workflow_utils.env_check``. The list is not kept
here: it is read from the installed package's metadata, i.e. from ``dependencies`` in
``pyproject.toml`` as of the last ``make install``. A dependency without a ``>=`` floor
(``packaging``, which this module imports itself) is not listed.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

PACKAGE = "workflow_utils"


def lower_bound(requirement: str) -> tuple[str, str] | None:
    """Return (name, minimum) for a runtime 'name>=minimum' requirement, else None."""
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None  # an optional extra (lab, test, ui) or another platform's package
    floors = [spec.version for spec in req.specifier if spec.operator == ">="]
    return (req.name, floors[0]) if floors else None


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
    if ok:
        return True, f"[OK] {name} >= {minimum}"
    return False, f"[FAIL] {name} >= {minimum}: found an older version; run `make install`"


def check_environment(required: dict[str, str] | None = None) -> bool:
    """Print one line per required package; return True when all are fine."""
    if required is None:
        try:
            required = required_packages(PACKAGE)
        except metadata.PackageNotFoundError:
            print(f"[FAIL] {PACKAGE}: not installed, so its requirements are unknown; run `make install`")
            return False
    results = [check_package(name, minimum) for name, minimum in required.items()]
    for _, line in results:
        print(line)
    return all(ok for ok, _ in results)


if __name__ == "__main__":
    raise SystemExit(0 if check_environment() else 1)
