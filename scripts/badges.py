"""`make badges`: the "Open in Colab / Kaggle / Studio Lab" links and the install cell of every lesson.

    python scripts/badges.py            # write them from pyproject.toml's [project.urls] Source
    python scripts/badges.py --check    # exit 1, naming each file, when a notebook or README.md drifted

One setting drives everything: ``Source`` under ``[project.urls]`` in pyproject.toml, the repository's
``https://github.com/OWNER/NAME`` address (a fork sets its own and gets its own links). From it each
lesson notebook (notebooks/0*.ipynb) gets, right after its title cell,

- a links cell: Colab, Kaggle and SageMaker Studio Lab open the notebook from GitHub's ``main`` branch;
  plain links, not badge pictures, so that nothing is fetched from the web when a notebook is read;
- an install cell: when ``workflow_utils`` is missing (a hosted runtime has torch but not this
  package) it installs the package from ``git+`` that address, pinning the runtime's own torch and
  torchvision so that pip may not install, upgrade or downgrade them, and it says when the runtime
  must be restarted. Where the package is installed (a laptop after `make install`) it does nothing
  and prints nothing, so its stored output is empty everywhere. ``WORKFLOW_UTILS_SOURCE`` replaces
  the address, so tests install from a local stand-in (a wheel or a local git repository).

README.md gets a table of the same links between its ``<!-- badges:start -->`` and ``<!-- badges:end -->``
lines. While Source is empty (nothing is published yet) no address is invented: the links cell and the
README say in one line how a publisher sets it, the install cell says so when the package is missing,
and `make badges` writes only that form and fails with one line naming the setting; ``--check`` checks
either form.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SETTING = "Source under [project.urls] in pyproject.toml"
GITHUB = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9][\w.-]*)/(?P<name>[\w.-]+?)(?:\.git)?/?")
BRANCH = "main"
START, END = "<!-- badges:start -->", "<!-- badges:end -->"
HOW_TO_SET = (
    "a publisher sets `Source` under `[project.urls]` in `pyproject.toml` to the repository's "
    "`https://github.com/OWNER/NAME` address and runs `make badges`"
)
# The metadata that marks the generated cells, so that a rerun replaces them in place.
MARK = "generated_by"
LINKS, INSTALL = "scripts/badges.py links", "scripts/badges.py install"

INSTALL_CELL = """\
# @title Install the course package where it is missing (Colab, Kaggle...)
# You need not read this cell. Where workflow_utils is installed (after the
# README's install) it does nothing. On a hosted runtime it installs it once,
# keeping the runtime's own torch and torchvision exactly as they are.
import importlib.util

# where to install it from; `make badges` writes it from pyproject.toml
SOURCE = "{source}"
RESTART = ("restart the runtime (Colab: Runtime > Restart session), then run "
           "the notebook from the top.")
OFFLINE = ("Could not resolve", "unable to access", "new connection")


def install_course_package():
    \"\"\"pip install workflow_utils from SOURCE; torch and torchvision stay.\"\"\"
    import os
    import subprocess
    import sys
    from importlib import metadata

    source = os.environ.get("WORKFLOW_UTILS_SOURCE") or SOURCE  # tests: a copy
    if not source:
        raise SystemExit("workflow_utils is not installed, and this copy names "
                         "no source for it: install it as the README says (or "
                         "set Source in pyproject.toml and run make badges)")
    pair = ("torch", "torchvision")
    lacking = [n for n in pair if not importlib.util.find_spec(n)]
    if lacking:
        raise SystemExit(f"this runtime lacks {{' and '.join(lacking)}}: "
                         "install PyTorch first (pytorch.org), then run this "
                         "cell again")
    keep = [f"{{n}}=={{metadata.version(n)}}" for n in pair]

    def versions():  # of each distribution, the copy that imports (the first)
        found = reversed(list(metadata.distributions()))
        return {{d.name: d.version for d in found}}

    before = versions()
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                          source, *keep], capture_output=True, text=True)
    if pip.returncode:
        offline = any(words in pip.stderr for words in OFFLINE)
        raise SystemExit(
            f"pip could not install workflow_utils beside {{keep[0]}}"
            + (" (no connection: on Kaggle, turn Internet on in the "
               "notebook's settings)" if offline else "")
            + "; pip said:\\n" + pip.stderr[-1500:])
    importlib.invalidate_caches()
    owners = metadata.packages_distributions()  # module -> distributions
    loaded = {{d for m in list(sys.modules) for d in owners.get(m, [])}}
    after = versions()
    changed = sorted(d for d in loaded if before.get(d) != after.get(d))
    if changed:
        print(f"Installed; pip also changed {{', '.join(changed)}}, which this "
              f"kernel had loaded: {{RESTART}}")
    elif importlib.util.find_spec("workflow_utils") is None:
        print(f"Installed where this kernel does not look yet: {{RESTART}}")


if importlib.util.find_spec("workflow_utils") is None:
    install_course_package()
