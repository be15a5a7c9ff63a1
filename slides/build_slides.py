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
    for notebook in notebooks:
        subfolder = "solutions" if notebook.parent.name == "solutions" else ""
        prefix = "../" if subfolder else ""
        exporter = exporters.setdefault(prefix, _exporter(prefix))
        nb = nbformat.read(notebook, as_version=4)
        static_view.for_readers(nb)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
        deck = out / subfolder / f"{notebook.stem}.slides.html"
        deck.parent.mkdir(parents=True, exist_ok=True)
        deck.write_text(body, encoding="utf-8")
        decks.append(deck)
        print(f"wrote {deck.relative_to(out).as_posix()}")
    _write_index(out, decks)
    return decks


def _write_index(out: Path, decks: list[Path]) -> None:
    items = "\n".join(
        f'<li><a href="{html.escape(d.relative_to(out).as_posix())}">{html.escape(d.stem.removesuffix(".slides"))}</a></li>'
        for d in decks
    )
    (out / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en">\n<meta charset="utf-8">\n<title>PyTorch Workflow slides</title>\n'
        "<h1>PyTorch Workflow slides</h1>\n<p>Arrow keys move between slides, S opens the speaker view "
        "with notes, F goes full screen, Esc shows an overview.</p>\n"
        f"<ul>\n{items}\n</ul>\n</html>\n",
        encoding="utf-8",
    )


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
