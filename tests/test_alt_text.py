"""Every figure a notebook stores has alt text in its cell's metadata, the text the book and the decks use.

The key is myst-nb's, ``{"mystnb": {"image": {"alt": "..."}}}`` (slides/static_view.py reads it for the
decks). A figure is an ``image/png`` output, or a widget that saved a picture (the live plots).
"""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "slides"))
import static_view  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
# alt text says what the figure shows: more than a label such as "plot" or "figure of the loss"
SHORTEST_ALT = 40
PLACEHOLDERS = ("no description", "image", "figure", "plot", "todo")


def figure_cells(nb) -> list[int]:
    """Indices of the cells whose stored outputs include a picture."""
    return [
        index
        for index, cell in enumerate(nb.cells)
        if any("image/png" in o.get("data", {}) or static_view.widget_picture(o) for o in cell.get("outputs", []))
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_alt_text_that_describes_it(path):
    nb = nbformat.read(path, as_version=4)
    missing, vague = [], []
    for index in figure_cells(nb):
        alt = static_view.figure_alt(nb.cells[index])
        if alt is None:
            missing.append(index)
        elif len(alt) < SHORTEST_ALT or alt.lower().rstrip(".") in PLACEHOLDERS:
            vague.append((index, alt))
    assert not missing, f"{path.name}: cells {missing} draw a figure with no mystnb.image.alt in their metadata"
    assert not vague, f"{path.name}: alt text too short to say what the figure shows: {vague}"


def test_alt_text_is_only_on_cells_that_draw_a_figure():
    """An alt left behind on a cell that no longer draws anything is a sign the figure moved."""
    stray = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        figures = set(figure_cells(nb))
        stray += [
            f"{path.name} cell {i}" for i, c in enumerate(nb.cells) if static_view.figure_alt(c) and i not in figures
        ]
    assert not stray, f"alt text on cells with no figure: {stray}"


def test_figure_cells_finds_both_kinds_of_picture():
    """The check above would pass vacuously if it found no figures: it finds plain and widget pictures."""
    found = {p.name: figure_cells(nbformat.read(p, as_version=4)) for p in NOTEBOOKS}
    assert sum(map(len, found.values())) >= 20
    nb = nbformat.read(ROOT / "notebooks" / "04_training_loop.ipynb", as_version=4)
    widget_cells = [
        i for i, c in enumerate(nb.cells) if any(static_view.widget_picture(o) for o in c.get("outputs", []))
    ]
    assert widget_cells, "04 stores its live plot's last picture"
