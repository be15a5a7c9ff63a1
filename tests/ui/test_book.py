"""The book from `make book-pdf` (build/book), opened from disk in Chromium with the network off.

Every page loads from file:// with no console error and asks for nothing but local files; every
image draws; every local link (and its #fragment) resolves; search works from file://; axe-core
finds no critical or serious violation; each page has one visible h1 and no skipped heading level;
every figure has real alt text. The PDF has a page per lesson, and code printed at the PDF's page
width is never cut at the right margin. Screenshots go to build/ui/. These tests build nothing:
without build/book they skip (and fail in CI, CI=true).
"""

from __future__ import annotations

import os
import re
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import uikit

sys.path.insert(0, str(uikit.ROOT / "book"))
import build_book  # noqa: E402  (book/ is not a package)

BOOK = uikit.ROOT / "build" / "book"
PRINT_PAGE = uikit.ROOT / "build" / "book-work" / "print" / build_book.PRINT_PAGE_NAME
PDF = BOOK / build_book.PDF_NAME
PAGES = [
    "index.html",
    *(f"{name}.html" for name in build_book.LESSONS),
    "solutions/index.html",
    *(f"solutions/{name}.html" for name in build_book.SOLUTIONS),
    "search.html",
]
NETWORK = ("http:", "https:", "ws:", "wss:", "ftp:")
# A4 (210 mm) less book.css's 14 mm side margins, in CSS pixels (96 per inch)
PRINT_WIDTH = round((210 - 2 * 14) / 25.4 * 96)

LOADED_JS = "return document.readyState === 'complete' && location.href.startsWith(arguments[0])"
IMAGES_JS = """
return [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}));
"""
# Headings a reader (or a screen reader) meets, in page order: visible h1-h6 and role=heading.
HEADINGS_JS = """
return [...document.querySelectorAll('h1, h2, h3, h4, h5, h6, [role=heading]')]
  .filter(h => h.checkVisibility())
  .map(h => ({level: h.getAttribute('aria-level') ? Number(h.getAttribute('aria-level'))
                     : /^H[1-6]$/.test(h.tagName) ? Number(h.tagName[1]) : 2,
              text: h.textContent.trim().slice(0, 60)}));
"""
PRE_WIDTHS_JS = """
return [...document.querySelectorAll('pre')].filter(p => p.checkVisibility())
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .map(p => ({text: p.textContent.slice(0, 80), scroll: p.scrollWidth, client: p.clientWidth}));
"""


def _missing(what: str) -> None:
    message = f"{what}: run `make book-pdf` first (`make test-ui` does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def built(browser_ready) -> Path:
    if not (BOOK / "index.html").is_file():
        _missing("no book in build/book")
    return BOOK


@pytest.fixture(scope="module")
def pdf(built) -> Path:
    if not PDF.is_file() or not PRINT_PAGE.is_file():
        _missing(f"no {PDF.relative_to(uikit.ROOT)} (or its print page)")
    return PDF


@pytest.fixture(scope="module")
def book_browser(browser_ready):
    """Chromium on a laptop-sized window with networking switched off."""
    driver = uikit.chromium(1280, 900, offline=True)
    yield driver
    driver.quit()


def open_page(driver, path: Path, query: str = "") -> None:
    """Open a page from disk, wait for it to load, and empty the logs of the previous page."""
    driver.get("about:blank")
    uikit.requested_urls(driver)
    uikit.severe_console_messages(driver)
    driver.get(path.as_uri() + query)
    uikit.wait_for(lambda: driver.execute_script(LOADED_JS, path.as_uri()), 30, f"{path.name} to load")


