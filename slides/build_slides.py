"""Build one reveal.js deck per notebook that works offline: ``make slides``.

    python slides/build_slides.py [--out build/slides] [--fetch-only] [notebook.ipynb ...]

Each deck is ``<out>/<notebook>.slides.html`` (solutions under ``<out>/solutions/``), with
``index.html`` listing them. The decks load reveal.js and MathJax from folders copied next to
them, never from a CDN, so the ``<out>`` folder can be zipped, copied to a USB stick, and opened
from disk in a classroom with no network. Press S in a deck for the speaker view with notes.

reveal.js comes from the npm registry, once: the tarball is checked against a pinned SHA-512 and
unpacked into this Python environment (``<sys.prefix>/share/pytorch-workflow/``), which
``make install`` does for you; later builds need no network. MathJax comes from the
``jupyter-server-mathjax`` package in requirements.txt.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import npm_package  # noqa: E402  (slides/npm_package.py)
import static_view  # noqa: E402  (slides/static_view.py, shared with the book)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
REVEAL_VERSION = "4.6.1"
# the "integrity" field of reveal.js 4.6.1 in the npm registry
REVEAL_SHA512 = "1CW0auaXNPmwmvQ7TwpszwVxMi2Xr5cTS3J3EBC/HHgbPF32Dn7aiu/LKWDOGjMbaDwKQiGmfqcoGQ74HUHCMw=="
REVEAL_PARTS = ("dist/", "plugin/notes/", "LICENSE")  # all a deck loads, plus the licence
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
# what nbconvert's HTML exporter writes into every <img> that has no alt text
NO_ALT_PLACEHOLDER = ' alt="No description has been provided for this image"'


def reveal_home() -> Path:
    """Where this environment keeps its copy of reveal.js (``REVEAL_JS_DIR`` overrides it)."""
    override = os.environ.get("REVEAL_JS_DIR")
    if override:
        return Path(override)
    return Path(sys.prefix) / "share" / "pytorch-workflow" / f"reveal.js-{REVEAL_VERSION}"


def _reveal_ok(folder: Path) -> bool:
    return (folder / "dist" / "reveal.js").is_file() and (folder / "plugin" / "notes" / "notes.js").is_file()


def install_reveal() -> Path:
    """Download, verify and unpack reveal.js unless this environment already has it."""
    home = reveal_home()
    if _reveal_ok(home):
        return home
    if os.environ.get("REVEAL_JS_DIR"):
        sys.exit(f"REVEAL_JS_DIR={home} holds no reveal.js 4 (expected dist/reveal.js and plugin/notes/notes.js).")
    hint = "Or set REVEAL_JS_DIR to an unpacked reveal.js 4 folder, e.g. from `npm pack reveal.js@4.6.1`."
    return npm_package.install("reveal.js", REVEAL_VERSION, REVEAL_SHA512, REVEAL_PARTS, home, offline_hint=hint)


def mathjax_home() -> Path:
    import jupyter_server_mathjax

    return Path(jupyter_server_mathjax.__file__).parent / "static"


def _copy_once(source: Path, target: Path) -> None:
    """Copy a folder next to the decks, skipping the copy when it is already there."""
    marker = target / ".copied-from"
    if marker.is_file() and marker.read_text() == str(source):
        return
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    marker.write_text(str(source))


def _exporter(asset_prefix: str):
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    config.SlidesExporter.extra_template_basedirs = [str(TEMPLATES)]
    config.SlidesExporter.template_name = "offline_reveal"
    config.SlidesExporter.reveal_url_prefix = f"{asset_prefix}reveal.js"
    config.SlidesExporter.reveal_theme = "white"  # the themes that fetch web fonts are avoided
    config.SlidesExporter.reveal_number = "c/t"
    config.SlidesExporter.mathjax_url = f"{asset_prefix}mathjax/MathJax.js?config={MATHJAX_CONFIG}"
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    return SlidesExporter(config=config)


def build(notebooks: list[Path], out: Path) -> list[Path]:
    """Write a deck per notebook into ``out`` and return their paths."""
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing:
        sys.exit(f"no such notebook: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    _copy_once(install_reveal(), out / "reveal.js")
    _copy_once(mathjax_home(), out / "mathjax")
    exporters = {}
    decks = []
    titles = {}
    for notebook in notebooks:
        subfolder = "solutions" if notebook.parent.name == "solutions" else ""
        prefix = "../" if subfolder else ""
        exporter = exporters.setdefault(prefix, _exporter(prefix))
        nb = nbformat.read(notebook, as_version=4)
        static_view.for_readers(nb)
        notes_beside_their_slide(nb)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
        body = body.replace(NO_ALT_PLACEHOLDER, "")  # a figure without alt text is found, not papered over
        deck = out / subfolder / f"{notebook.stem}.slides.html"
        deck.parent.mkdir(parents=True, exist_ok=True)
        deck.write_text(body, encoding="utf-8")
        decks.append(deck)
        titles[deck] = notebook_title(nb, notebook.stem)
        print(f"wrote {deck.relative_to(out).as_posix()}")
    _write_index(out, [(deck, titles[deck]) for deck in decks])
    return decks


def notes_beside_their_slide(nb) -> None:
    """Speaker notes on the slide they were written for, unfolded.

    In a notebook each notes cell is folded and comes last in its section (after the cells whose answers
    it discusses); its metadata ``notes_for`` names the cell (by id) that opens the slide or subslide it
    belongs to. In the deck it moves back to just after that cell, after any notes already placed there,
    so the speaker view shows it from that slide's first moment. A note without ``notes_for`` goes to the
    "slide" cell that opens its section.
    """
    notes, cells, section = [], [], None
    for cell in nb.cells:
        if static_view.is_notes(cell):
            cell.source = f"**Instructor notes.** {static_view.notes_body(cell.source)}"
            notes.append((cell.metadata.get("notes_for") or section, cell))
            continue
        if cell.metadata.get("slideshow", {}).get("slide_type") == "slide":
            section = cell.get("id")
        cells.append(cell)
    for anchor, note in notes:
        at = next((i for i, c in enumerate(cells) if c.get("id") == anchor), None)
        if at is None:
            raise ValueError(f"a notes cell names notes_for={anchor!r}, which is no cell of this notebook")
        at += 1
        while at < len(cells) and static_view.is_notes(cells[at]):
            at += 1  # after the notes already placed on this slide, in their notebook order
        cells.insert(at, note)
    nb.cells = cells


def notebook_title(nb, stem: str) -> str:
    """The notebook's first H1 as plain text (code marks dropped), its number in front if the H1 lacks it."""
    heading = next(
        (
            line[2:].strip()
            for cell in nb.cells
            if cell.cell_type == "markdown"
            for line in cell.source.splitlines()
            if line.startswith("# ")
        ),
        stem,
    )
    title = re.sub(r"[`*_]", "", heading)
    number = stem.split("_")[0]
    return title if not number.isdigit() or number in title else f"{number} · {title}"


