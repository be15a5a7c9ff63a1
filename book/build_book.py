"""Build the series as an offline website (``make book``) and one PDF (``make book-pdf``).

    python book/build_book.py --out build/book          # build/book/index.html
    python book/build_book.py --out build/book --pdf    # also build/book/pytorch-workflow.pdf

The notebooks are used as stored, never re-executed (strict nbval already proves their outputs).
Each is staged in ``<out>-work/src/`` as a reader sees it without a kernel (slides/static_view.py:
widgets become their last picture with a note that they are live in JupyterLab, tool comments
go), its instructor-notes cells become a folded "Instructor notes" box (left out of the PDF, which cannot fold), and its headings are
shifted so each page has one h1. The start page is 00_start_here plus README.md's "For students"
and "For instructors" sections, read from README.md at build time. Sphinx (myst-nb,
sphinx-book-theme; settings in book/conf.py) writes the website; for the PDF, Sphinx's
``singlehtml`` builder writes the whole series on one page into ``<out>-work/print/`` and headless
Chromium prints it. No page asks the network for anything.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
sys.path.insert(0, str(ROOT / "slides"))
import static_view  # noqa: E402  (slides/ is not a package)

NOTEBOOKS = ROOT / "notebooks"
START = "00_start_here"
LESSONS = [
    "00_tensors_and_autograd",
    "01_data",
    "02_model",
    "03_loss_and_optimizer",
    "04_training_loop",
    "05_evaluation",
    "06_save_and_load",
    "07_putting_it_all_together",
    "08_scaling_up",
]
SOLUTIONS = [f"{name}_solutions" for name in LESSONS]
README_SECTIONS = ("For students", "For instructors")
PDF_NAME = "pytorch-workflow.pdf"
PRINT_PAGE_NAME = "book.html"  # the one-page build as printed, in the work folder's print/
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
WIDGET_NOTE = (
    '<p class="widget-note">This is a live widget in JupyterLab (<code>make lab</code>): '
    "the picture is what it showed last when the notebook was run.</p>"
)
NOTES_LEAD = "**Instructor notes.**"
RUN_FOR_BUTTONS = re.compile(r"\n?<p>\(Run the cell for the buttons: .*?\)</p>")
NOTES_OPEN = (
    '<details class="instructor-notes"><summary>Instructor notes '
    "<span>(for the teacher; they give this section's answers away, so as a student open them only after "
    "its cells)</span></summary>"
)
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})(\s)")
# sections about the whole lesson, not its part 2, though they come after it
LESSON_WIDE = re.compile(r"^##\s+(Recap|Exercises)\b")


class BookError(Exception):
    """A problem with the inputs, reported in one line."""


def notebook_paths() -> dict[str, Path]:
    """Every notebook the book needs, by staged name; BookError naming the first one missing."""
    paths = {"index": NOTEBOOKS / f"{START}.ipynb"}
    paths.update({name: NOTEBOOKS / f"{name}.ipynb" for name in LESSONS})
    paths.update({f"solutions/{name}": NOTEBOOKS / "solutions" / f"{name}.ipynb" for name in SOLUTIONS})
    for path in paths.values():
        if not path.is_file():
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            raise BookError(f"{shown} is missing: the book needs every notebook of the series")
    return paths


def readme_sections(readme: Path, titles=README_SECTIONS) -> str:
    """The markdown of README.md's ``## <title>`` sections, in the order given; BookError if one is absent."""
    text = readme.read_text(encoding="utf-8")
    parts = []
    for title in titles:
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
        if not match:
            raise BookError(f"README.md has no '## {title}' section for the start page")
        parts.append(f"## {title}\n{match.group(1).rstrip()}\n")
    return "\n".join(parts)


def map_headings(source: str, change) -> str:
    """Apply ``change(level, line) -> level`` to every markdown heading outside fenced code."""
    lines, fenced = [], False
    for line in source.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            line = "#" * change(len(match.group(1)), line) + line[len(match.group(1)) :]
        lines.append(line)
    return "\n".join(lines)


def one_title(nb) -> None:
    """Keep the first h1 as the page title; a later h1 (``# Part 2 · ...``) and the sections under it
    go one level down, up to the lesson-wide ``## Recap`` or ``## Exercises``."""
    seen_title = demote = False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue

        def change(level: int, line: str) -> int:
            nonlocal seen_title, demote
            if LESSON_WIDE.match(line):
                demote = False
            if level == 1 and not seen_title:
                seen_title = True
                return 1
            if level == 1:
                demote = True
            return min(level + 1, 6) if demote else level

        cell.source = map_headings(cell.source, change)


