"""A notebook as a reader sees it without a kernel: the decks (``make slides``) and the book
(``make book``) both start from this.

* every widget becomes the last picture it drew, or the table it showed (``store_widgets``: the
  notebooks are stored that way, and a notebook saved with live widgets is read the same way), and
  a finished progress bar is dropped;
* comments meant for our tools (``# nbval-ignore-output: ...``, ``# noqa: ...``) are taken out of
  the code shown;
* a figure shown as HTML with the alt text ``describe_figures`` builds keeps only its PNG, and
* each figure gets the alt text written in its cell's metadata, ``{"mystnb": {"image": {"alt": ...}}}``,
  the key myst-nb reads for the book (``figure_alt`` reads it; ``tests/test_alt_text.py`` checks
  every figure has one); ``for_readers`` also copies it to each picture output's
  ``metadata["image/png"]["alt"]``, where the deck template reads it.

Instructor notes live in the notebooks folded in ``<details class="instructor-notes">`` at the end of
their section, after the cells they discuss (a student opens them only by choice, and never before
the question they answer); ``notes_body`` gives a notes cell's text without that wrapper.

The notebook file itself is never changed: these functions edit the ``nbformat`` node they are given.
"""

from __future__ import annotations

import re

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
DESCRIBED_FIGURE = "described-figure"  # workflow_utils.plotting.FIGURE_HTML_CLASS (slides/ must not import torch)
WIDGET_PICTURE = "widget-picture"  # workflow_utils.widgets.WIDGET_PICTURE: a widget's <img> with alt text
_WIDGET_PNG = re.compile(rf'^<img class="{WIDGET_PICTURE}" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
# whole lines and trailing comments addressed to nbval and ruff, not to the reader
_TOOL_LINE = re.compile(r"^\s*# nbval-[\w-]+:.*(?:\n|$)", re.MULTILINE)
_TOOL_TAIL = re.compile(r"\s+# noqa(?::[ \w,]*)?$", re.MULTILINE)


def figure_alt(cell) -> str | None:
    """The alt text of the figures a cell draws, or None when its metadata gives none."""
    alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
    return alt.strip() if isinstance(alt, str) and alt.strip() else None


def widget_models(state: dict, model_id: str):
    """A widget and every widget inside it, depth first."""
    model = state.get(model_id.removeprefix("IPY_MODEL_"), {})
    yield model
    for child in model.get("state", {}).get("children", []):
        yield from widget_models(state, child)


def _pictures(parts: list[dict]) -> list[str]:
    """The base64 PNGs the widget models hold, in order: a ``workflow_utils.widgets.Picture`` (an <img> in an
    HTML widget) or, in a notebook saved before it existed, an ipywidgets Image."""
    pictures = []
    for part in parts:
        if part.get("model_name") == "HTMLModel":
            found = _WIDGET_PNG.match(part.get("state", {}).get("value", ""))
            pictures += [found.group(1)] if found else []
        elif part.get("model_name") == "ImageModel":
            pictures += [
                buffer["data"]
                for buffer in part.get("buffers", [])
                if buffer.get("path") == ["value"] and buffer.get("encoding") == "base64"
            ]
    return pictures


def _widget_kind(parts: list[dict]) -> str:
    """'progress' (a progress bar), 'picture' (a widget that draws a PNG) or 'controls' (the rest)."""
    names = {part.get("model_name") for part in parts}
    return "progress" if "FloatProgressModel" in names else "picture" if _pictures(parts) else "controls"


def store_widgets(nb) -> int:
    """Store each live widget output as what a reader without its kernel can see; return how many.

    A live widget is stored by Jupyter as a view of a model kept in the notebook's metadata. Opened
    again, JupyterLab's widget manager restores those models and so marks the notebook modified, and a
    page with no widget manager (GitHub, Colab before a run, an untrusted notebook) shows only the
    widget's text. So each view is dropped and the output keeps the representations the widget gave
    beside it (``workflow_utils.widgets``): a picture widget's ``image/png`` becomes the last picture
    its model held (a live loss plot's final curves, not its first empty frame); a progress bar keeps
    its text. ``metadata["widget"]`` says which kind it was, for the book and the decks. The model
    state is then removed. nbval compares neither the view nor the PNG, so a fresh run still matches; it
    does compare the stepper's ``text/html``, which a fresh run gives again, byte for byte.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    stored = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(WIDGET_VIEW, None)
            if view is None:
                continue
            model_id = view.get("model_id", "").removeprefix("IPY_MODEL_")
            if model_id not in state:  # its picture would be the one from before the run, its kind unknown
                raise ValueError(
                    f"cell {cell.get('id')}: a widget whose state was not saved; re-execute it with `make notebooks`"
                )
            parts = list(widget_models(state, model_id))
            pictures = _pictures(parts)
            if pictures:
                output["data"]["image/png"] = pictures[-1]
            output["metadata"] = {"widget": _widget_kind(parts)}
            stored += 1
    nb.metadata.pop("widgets", None)
    return stored


def widget_kind(output) -> str | None:
    """The kind of widget a stored output came from (see ``store_widgets``), or None."""
    kind = output.get("metadata", {}).get("widget")
    return kind if isinstance(kind, str) else None


def widget_picture(output) -> str | None:
    """The base64 PNG a stored picture widget showed last, or None (not one)."""
    return output.get("data", {}).get("image/png") if widget_kind(output) == "picture" else None


def described_figure_html(output) -> bool:
    """Whether an output's HTML is a figure that ``workflow_utils.plotting.describe_figures`` described.

    Its PNG is also in the output. The book and the decks show that PNG with the alt text written in
    the cell's metadata (``figure_alt``), which says what the figure means, not only what it draws.
    """
    html = output.get("data", {}).get("text/html")
    html = html if isinstance(html, str) else "".join(html or [])
    return "image/png" in output.get("data", {}) and html.startswith(f'<img class="{DESCRIBED_FIGURE}"')


def widgets_as_pictures(nb, note_html: str | None = None) -> int:
    """Show each picture widget as its last picture (``note_html`` under it, when given) and drop progress
    bars, a finished one says nothing to a reader; return how many pictures. A widget with controls only
    (the stepper) keeps its table, ``text/html``. Works on a notebook saved with live widgets too."""
    store_widgets(nb)
    replaced = 0
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            kind = widget_kind(output)
            if kind == "progress":
                continue
            kept.append(output)
            if kind == "picture" and widget_picture(output):
                output["data"] = {"image/png": widget_picture(output)}
                replaced += 1
                if note_html:
                    kept.append(nbformat.v4.new_output("display_data", data={"text/html": note_html}))
        if "outputs" in cell:
            cell["outputs"] = kept
    return replaced


NOTES_SUMMARY = re.compile(r"\A\s*<details[^>]*>\s*<summary>.*?</summary>\s*", re.DOTALL)
NOTES_END = re.compile(r"\s*</details>\s*\Z")


def is_notes(cell) -> bool:
    """Whether a cell is an instructor-notes cell (a markdown cell the decks show as speaker notes)."""
    return (
        cell.get("cell_type") == "markdown"
        and cell.get("metadata", {}).get("slideshow", {}).get("slide_type") == "notes"
    )


def notes_body(source: str) -> str:
    """A notes cell's markdown without its folding ``<details>``/``<summary>`` wrapper."""
    if not NOTES_SUMMARY.match(source):
        return source.strip()
    return NOTES_END.sub("", NOTES_SUMMARY.sub("", source, count=1)).strip()


def without_tool_comments(source: str) -> str:
    """Code as a reader should see it: no lines or trailing comments addressed to nbval or ruff."""
    return _TOOL_TAIL.sub("", _TOOL_LINE.sub("", source))


def for_readers(nb, widget_note_html: str | None = None) -> None:
    """Apply everything above to a notebook node, in place."""
    widgets_as_pictures(nb, widget_note_html)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = without_tool_comments(cell.source)
            for output in cell.get("outputs", []):
                if described_figure_html(output):  # the PNG beside it gets the alt text written for the cell
                    del output["data"]["text/html"]
            alt = figure_alt(cell)
            for output in cell.get("outputs", []) if alt else ():
                if "image/png" in output.get("data", {}):  # where an nbconvert template can read it
                    output.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = alt
