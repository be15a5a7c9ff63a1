"""Plots for the series. Each helper draws on new (or given) axes and returns the Figure.

``matplotlib.pyplot`` is imported inside the functions: it takes longer to import than the rest
of the package together, and code that never plots should not pay for it.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import torch

from workflow_utils import _validate as check

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from workflow_utils.engine import History


# One palette for every figure of the series: Okabe & Ito (2008), "Color Universal Design", eight
# colours chosen to stay distinct for readers with red-green colour blindness (about 1 man in 12).
# Series also differ by marker or line style, so they never depend on colour alone, and prose
# names a series by its label. tests/test_palette.py simulates deuteranopia and protanopia on them.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "bluish green": "#009E73",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "sky blue": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
COLORS = tuple(OKABE_ITO.values())  # the order figures use: 1st series blue, 2nd orange, 3rd bluish green
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # circle, square, triangle, ...: one per series
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 1, 2)))
# what the helpers draw: points (training data, test data, predictions) and curves (train, held-out)
POINTS = {
    name: {"color": COLORS[i], "marker": MARKERS[i]}
    for i, name in enumerate(("training data", "test data", "predictions"))
}
CURVES = {name: {"color": COLORS[i], "linestyle": LINESTYLES[i]} for i, name in enumerate(("train", "held-out"))}


def use_palette() -> None:
    """Make figures drawn by hand use the series' palette: the n-th line gets ``COLORS[n]`` and ``LINESTYLES[n]``.

    Sets matplotlib's ``axes.prop_cycle`` (and nothing else) for figures created afterwards; the
    helpers below set their colours, markers and line styles themselves, so they need no call.
    Called in the setup cell of the notebooks that draw figures by hand; first used in 01_data,
    "Look at it: a plotting function written by hand", where each series also gets its own marker.
    """
    import matplotlib as mpl

    mpl.rcParams["axes.prop_cycle"] = mpl.cycler(color=list(COLORS), linestyle=list(LINESTYLES))


def describe_figures() -> None:
    """In Jupyter, show every figure with a text description of it, for readers who cannot see it.

    Jupyter shows a figure as a bare PNG, which screen readers announce as "image" and nothing more.
    After this call each figure is also given as HTML, ``<img alt="...">``, whose alt text
    ``describe_figure`` builds from what the figure draws (titles, axis labels, what the legend
    names). JupyterLab shows that HTML (checked by tests/ui/test_lab.py); a viewer that shows only
    pictures shows the PNG beside it.
    Outside IPython it does nothing. Called in the setup cell of every notebook that draws, beside
    ``use_palette()``; explained in 01_data, "Look at it: a plotting function written by hand".
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    import matplotlib
    import matplotlib.pyplot as plt

    # Jupyter's inline backend, as it loads, removes every display format registered for figures; load it now
    plt.switch_backend(matplotlib.get_backend())
    _register_html(shell)
    if _register_html not in shell.events.callbacks["post_execute"]:  # again after a `%matplotlib inline`
        shell.events.register("post_execute", _register_html)


def _register_html(shell=None) -> None:
    from IPython import get_ipython
    from matplotlib.figure import Figure

    formatter = (shell or get_ipython()).display_formatter.formatters["text/html"]
    if Figure not in formatter:
        formatter.for_type(Figure, _figure_html)


FIGURE_HTML_CLASS = "described-figure"  # marks the HTML describe_figures adds, for the book and the decks


def _figure_html(fig: Figure) -> str | None:
    """The figure as the PNG Jupyter would show, in an <img> with ``describe_figure``'s alt text."""
    from IPython import get_ipython

    png = get_ipython().display_formatter.formatters["image/png"](fig)  # the inline backend's own PNG
    if not png:
        return None
    png = png.decode("ascii") if isinstance(png, bytes) else png
    return img_html("".join(png.split()), describe_figure(fig))  # IPython 7 ends its base64 with a newline


def img_html(png: str, alt: str, css_class: str = FIGURE_HTML_CLASS, style: str | None = None) -> str:
    """An <img> of a base64 PNG with its alt text, as ``describe_figures`` shows a figure (01_data, "Look at
    it: a plotting function written by hand"); the widgets' pictures give their own class and size."""
    from html import escape

    styled = "" if style is None else f' style="{escape(style, quote=True)}"'
    return f'<img class="{css_class}" src="data:image/png;base64,{png}" alt="{escape(alt, quote=True)}"{styled}>'


