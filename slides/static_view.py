"""A notebook as a reader sees it without a kernel: the decks (``make slides``) and the book
(``make book``) both start from this.

* every widget becomes the last picture it drew (from the widget state saved in the notebook), and
  a finished progress bar is dropped;
* comments meant for our tools (``# nbval-ignore-output: ...``, ``# noqa: ...``) are taken out of
  the code shown;
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
# whole lines and trailing comments addressed to nbval and ruff, not to the reader
_TOOL_LINE = re.compile(r"^\s*# nbval-[\w-]+:.*(?:\n|$)", re.MULTILINE)
_TOOL_TAIL = re.compile(r"\s+# noqa(?::[ \w,]*)?$", re.MULTILINE)


def figure_alt(cell) -> str | None:
    """The alt text of the figures a cell draws, or None when its metadata gives none."""
    alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
    return alt.strip() if isinstance(alt, str) and alt.strip() else None


def widget_models(state: dict, model_id: str):
    """A widget and every widget inside it, depth first (the book also reads the stepper's text from them)."""
    model = state.get(model_id.removeprefix("IPY_MODEL_"), {})
    yield model
    for child in model.get("state", {}).get("children", []):
        yield from widget_models(state, child)


def widget_picture(nb, output) -> str | None:
    """The base64 PNG a widget output showed last, or None (not a widget, or one with no picture)."""
    view = output.get("data", {}).get(WIDGET_VIEW)
    if not view:
        return None
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    pictures = [
        buffer["data"]
        for part in widget_models(state, view["model_id"])
        if part.get("model_name") == "ImageModel"
        for buffer in part.get("buffers", [])
        if buffer.get("path") == ["value"] and buffer.get("encoding") == "base64"
    ]
    return pictures[-1] if pictures else None


def widgets_as_pictures(nb, note_html: str | None = None) -> int:
    """Replace each widget output by its last picture; return how many were replaced.

    ``note_html``, when given, is shown under each picture (the book says the widget is live in
    JupyterLab). Progress bars are dropped: a finished bar says nothing to a reader.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view:
                picture = widget_picture(nb, output)
                if picture:
                    output["data"] = {"image/png": picture}
                    output["metadata"] = {}
                    kept.append(output)
                    replaced += 1
                    if note_html:
                        kept.append(nbformat.v4.new_output("display_data", data={"text/html": note_html}))
                    continue
                parts = list(widget_models(state, view["model_id"]))
                if any(part.get("model_name") == "FloatProgressModel" for part in parts):
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    nb.metadata.pop("widgets", None)
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
            alt = figure_alt(cell)
            for output in cell.get("outputs", []) if alt else ():
                if "image/png" in output.get("data", {}):  # where an nbconvert template can read it
                    output.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = alt
