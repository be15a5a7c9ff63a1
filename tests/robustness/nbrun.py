"""Run copies of the notebooks in fresh folders and compare their text outputs with the stored ones.

Compared, after nbval's stream merging and the sanitize rules of ``tests/nbval_sanitize.cfg``: stream
text (stdout and stderr), ``text/plain`` of displays and results, and each error's ``ename`` and
``evalue``. Images and widget state are skipped, as strict nbval skips them.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbval.plugin import coalesce_streams, get_sanitize_patterns

ROOT = Path(__file__).resolve().parents[2]
# ROBUST_NOTEBOOK_DIR runs the checks on another copy of the series, e.g. the last commit's.
NOTEBOOK_DIR = Path(os.environ.get("ROBUST_NOTEBOOK_DIR") or ROOT / "notebooks")
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
SANITIZE = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text())
SITECUSTOMIZE = Path(__file__).with_name("netblock_sitecustomize.py")
TIMEOUT = 600


def fresh_folder(parent: Path) -> Path:
    """A copy of the notebooks folder as a fresh clone has it: the .ipynb files, no data/ or models/."""
    folder = parent / "notebooks"
    folder.mkdir()
    for name in NOTEBOOKS:
        shutil.copy2(NOTEBOOK_DIR / name, folder / name)
    return folder


def offline_env(tmp: Path) -> dict[str, str]:
    """The current environment plus a sitecustomize that blocks every non-loopback connection."""
    site_dir = tmp / "netblock"
    site_dir.mkdir(exist_ok=True)
    shutil.copy(SITECUSTOMIZE, site_dir / "sitecustomize.py")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site_dir), env.get("PYTHONPATH", "")) if p)
    return env


def _sanitize(text: str) -> str:
    for regex, replace in SANITIZE:
        text = re.sub(regex, replace, text)
    return text


def text_outputs(nb: nbformat.NotebookNode, sanitize: bool = True) -> list[list[tuple[str, ...]]]:
    """Per code cell, the comparable text of its outputs in order (none for cells nbval is told to ignore)."""
    clean = _sanitize if sanitize else (lambda s: s)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        items: list[tuple[str, ...]] = []
        if "nbval-ignore-output" in cell.get("metadata", {}).get("tags", []):
            cells.append(items)  # timings and the like: nbval does not compare them either
            continue
        for out in coalesce_streams(copy.deepcopy(cell.get("outputs", []))):
            if out.output_type == "stream":
                items.append(("stream", out.name, clean(out.text)))
            elif out.output_type in ("display_data", "execute_result"):
                if "text/plain" in out.get("data", {}):
                    items.append((out.output_type, clean(out.data["text/plain"])))
            elif out.output_type == "error":
                items.append(("error", out.ename, clean(out.evalue)))
        cells.append(items)
    return cells


def differences(name: str, executed: nbformat.NotebookNode, folder: Path) -> list[str]:
    """Mismatches between an executed notebook and the outputs stored in its copy ``folder/name``.

    The copy is a snapshot of notebooks/ taken when the folder was made, so edits to the
    originals during a run do not count against it.
    """
    want = text_outputs(nbformat.read(folder / name, as_version=4))
    got = text_outputs(executed)
    if len(want) != len(got):
        return [f"{name}: {len(got)} code cells, stored {len(want)}"]
    return [
        f"{name} code cell {i}:\n  stored:   {w!r}\n  executed: {g!r}"
        for i, (w, g) in enumerate(zip(want, got))
        if w != g
    ]


def _client(name: str, folder: Path) -> NotebookClient:
    nb = nbformat.read(folder / name, as_version=4)  # the stored notebook, outputs and all
    return NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT, resources={"metadata": {"path": str(folder)}})


async def run_async(name: str, folder: Path, env: dict[str, str] | None = None) -> tuple[nbformat.NotebookNode, float]:
    """Execute ``folder/name`` in a fresh kernel; return the executed notebook and the seconds taken."""
    client = _client(name, folder)
    start = time.perf_counter()
    kwargs = {"env": env} if env is not None else {}
    nb = await client.async_execute(**kwargs)
    return nb, time.perf_counter() - start


def run(name: str, folder: Path, env: dict[str, str] | None = None) -> tuple[nbformat.NotebookNode, float]:
    return asyncio.run(run_async(name, folder, env))


def run_series(names: list[str], folder: Path, env: dict[str, str] | None = None):
    """Run ``names`` one after another in ``folder``; return ``{name: (notebook, seconds)}`` and the mismatches."""
    results, problems = {}, []
    for name in names:
        try:
            nb, seconds = run(name, folder, env)
        except Exception as exc:  # a cell raised: report it with the others
            problems.append(f"{name}: execution failed: {type(exc).__name__}: {str(exc)[-2000:]}")
            continue
        results[name] = (nb, seconds)
        problems += differences(name, nb, folder)
    return results, problems