def describe_figure(fig: Figure) -> str:
    """A short description of what ``fig`` draws, from its titles, axis labels and labelled series.

    For example: 'Figure, "Loss curves": loss against epoch; legend: train loss, test loss.' A grid of
    images becomes 'A grid of 9 images, titled 5, 0, 4, ...'. It describes what is drawn, not what it
    means; the prose around the figure says that. Explained in 01_data, "Look at it: a plotting function
    written by hand" (the alt text a screen reader reads out).
    """
    drawn = ("images", "lines", "collections", "patches", "texts")  # an empty spare panel of a grid draws none
    panels = [
        ax
        for ax in fig.axes
        if ax.get_visible() and not hasattr(ax, "_colorbar") and (ax.axison or any(getattr(ax, d) for d in drawn))
    ]
    title = _one_line(fig._suptitle.get_text()) if getattr(fig, "_suptitle", None) is not None else ""
    head = f'Figure "{title}"' if title else "Figure"
    if not panels:
        return f"{head}, empty."
    if len(panels) > 1 and all(ax.images and not ax.lines and not ax.collections for ax in panels):
        titles = [_title(ax) for ax in panels if _title(ax)]
        more = f" and {len(titles) - 30} more" if len(titles) > 30 else ""
        between = "; " if any("," in t for t in titles) else ", "  # titles with commas of their own
        grid = f"A grid of {len(panels)} images" + (f", titled {between.join(titles[:30])}{more}" if titles else "")
        return f"{grid}." if not title else f'{grid}, under the title "{title}".'
    if len(panels) == 1:
        return f"{head}{_describe_panel(panels[0])}."
    return f"{head} with {len(panels)} panels." + "".join(
        f" Panel {i}{_describe_panel(ax)}." for i, ax in enumerate(panels, 1)
    )


def _one_line(text: str) -> str:
    """A title of several lines as one: its lines joined by '; ', spaces tidied."""
    return "; ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def _title(ax: Axes) -> str:
    """A panel's title, wherever it is placed (centred, left or right)."""
    return _one_line(ax.get_title() or ax.get_title("left") or ax.get_title("right"))


def _describe_panel(ax: Axes) -> str:
    """One panel, to follow "Figure" or "Panel 2": its title, what it plots against what, what it draws."""
    title = _title(ax)
    text = f', "{title}"' if title else ""
    x, y = ax.get_xlabel(), ax.get_ylabel()
    if ax.get_yscale() == "log" and y and "log" not in y:
        y += " (log scale)"
    if x and y:
        text += f": {y} against {x}"
    elif x:
        text += f": against {x}"
    elif y:
        text += f": {y}"
    if ax.images:
        text += ", an image" if len(ax.images) == 1 else f", {len(ax.images)} images"
    bars = sum(len(c) for c in ax.containers if type(c).__name__ == "BarContainer")
    if bars:
        text += f", {bars} bars"
    points = sum(len(c.get_offsets()) for c in ax.collections if type(c).__name__ == "PathCollection")
    legend = ax.get_legend()
    names = [t.get_text() for t in legend.get_texts()] if legend is not None else []
    if names:
        return text + "; legend: " + ", ".join(names)
    data_lines = [line for line in ax.lines if line.get_transform() == ax.transData]
    references = len(ax.lines) - len(data_lines)  # axhline / axvline: across the panel, in axes coordinates
    for count, what in ((points, "point"), (len(data_lines), "line"), (references, "reference line")):
        if count:
            text += f", one {what}" if count == 1 else f", {count} {what}s"
    return text


def _to_numpy(t: torch.Tensor):
    return t.detach().cpu().numpy()