"""


def source_url(pyproject: Path) -> str:
    """The declared repository address, or "" while none is set."""
    urls = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"].get("urls", {})
    return urls.get("Source", "").strip()


def github_repo(url: str) -> str:
    """``OWNER/NAME`` from a GitHub address; one line naming the setting for anything else."""
    match = GITHUB.fullmatch(url)
    if not match:
        raise SystemExit(
            f"badges: {SETTING} is {url!r}; Colab, Kaggle and Studio Lab open notebooks from GitHub, "
            "so it must read https://github.com/OWNER/NAME"
        )
    return f"{match['owner']}/{match['name']}"


def open_links(repo: str, notebook: str) -> dict[str, str]:
    """Where each hosted runtime opens ``notebooks/<notebook>`` of ``repo`` on GitHub."""
    path = f"{repo}/blob/{BRANCH}/notebooks/{notebook}"
    return {
        "Colab": f"https://colab.research.google.com/github/{path}",
        "Kaggle": f"https://kaggle.com/kernels/welcome?src=https://github.com/{path}",
        "Studio Lab": f"https://studiolab.sagemaker.aws/import/github/{path}",
    }


def links_cell_text(repo: str | None, notebook: str) -> str:
    if repo is None:
        return (
            "*Colab, Kaggle, Studio Lab:* this copy has no links to them yet, so run the notebook on your own "
            "machine as the README says. (A publisher adds the links by setting `Source` in `pyproject.toml`'s "
            "`[project.urls]` and running `make badges`.)"
        )
    links = " · ".join(f"[{where}]({url})" for where, url in open_links(repo, notebook).items())
    return f"**Open this notebook in** {links} (its first code cell installs the course package there)."


def install_cell_text(repo: str | None) -> str:
    source = f"git+https://github.com/{repo}@{BRANCH}" if repo else ""
    return INSTALL_CELL.format(source=source)


def _cell(kind: str, role: str, text: str) -> dict:
    meta = {MARK: role, "slideshow": {"slide_type": "skip"}}
    if kind == "code":  # folded in JupyterLab, a form on Colab (the title line shows); not in the book
        meta.update(cellView="form", jupyter={"source_hidden": True}, tags=["remove-cell"])
        return {
            "cell_type": "code",
            "execution_count": None,
            "id": role.split()[-1],
            "metadata": meta,
            "outputs": [],
            "source": text.splitlines(keepends=True),
        }
    if "](" not in text:  # no links yet: nothing for the book's reader, who reads it on the web
        meta["tags"] = ["remove-cell"]
    return {"cell_type": "markdown", "id": role.split()[-1], "metadata": meta, "source": text.splitlines(keepends=True)}


def with_cells(notebook: dict, repo: str | None, name: str) -> dict:
    """The notebook with its links and install cells (re)written right after its title cell."""
    cells = [c for c in notebook["cells"] if c["metadata"].get(MARK) not in (LINKS, INSTALL)]
    old = {c["metadata"].get(MARK): c for c in notebook["cells"]}
    install = _cell("code", INSTALL, install_cell_text(repo))
    if INSTALL in old:  # keep what the last run stored; strict nbval compares it
        install["outputs"], install["execution_count"] = old[INSTALL]["outputs"], old[INSTALL]["execution_count"]
    notebook = {
        **notebook,
        "cells": [cells[0], _cell("markdown", LINKS, links_cell_text(repo, name)), install, *cells[1:]],
    }
    return notebook


def lesson_title(notebook: dict) -> str:
    return "".join(notebook["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()


def readme_block(repo: str | None, lessons: list[tuple[str, str]]) -> str:
    if repo is None:
        return f"No *Open in Colab / Kaggle / Studio Lab* links yet: {HOW_TO_SET}."
    rows = ["| Notebook | Open in |", "|---|---|"]
    for name, title in lessons:
        rows.append(f"| {title} | " + " · ".join(f"[{w}]({u})" for w, u in open_links(repo, name).items()) + " |")
    return "\n".join(rows)


def expected(root: Path, repo: str | None) -> dict[Path, str]:
    """Every generated file's full text for ``repo`` (None: no address set)."""
    files, lessons = {}, []
    for path in sorted((root / "notebooks").glob("0*.ipynb")):
        notebook = with_cells(json.loads(path.read_text(encoding="utf-8")), repo, path.name)
        files[path] = json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"  # as nbformat writes
        lessons.append((path.name, lesson_title(notebook)))
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"badges: README.md lacks the lines {START} and {END} that hold the links table")
    head, _, rest = text.partition(START)
    files[readme] = f"{head}{START}\n{readme_block(repo, lessons)}\n{END}{rest.partition(END)[2]}"
    return files


def badges_cli(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each file that drifted")
    args = parser.parse_args(argv)
    url = source_url(root / "pyproject.toml")
    repo = github_repo(url) if url else None
    files = expected(root, repo)
    drifted = [path for path, text in files.items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in drifted:
            print(f"badges: {path.relative_to(root)} differs from what `make badges` writes; run it", file=sys.stderr)
        return 1 if drifted else 0
    for path in drifted:
        path.write_text(files[path], encoding="utf-8")
        print(f"badges: wrote {path.relative_to(root)}")
    if repo is None:  # the placeholders say how to set it; no link is made up
        print(
            f"badges: {SETTING} is empty, so there is no address to link to: set it, then run `make badges`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(badges_cli())
