"""Interactive widgets for class: a learning-rate explorer, a training-step stepper and a live loss plot.

Each widget is an ipywidgets box whose logic lives in plain methods (``update``, ``do``,
``__call__``), so tests can drive them without a browser: set ``.value`` or call ``.click()``
and read the model, the history or the figure. Their text form (what a notebook stores as
``text/plain``) is a short, deterministic summary.

The explorer and the stepper also offer what a reader without the widget can see, beside the live
widget: the explorer's picture (``image/png``, and as HTML with alt text), the stepper's table (``text/html``). (A live plot's
picture at that moment would be its empty first frame; a stored notebook keeps its last one.) JupyterLab shows the live widget;
GitHub, an untrusted notebook, or a runtime without widgets shows the picture or table. The notebooks
are stored that way (``scripts/store_outputs.py``), so they open with pictures and unmodified.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from workflow_utils.engine import History, fit
from workflow_utils.models import LinearRegressionModel
from workflow_utils.plotting import OKABE_ITO, describe_figure, img_html, plot_loss_curves, plot_predictions

WIDGET_PICTURE = "widget-picture"  # the class of a widget's <img>: scripts/store_outputs.py finds the picture by it

OPTIMIZERS = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}
LOSSES = {"L1": nn.L1Loss, "MSE": nn.MSELoss}


class Picture(widgets.HTML):
    """A PNG in a widget, at the size it was drawn and with alt text: ``show(fig)`` replaces it.

    An ``<img>`` in an HTML widget, not an ipywidgets ``Image``: an Image cannot carry alt text (its view
    breaks in ipywidgets 8.1 when given a tooltip), so a screen reader would meet a picture with no words.
    ``png`` holds the PNG's bytes and ``alt`` its description (``describe_figure``). Updating the widget's
    value is a widget message, not a cell output, so redraws never pile up in the notebook (nor disturb nbval).
    """

    def __init__(self) -> None:
        super().__init__()
        self.png, self.alt = b"", ""

    def show(self, fig: Figure, alt: str | None = None) -> None:
        """Show ``fig`` with ``alt`` (by default ``describe_figure(fig)``), and close it so it does not also
        appear below the cell."""
        self.alt = describe_figure(fig) if alt is None else alt
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # the resolution of the notebook's own figures
        plt.close(fig)
        self.png = buffer.getvalue()
        # At the size it was drawn (left to itself, a box stretches a picture to the cell's width: blurry), and
        # narrower in a narrow window, keeping its shape.
        width, _ = _png_size(self.png)
        self.value = img_html(
            base64.b64encode(self.png).decode("ascii"),
            self.alt,
            css_class=WIDGET_PICTURE,
            style=f"display: block; width: {width}px; max-width: 100%; height: auto",
        )


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels of a PNG, read from its header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# The live plot's size in inches (600 x 300 px at 100 dpi): with the progress bar and the printed lines
# under it, it fits a 1280 x 720 projector screen in JupyterLab; plot_loss_curves' 6 x 4 did not.
LIVE_FIGSIZE = (6, 3)


def _waiting_figure(title: str) -> Figure:
    """An empty loss plot the size of the live plot's redraws, shown until the first redraw."""
    fig, ax = plt.subplots(figsize=LIVE_FIGSIZE)  # the redraws' size, so the picture does not jump
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.text(0.5, 0.5, "waiting for the first epochs…", ha="center", va="center", color="gray", transform=ax.transAxes)
    return fig