INDEX_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PyTorch Workflow slides</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5;
  color: #1a1a1a; background: #fff; max-width: 46rem; margin: 2rem auto; padding: 0 1.25rem; }}
h1 {{ font-size: 1.9rem; margin-bottom: 0.5rem; }}
h2 {{ font-size: 1.3rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }}
ul.decks {{ list-style: none; padding: 0; }}
ul.decks li {{ margin: 0.4rem 0; }}
a {{ color: #0645ad; }}
a:visited {{ color: #5a2d91; }}
a:focus-visible {{ outline: 3px solid #0645ad; outline-offset: 2px; }}
kbd {{ font-family: ui-monospace, monospace; border: 1px solid #888; border-radius: 3px; padding: 0 0.3em;
  background: #f5f5f5; }}
.keys {{ background: #f5f5f5; padding: 0.75rem 1rem; border-radius: 4px; }}
.keys ul {{ margin: 0.25rem 0 0; padding-left: 1.25rem; }}
</style>
</head>
<body>
<main>
<h1>PyTorch Workflow slides</h1>
<p>One deck per notebook. The decks work offline: open them from this folder, no network needed.</p>
<section class="keys" aria-labelledby="keys">
<h2 id="keys" style="margin-top: 0; border: 0;">Presenting a deck</h2>
<ul>
<li><kbd>→</kbd> / <kbd>←</kbd>: next / previous slide; <kbd>↓</kbd> / <kbd>↑</kbd>: the rest of a long slide</li>
<li><kbd>S</kbd>: speaker view, with the instructor notes and the next slide</li>
<li><kbd>F</kbd>: full screen</li>
<li><kbd>Esc</kbd>: overview of all slides</li>
</ul>
</section>
{sections}
</main>
</body>
</html>
"""


def _write_index(out: Path, decks: list[tuple[Path, str]]) -> None:
    """``out/index.html``: the lesson decks and the solution decks, each named by its notebook's title."""
    sections = []
    for heading, ident, in_solutions in (("Lessons", "lessons", False), ("Solutions", "solutions", True)):
        items = [
            f'<li><a href="{html.escape(deck.relative_to(out).as_posix())}">{html.escape(title)}</a></li>'
            for deck, title in decks
            if (deck.parent.name == "solutions") == in_solutions
        ]
        if items:
            sections.append(
                f'<h2 id="{ident}">{heading}</h2>\n<ul class="decks" aria-labelledby="{ident}">\n'
                + "\n".join(items)
                + "\n</ul>"
            )
    (out / "index.html").write_text(INDEX_PAGE.format(sections="\n".join(sections)), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook, solutions included")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "slides")
    parser.add_argument("--fetch-only", action="store_true", help="only install reveal.js into this environment")
    args = parser.parse_args(argv)
    if args.fetch_only:
        install_reveal()
        return
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "notebooks" / "solutions").glob("*.ipynb")
    )
    decks = build(notebooks, args.out)
    print(f"{len(decks)} decks in {args.out}; open {args.out / 'index.html'} in a browser")


if __name__ == "__main__":
    main()
