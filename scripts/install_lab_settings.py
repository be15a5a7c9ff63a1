"""Copy lab-settings/overrides.json to where JupyterLab reads its default settings.

JupyterLab reads ``<prefix>/share/jupyter/lab/settings/overrides.json`` of the Python environment it
runs in (``sys.prefix``). This project's file turns off the Jupyter news popup and saves widget
state in notebooks (so a reopened notebook shows its widgets' last picture, not "Error displaying
widget: model not found").

Usage (pure Python, so it works the same on Linux, macOS and Windows, in a venv or a conda env)::

    python scripts/install_lab_settings.py            # into this Python's environment
    python scripts/install_lab_settings.py --prefix P # into the environment at P

`make lab` runs it; with conda, run it once after creating the environment.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "lab-settings" / "overrides.json"


def target(prefix: str | Path) -> Path:
    """Where JupyterLab in the environment at ``prefix`` looks for overrides.json."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def install_overrides(prefix: str | Path = sys.prefix, source: Path = SOURCE) -> Path:
    """Copy ``source`` to ``target(prefix)``, creating its folders; return the path written.

    Raises ValueError when ``source`` is not valid JSON (JupyterLab would ignore it silently).
    """
    try:
        json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON ({error}); fix it before installing it.") from None
    path = target(prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    return path


def run_from_shell(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=sys.prefix, help="the environment to install into (default: this Python's)")
    args = parser.parse_args(argv)
    print(f"JupyterLab settings installed: {install_overrides(args.prefix)}")


if __name__ == "__main__":
    run_from_shell()
