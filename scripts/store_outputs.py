"""Store each executed notebook as a reader sees it (`make notebooks` runs it after executing them).

    python scripts/store_outputs.py NOTEBOOK...            # rewrite them in place
    python scripts/store_outputs.py --check NOTEBOOK...    # exit 1, naming each one not stored this way

Run it on a notebook nbconvert has just executed (`make notebooks` does both), not on one saved from
JupyterLab after a slider moved: it keeps the picture each widget showed last.

Two things an executed notebook holds that a reader should not meet:

- a live widget, stored as a view of a model kept in the notebook's metadata. JupyterLab marks such a
  notebook modified the moment it opens (its widget manager restores the models) and asks to save it
  on close; GitHub, Colab before a run, or an untrusted notebook show only the widget's text.
  ``static_view.store_widgets`` keeps instead the picture or table each widget gives beside its view
  (``workflow_utils.widgets``) and removes the models;
- one print split over two stream outputs, when the kernel sent it in two pieces: JupyterLab shows them
  as one. nbconvert's ``CoalesceStreamsPreprocessor`` joins them (as a ``--execute`` option it runs
  before the execution, on the old outputs, so it is run here, after).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "slides"))
import static_view  # noqa: E402


def holds_live_widgets(nb) -> bool:
    """Whether a notebook node still stores a widget view or widget models."""
    return "widgets" in nb.metadata or any(
        static_view.WIDGET_VIEW in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", [])
    )


def stored(nb):
    """A copy of notebook node ``nb`` as it should be stored: widgets as pictures, streams joined."""
    nb = copy.deepcopy(nb)
    static_view.store_widgets(nb)
    CoalesceStreamsPreprocessor().preprocess(nb, {})
    return nb


def _text(nb) -> str:
    return nbformat.writes(nb) + "\n"  # as nbformat.write (and so nbconvert) writes a file


def store_cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each notebook to store")
    args = parser.parse_args(argv)
    unstored = []
    for path in args.notebooks:
        text = _text(stored(nbformat.read(path, as_version=4)))
        if text == path.read_text(encoding="utf-8"):
            continue
        unstored.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: stored as a reader sees it")
    if args.check and unstored:
        for path in unstored:
            print(f"{path}: not stored as a reader sees it; refresh it with `make notebooks`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(store_cli())
