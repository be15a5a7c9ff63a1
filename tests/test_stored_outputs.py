"""What a notebook stores for readers whose viewer runs no widgets (GitHub, an untrusted notebook, nbviewer)."""

import base64
import html
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "slides"))
import static_view  # noqa: E402
import store_outputs  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("**/*.ipynb"))
BAR = re.compile(r"epochs: +(\d+)%\|[^|\n]*\| (\d+)/(\d+)")


def test_no_stored_progress_bar_is_left_unfinished():
    """fit(progress=True)'s bar is a widget whose stored text tqdm writes as the bar starts ("0/20") and never
    again; fit writes it again as the run ends, so a reader without widgets sees the finished bar."""
    bars, unfinished = 0, []
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for output in cell.get("outputs", []):
                text = "".join(output.get("data", {}).get("text/plain", ""))
                for match in BAR.finditer(text):
                    bars += 1
                    if match[2] != match[3]:
                        unfinished.append(f"{path.relative_to(ROOT)} cell {cell.get('id')}: {match[0]}")
    assert bars >= 2, "04 and 07 show a progress bar"
    assert unfinished == []


def test_the_bar_prints_no_time_in_a_terminal(capsys):
    """Outside Jupyter the bar is tqdm's line on stderr, without elapsed time or rate."""
    from workflow_utils.engine import _with_progress_bar

    assert list(_with_progress_bar(range(3, 6))) == [3, 4, 5]
    last = capsys.readouterr().err.split("\r")[-1]
    assert re.fullmatch(r"epochs: 100%\|[^|]*\| 3/3\s*", last), last


# --- widgets: stored as the picture or table a reader without a kernel can see ---------------------------------


VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def test_no_notebook_stores_a_live_widget():
    """A stored widget model makes JupyterLab mark the notebook modified as it opens (its widget manager restores
    the model) and ask to save on close; GitHub and Colab before a run show only the widget's text."""
    live = [p.relative_to(ROOT) for p in NOTEBOOKS if store_outputs.holds_live_widgets(nbformat.read(p, as_version=4))]
    assert live == [], f"run: python scripts/store_outputs.py {' '.join(map(str, live))}"
    assert store_outputs.store_cli(["--check", *map(str, NOTEBOOKS)]) == 0


def test_every_lesson_widget_is_stored_as_what_it_showed():
    """03's explorer and 04/07's live plots as pictures, 04's stepper as its table, the bars as their text."""
    kinds = {}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                kind = output.get("metadata", {}).get("widget")
                if kind:
                    kinds.setdefault(kind, []).append(path.name)
                    data = output["data"]
                    assert {"picture": "image/png", "controls": "text/html", "progress": "text/plain"}[kind] in data
    assert sorted(kinds["picture"]) == [
        "03_loss_and_optimizer.ipynb",
        "04_training_loop.ipynb",
        "07_putting_it_all_together.ipynb",
    ]
    assert kinds["controls"] == ["04_training_loop.ipynb"]
    assert sorted(kinds["progress"]) == ["04_training_loop.ipynb", "07_putting_it_all_together.ipynb"]


def _png(width: int) -> str:
    """A base64 PNG header as wide as ``width``: enough for the code under test, which never decodes it."""
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8 + width.to_bytes(4, "big") + b"\0" * 8).decode()


def _live_notebook(picture_model: str = "HTMLModel"):
    """A notebook as nbconvert or JupyterLab saves it: views in the outputs, models in the metadata. The live
    plot's picture is a ``workflow_utils.widgets.Picture`` (an HTML widget), or the ipywidgets Image that notebooks
    saved before it held."""

    def view(model_id):
        return {VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0}}

    picture = {
        "HTMLModel": {
            "model_name": "HTMLModel",
            "state": {"value": f'<img class="widget-picture" src="data:image/png;base64,{_png(600)}" alt="Figure">'},
        },
        "ImageModel": {
            "model_name": "ImageModel",
            "state": {},
            "buffers": [{"path": ["value"], "encoding": "base64", "data": _png(600)}],
        },
    }[picture_model]
    state = {
        "plot": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_img"]}},
        "img": picture,
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_prog"]}},
        "prog": {"model_name": "FloatProgressModel", "state": {}},
        "step": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_btn"]}},
        "btn": {"model_name": "ButtonModel", "state": {"description": "forward"}},
    }
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    out = nbformat.v4.new_output
    nb.cells = [
        nbformat.v4.new_code_cell(
            "fit(...)",
            outputs=[
                out(
                    "display_data", data={"text/plain": "LiveLossPlot(every=1)", "image/png": _png(10), **view("plot")}
                ),
                out("display_data", data={"text/plain": "epochs: 100%|##| 3/3", **view("bar")}),
                out("stream", name="stdout", text="Epoch 2\n"),
            ],
        ),
        nbformat.v4.new_code_cell(
            "TrainingStepper(...)",
            outputs=[
                out(
                    "execute_result",
                    data={"text/plain": "TrainingStepper()", "text/html": "<table/>", **view("step")},
                    execution_count=2,
                )
            ],
        ),
    ]
    return nb


