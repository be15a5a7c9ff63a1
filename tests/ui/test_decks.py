"""The reveal.js decks from `make slides` (build/slides), opened from disk in Chromium with the network off.

Every deck loads with no console error and asks for nothing but local files; every slide, with all
its fragments shown, fits in the slide box on a 1280x720 projector without a scrollbar; the notes
plugin carries the instructor notes (and S opens the speaker view); Esc shows the overview.
Screenshots go to build/ui/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import uikit

DECKS = uikit.ROOT / "build" / "slides"
NOTEBOOKS = uikit.ROOT / "notebooks"
DECK_NAMES = [f"{p.stem}.slides.html" for p in sorted(NOTEBOOKS.glob("*.ipynb"))] + [
    f"solutions/{p.stem}.slides.html" for p in sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
]
NETWORK = ("http:", "https:", "ws:", "wss:", "ftp:")
SMALLEST_ZOOM = 0.75  # a slide scaled down further than this is too small to read from the back row

# Each slide with all its fragments shown: its box against the slide area, its scrollbar, its zoom.
SLIDES_JS = """
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
               text: slide.textContent.trim().slice(0, 60)});
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


def test_index_lists_every_deck_and_needs_no_network(deck_browser, built):
    deck_browser.get((built / "index.html").as_uri())
    uikit.wait_for(
        lambda: deck_browser.execute_script("return document.readyState === 'complete'"), 30, "the index page"
    )
    links = deck_browser.execute_script("return [...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    uikit.screenshot(deck_browser, "deck-index")
    assert links == DECK_NAMES
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
    misfits = [s for s in slides if s["top"] < -1 or s["bottom"] < -1 or s["scrolls"] or s["zoom"] < SMALLEST_ZOOM]
    for slide in misfits[:3] + [s for s in slides if s["images"]][:1]:
        deck_browser.execute_script(
            "Reveal.slide(arguments[0], arguments[1], Number.MAX_SAFE_INTEGER)", slide["h"], slide["v"]
        )
        kind = "misfit" if slide in misfits else "figure"
        uikit.screenshot(deck_browser, f"deck-{stem}-{kind}-{slide['h']}-{slide['v']}")
    assert [(s["h"], s["v"], round(s["bottom"]), s["zoom"], s["text"]) for s in misfits] == [], "slides that do not fit"
    assert network_requests(deck_browser) == []
    assert uikit.severe_console_messages(deck_browser) == []
    if "solutions/" not in name:
        notes = [s["notes"] for s in slides if s["notes"]]
        assert notes and all(n.strip().startswith("Instructor notes.") for n in notes), (
            "no instructor notes for the notes plugin"
        )


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
        assert notes.strip().startswith("Instructor notes.") and "30 minutes" in notes
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