def plot_predictions(
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    predictions: torch.Tensor | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Scatter training data, test data and (optionally) predictions for the test inputs.

    Written by hand in 01_data, "Look at it: a plotting function written by hand". It draws one
    input feature against one target, so every tensor holds one value per point.
    """
    named = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test, "predictions": predictions}
    for name, values in named.items():
        if values is not None:
            _check_one_column(name, values)
    for name, (a, b) in (("train", (X_train, y_train)), ("test", (X_test, y_test))):
        if len(a) != len(b):
            raise ValueError(
                f"X_{name} has {len(a)} points but y_{name} has {len(b)}; pass matching inputs and targets."
            )
    if predictions is not None and len(predictions) != len(X_test):
        raise ValueError(f"got {len(predictions)} predictions for {len(X_test)} test points; predict on X_test.")
    fig, ax = _figure(ax, figsize=(6, 4))
    ax.scatter(_to_numpy(X_train), _to_numpy(y_train), s=12, label="training data", **POINTS["training data"])
    ax.scatter(_to_numpy(X_test), _to_numpy(y_test), s=12, label="test data", **POINTS["test data"])
    if predictions is not None:
        ax.scatter(_to_numpy(X_test), _to_numpy(predictions), s=12, label="predictions", **POINTS["predictions"])
    ax.set_xlabel("X")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig


def _check_one_column(name: str, values: torch.Tensor) -> None:
    """``values`` is a tensor of shape (N,) or (N, 1): one number per point."""
    if not isinstance(values, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(values).__name__}; convert it with torch.as_tensor({name})."
        )
    if values.ndim == 0 or values.ndim > 2 or (values.ndim == 2 and values.shape[1] != 1):
        raise ValueError(
            f"plot_predictions draws one value per point, but {name} has shape {tuple(values.shape)}; "
            f"pick one feature column such as {name}[:, :1], or plot predictions against targets with plt.scatter(y_test, predictions)."
        )


def plot_loss_curves(
    history: History, ax: Axes | None = None, title: str = "Loss curves", val_label: str = "validation loss"
) -> Figure:
    """Training (and validation) loss per epoch from a ``History``.

    ``val_label`` names the second curve: "test loss" when the held-out data only watch training.
    Written by hand in 04_training_loop, "Loss curves".
    """
    _check_history(history)
    if not history.epochs:
        raise ValueError("the history is empty; train for at least one epoch before plotting it.")
    for name, values in (("train_loss", history.train_loss), ("val_loss", history.val_loss)):
        if len(values) != len(history.epochs) and (name == "train_loss" or values):
            raise ValueError(
                f"the history has {len(history.epochs)} epochs but {len(values)} {name} values; pass the History "
                "that fit returned, or give every list one entry per epoch."
            )
    fig, ax = _figure(ax, figsize=(6, 4))
    ax.plot(history.epochs, history.train_loss, label="train loss", **CURVES["train"])
    if history.val_loss:
        ax.plot(history.epochs[: len(history.val_loss)], history.val_loss, label=val_label, **CURVES["held-out"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return fig


def _check_history(history) -> None:
    from workflow_utils.engine import History

    if not isinstance(history, History):
        raise TypeError(
            f"expected the History that fit returns, got {type(history).__name__}; pass history = fit(...)."
        )


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=figsize)
        return _shown_once(fig), ax
    return _shown_once(ax.figure), ax


def _shown_once(fig: Figure) -> Figure:
    """Let a helper's figure appear once in Jupyter when it is also a cell's last line.

    Jupyter shows the returned Figure as the cell's result, and the inline backend shows every figure still
    open when the cell ends: twice. So under the inline backend, displaying one of these figures shows it (as
    Jupyter would) and closes it, and the backend has nothing left to repeat; other backends keep it open.
    """
    fig._ipython_display_ = partial(_display_and_close, fig)
    return fig


def _display_and_close(fig: Figure) -> None:
    import matplotlib
    import matplotlib.pyplot as plt
    from IPython.display import display

    inline = "inline" in matplotlib.get_backend().lower()  # elsewhere (a GUI window) the figure stays open
    del fig._ipython_display_  # display it the ordinary way, as the inline backend would
    try:
        display(fig)
    finally:
        fig._ipython_display_ = partial(_display_and_close, fig)
        if inline:
            plt.close(fig)


def plot_image_grid(
    images: torch.Tensor,
    labels: torch.Tensor,
    predictions: torch.Tensor | None = None,
    ncols: int = 8,
    class_names: tuple[str, ...] | None = None,
) -> Figure:
    """A grid of greyscale images (N, 1, H, W) titled with their labels (and predictions).

    Written by hand in 01_data, "Augmentation, for training only" (a 3x3 grid of subplots).
    """
    check.tensor("images", images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(
            f"expected greyscale images of shape (N, 1, H, W), got {tuple(images.shape)}; add the channel with images.unsqueeze(1)."
        )
    n = len(images)
    if n == 0:
        raise ValueError("no images to show; pass at least one image.")
    _check_grid_labels("labels", labels, n, class_names)
    if predictions is not None:
        _check_grid_labels("predictions", predictions, n, class_names)
    check.positive_int("ncols", ncols, 8)
    nrows = -(-n // ncols)

    def name(k: int) -> str:
        return class_names[k] if class_names else str(k)

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.5 * nrows), squeeze=False)
    _shown_once(fig)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(_to_numpy(images[i, 0]), cmap="gray_r")
        title = name(int(labels[i]))
        if predictions is not None:
            title = f"true {title}\npred {name(int(predictions[i]))}"
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _check_grid_labels(name: str, values, n: int, class_names) -> None:
    """One class number per image, each with a name in ``class_names`` when names are given."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a tensor of class numbers, got {type(values).__name__}; pass e.g. y[:16].")
    if len(values) != n:
        raise ValueError(f"got {len(values)} {name} for {n} images; pass one {name[:-1]} per image.")
    if any(isinstance(v, str) for v in values):
        raise TypeError(
            f"{name} must be class numbers, got strings such as {next(v for v in values if isinstance(v, str))!r}; "
            "pass numbers and the names as class_names=(...)."
        )
    numbers = torch.as_tensor(values)
    if numbers.is_floating_point() and not bool((numbers == numbers.round()).all()):
        raise ValueError(f"{name} must be whole class numbers; for logits pass logits.argmax(dim=1).")
    if class_names is not None and len(numbers) and (int(numbers.max()) >= len(class_names) or int(numbers.min()) < 0):
        raise ValueError(
            f"{name} run from {int(numbers.min())} to {int(numbers.max())} but class_names holds {len(class_names)} "
            "names; pass one name per class, in class order."
        )


