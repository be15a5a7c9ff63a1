import pytest
import torch
from torch import nn

from workflow_utils.data import make_line_data, split_data
from workflow_utils.engine import fit
from workflow_utils.models import LinearRegressionModel
from workflow_utils.plotting import describe_figure
from workflow_utils.widgets import LearningRateExplorer, LiveLossPlot, TrainingStepper


@pytest.fixture
def line():
    return split_data(*make_line_data())


def _stepper(line, lr=0.01):
    X_train, y_train, _, _ = line
    torch.manual_seed(42)
    model = LinearRegressionModel()
    return TrainingStepper(model, X_train, y_train, nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=lr))


def test_explorer_retrains_when_the_slider_moves(line):
    explorer = LearningRateExplorer(*line, epochs=50)
    h = explorer.history
    assert round(h.train_loss[0], 4) == 0.3129  # seed 42, the course's starting loss
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]  # lr 0.01 learns
    explorer.lr_slider.value = 0.0001
    h = explorer.history
    assert h.train_loss[-1] > 0.95 * h.train_loss[0]  # a tiny rate barely moves
    assert "lr=0.0001" in explorer.figure.axes[0].get_title()
    assert repr(explorer) == "LearningRateExplorer(lr=0.0001, optimizer='SGD')"


def test_explorer_switches_optimizer(line):
    explorer = LearningRateExplorer(*line, epochs=50)
    sgd_w = explorer.model.weights.item()
    explorer.optimizer_menu.value = "Adam"
    assert explorer.model.weights.item() != sgd_w
    assert len(explorer.figure.axes) == 2


def test_stepper_in_order_moves_the_weight(line):
    stepper = _stepper(line)
    for name in TrainingStepper.STEPS:
        stepper.buttons[name].click()
    state = stepper.state()
    assert round(state["weights"], 4) == 0.3406  # one SGD step from 0.3367 with grad -0.39
    assert round(state["weights.grad"], 4) == -0.39
    assert stepper.steps_done == list(TrainingStepper.STEPS)


def test_stepper_step_without_backward_changes_nothing(line):
    stepper = _stepper(line)
    stepper.do("forward")
    stepper.do("loss")
    stepper.do("step")
    assert round(stepper.state()["weights"], 4) == 0.3367
    assert "nothing changes" in stepper.message


def test_stepper_shows_gradients_piling_up_without_zero_grad(line):
    stepper = _stepper(line, lr=0.0)  # lr 0 keeps the parameters still, isolating the gradients
    for name in ("forward", "loss", "backward", "forward", "loss", "backward"):
        stepper.do(name)
    assert round(stepper.state()["weights.grad"], 4) == -0.78
    stepper.do("backward")  # same loss again: its graph is gone
    assert "already backpropagated" in stepper.message


def test_stepper_loss_before_forward_is_explained(line):
    stepper = _stepper(line)
    stepper.do("loss")
    assert "press forward first" in stepper.message and stepper.state()["loss"] is None
    with pytest.raises(ValueError, match="use one of"):
        stepper.do("jump")


def test_live_plot_redraws_every_n_epochs_and_gives_a_static_figure(line):
    X_train, y_train, X_test, y_test = line
    torch.manual_seed(42)
    model = LinearRegressionModel()
    live = LiveLossPlot(every=5)
    fit(
        model,
        (X_train, y_train),
        nn.L1Loss(),
        torch.optim.SGD(model.parameters(), lr=0.01),
        20,
        val_data=(X_test, y_test),
        on_epoch_end=live,
    )
    assert live.updates == 4  # after 5, 10, 15 and 20 epochs: the last picture shows the whole run
    assert len(live.history.epochs) == 20
    fig = live.final_figure()
    assert len(fig.axes[0].get_lines()) == 2 and len(fig.axes[0].get_lines()[0].get_xdata()) == 20