class _Links(HTMLParser):
    """Every id, href and src of one HTML file."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.refs.append(attrs[key])
        if tag == "img":
            self.images.append(attrs)


def parsed(path: Path) -> _Links:
    links = _Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def test_every_page_is_built(built):
    missing = [page for page in PAGES if not (built / page).is_file()]
    assert not missing, f"pages missing from build/book: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_offline(book_browser, built, page):
    open_page(book_browser, built / page)
    uikit.wait_for(
        lambda: all(i["complete"] for i in book_browser.execute_script(IMAGES_JS)), 30, f"{page}'s images to load"
    )
    assert uikit.severe_console_messages(book_browser) == [], f"console errors on {page}"
    requested = uikit.requested_urls(book_browser)
    assert [url for url in requested if not url.startswith("file:")] == [], f"{page} asked the network"
    assert any(url.startswith("file:") for url in requested), "the performance log recorded nothing"
    broken = [i["src"] for i in book_browser.execute_script(IMAGES_JS) if i["width"] == 0]
    assert broken == [], f"images on {page} that did not draw: {broken}"


@pytest.mark.parametrize("page", PAGES)
def test_page_is_accessible(book_browser, built, page):
    open_page(book_browser, built / page)
    violations = uikit.axe_violations(book_browser)
    assert violations == [], f"axe on {page}:\n{uikit.describe_violations(violations)}"
    headings = book_browser.execute_script(HEADINGS_JS)
    assert [h["text"] for h in headings if h["level"] == 1] and len([h for h in headings if h["level"] == 1]) == 1, (
        f"{page} needs exactly one visible h1: {[h for h in headings if h['level'] == 1]}"
    )
    skips = [(a, b) for a, b in zip(headings, headings[1:], strict=False) if b["level"] > a["level"] + 1]
    assert skips == [], f"heading levels skipped on {page}: {skips}"
    # keyboard: the first Tab stop is the theme's skip link, and it leads to the main content
    skip = book_browser.execute_script(
        "const a = document.querySelector('a[href=\"#main-content\"]');"
        "return a && document.getElementById('main-content') ? a.textContent.trim() : null"
    )
    assert skip, f"{page} has no skip link to #main-content"


def test_every_local_link_and_image_resolves(built):
    pages = sorted(p for p in built.rglob("*.html") if "_static" not in p.parts)
    ids = {page: parsed(page).ids for page in pages}
    broken = []
    for page in pages:
        for ref in parsed(page).refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith("//"):
                assert parts.scheme in ("https", "http", "mailto"), f"{page.name}: unexpected link {ref}"
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(built)}: {ref} (no file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids.get(target, set()):
                broken.append(f"{page.relative_to(built)}: {ref} (no id {parts.fragment!r})")
    assert broken == [], "\n".join(broken)


# Blocks of the article that hide text sideways (scroll), with the start of what they hold.
SIDEWAYS_JS = """
return [...document.querySelectorAll('.bd-article pre, .bd-article div.highlight, .bd-article div.cell_output')]
  .filter(el => el.checkVisibility() && el.scrollWidth > el.clientWidth + 1)
  .map(el => ({text: el.textContent.trim().slice(0, 80), scroll: el.scrollWidth, client: el.clientWidth}));
"""


@pytest.mark.parametrize("page", [p for p in PAGES if p != "search.html"])
def test_no_block_hides_text_sideways_on_a_laptop(book_browser, built, page):
    """At 1280 px wide, code and printed output wrap: nothing is cut off behind a sideways scroll bar (the
    end of a long line is often the fix a mistake cell exists to show)."""
    book_browser.set_window_size(1280, 800)
    open_page(book_browser, built / page)
    assert book_browser.execute_script(SIDEWAYS_JS) == [], f"{page}: blocks that scroll sideways"


def test_every_figure_opens_full_size_and_there_is_no_empty_index(built):
    """A figure drawn wider than the column shrinks to fit, so each one is a link to itself at full size;
    the notebooks define no index entries, so no general-index page (it was empty) is built or linked."""
    unlinked = []
    for page in [built / p for p in PAGES]:
        text = page.read_text(encoding="utf-8")
        for src in re.findall(r'<img [^>]*?src="([^"]*_images/[^"]+)"', text):
            if f'<a class="full-size-figure" href="{src}"><img data-full-size ' not in text:
                unlinked.append(f"{page.relative_to(built)}: {src}")
        assert "genindex.html" not in text, f"{page.relative_to(built)} links to the empty general index"
    assert unlinked == []
    assert not (built / "genindex.html").exists()


def test_every_figure_has_alt_text(built):
    """myst-nb falls back to the image's file name; every figure must have written alt text instead."""
    missing = []
    for page in [built / p for p in PAGES]:
        for image in parsed(page).images:
            src, alt = image.get("src") or "", (image.get("alt") or "").strip()
            if "_images/" not in src:
                continue  # the theme's own images (none at present)
            if not alt or alt == src or alt.endswith(Path(src).name):
                missing.append(f"{page.relative_to(built)}: {src}")
    assert missing == [], "figures without alt text (cell metadata mystnb.image.alt):\n" + "\n".join(missing)


def test_instructor_notes_and_widget_notes_are_marked(built):
    """Each instructor-notes cell is a folded box; each widget picture says it is live in JupyterLab."""
    import nbformat

    for name in ["index", *build_book.LESSONS]:
        source = build_book.notebook_paths()[name]
        cells = nbformat.read(source, as_version=4).cells
        notes = sum(c.metadata.get("slideshow", {}).get("slide_type") == "notes" for c in cells)
        html = (built / f"{name}.html").read_text(encoding="utf-8")
        boxes = len(re.findall(r'<details class="instructor-notes"><summary>', html))
        assert boxes == notes, f"{name}: {notes} instructor-notes cells, {boxes} folded boxes"
    for name in ("03_loss_and_optimizer", "04_training_loop", "07_putting_it_all_together"):
        html = (built / f"{name}.html").read_text(encoding="utf-8")
        assert 'class="widget-note"' in html, f"{name}: a widget's picture without its note"
        assert "application/vnd.jupyter.widget" not in html, f"{name}: a widget output left in the page"