def plot_confusion_matrix(matrix: torch.Tensor, class_names: tuple[str, ...] | None = None) -> Figure:
    """Heat map of a confusion matrix (rows: true class, columns: predicted), counts written in.

    The matrix is counted by hand in 05_evaluation, "Where are the mistakes? The confusion matrix".
    """
    if not isinstance(matrix, torch.Tensor) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise ValueError(
            f"expected a square (K, K) tensor of counts, got {shape}; build it with confusion_matrix(y_pred, y_true, K)."
        )
    if class_names is not None and len(class_names) != matrix.shape[0]:
        raise ValueError(f"got {len(class_names)} class names for {matrix.shape[0]} classes; pass one name per class.")
    k = matrix.shape[0]
    names = class_names or tuple(str(i) for i in range(k))
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    _shown_once(fig)
    ax.imshow(_to_numpy(matrix), cmap="Blues")
    for (i, j), count in zip(((i, j) for i in range(k) for j in range(k)), matrix.flatten().tolist()):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xticklabels=names,
        yticklabels=names,
        xlabel="predicted",
        ylabel="true",
        title="Confusion matrix",
    )
    return fig


def plot_history_metric(history: History, ax: Axes | None = None) -> Figure:
    """Training and validation metric (e.g. accuracy) per epoch from a ``History``.

    The same plot as the loss curves written by hand in 04_training_loop, "Loss curves".
    """
    _check_history(history)
    if not history.train_metric:
        raise ValueError("the history has no metric; pass metric='accuracy' (or another metric) to fit to record one.")
    fig, ax = _figure(ax, figsize=(6, 4))
    ax.plot(history.epochs, history.train_metric, label=f"train {history.metric_name}", **CURVES["train"])
    if history.val_metric:
        ax.plot(history.epochs, history.val_metric, label=f"validation {history.metric_name}", **CURVES["held-out"])
    ax.set_xlabel("epoch")
    ax.set_ylabel(history.metric_name)
    ax.legend()
    return fig
