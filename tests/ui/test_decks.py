"""The reveal.js decks from `make slides` (build/slides), opened from disk in Chromium with the network off.

Every deck loads with no console error and asks for nothing but local files; every slide, with all
its fragments shown, fits in the slide box on a 1280x720 projector without a scrollbar, in height and
in width (no code line, output, figure or table cut at the right edge); axe-core finds no serious or
critical WCAG 2 AA violation on any slide; no test-tool comment (nbval, noqa) shows in the code; the
index page lists lessons and solutions apart, by title; the notes plugin carries the instructor notes
(and S opens the speaker view); Esc shows the overview. Screenshots go to build/ui/.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest
import uikit

sys.path.insert(0, str(uikit.ROOT / "slides"))
import static_view  # noqa: E402  (slides/ is not a package)

DECKS = uikit.ROOT / "build" / "slides"
NOTEBOOKS = uikit.ROOT / "notebooks"
DECK_NAMES = [f"{p.stem}.slides.html" for p in sorted(NOTEBOOKS.glob("*.ipynb"))] + [
    f"solutions/{p.stem}.slides.html" for p in sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
]
NETWORK = ("http:", "https:", "ws:", "wss:", "ftp:")
SMALLEST_ZOOM = 0.75  # a slide scaled down further than this is too small to read from the back row

# Each slide with all its fragments shown: its box against the slide area, its scrollbar, its zoom, and
# what on it is wider than the slide: an element sticking out past its left or right edge, or one whose
# content is wider than its box (a code line cut off by the cell's overflow: hidden, or a scrollbar).
SLIDES_JS = """
function tooWide(slide) {
  const box = slide.getBoundingClientRect();
  const wide = [];
  for (const el of [slide, ...slide.querySelectorAll('*')]) {
    if (el.closest('aside.notes')) continue;
    const r = el.getBoundingClientRect();
    if (!r.width) continue;
    const out = Math.max(r.right - box.right, box.left - r.left);
    const cut = el.clientWidth ? el.scrollWidth - el.clientWidth : 0;
    if (out > 1 || cut > 1) {
      const name = el.tagName.toLowerCase() + [...el.classList].slice(0, 2).map(c => '.' + c).join('');
      wide.push(`${name} ${Math.round(Math.max(out, cut))} px`);
    }
  }
  return wide;
}
Reveal.configure({transition: 'none', backgroundTransition: 'none'});  // measure slides where they end up
const area = document.querySelector('.reveal .slides').getBoundingClientRect();
const result = [];
for (const slide of Reveal.getSlides()) {
  const at = Reveal.getIndices(slide);
  Reveal.slide(at.h, at.v, Number.MAX_SAFE_INTEGER);
  const box = slide.getBoundingClientRect();
  result.push({h: at.h, v: at.v, top: box.top - area.top, bottom: area.bottom - box.bottom,
               scrolls: slide.scrollHeight > slide.clientHeight + 1, zoom: Number(slide.style.zoom || 1),
               images: slide.querySelectorAll('img').length, notes: (slide.querySelector('aside.notes') || {}).textContent || '',
               wide: tooWide(slide), text: slide.textContent.trim().slice(0, 60)});
}
Reveal.slide(0, 0, 0);
return result;
"""
# The sub-slides of the slide on screen: each must be past, present or future, or it is drawn over the present one.
PLACES_JS = """
const stack = Reveal.getCurrentSlide().parentElement;
return [...stack.querySelectorAll(':scope > section')].map(s => ['past', 'present', 'future'].filter(c => s.classList.contains(c)));
"""
LAID_OUT_JS = """
return document.readyState === 'complete' && window.Reveal && Reveal.isReady()
  && (typeof paginateDeck === 'undefined' || document.documentElement.dataset.paginated === 'true');