NOTES_JS = """
const boxes = [...document.querySelectorAll('details.instructor-notes')];
const shown = el => el.checkVisibility();
return boxes.map(b => ({open: b.open, summary: shown(b.querySelector('summary')),
                        body: [...b.children].filter(c => c.tagName !== 'SUMMARY').some(shown)}));
"""


def test_instructor_notes_are_folded_until_a_reader_opens_one(book_browser, built):
    """A reader meets no note unless they open it: every box is closed, only its summary shows, and a
    click on the summary opens that box alone."""
    open_page(book_browser, built / "01_data.html")
    boxes = book_browser.execute_script(NOTES_JS)
    assert len(boxes) >= 5, f"expected 01's instructor notes on the page, found {len(boxes)}"
    assert all(b == {"open": False, "summary": True, "body": False} for b in boxes), boxes
    summary = book_browser.find_elements("css selector", "details.instructor-notes > summary")[1]
    book_browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
    summary.click()
    after = book_browser.execute_script(NOTES_JS)
    assert after[1] == {"open": True, "summary": True, "body": True}, after[1]
    assert [b["open"] for i, b in enumerate(after) if i != 1] == [False] * (len(after) - 1)


def test_what_a_cell_printed_is_one_block(built):
    """A print the kernel flushed in parts (03's table: header, then rows) reads as one block, as in JupyterLab."""
    html = (built / "03_loss_and_optimizer.html").read_text(encoding="utf-8")
    blocks = [unescape(re.sub(r"<[^>]+>", "", pre)) for pre in re.findall(r"<pre[^>]*>(.*?)</pre>", html, re.S)]
    header = "optimizer              train loss  val accuracy"
    with_header = [block for block in blocks if header in block]
    assert len(with_header) == 1, f"{len(with_header)} blocks hold the table's header"
    assert "SGD lr=0.01" in with_header[0], "the table's rows are in another block than its header"


def search_hits(driver, where: str) -> list[str]:
    """The links of the search page's results, once it shows some."""
    return uikit.wait_for(
        lambda: driver.execute_script(
            "return [...document.querySelectorAll('#search-results a')].map(a => a.getAttribute('href'))"
        ),
        30,
        f"search results for 'residuals' {where}",
    )


def test_search_works_from_disk(book_browser, built):
    open_page(book_browser, built / "search.html", "?q=residuals")
    hits = search_hits(book_browser, "on disk")
    assert any("05_evaluation.html" in href for href in hits), f"05 not among the results: {hits}"
    assert [u for u in uikit.requested_urls(book_browser) if u.startswith(NETWORK)] == []


def test_search_works_from_a_static_server(built):
    """The folder served as it is by a static host (here Python's http.server on the loopback)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(built)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = uikit.chromium(1280, 900)
    try:
        driver.get(f"http://127.0.0.1:{server.server_port}/search.html?q=residuals")
        hits = search_hits(driver, "from the server")
        assert any("05_evaluation.html" in href for href in hits), f"05 not among the results: {hits}"
        # the browser itself asks a server for /favicon.ico, which the book does not have
        errors = [m for m in uikit.severe_console_messages(driver) if "/favicon.ico" not in m]
        assert errors == [], f"console errors from the served book: {errors}"
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()


def test_screenshots(book_browser, built):
    """Pictures for a person to look at: a lesson, a figure, an exercise, the solutions page."""
    from selenium.webdriver.common.by import By

    open_page(book_browser, built / "04_training_loop.html")
    assert uikit.screenshot(book_browser, "book-lesson").stat().st_size > 10_000
    figure = book_browser.find_elements(By.CSS_SELECTOR, "article img")[0]
    uikit.screenshot(book_browser, "book-figure", show=figure)
    exercise = book_browser.find_element(By.XPATH, "//h2[starts-with(normalize-space(), 'Exercises')]")
    book_browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", exercise)
    uikit.screenshot(book_browser, "book-exercise")
    open_page(book_browser, built / "solutions" / "index.html")
    links = book_browser.find_elements(By.CSS_SELECTOR, "article .toctree-wrapper a")
    assert len(links) == len(build_book.SOLUTIONS), [a.text for a in links]
    uikit.screenshot(book_browser, "book-solutions-index")


def test_pdf_has_every_lesson(pdf):
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    starts = [page_text(document, i)[:40] for i in range(len(document))]
    assert len(document) >= len(build_book.LESSONS) + 1
    numbers = ("00b" if name.startswith("00_") else name[:2] for name in build_book.LESSONS)  # 00b: the primer
    for number in ("00", *numbers):
        assert any(text.startswith(f"{number} · ") for text in starts), f"no page starts with lesson {number}"
    assert any(text.startswith("Solutions") for text in starts), "no page starts the solutions"
    summary = "answers away, so as a student"  # the words of every folded box's summary
    noted = [
        i for i in range(len(document)) if summary in " ".join(document[i].get_textpage().get_text_range().split())
    ]
    assert noted == [], f"the PDF cannot fold instructor notes, so it leaves them out; pages {noted[:5]} have some"
    lesson = next(i for i, text in enumerate(starts) if text.startswith("04 · "))
    uikit.SHOTS.mkdir(parents=True, exist_ok=True)
    document[lesson + 1].render(scale=1.5).to_pil().save(uikit.SHOTS / "book-pdf-page.png")
    print(f"{pdf.name}: {len(document)} pages, {pdf.stat().st_size / 1e6:.1f} MB")


def page_text(document, index: int) -> str:
    """A PDF page's text without its page number (book.css prints it at the foot; pdfium reads it first)."""
    text = document[index].get_textpage().get_text_range()
    number, _, rest = text.partition("\r\n")
    return rest if number == str(index + 1) else text