def _whole_epochs(ax: Axes) -> None:
    """Tick the epoch axis at whole epochs only: after 4 epochs matplotlib would label 1.5, 2.5, ..."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


class _WithPicture:
    """Adds the widget's current picture to what Jupyter is given to show: its ``image`` as a PNG, and as HTML
    with alt text (what ``describe_figures`` gives a figure)."""

    image: Picture

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)  # text/plain and the live widget's view
        if data is not None and self.image.png:
            data["image/png"] = base64.b64encode(self.image.png).decode("ascii")
            data["text/html"] = img_html(data["image/png"], self.image.alt)  # the PNG with alt text
        return data


class LearningRateExplorer(_WithPicture, widgets.VBox):
    """Re-train the straight line whenever the learning rate or optimizer changes; redraw both plots."""

    def __init__(
        self,
        X_train: torch.Tensor,
        y_train: torch.Tensor,
        X_test: torch.Tensor,
        y_test: torch.Tensor,
        epochs: int = 100,
        lr: float = 0.01,
        optimizer: str = "SGD",
        loss: str = "L1",
    ) -> None:
        if optimizer not in OPTIMIZERS or loss not in LOSSES:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)} and loss one of {list(LOSSES)}.")
        self.data = (X_train, y_train, X_test, y_test)
        self.epochs, self.loss_name = epochs, loss
        whole_label = {"description_width": "initial"}  # the default width cuts "learning rate" to "learning r…"
        self.lr_slider = widgets.FloatLogSlider(
            value=lr,
            base=10,
            min=-4,
            max=0,
            step=0.25,
            description="learning rate",
            readout_format=".4f",
            # the default idle handle is pale grey on white (about 1.4:1); the palette's blue is 5:1, easy to find
            style={**whole_label, "handle_color": OKABE_ITO["blue"]},
        )
        self.optimizer_menu = widgets.Dropdown(
            options=list(OPTIMIZERS), value=optimizer, description="optimizer", style=whole_label
        )
        self.image = Picture()
        super().__init__([widgets.HBox([self.lr_slider, self.optimizer_menu]), self.image])
        self.lr_slider.observe(lambda _change: self.update(), names="value")
        self.optimizer_menu.observe(lambda _change: self.update(), names="value")
        self.update()

    def update(self) -> None:
        """Train a fresh seed-42 line model with the current settings, then redraw. The notebook's own random
        state is left as it was: moving the slider does not change what the next cell draws."""
        X_train, y_train, X_test, y_test = self.data
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(42)
            self.model = LinearRegressionModel()
        optimizer = OPTIMIZERS[self.optimizer_menu.value](self.model.parameters(), lr=self.lr_slider.value)
        self.weights: list[float] = []  # w after each epoch: L1 with a fixed step ends hopping between two values

        def record_weight(_history: History) -> None:
            self.weights.append(self.model.weights.item())

        self.history: History = fit(
            self.model,
            (X_train, y_train),
            LOSSES[self.loss_name](),
            optimizer,
            self.epochs,
            val_data=(X_test, y_test),
            on_epoch_end=record_weight,
        )
        self.figure, (ax_loss, ax_line) = plt.subplots(1, 2, figsize=(9, 3.2))
        title = f"{self.loss_name} loss, lr={self.lr_slider.value:.4f}"
        plot_loss_curves(self.history, ax=ax_loss, title=title, val_label="test loss")  # watched, never chosen by
        ax_loss.set_yscale("log")
        with torch.inference_mode():
            predictions = self.model(X_test)
        low, high = self.last_weights_range()
        title = (
            f"w={self.model.weights.item():.3f}, b={self.model.bias.item():.3f} (truth 0.7, 0.3)\n"
            f"w over the last 10 epochs: {low:.3f} to {high:.3f}"
        )
        plot_predictions(X_train, y_train, X_test, y_test, predictions, ax=ax_line, title=title)
        self.image.show(self.figure)

    def last_weights_range(self, epochs: int = 10) -> tuple[float, float]:
        """The lowest and highest ``w`` over the last ``epochs`` epochs: one value when training has settled,
        two far apart when each step overshoots and the next comes back (L1 with a large fixed step)."""
        last = self.weights[-epochs:]
        return min(last), max(last)

    def __repr__(self) -> str:
        return f"LearningRateExplorer(lr={self.lr_slider.value:.4f}, optimizer={self.optimizer_menu.value!r})"


class TrainingStepper(widgets.VBox):
    """One button per sub-step of a training step; shows parameters, gradients and loss after each.

    Buttons may be pressed in any order, so the order rules can be broken and their effect seen.
    """

    STEPS = ("forward", "loss", "zero_grad", "backward", "step")

    def __init__(
        self, model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, optimizer: torch.optim.Optimizer
    ) -> None:
        self.model, self.X, self.y, self.loss_fn, self.optimizer = model, X, y, loss_fn, optimizer
        self.y_pred: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self.steps_done: list[str] = []
        self.message = "press the buttons from left to right for one training step"
        self.buttons = {name: widgets.Button(description=name) for name in self.STEPS}
        for name, button in self.buttons.items():
            button.on_click(lambda _button, name=name: self.do(name))
        self.table = widgets.HTML()
        super().__init__([widgets.HBox(list(self.buttons.values())), self.table])
        self._render()

    def do(self, action: str) -> None:
        """Run one sub-step by name and refresh the table; misuse gives a message, not a crash."""
        if action not in self.STEPS:
            raise ValueError(f"unknown step {action!r}; use one of {self.STEPS}.")
        self.message = f"did {action}"
        if action == "forward":
            self.y_pred, self.loss = self.model(self.X), None
        elif action == "loss":
            if self.y_pred is None:
                self.message = "no predictions yet: press forward first"
            else:
                self.loss = self.loss_fn(self.y_pred, self.y)
        elif action == "zero_grad":
            self.optimizer.zero_grad()
        elif action == "backward":
            self._backward()
        else:
            if all(p.grad is None for p in self.model.parameters()):
                self.message = "step with no gradients: nothing changes (press backward first)"
            self.optimizer.step()
            self.y_pred = self.loss = None  # the parameters moved: old predictions are stale
        self.steps_done.append(action)
        self._render()

    def _backward(self) -> None:
        if self.loss is None:
            self.message = "no loss to backpropagate: press forward, then loss"
            return
        try:
            self.loss.backward()
        except RuntimeError:
            self.message = "this loss was already backpropagated (its graph is freed): press forward and loss again"
            return
        self.message = "did backward: gradients were ADDED to .grad (zero_grad first, or they pile up)"

    def state(self) -> dict[str, float | None]:
        """Current parameter values, their gradients and the loss, as plain numbers."""
        values: dict[str, float | None] = {}
        for name, p in self.model.named_parameters():
            values[name] = p.item() if p.numel() == 1 else p.norm().item()
            values[f"{name}.grad"] = (
                None if p.grad is None else (p.grad.item() if p.numel() == 1 else p.grad.norm().item())
            )
        values["loss"] = None if self.loss is None else self.loss.item()
        return values

    def _render(self) -> None:
        cells = "".join(
            f"<tr><td>{k}</td><td>{'—' if v is None else f'{v:.4f}'}</td></tr>" for k, v in self.state().items()
        )
        self.table.value = f"<p><b>{self.message}</b></p><table>{cells}</table>"

    def _repr_mimebundle_(self, **kwargs):
        """The live widget, and for a reader without it the table it shows with the buttons named."""
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            named = ", ".join(f"<code>{name}</code>" for name in self.STEPS)
            data["text/html"] = f"{self.table.value}\n<p>(Run the cell for the buttons: {named}.)</p>"
        return data

    def __repr__(self) -> str:
        return f"TrainingStepper(steps={self.STEPS})"


class LiveLossPlot(widgets.VBox):
    """A ``fit(..., on_epoch_end=...)`` callback that redraws the loss curves after every ``every`` epochs.

    Display it before calling ``fit``. Without a notebook frontend nothing is drawn live; call
    ``final_figure()`` afterwards for the static plot. The picture is 6 x 3 in (about 600 x 300 px at
    100 dpi, ``LIVE_FIGSIZE``), so it fits a 1280 x 720 screen in JupyterLab with its progress bar;
    the epoch axis is ticked at whole epochs only. ``last_figure`` is the latest redraw (closed).
    Used in 04_training_loop, "Training the CNN properly", and 07_putting_it_all_together.
    Raises ValueError for ``every`` that is not a positive int.
    """

    def __init__(self, every: int = 1, title: str = "Loss curves (live)") -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}; try every=1.")
        self.every, self.title, self.updates = every, title, 0
        self.history: History | None = None
        self.last_figure: Figure | None = None
        self.image = Picture()
        waiting = _waiting_figure(title)  # an empty plot, not a broken-image icon, until the first redraw
        self.image.show(waiting, alt=f"{describe_figure(waiting)} No curves yet: waiting for the first epochs.")
        super().__init__([self.image])

    def __call__(self, history: History) -> None:
        self.history = history
        if len(history.epochs) % self.every == 0:  # after every `every` epochs, so a run of 20 ends drawn
            self.updates += 1
            self.last_figure = self.figure(history)  # kept (closed) so tests can read what was shown
            self.image.show(self.last_figure)

    def figure(self, history: History) -> Figure:
        """The live picture of ``history``: its loss curves at ``LIVE_FIGSIZE``, ticked at whole epochs.

        Raises ValueError (from ``plot_loss_curves``) for an empty history.
        """
        fig, ax = plt.subplots(figsize=LIVE_FIGSIZE)
        plot_loss_curves(history, ax=ax, title=self.title)
        _whole_epochs(ax)
        return fig

    def final_figure(self) -> Figure:
        """The loss curves of the whole run, as a static figure."""
        if self.history is None:
            raise ValueError("no epochs seen yet; pass this object to fit as on_epoch_end first.")
        fig = plot_loss_curves(self.history, title=self.title.replace(" (live)", ""))
        _whole_epochs(fig.axes[0])
        return fig

    def __repr__(self) -> str:
        return f"LiveLossPlot(every={self.every})"