def test_live_plot_without_epochs_explains():
    with pytest.raises(ValueError, match="on_epoch_end"):
        LiveLossPlot().final_figure()


def test_redraws_land_in_the_image_widget_as_png(line):
    explorer = LearningRateExplorer(*line, epochs=5)
    first = explorer.image.png
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    explorer.optimizer_menu.value = "Adam"
    assert explorer.image.png != first


def test_widget_pictures_carry_alt_text_describing_what_they_show(line):
    """A screen reader meets the live picture with words: its <img> has the alt text describe_figure gives the
    figure shown, the PNG itself, and each redraw replaces both (an ipywidgets Image could carry none)."""
    import base64
    import html
    import re

    explorer = LearningRateExplorer(*line, epochs=5)
    shown = re.fullmatch(
        r'<img class="widget-picture" src="data:image/png;base64,([^"]+)" alt="([^"]+)" style="[^"]+">',
        explorer.image.value,
    )
    assert shown, explorer.image.value[:120]
    assert base64.b64decode(shown.group(1)) == explorer.image.png
    assert html.unescape(shown.group(2)) == explorer.image.alt
    assert explorer.image.alt.startswith('Figure with 2 panels. Panel 1, "L1 loss, lr=0.0100"')
    explorer.lr_slider.value = 0.1
    assert "lr=0.1000" in explorer.image.alt and html.escape(explorer.image.alt, quote=True) in explorer.image.value
    live = LiveLossPlot(every=1)
    assert (
        live.image.alt
        == 'Figure, "Loss curves (live)": loss against epoch. No curves yet: waiting for the first epochs.'
    )
    live = _live_plot_after(line, epochs=2)
    assert live.image.alt == describe_figure(live.last_figure)  # the curves drawn, with their legend
    assert "legend: train loss, validation loss" in live.image.alt


def _png_size(png):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png)).size


def test_pictures_are_shown_at_the_size_they_were_drawn(line):
    explorer = LearningRateExplorer(*line, epochs=5)
    width, height = _png_size(explorer.image.png)
    # 9 x 3.2 in at 100 dpi, trimmed to the axes; the trim rounds a pixel differently across matplotlib releases
    assert abs(width - 821) <= 2 and abs(height - 353) <= 2, (width, height)  # two title lines on the right
    # at that size, and a narrow window shrinks it, keeping its shape
    assert f'style="display: block; width: {width}px; max-width: 100%; height: auto"' in explorer.image.value


def test_live_plot_starts_with_an_empty_plot_the_size_of_its_redraws(line):
    X_train, y_train, X_test, y_test = line
    live = LiveLossPlot(every=1)
    blank_width, blank_height = _png_size(live.image.png)  # a picture from the start: no broken-image icon
    assert f"width: {blank_width}px;" in live.image.value and live.updates == 0
    torch.manual_seed(42)
    model = LinearRegressionModel()
    fit(
        model,
        (X_train, y_train),
        nn.L1Loss(),
        torch.optim.SGD(model.parameters(), lr=0.01),
        2,
        val_data=(X_test, y_test),
        on_epoch_end=live,
    )
    width, height = _png_size(live.image.png)
    assert f"width: {width}px;" in live.image.value
    assert abs(blank_width / width - 1) < 0.1 and abs(blank_height / height - 1) < 0.1, (
        (blank_width, blank_height),
        (width, height),
    )


def test_explorer_labels_get_the_width_they_need(line):
    explorer = LearningRateExplorer(*line, epochs=5)
    assert explorer.lr_slider.description == "learning rate"
    assert explorer.lr_slider.style.description_width == "initial"  # the default width cut it to "learning r…"
    assert explorer.optimizer_menu.style.description_width == "initial"


def test_the_explorer_calls_its_held_out_curve_test_loss(line):
    """The explorer watches the test split and never chooses by it, so its legend says test, not validation."""
    explorer = LearningRateExplorer(*line, epochs=5)
    legend = explorer.figure.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["train loss", "test loss"]