def test_pdf_is_a_book_with_title_contents_bookmarks_and_page_numbers(pdf):
    """A title page, a contents page naming every lesson, a bookmark per lesson (its sections below it) and
    the page number at the foot of every page after the title."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    titles = [" ".join(t.split()) for t in build_book_titles()]
    assert page_text(document, 0).startswith("PyTorch Workflow"), "no title page"
    contents = " ".join(page_text(document, 1).split())
    assert contents.startswith("Contents") and all(title in contents for title in titles), contents[:300]
    # one bookmark per lesson; sections are left out, as Chromium garbles a fifth of them (build_book.for_print)
    outline = [(mark.level, mark.get_title()) for mark in document.get_toc()]
    assert outline == [(0, title) for title in ["Contents", *titles, "Solutions"]]
    assert b"file:" not in pdf.read_bytes(), "a link in the PDF points at a file on the machine that built it"
    unnumbered = [
        i + 1
        for i in range(1, len(document))
        if document[i].get_textpage().get_text_range().partition("\r\n")[0] != str(i + 1)
    ]
    assert unnumbered == [], f"pages without their number: {unnumbered[:10]}"


def build_book_titles() -> list[str]:
    """Each lesson's title as its first cell gives it (00 first), without Markdown's backticks."""
    import nbformat

    titles = []
    for name in ["00_start_here", *build_book.LESSONS]:
        first = nbformat.read(uikit.ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells[0].source
        titles.append(first.splitlines()[0].lstrip("# ").replace("`", ""))
    return titles


def test_printed_code_is_not_cut(book_browser, pdf):
    """At the PDF's text width with print styles on, no <pre> is wider than its box."""
    book_browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PRINT_WIDTH, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    book_browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        open_page(book_browser, PRINT_PAGE)
        assert book_browser.execute_script("return document.querySelectorAll('pre').length") > 100
        cut = book_browser.execute_script(PRE_WIDTHS_JS)
        assert cut == [], f"code wider than the printed page: {cut[:5]}"
        # and no code line wraps: a wrapped line restarts at the left edge and reads as a new statement
        book_browser.execute_script("document.querySelectorAll('pre').forEach(p => p.style.whiteSpace = 'pre')")
        wrapped = book_browser.execute_script(PRE_WIDTHS_JS)
        assert wrapped == [], f"code lines that wrap on the printed page: {wrapped[:5]}"
        width = book_browser.execute_script("return document.querySelector('article').getBoundingClientRect().width")
        assert width > PRINT_WIDTH * 0.9, f"the printed text is {width:.0f} px wide, not the page's {PRINT_WIDTH}"
    finally:
        book_browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        book_browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )


def test_build_refuses_missing_inputs(tmp_path, monkeypatch, capsys):
    """A missing notebook or README section is one line naming it; --out may not be the project."""
    monkeypatch.setattr(build_book, "NOTEBOOKS", tmp_path)
    (tmp_path / "00_start_here.ipynb").write_text("{}")
    with pytest.raises(build_book.BookError, match=r"00_tensors_and_autograd\.ipynb is missing"):
        build_book.notebook_paths()
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## For students\n\nhello\n")
    with pytest.raises(build_book.BookError, match="no '## For instructors' section"):
        build_book.readme_sections(readme)
    with pytest.raises(SystemExit):
        build_book.main(["--out", str(uikit.ROOT)])
    assert "would overwrite the project" in capsys.readouterr().err
