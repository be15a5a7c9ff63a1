"""Every notebook carries slide metadata, and `make slides` builds decks that need no network."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAIN = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}
# a reference that makes a browser fetch something: src/href attributes, CSS url() and @import, JS imports
REMOTE = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["']|\bfrom\s+["']|\bimport\(\s*["'])\s*(?:https?:)?//""",
    re.IGNORECASE,
)
LOCAL_REF = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"'#][^"']*)["']""", re.IGNORECASE)


def slide_types(path):
    return [cell["metadata"].get("slideshow", {}).get("slide_type") for cell in json.loads(path.read_text())["cells"]]


@pytest.mark.parametrize("path", MAIN + SOLUTIONS, ids=lambda p: p.name)
def test_every_cell_has_slide_metadata(path):
    kinds = slide_types(path)
    assert set(kinds) <= SLIDE_TYPES, f"cells without a valid slide_type in {path.name}: {set(kinds) - SLIDE_TYPES}"
    assert kinds[0] == "slide"


def sections_without_notes(cells) -> list[str]:
    """The headings of the "slide" sections that have no notes cell before the next section."""
    missing, heading, noted = [], None, True
    for cell in cells:
        kind = cell["metadata"]["slideshow"]["slide_type"]
        if kind == "slide":
            if not noted:
                missing.append(heading)
            lines = "".join(cell["source"]).strip().splitlines() or ["(empty cell)"]
            heading = next((line for line in lines if line.startswith("#")), lines[0]).lstrip("# ").strip()
            noted = False
        elif kind == "notes":
            noted = True
    if not noted:
        missing.append(heading)
    return missing


def test_sections_without_notes_finds_the_bare_section():
    """The check below can fail: a section with no notes cell is named, a noted one is not."""

    def cell(kind, text):
        return {"metadata": {"slideshow": {"slide_type": kind}}, "source": [text]}

    cells = [
        cell("slide", "# Title"),
        cell("notes", "**Instructor notes.** x"),
        cell("slide", "## Bare"),
        cell("-", "y"),
    ]
    assert sections_without_notes(cells) == ["Bare"]
    assert sections_without_notes(cells[:2]) == []


def notes_before_their_cells(cells) -> list[int]:
    """Indices of notes cells that a student reading down would meet before other cells of their section
    (the notes discuss those cells' answers, so each comes last, just before the next "slide")."""
    early, waiting = [], []
    for index, cell in enumerate(cells):
        kind = cell["metadata"]["slideshow"]["slide_type"]
        if kind == "slide":
            waiting = []
        elif kind == "notes":
            waiting.append(index)
        elif waiting:
            early.extend(waiting)
            waiting = []
    return early


def test_notes_before_their_cells_finds_a_note_above_its_code():
    """The check below can fail: a note above its section's code is named, one below it is not."""

    def cell(kind, text="x"):
        return {"metadata": {"slideshow": {"slide_type": kind}}, "source": [text]}

    above = [cell("slide"), cell("notes"), cell("fragment"), cell("slide"), cell("fragment"), cell("notes")]
    assert notes_before_their_cells(above) == [1]
    assert notes_before_their_cells(above[3:]) == []


@pytest.mark.parametrize("path", MAIN + SOLUTIONS, ids=lambda p: p.name)
def test_every_section_has_instructor_notes_folded_after_its_cells(path):
    """Each "slide" section (lessons and solutions) carries speaker notes for the instructor, folded
    (a student opens them only by choice) and after the section's cells (never an answer above its
    question)."""
    sys.path.insert(0, str(ROOT / "slides"))
    import static_view

    cells = json.loads(path.read_text())["cells"]
    notes = [c for c in cells if c["metadata"]["slideshow"]["slide_type"] == "notes"]
    assert notes, f"{path.name} has no notes cells"
    unfolded = [
        "".join(c["source"])[:60]
        for c in notes
        if not static_view.NOTES_SUMMARY.match("".join(c["source"])) or "instructor-notes" not in c["source"][0]
    ]
    assert not unfolded, f'{path.name}: notes cells not folded in <details class="instructor-notes">: {unfolded}'
    bare = [c for c in notes if len(static_view.notes_body("".join(c["source"]))) < 40]
    assert not bare, f"{path.name}: a notes cell says too little to help an instructor: {bare[0]['source']}"
    missing = sections_without_notes(cells)
    assert not missing, f"{path.name}: sections with no notes cell before the next section: {missing}"
    early = notes_before_their_cells(cells)
    assert not early, f"{path.name}: notes cells above cells of their own section (move them down): {early}"


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    done = subprocess.run(
        [sys.executable, str(ROOT / "slides" / "build_slides.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode and "could not download reveal.js" in done.stderr:
        pytest.skip(f"reveal.js is not installed and cannot be downloaded here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return out


def test_a_deck_per_notebook_and_an_index(decks):
    expected = [decks / f"{p.stem}.slides.html" for p in MAIN] + [
        decks / "solutions" / f"{p.stem}.slides.html" for p in SOLUTIONS
    ]
    assert all(deck.is_file() for deck in expected)
    index = (decks / "index.html").read_text()
    assert all(deck.relative_to(decks).as_posix() in index for deck in expected)


def test_decks_reference_no_remote_asset_and_every_local_one_exists(decks):
    for deck in decks.rglob("*.slides.html"):
        html = deck.read_text()
        assert not REMOTE.search(html), f"{deck.name} loads {REMOTE.search(html).group(0)}..."
        for ref in LOCAL_REF.findall(html):
            if ref.startswith(("data:", "mailto:")):
                continue
            assert (deck.parent / ref.split("?")[0]).is_file(), f"{deck.name} refers to missing {ref}"
        assert 'src="../reveal.js/dist/reveal.js"' in html or 'src="reveal.js/dist/reveal.js"' in html
        sheets = [deck.parent / ref for ref in LOCAL_REF.findall(html) if ref.endswith(".css")]
        while sheets:  # the style sheets a deck uses, and the ones they @import, fetch nothing remote
            css = sheets.pop()
            text = css.read_text()
            assert not REMOTE.search(text), f"{css.name} loads a remote asset"
            sheets += [css.parent / ref for ref in re.findall(r"@import url\(\s*['\"]?([^'\")]+)", text)]


def test_speaker_notes_come_from_notes_cells(decks):
    for path in MAIN:
        html = (decks / f"{path.stem}.slides.html").read_text()
        assert html.count('<aside class="notes">') == slide_types(path).count("notes") > 0
        assert "plugin/notes/notes.js" in html
        asides = re.findall(r'<aside class="notes">(.*?)</aside>', html, re.DOTALL)
        texts = [re.sub(r"<[^>]+>", "", a).strip() for a in asides]
        # unfolded for the speaker view: no <details> left, each note in full under its lead
        assert all(t.startswith("Instructor notes.") and "(for teaching" not in t for t in texts), texts[0][:80]
        assert not any("<details" in a or "<summary" in a for a in asides), path.name


def test_widgets_show_their_last_picture_in_the_deck(decks):
    path = ROOT / "notebooks" / "07_putting_it_all_together.ipynb"
    outputs = [o for c in json.loads(path.read_text())["cells"] for o in c.get("outputs", [])]
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    (live_plot,) = [o for o in outputs if o.get("metadata", {}).get("widget") == "picture"]
    html = (decks / f"{path.stem}.slides.html").read_text()
    assert "application/vnd.jupyter.widget-view+json" not in html  # nothing that needs a kernel
    assert "epochs: 100%" not in html  # the finished progress bar is left out
    assert html.count('src="data:image/png;base64') == figures  # the figures, the live plot's last picture among them
    assert "".join(live_plot["data"]["image/png"]).replace("\n", "") in html.replace("\n", "")


def _builder():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_slides", ROOT / "slides" / "build_slides.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reveal_download_is_checked_against_its_pinned_hash(tmp_path, monkeypatch):
    builder = _builder()
    tarball = tmp_path / "registry" / "reveal.js" / "-" / f"reveal.js-{builder.REVEAL_VERSION}.tgz"
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"not the real reveal.js")
    monkeypatch.setattr(builder, "reveal_home", lambda: tmp_path / "home")
    monkeypatch.delenv("REVEAL_JS_DIR", raising=False)
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", (tmp_path / "registry").as_uri())
    with pytest.raises(SystemExit, match="does not match its pinned SHA-512"):
        builder.install_reveal()
    assert not (tmp_path / "home").exists()


def test_no_network_and_no_copy_gives_one_clear_message(tmp_path, monkeypatch):
    builder = _builder()
    monkeypatch.setattr(builder, "reveal_home", lambda: tmp_path / "home")
    monkeypatch.delenv("REVEAL_JS_DIR", raising=False)
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", (tmp_path / "unreachable").as_uri())
    with pytest.raises(SystemExit, match=r"could not download reveal.js(.|\n)*REVEAL_JS_DIR"):
        builder.install_reveal()


def _deck_order(path):
    """The notebook's cells as the deck builder orders them (notes moved beside their slide)."""
    sys.path.insert(0, str(ROOT / "slides"))
    import build_slides
    import nbformat

    nb = nbformat.read(path, as_version=4)
    notes = [c.id for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "notes"]
    anchors = {c.id: c.metadata.get("notes_for") for c in nb.cells if c.id in notes}
    build_slides.notes_beside_their_slide(nb)
    return nb.cells, notes, anchors


@pytest.mark.parametrize("path", MAIN + SOLUTIONS, ids=lambda p: p.name)
def test_each_note_names_its_slide_and_the_deck_puts_it_there(path):
    """Every notes cell names (notes_for) the slide or subslide it was written for, above it in its own
    section; in the deck it sits on that slide, in notebook order, so the speaker view shows it there."""
    cells = json.loads(path.read_text())["cells"]
    kinds = {c["id"]: c["metadata"].get("slideshow", {}).get("slide_type") for c in cells}
    position = {c["id"]: i for i, c in enumerate(cells)}
    deck, notes, anchors = _deck_order(path)
    for note in notes:
        anchor = anchors[note]
        assert kinds.get(anchor) in ("slide", "subslide"), f"{path.name}: note {note} names notes_for={anchor!r}"
        between = [kinds[c["id"]] for c in cells[position[anchor] + 1 : position[note]]]
        assert "slide" not in between, f"{path.name}: note {note} is not in the section of its slide {anchor}"
        order = [c.id for c in deck]
        after = [kinds.get(i) for i in order[order.index(anchor) + 1 : order.index(note)]]
        assert set(after) <= {"notes"}, f"{path.name}: in the deck, note {note} is not right after its slide"
    in_deck = [c.id for c in deck if c.id in notes]
    assert in_deck == sorted(notes, key=lambda n: (position[anchors[n]], position[n])), path.name


def test_the_book_and_decks_show_a_described_figure_as_its_png_with_the_hand_written_alt():
    """describe_figures' HTML (alt text built from the figure) gives way to the PNG and the alt text the cell's
    metadata gives, which says what the figure means; the class that marks that HTML is the same in both."""
    import nbformat

    from workflow_utils import plotting

    sys.path.insert(0, str(ROOT / "slides"))
    import static_view

    assert static_view.DESCRIBED_FIGURE == plotting.FIGURE_HTML_CLASS
    html = plotting.img_html("iVBORw0KGgo=", "Figure: y against X.")
    output = nbformat.v4.new_output(
        "display_data", data={"text/plain": "<Figure>", "image/png": "iVBORw0KGgo=", "text/html": html}
    )
    other = nbformat.v4.new_output("display_data", data={"text/html": "<table></table>"})
    cell = nbformat.v4.new_code_cell("plt.show()", outputs=[output, other])
    cell.metadata["mystnb"] = {"image": {"alt": "The points lie on a straight line, rising from left to right."}}
    nb = nbformat.v4.new_notebook(cells=[cell])
    static_view.for_readers(nb)
    assert output["data"] == {"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="}
    assert output["metadata"]["image/png"]["alt"].startswith("The points lie on a straight line")
    assert other["data"] == {"text/html": "<table></table>"}
