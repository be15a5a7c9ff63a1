"""Promises about the code itself: fit reads on one screen, one name per idea, docstrings point at the lesson."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

import workflow_utils
from workflow_utils import checkpoint, data, device, engine, evaluation, models, plotting

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def test_fit_reads_on_one_screen():
    lines = inspect.getsource(engine.fit).splitlines()
    assert len(lines) <= 50, f"fit is {len(lines)} lines; move a concern into a small named step"


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_no_name_is_defined_in_two_places():
    files = [
        *Path(workflow_utils.__file__).parent.rglob("*.py"),
        *(ROOT / "benchmarks").glob("*.py"),
        *(ROOT / "scripts").glob("*.py"),
    ]
    seen: dict[str, Path] = {}
    clashes = []
    for path in files:
        for name in _top_level_names(path):
            if name in seen:
                clashes.append(f"{name}: {seen[name].relative_to(ROOT)} and {path.relative_to(ROOT)}")
            seen[name] = path
    assert not clashes, clashes


def _headings(notebook: str) -> set[str]:
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text())["cells"]
    return {
        line.lstrip("#").strip()
        for cell in cells
        if cell["cell_type"] == "markdown"
        for line in "".join(cell["source"]).splitlines()
        if line.startswith("#")
    }


BACKLINK = re.compile(r'(\d\d_[a-z_]+), "([^"]+)"')  # 04_training_loop, "The loop, by hand"


def _public_helpers():
    for module in (device, data, models, engine, evaluation, plotting, checkpoint):
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module.__name__.split('.')[-1]}.{name}", obj


@pytest.mark.parametrize(("name", "obj"), list(_public_helpers()), ids=[n for n, _ in _public_helpers()])
def test_each_public_helper_names_the_lesson_that_writes_it_by_hand(name, obj):
    doc = inspect.getdoc(obj) or ""
    links = BACKLINK.findall(" ".join(doc.split()))
    assert links, (
        f"{name}: its docstring should say where the idea is written by hand, e.g. 'Written by hand in 04_training_loop, \"The loop, by hand\"'"
    )
    for notebook, heading in links:
        assert heading in _headings(notebook), f"{name}: {notebook} has no section {heading!r}"


def test_the_training_script_module_names_its_lesson():
    """workflow_utils.train_digits, the script 08 runs (a module, so an installed package carries it), links back."""
    from workflow_utils import train_digits

    assert Path(train_digits.__file__).parent == Path(workflow_utils.__file__).parent  # scanned above with the package
    links = BACKLINK.findall(" ".join((train_digits.__doc__ or "").split()))
    assert ("08_scaling_up", "1. From notebook to script") in links
    for notebook, heading in links:
        assert heading in _headings(notebook), f"train_digits: {notebook} has no section {heading!r}"