@pytest.mark.parametrize("picture_model", ["HTMLModel", "ImageModel"])
def test_store_widgets_keeps_the_last_picture_the_bar_text_and_the_table(picture_model):
    nb = _live_notebook(picture_model)
    assert static_view.store_widgets(nb) == 3
    assert "widgets" not in nb.metadata and not store_outputs.holds_live_widgets(nb)
    plot, bar, printed = nb.cells[0].outputs
    assert plot["data"] == {"text/plain": "LiveLossPlot(every=1)", "image/png": _png(600)}  # the last, not the first
    assert plot["metadata"] == {"widget": "picture"} and bar["metadata"] == {"widget": "progress"}
    assert bar["data"] == {"text/plain": "epochs: 100%|##| 3/3"} and printed["text"] == "Epoch 2\n"
    (stepper,) = nb.cells[1].outputs
    assert stepper["data"] == {"text/plain": "TrainingStepper()", "text/html": "<table/>"}
    assert stepper["metadata"] == {"widget": "controls"}
    before = nbformat.writes(nb)
    assert static_view.store_widgets(nb) == 0 and nbformat.writes(nb) == before  # a second pass changes nothing


def test_the_cli_stores_widgets_joins_a_split_print_and_check_names_the_file(tmp_path, capsys):
    """A print the kernel sent in two pieces is one output, as JupyterLab shows it (nbconvert's option to join
    them runs before executing, on the old outputs)."""
    path = tmp_path / "live.ipynb"
    nb = _live_notebook()
    split = [nbformat.v4.new_output("stream", name="stdout", text=part) for part in ("requires_grad:", " False\n")]
    nb.cells.append(nbformat.v4.new_code_cell("print(...)", outputs=split))
    nbformat.write(nb, path)
    assert store_outputs.store_cli(["--check", str(path)]) == 1
    assert f"{path}: not stored as a reader sees it; refresh it with `make notebooks`" in capsys.readouterr().out
    assert store_outputs.store_cli([str(path)]) == 0
    assert store_outputs.store_cli(["--check", str(path)]) == 0
    stored = nbformat.read(path, as_version=4)
    assert nbformat.validate(stored) is None and not store_outputs.holds_live_widgets(stored)
    assert [o["text"] for o in stored.cells[-1].outputs] == ["requires_grad: False\n"]
    assert path.read_text(encoding="utf-8").count('"requires_grad: False\\n"') == 1  # lines split as nbformat writes


@pytest.fixture
def line():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    X = torch.arange(0, 1, 0.05).unsqueeze(1)
    return X[:16], 0.7 * X[:16] + 0.3, X[16:], 0.7 * X[16:] + 0.3


def test_picture_widgets_give_their_picture_and_the_stepper_its_table_beside_the_live_view(line):
    """What Jupyter is given to show: the live view first (JupyterLab), and for a reader without widgets the
    picture or the table, the same a stored notebook keeps."""
    import torch
    from torch import nn

    from workflow_utils.models import LinearRegressionModel
    from workflow_utils.widgets import LearningRateExplorer, LiveLossPlot, TrainingStepper

    explorer = LearningRateExplorer(*line, epochs=5)
    data = explorer._repr_mimebundle_()
    assert set(data) == {"text/plain", VIEW, "image/png", "text/html"}
    assert base64.b64decode(data["image/png"]) == explorer.image.png
    alt = explorer.image.alt
    assert (
        alt.startswith("Figure with 2 panels. Panel 1") and f'alt="{html.escape(alt, quote=True)}"' in data["text/html"]
    )
    assert set(LiveLossPlot()._repr_mimebundle_()) == {"text/plain", VIEW}  # its picture now is the empty frame
    # store_widgets finds the live picture by its class, which slides/ (no torch) names again
    from workflow_utils.widgets import WIDGET_PICTURE

    assert static_view.WIDGET_PICTURE == WIDGET_PICTURE and explorer.image.value.startswith(
        f'<img class="{WIDGET_PICTURE}"'
    )
    model = LinearRegressionModel()
    stepper = TrainingStepper(model, line[0], line[1], nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.01))
    table = stepper._repr_mimebundle_()["text/html"]
    assert stepper.table.value in table and "<code>zero_grad</code>" in table


def test_a_widget_whose_state_was_not_saved_is_refused_naming_the_cell():
    """Without its model the widget's last picture and kind are unknown: storing it would keep a stale frame."""
    nb = _live_notebook()
    del nb.metadata["widgets"][STATE]["state"]["plot"]
    nb.cells[0]["id"] = "fit-cell"
    with pytest.raises(ValueError, match=r"cell fit-cell: a widget whose state was not saved; re-execute it"):
        static_view.store_widgets(nb)


def test_the_stored_live_plots_show_the_finished_run_not_the_empty_first_frame():
    from workflow_utils.widgets import LiveLossPlot, _png_size

    stored = {}
    for name in ("04_training_loop.ipynb", "07_putting_it_all_together.ipynb"):
        for cell in nbformat.read(ROOT / "notebooks" / name, as_version=4).cells:
            for output in cell.get("outputs", []):
                if static_view.widget_picture(output) and "LiveLossPlot" in output["data"]["text/plain"]:
                    stored[name] = base64.b64decode(output["data"]["image/png"])
    assert len(stored) == 2
    empty = LiveLossPlot().image.png  # the first frame, as a fresh live plot shows it
    for name, png in stored.items():
        # bbox_inches="tight" trims each picture to its labels: a few pixels either way, never the height
        assert _png_size(png)[1] == _png_size(empty)[1], f"{name}: the picture is not the live plot's size"
        assert png != empty, f"{name} stores the live plot's empty first frame"