def _visible_epoch_ticks(ax):
    """The epoch-axis tick values a reader sees (matplotlib also keeps ticks just outside the axes)."""
    low, high = ax.get_xlim()
    return [tick for tick in ax.get_xticks() if low <= tick <= high]


def _live_plot_after(line, epochs: int) -> LiveLossPlot:
    """A LiveLossPlot that watched the seed-42 line model train for ``epochs`` epochs."""
    X_train, y_train, X_test, y_test = line
    live = LiveLossPlot(every=1)
    torch.manual_seed(42)
    model = LinearRegressionModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    fit(model, (X_train, y_train), nn.L1Loss(), optimizer, epochs, val_data=(X_test, y_test), on_epoch_end=live)
    return live


def test_live_plot_labels_whole_epochs_only(line):
    live = _live_plot_after(line, epochs=4)
    ax = live.last_figure.axes[0]
    live.last_figure.canvas.draw()
    labels = [label.get_text() for label in ax.get_xticklabels() if label.get_text()]
    ticks = _visible_epoch_ticks(ax)
    assert ticks and all(tick == int(tick) for tick in ticks), ticks
    assert labels and all(label.lstrip("−-").isdigit() for label in labels), labels  # "1", "2", never "1.5"
    # the same four epochs on matplotlib's default axis get half epochs: the case this guards against
    import matplotlib.pyplot as plt

    fig, plain = plt.subplots()
    plain.plot(live.history.epochs, live.history.train_loss)
    assert any(tick != int(tick) for tick in _visible_epoch_ticks(plain))
    plt.close(fig)
    assert all(tick == int(tick) for tick in _visible_epoch_ticks(live.final_figure().axes[0]))  # the static one too


def test_live_plot_is_short_enough_for_a_720_pixel_screen(line):
    live = _live_plot_after(line, epochs=2)
    width, height = _png_size(live.image.png)
    # about 600 x 300 px: JupyterLab at 1280 x 720 shows about 590 px of notebook, the progress bar needs some
    assert height <= 320 and width >= 500, (width, height)
    assert [text.get_text() for text in live.last_figure.axes[0].get_legend().get_texts()] == [
        "train loss",
        "validation loss",
    ]


def test_explorer_task_has_one_answer_on_the_slider_and_shows_the_hop(line):
    """03 asks for the smallest slider rate at which SGD keeps w within 0.05 of 0.7 over the last 10 of 100
    epochs: exactly one rate is the answer, and the hop that made 'closest at epoch 100' a tie is on screen."""
    explorer = LearningRateExplorer(*line, epochs=100)
    slider = explorer.lr_slider
    grid = [10 ** (k * slider.step) for k in range(int(slider.min / slider.step), int(slider.max / slider.step) + 1)]
    assert len(grid) == 17 and grid[0] == pytest.approx(1e-4) and grid[-1] == 1.0
    close = []
    for lr in grid:
        slider.value = lr
        low, high = explorer.last_weights_range()
        assert len(explorer.weights) == 100
        if max(abs(low - 0.7), abs(high - 0.7)) < 0.05:
            close.append(round(lr, 4))
    assert min(close) == 0.0178 and 0.0100 not in close  # one smallest rate; the one below ends 0.12 short
    title = explorer.figure.axes[1].get_title()
    assert "w over the last 10 epochs: 0.337 to 0.727" in title  # lr 1: it hops back to its start, 0.3367
    assert explorer.weights[-1] == explorer.weights[-3] == explorer.weights[-5]


def test_moving_the_explorer_leaves_the_notebook_random_state_alone(line):
    """The explorer trains a seed-42 model on every move, inside its own random state."""
    explorer = LearningRateExplorer(*line)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    explorer.lr_slider.value = 0.05  # retrains and redraws
    assert torch.equal(torch.rand(3), expected)