def mark_instructor_notes(nb) -> int:
    """Fold each instructor-notes cell in a ``<details>`` box the book styles, closed until a reader
    opens it (as in JupyterLab); return how many."""
    count = 0
    for cell in nb.cells:
        if not static_view.is_notes(cell):
            continue
        body = static_view.notes_body(cell.source)
        body = body[len(NOTES_LEAD) :].lstrip() if body.startswith(NOTES_LEAD) else body
        cell.source = f"{NOTES_OPEN}\n\n{body}\n\n</details>"
        count += 1
    return count


def widgets_as_text(nb) -> int:
    """A widget with no picture (the training-step stepper: buttons and a table) keeps the table it showed
    (stored as ``text/html`` beside the widget) with the live-widget note under it; return how many."""
    replaced = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if static_view.widget_kind(output) != "controls" or not html:
                continue
            html = RUN_FOR_BUTTONS.sub("", html if isinstance(html, str) else "".join(html))  # no cell to run here
            note = WIDGET_NOTE.replace(
                "the picture is what it showed last when the notebook was run",
                "its buttons step a training step; this is its table before any press",
            )
            output["data"] = {"text/html": html.rstrip() + "\n" + note}
            output["metadata"] = {}
            replaced += 1
    return replaced


def reader_notebook(path: Path):
    """A notebook as the book shows it (see the module docstring)."""
    nb = nbformat.read(path, as_version=4)
    static_view.for_readers(nb, widget_note_html=WIDGET_NOTE)
    widgets_as_text(nb)
    mark_instructor_notes(nb)
    one_title(nb)
    nb.metadata.pop("jupytext", None)
    return nb


def write_if_changed(path: Path, text: str) -> None:
    """Write only what changed, so Sphinx rebuilds only those pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def toctree(entries, caption: str | None = None) -> str:
    options = ":maxdepth: 1\n" + (f":caption: {caption}\n" if caption else "")
    return "```{toctree}\n" + options + "\n" + "\n".join(entries) + "\n```\n"


def stage(src: Path) -> list[Path]:
    """Write the book's sources into ``src``; return the files written."""
    paths = notebook_paths()
    written = []
    for name, path in paths.items():
        nb = reader_notebook(path)
        if name == "index":
            extra = readme_sections(ROOT / "README.md")
            extra += "\n## The lessons\n\n" + toctree([*LESSONS, "solutions/index"])
            nb.cells.append(nbformat.v4.new_markdown_cell(extra))
        target = src / f"{name}.ipynb"
        write_if_changed(target, nbformat.writes(nbformat.from_dict(nb)))  # static_view adds plain dicts
        written.append(target)
    solutions = src / "solutions" / "index.md"
    write_if_changed(
        solutions,
        "# Solutions\n\nA worked solution to every exercise, one notebook per lesson. "
        "Try each exercise first, then compare.\n\n" + toctree(SOLUTIONS),
    )
    written.append(solutions)
    for stale in src.rglob("*"):  # a notebook renamed or removed must not stay in the book
        if stale.is_file() and stale not in written:
            stale.unlink()
    return written


def sphinx(builder: str, src: Path, out: Path, doctrees: Path) -> None:
    """Run sphinx-build; warnings are errors (-W), all reported before it stops (--keep-going)."""
    command = [sys.executable, "-m", "sphinx", "-b", builder, "-q", "-W", "--keep-going", "-j", "2"]
    command += ["-c", str(BOOK), "-d", str(doctrees), str(src), str(out)]
    if subprocess.run(command, cwd=ROOT).returncode:
        raise BookError(f"sphinx-build -b {builder} failed (its messages are above)")


DOCUMENT = re.compile(r'(?=<span id="document-)')
HEADING = re.compile(r"<(/?)h([1-6])\b")


