"""One meaning per name within a notebook: a later part never rebinds a name an earlier part bound.

A notebook has up to three parts: part 1 (the straight line), part 2 (from the "# Part 2" heading: digits) and
the exercises (from the "## Exercises" heading). After Run All, an exercise that uses part 1's `loss_fn` must
get part 1's, not the cross-entropy loss part 2 bound to the same name (06's exercise 2 once stored -0.0 that way,
and 04's exercise 1 raised a cross-entropy error that never mentioned the rebinding). So part 2 gives its objects
names of their own, and this test reads every notebook's code with `ast` and fails on a rebinding.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Names whose meaning cannot change between parts: the figure being drawn, and the number of the epoch a loop is in.
SAME_MEANING_EVERYWHERE = {"fig", "ax", "axes", "epoch", "_"}
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def module_bindings(source: str) -> dict[str, str]:
    """{name: what binds it} for the names a cell binds at module level ("import x.y" for imports, else "value").

    Names bound inside functions, classes, lambdas and comprehensions are their own scope's, not the notebook's.
    """
    found: dict[str, str] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = "value"
            return
        if isinstance(node, (ast.Lambda, *COMPREHENSIONS)):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            for alias in node.names:
                name = (alias.asname or alias.name).split(".")[0]
                found[name] = f"import {module}.{alias.name}" if module else f"import {alias.name}"
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found[node.id] = "value"
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def parts(cells: list[dict]) -> list[tuple[str, str]]:
    """(part, source) for each code cell, in order."""
    part, out = "part 1", []
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            if text.startswith("# Part 2"):
                part = "part 2"
            elif "## Exercises" in text.splitlines():
                part = "exercises"
        elif cell["cell_type"] == "code":
            out.append((part, text))
    return out


def rebindings(cells: list[dict]) -> list[str]:
    """Each name a later part binds again after an earlier part bound it (the same import excepted)."""
    first: dict[str, tuple[str, str]] = {}
    clashes = []
    for part, source in parts(cells):
        for name, how in module_bindings(source).items():
            if name in first and first[name][0] != part and name not in SAME_MEANING_EVERYWHERE:
                earlier_part, earlier_how = first[name]
                if not (how == earlier_how and how.startswith("import")):
                    clashes.append(f"{name!r}: bound in {earlier_part}, bound again in {part}")
            first.setdefault(name, (part, how))
    return sorted(set(clashes))


def code(*sources: str) -> list[dict]:
    return [{"cell_type": "code", "source": s} for s in sources]


def heading(text: str) -> dict:
    return {"cell_type": "markdown", "source": text}


def test_the_check_finds_a_rebinding_and_nothing_else():
    cells = [
        *code("import torch\nloss_fn = torch.nn.L1Loss()\nfor epoch in range(3): pass\nfig, ax = 1, 2"),
        heading("# Part 2 · Digits\n\ntext"),
        *code(
            "import torch\nloss_fn = torch.nn.CrossEntropyLoss()",  # the rebinding; the same import is fine
            "def f(loss_fn):\n    X = 1\n    return X",  # a function's own names
            "best = [X for X in range(3)]\nfor epoch in range(2): pass\nfig, ax = 3, 4",
        ),
        heading("## Recap\n\ntext\n\n## Exercises\n\nReplace the Nones"),
        *code("X = 5"),
    ]
    assert rebindings(cells) == ["'loss_fn': bound in part 1, bound again in part 2"]
    assert rebindings(cells[:1] + cells[4:]) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_part_rebinds_a_name_of_an_earlier_part(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    clashes = rebindings(cells)
    assert not clashes, f"{path.name}: give the later part's object its own name: {clashes}"