"""


@pytest.fixture(scope="module")
def deck_browser(browser_ready):
    """Chromium at a projector's 1280x720 with networking switched off."""
    driver = uikit.chromium(1280, 720, offline=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def built(browser_ready) -> Path:
    if not (DECKS / "index.html").is_file():
        pytest.fail("no decks in build/slides: run `make slides` first (`make test-ui` does)", pytrace=False)
    return DECKS


def open_deck(driver, path: Path) -> None:
    """Open a deck from disk and wait until it is ready and has split its tall slides."""
    driver.get(path.as_uri())
    uikit.wait_for(lambda: driver.execute_script(LAID_OUT_JS), 30, f"{path.name} to finish laying out its slides")


def network_requests(driver) -> list[str]:
    """What the page asked of the network (it is off, so each of these failed)."""
    return [url for url in uikit.requested_urls(driver) if url.startswith(NETWORK)]


def notebook_titles(folder: Path) -> list[str]:
    """Each notebook's first H1, as the index shows it (code marks dropped), in file order."""
    import nbformat

    titles = []
    for path in sorted(folder.glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        lines = (line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines())
        titles.append(re.sub(r"[`*_]", "", next(line for line in lines if line.startswith("# "))[2:].strip()))
    return titles


INDEX_JS = """
const list = (id) => [...document.querySelectorAll(`ul[aria-labelledby="${id}"] a`)]
  .map(a => [a.getAttribute('href'), a.textContent.trim()]);
return {lang: document.documentElement.lang, title: document.title,
        h1: [...document.querySelectorAll('h1')].map(h => h.textContent.trim()),
        h2: [...document.querySelectorAll('h2')].map(h => h.textContent.trim()),
        text: document.body.innerText, lessons: list('lessons'), solutions: list('solutions'),
        links: document.querySelectorAll('a').length, styled: document.styleSheets.length > 0};
"""


def test_index_lists_lessons_and_solutions_by_title_and_passes_axe(deck_browser, built):
    deck_browser.get((built / "index.html").as_uri())
    uikit.wait_for(
        lambda: deck_browser.execute_script("return document.readyState === 'complete'"), 30, "the index page"
    )
    page = deck_browser.execute_script(INDEX_JS)
    uikit.screenshot(deck_browser, "deck-index")
    assert page["lang"] == "en" and page["title"] and page["h1"] == ["PyTorch Workflow slides"]
    assert page["h2"][-2:] == ["Lessons", "Solutions"]
    for key in ("S", "F", "Esc", "→"):  # the how-to: arrows, speaker view, full screen, overview
        assert re.search(rf"(^|\W){re.escape(key)}(\W|$)", page["text"]), f"the index does not explain the {key} key"
    lessons = [name for name in DECK_NAMES if not name.startswith("solutions/")]
    solutions = [name for name in DECK_NAMES if name.startswith("solutions/")]
    assert page["lessons"] == [list(pair) for pair in zip(lessons, notebook_titles(NOTEBOOKS))]
    assert page["solutions"] == [list(pair) for pair in zip(solutions, notebook_titles(NOTEBOOKS / "solutions"))]
    assert page["links"] == len(DECK_NAMES)
    assert page["styled"], "the index page has no style sheet"
    violations = uikit.axe_violations(deck_browser)
    assert violations == [], uikit.describe_violations(violations)
    assert network_requests(deck_browser) == []
    assert uikit.severe_console_messages(deck_browser) == []


@pytest.mark.parametrize("name", DECK_NAMES)
def test_deck_opens_offline_and_every_slide_fits(deck_browser, built, name):
    open_deck(deck_browser, built / name)
    stem = Path(name).stem.removesuffix(".slides")
    uikit.screenshot(deck_browser, f"deck-{stem}-first-slide")
    places = deck_browser.execute_script(PLACES_JS)
    assert places.count(["present"]) == 1 and all(len(place) == 1 for place in places), (
        f"sub-slides drawn on top of each other: {places}"
    )
    slides = deck_browser.execute_script(SLIDES_JS)
    tall = [s for s in slides if s["top"] < -1 or s["bottom"] < -1 or s["scrolls"] or s["zoom"] < SMALLEST_ZOOM]
    misfits = tall + [s for s in slides if s["wide"] and s not in tall]
    for slide in misfits[:3] + [s for s in slides if s["images"]][:1]:
        deck_browser.execute_script(
            "Reveal.slide(arguments[0], arguments[1], Number.MAX_SAFE_INTEGER)", slide["h"], slide["v"]
        )
        kind = "misfit" if slide in misfits else "figure"
        uikit.screenshot(deck_browser, f"deck-{stem}-{kind}-{slide['h']}-{slide['v']}")
    assert [(s["h"], s["v"], round(s["bottom"]), s["zoom"], s["text"]) for s in tall] == [], "slides that do not fit"
    wide = [(s["h"], s["v"], s["wide"][:3], s["text"]) for s in slides if s["wide"]]
    assert wide == [], "slides with something wider than the slide (cut at its right edge)"
    assert network_requests(deck_browser) == []
    assert uikit.severe_console_messages(deck_browser) == []
    if "solutions/" not in name:
        notes = [s["notes"] for s in slides if s["notes"]]
        assert notes and all(n.strip().startswith("Instructor notes.") for n in notes), (
            "no instructor notes for the notes plugin"
        )


# reveal.js shows one slide at a time and hides the rest (display: none, aria-hidden), and axe skips what is
# hidden, so a plain run checks only the slide on screen. reveal 4.6.1 has no scroll view (`?view=scroll`
# came in 5.0); its `?print-pdf` view re-lays the deck into pages before our script splits the tall slides,
# so it is not what the audience sees; one axe run per slide costs about 4 s (≈3 minutes a deck). So, once
# the deck has split its slides, this stylesheet puts every slide and sub-slide, fragments shown, one under
# the other at the slide width (what reveal 5's scroll view does), with the deck's own colours and fonts,
# and axe checks them all in one run. The deck's chrome (counter, controls) is checked in the normal view.
ALL_SLIDES_JS = """
const style = document.createElement('style');
style.textContent = `
html, body, .reveal-viewport, .reveal { height: auto !important; overflow: visible !important; }
.reveal .slides { position: static !important; display: block !important; width: 960px !important;
  height: auto !important; margin: 0 auto !important; inset: auto !important; transform: none !important;
  zoom: 1 !important; }
.reveal .slides section { display: block !important; position: relative !important; visibility: visible !important;
  opacity: 1 !important; transform: none !important; top: auto !important; left: auto !important;
  height: auto !important; }
.reveal .slides section .fragment { opacity: 1 !important; visibility: visible !important; }
.reveal .slides, .reveal .slides * { transition: none !important; }  /* no colour caught half faded in */
.reveal .controls, .reveal .progress, .reveal .slide-number, .reveal .backgrounds { display: none !important; }`;
document.head.append(style);
for (const section of document.querySelectorAll('.reveal .slides section')) {
  section.removeAttribute('aria-hidden');
  section.hidden = false;
}
return [...document.querySelectorAll('.reveal .slides section')].filter(s => !s.querySelector('section'))
  .filter(s => s.getBoundingClientRect().height === 0).length;
"""
NO_ALT_PLACEHOLDER = "No description has been provided for this image"
# Each picture's alt attribute (null when it has none) and the first code line of the cell that made it.
IMAGES_JS = """
return [...document.querySelectorAll('.reveal .slides img')].map(img => {
  const cell = img.closest('.jp-Cell');
  const line = cell && cell.querySelector('.jp-InputArea pre .code-line');
  return [img.getAttribute('alt'), line ? line.textContent.trim() : '(no code cell)'];
});
"""


@pytest.mark.parametrize("name", DECK_NAMES)
def test_every_slide_passes_axe(deck_browser, built, name):
    """No serious or critical WCAG 2 A/AA violation (contrast, image alt, ...) on any slide or in the deck's chrome."""
    open_deck(deck_browser, built / name)
    deck_browser.execute_script("Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
    chrome = uikit.axe_violations(deck_browser)
    unseen = deck_browser.execute_script(ALL_SLIDES_JS)
    assert unseen == 0, f"{unseen} slides still hidden in the all-slides view: axe would skip them"
    stem = Path(name).stem.removesuffix(".slides")
    uikit.screenshot(deck_browser, f"deck-{stem}-all-slides")
    slides = uikit.axe_violations(deck_browser, context=".reveal .slides")
    # axe fetches the deck's style sheets with XMLHttpRequest to read them, which Chromium refuses for file://
    # pages (CORS errors in the console): those are the checker's, not the deck's; the next test must not see them
    uikit.severe_console_messages(deck_browser)
    images = deck_browser.execute_script(IMAGES_JS)
    assert NO_ALT_PLACEHOLDER not in [alt for alt, _ in images], "nbconvert's placeholder stands in for alt text"
    others = [v for v in chrome + slides if v["id"] != "image-alt"]
    assert others == [], uikit.describe_violations(others)
    no_alt = [cell for alt, cell in images if alt is None]
    assert no_alt == [], f"figures with no alt text (give the cell mystnb.image.alt metadata) in the cells: {no_alt}"
    assert chrome + slides == [], uikit.describe_violations(chrome + slides)


def code_in_deck(path: Path) -> list[str]:
    """The text of every code cell's input in a deck (the highlighted <pre> of each input area)."""
    inputs = re.findall(
        r'<div class="jp-InputArea jp-Cell-inputArea">(.*?)</pre>', path.read_text(encoding="utf-8"), re.S
    )
    return [html.unescape(re.sub(r"<[^>]+>", "", block)) for block in inputs]


@pytest.mark.parametrize("name", DECK_NAMES)
def test_no_test_tool_comments_on_the_slides(built, name):
    """`# nbval-ignore-output`, `# noqa` and the like are for the test tools, not for the audience."""
    code = code_in_deck(built / name)
    assert code, f"no code cells found in {name}: has the deck's HTML changed shape?"
    shown = [line.strip() for block in code for line in block.splitlines() if re.search("nbval|noqa", line, re.I)]
    assert shown == []


def test_escape_toggles_the_overview(deck_browser, built):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_deck(deck_browser, built / "04_training_loop.slides.html")
    ActionChains(deck_browser).send_keys(Keys.ESCAPE).perform()
    uikit.wait_for(lambda: deck_browser.execute_script("return Reveal.isOverview()"), 10, "the overview after Esc")
    uikit.screenshot(deck_browser, "deck-04-overview")
    assert deck_browser.execute_script("return document.querySelector('.reveal').classList.contains('overview')")
    ActionChains(deck_browser).send_keys(Keys.ESCAPE).perform()
    uikit.wait_for(lambda: not deck_browser.execute_script("return Reveal.isOverview()"), 10, "the overview to close")


def test_s_opens_the_speaker_view_with_the_notes_in_step_with_the_deck(deck_browser, built):
    from selenium.webdriver.common.action_chains import ActionChains

    open_deck(deck_browser, built / "04_training_loop.slides.html")
    deck_browser.execute_script("Reveal.slide(0, 0, 0)")
    assert deck_browser.execute_script("return Reveal.hasPlugin('notes')")
    deck = deck_browser.current_window_handle
    ActionChains(deck_browser).send_keys("s").perform()
    speaker = uikit.wait_for(
        lambda: [h for h in deck_browser.window_handles if h != deck], 10, "the speaker view window"
    )[0]
    try:
        deck_browser.switch_to.window(speaker)
        notes = uikit.wait_for(lambda: deck_browser.execute_script(SPEAKER_NOTES_JS), 20, "notes in the speaker view")
        assert " ".join(notes.split()).startswith(first_notes(NOTEBOOKS / "04_training_loop.ipynb")[:80])
        uikit.screenshot(deck_browser, "deck-04-speaker-view")
        uikit.wait_for(
            lambda: _in_speaker_preview(deck_browser, PAGINATED_JS), 30, "the speaker view's preview to load"
        )
        deck_browser.switch_to.window(deck)
        shape = deck_browser.execute_script(SHAPE_JS)
        deep = (shape.index(max(shape)), max(shape) - 1)  # the last sub-slide of the longest stack
        wanted = deck_browser.execute_script(
            "Reveal.slide(...arguments); return Reveal.getCurrentSlide().textContent.trim()", *deep
        )
        deck_browser.switch_to.window(speaker)
        uikit.wait_for(
            lambda: _in_speaker_preview(deck_browser, "return Reveal.getCurrentSlide().textContent.trim()") == wanted,
            20,
            f"the speaker view to show slide {deep} as the deck does",
        )
        assert _in_speaker_preview(deck_browser, SHAPE_JS) == shape, "the speaker view splits the slides differently"
    finally:
        deck_browser.switch_to.window(speaker)
        deck_browser.close()
        deck_browser.switch_to.window(deck)


def first_notes(path: Path) -> str:
    """The text of a notebook's first notes cell as the speaker view shows it (markdown marks dropped)."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    source = next(c.source for c in cells if c.metadata.get("slideshow", {}).get("slide_type") == "notes")
    body = static_view.notes_body(source)  # unfolded, as the deck shows it
    return "Instructor notes. " + " ".join(re.sub(r"[`*]", "", body).split())


PAGINATED_JS = "return document.documentElement.dataset.paginated === 'true'"
SHAPE_JS = "return Reveal.getHorizontalSlides().map(s => s.querySelectorAll(':scope > section').length)"
SPEAKER_NOTES_JS = "const n = document.querySelector('.speaker-controls-notes .value'); return n && n.textContent"


def _in_speaker_preview(driver, script: str):
    """Run ``script`` in the deck inside the speaker view's "current slide" preview."""
    driver.switch_to.frame(driver.find_element("css selector", "#current-slide iframe"))
    try:
        return driver.execute_script(f"if (!(window.Reveal && Reveal.isReady())) return null; {script}")
    finally:
        driver.switch_to.parent_frame()