def _plain(html: str) -> str:
    """Text of a heading's HTML, without tags and the theme's "#" link."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html.split('<a class="headerlink"')[0])).strip()


def for_print(html: str) -> str:
    """The one-page book as a printed book: a title page, a contents page, and headings at the levels a
    PDF's bookmarks follow (each lesson an h1, the solutions under their own h1), since Sphinx's one-page
    build nests every lesson's title below the start page's last section."""
    chunks = DOCUMENT.split(html)
    entries = []
    first = re.search(
        r'<article class="bd-article">\s*<section id="([^"]+)">\s*(?:<span[^>]*></span>)?<h1>(.*?)</h1>',
        chunks[0],
        flags=re.DOTALL,
    )
    if first:
        entries.append((first[1], _plain(first[2])))
    for i, chunk in enumerate(chunks[1:], start=1):
        name = re.match(r'<span id="document-([^"]+)"', chunk)[1]
        levels = [int(level) for _, level in HEADING.findall(chunk)]
        if not levels:
            continue
        top = 2 if name.startswith("solutions/") and name != "solutions/index" else 1
        shift = levels[0] - top
        chunks[i] = HEADING.sub(lambda m, shift=shift: f"<{m[1]}h{min(6, max(1, int(m[2]) - shift))}", chunk)
        heading = re.search(r'<section id="([^"]+)">.*?<h[1-6][^>]*>(.*?)</h[1-6]>', chunks[i], flags=re.DOTALL)
        if heading and top == 1:
            entries.append((heading[1], _plain(heading[2])))
    contents = "".join(f'<li><a href="#{anchor}">{title}</a></li>' for anchor, title in entries)
    front = (
        '<div class="print-only print-title"><p class="print-title-name">PyTorch Workflow</p>'
        '<p class="print-title-sub">An interactive notebook series: data, model, loss and optimizer, training loop, '
        "evaluation, save and load</p></div>"
        f'<nav class="print-only print-contents" aria-label="Contents"><h1>Contents</h1><ol>{contents}</ol></nav>'
    )
    page = "".join(chunks).replace('<article class="bd-article">', f'<article class="bd-article">{front}', 1)
    # One line of source per heading: book.css prints headings with white-space: pre-wrap, which keeps the
    # space where a long title wraps (Chromium's bookmarks otherwise join its lines without one).
    page = re.sub(
        r"(<h[1-6][^>]*>)(.*?)(</h[1-6]>)", lambda m: m[1] + re.sub(r"\s+", " ", m[2]) + m[3], page, flags=re.DOTALL
    )
    # Bookmarks are the h1s (Contents, each lesson, Solutions): Chromium garbles about one in five section
    # bookmarks (the title twice, or cut where a page breaks), so in print a section title is a paragraph
    # styled as its heading (Bootstrap's .h2 to .h6 classes).
    return re.sub(r"<(/?)h([2-6])\b", lambda m: "</p" if m[1] else f'<p class="h{m[2]} print-heading"', page)


def print_pdf(page: Path, pdf: Path) -> None:
    """Print one HTML page to PDF with headless Chromium (A4; margins and breaks from book.css)."""
    if not CHROMIUM.is_file():
        raise BookError(f"{CHROMIUM} not found: install chromium (or point CHROMIUM= at it) to print the PDF")
    with tempfile.TemporaryDirectory(prefix="book-chromium-") as profile:
        command = [
            str(CHROMIUM),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",  # page numbers come from book.css (@page margin boxes)
            "--generate-pdf-document-outline",  # bookmarks from the headings
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=20000",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        pdf.unlink(missing_ok=True)
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode or not pdf.is_file():
        raise BookError(f"chromium could not print {page}: {result.stderr.strip()[-500:]}")


def build(out: Path, pdf: bool) -> None:
    work = out.parent / f"{out.name}-work"
    started = time.monotonic()
    stage(work / "src")
    sphinx("html", work / "src", out, work / "doctrees")
    print(f"book: {out / 'index.html'} ({time.monotonic() - started:.1f} s)")
    if pdf:
        started = time.monotonic()
        # into the work folder: myst-nb writes a jupyter_execute/ folder next to the output folder
        sphinx("singlehtml", work / "src", work / "print", work / "doctrees-print")
        # a page of its own: Sphinx leaves index.html as it was when no source changed
        page = work / "print" / PRINT_PAGE_NAME
        page.write_text(for_print((work / "print" / "index.html").read_text(encoding="utf-8")), encoding="utf-8")
        print_pdf(page, out / PDF_NAME)
        size = (out / PDF_NAME).stat().st_size / 1e6
        print(f"book: {out / PDF_NAME} ({size:.1f} MB, {time.monotonic() - started:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="output folder")
    parser.add_argument("--pdf", action="store_true", help=f"also print <out>/{PDF_NAME}")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if out in (ROOT, NOTEBOOKS, BOOK) or ROOT.is_relative_to(out):
        parser.error(f"--out {args.out} would overwrite the project; choose a folder such as build/book")
    try:
        build(out, args.pdf)
    except BookError as error:
        print(f"build_book.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
