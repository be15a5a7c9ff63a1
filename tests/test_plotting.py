import matplotlib
import pytest

from workflow_utils.data import make_line_data, split_data
from workflow_utils.engine import History
from workflow_utils.plotting import plot_loss_curves, plot_predictions


def test_plot_predictions_returns_figure_with_three_series():
    X_train, y_train, X_test, y_test = split_data(*make_line_data())
    fig = plot_predictions(X_train, y_train, X_test, y_test, predictions=y_test + 0.1)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training data", "test data", "predictions"]


def test_plot_predictions_checks_prediction_count():
    X_train, y_train, X_test, y_test = split_data(*make_line_data())
    with pytest.raises(ValueError, match="predict on X_test"):
        plot_predictions(X_train, y_train, X_test, y_test, predictions=y_train)


def test_plot_loss_curves_draws_train_and_val():
    history = History(epochs=[0, 1, 2], train_loss=[3.0, 2.0, 1.0], val_loss=[3.5, 2.5, 2.0])
    fig = plot_loss_curves(history)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2
    assert list(lines[1].get_ydata()) == [3.5, 2.5, 2.0]


def test_plot_loss_curves_rejects_empty_history():
    with pytest.raises(ValueError, match="train for at least one epoch"):
        plot_loss_curves(History())


def test_plot_on_given_axes_does_not_make_a_new_figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plot_loss_curves(History(epochs=[0], train_loss=[1.0]), ax=ax) is fig


def test_plot_predictions_on_tabular_X_names_the_fix():
    import torch

    X, y = torch.rand(20, 13), torch.rand(20, 1)  # e.g. scikit-learn's wine: 13 features per row
    with pytest.raises(
        ValueError, match=r"X_train has shape \(16, 13\); pick one feature column such as X_train\[:, :1\]"
    ):
        plot_predictions(X[:16], y[:16], X[16:], y[16:])
    fig = plot_predictions(X[:16, :1], y[:16], X[16:, :1], y[16:], predictions=y[16:].flatten())  # one column works
    assert [len(c.get_offsets()) for c in fig.axes[0].collections] == [16, 4, 4]


def test_plot_predictions_refuses_arrays_that_are_not_tensors():
    X_train, y_train, X_test, y_test = split_data(*make_line_data())
    with pytest.raises(
        TypeError, match=r"y_test must be a torch\.Tensor, got ndarray; convert it with torch\.as_tensor\(y_test\)"
    ):
        plot_predictions(X_train, y_train, X_test, y_test.numpy())


def test_loss_curves_name_the_held_out_curve():
    from workflow_utils.engine import History

    history = History(epochs=[0, 1], train_loss=[1.0, 0.5], val_loss=[1.2, 0.7])
    assert [t.get_text() for t in plot_loss_curves(history).axes[0].get_legend().get_texts()] == [
        "train loss",
        "validation loss",
    ]
    fig = plot_loss_curves(history, val_label="test loss")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["train loss", "test loss"]


def test_a_helper_as_a_cells_last_line_shows_its_figure_once_in_jupyter():
    """In an inline kernel, a helper's returned Figure as the cell's result used to appear twice (the
    result, then the backend's end-of-cell show); now once, with or without plt.show(), and a closed
    figure still displays on request."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "import matplotlib.pyplot as plt, torch\nfrom IPython.display import display\n"
        "from workflow_utils.plotting import plot_loss_curves, plot_predictions\n"
        "X = torch.linspace(0, 1, 10).unsqueeze(1)",
        "plot_predictions(X[:8], X[:8], X[8:], X[8:])",
        "fig = plot_predictions(X[:8], X[:8], X[8:], X[8:])\nplt.show()",
        "fig, axes = plt.subplots(1, 2)\nplot_predictions(X[:8], X[:8], X[8:], X[8:], ax=axes[0])\n"
        "axes[1].plot([1, 2])\nfig",
        "fig = plot_predictions(X[:8], X[:8], X[8:], X[8:])\nplt.close(fig)\ndisplay(fig)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    pictures = [sum("image/png" in o.get("data", {}) for o in c.outputs) for c in nb.cells]
    assert pictures == [0, 1, 1, 1, 1]


def test_describe_figure_says_what_each_panel_draws():
    import matplotlib.pyplot as plt
    import torch

    from workflow_utils.plotting import describe_figure, plot_image_grid

    history = History()
    history.epochs, history.train_loss, history.val_loss = [0, 1], [1.0, 0.5], [1.1, 0.6]
    fig = plot_loss_curves(history, title="Loss curves")
    assert describe_figure(fig) == 'Figure, "Loss curves": loss against epoch; legend: train loss, validation loss.'
    fig, (left, right) = plt.subplots(1, 2)
    left.plot([1, 2], [1, 10])
    left.set(yscale="log", xlabel="epoch", ylabel="loss", title="lr=0.1")
    right.imshow([[0, 1], [1, 0]])
    assert describe_figure(fig) == (
        'Figure with 2 panels. Panel 1, "lr=0.1": loss (log scale) against epoch, one line. Panel 2, an image.'
    )
    grid = plot_image_grid(torch.zeros(3, 1, 8, 8), torch.tensor([5, 0, 4]))
    assert describe_figure(grid) == "A grid of 3 images, titled 5, 0, 4."
    fig, ax = plt.subplots()
    ax.bar(range(10), [0.1] * 10)
    ax.set(title="what the model thinks", xlabel="digit", ylabel="probability")
    assert describe_figure(fig) == 'Figure, "what the model thinks": probability against digit, 10 bars.'
    fig, axes = plt.subplots(1, 2)
    for ax, title in zip(axes, ("true 8, read as 1", "a training 8")):
        ax.imshow([[0, 1]])
        ax.set_title(title)
    assert describe_figure(fig) == "A grid of 2 images, titled true 8, read as 1; a training 8."
    fig, ax = plt.subplots()
    ax.scatter([0, 1, 2], [1, 0, 1])
    ax.axhline(0, color="gray")
    ax.set(title="Residuals\n(truth − prediction)", xlabel="X")
    assert describe_figure(fig) == 'Figure, "Residuals; (truth − prediction)": against X, 3 points, one reference line.'
    fig, axes = plt.subplots(1, 2)
    for ax, row in zip(axes, ("original", "flipped")):
        ax.imshow([[0, 1]])
        ax.set_title(row, loc="left")
    assert describe_figure(fig) == "A grid of 2 images, titled original, flipped."
    assert describe_figure(plt.figure()) == "Figure, empty."
    plt.close("all")


def test_describe_figures_gives_each_figure_html_with_alt_text_in_jupyter():
    """After describe_figures() a figure comes as PNG and as <img alt=...> HTML, also when the inline backend
    loads after the call (it removes every figure format as it loads) and after %matplotlib inline."""
    import re

    import nbformat
    from nbclient import NotebookClient

    cells = [
        "from workflow_utils.plotting import describe_figures\ndescribe_figures()\nimport matplotlib.pyplot as plt",
        "fig, ax = plt.subplots()\nax.plot([1, 2], label='train')\nax.legend()\nax.set(title='T', xlabel='x')",
        "%matplotlib agg\n%matplotlib inline\nplt.plot([1, 2])",  # a switch removes every figure format
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])",  # the control: a fresh kernel without the call
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells[:3]])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    figures = [o for c in nb.cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 2
    for output in figures:
        html = output.data["text/html"]
        assert html.startswith(
            '<img class="described-figure" src="data:image/png;base64,' + "".join(output.data["image/png"].split())
        )
    assert (
        re.search(r'alt="([^"]*)"', figures[0].data["text/html"])[1]
        == "Figure, &quot;T&quot;: against x; legend: train."
    )
    assert re.search(r'alt="([^"]*)"', figures[1].data["text/html"])[1] == "Figure, one line."
    control = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cells[3])])
    NotebookClient(control, timeout=120, kernel_name="python3").execute()
    (plain,) = [o for o in control.cells[0].outputs if "image/png" in o.get("data", {})]
    assert "text/html" not in plain.data


def test_describe_figures_outside_jupyter_changes_nothing():
    import matplotlib

    from workflow_utils.plotting import describe_figures

    backend = matplotlib.get_backend()
    assert describe_figures() is None
    assert matplotlib.get_backend() == backend


def test_the_figure_html_holds_the_base64_whole_whatever_ipython_adds(monkeypatch):
    """IPython 7 (Colab's) ends a figure's base64 PNG with a newline: inside src it would split the PNG."""
    import matplotlib.pyplot as plt

    from workflow_utils import plotting

    class Formatters:
        formatters = {"image/png": lambda fig: "iVBORw0K\nGgo=\n"}

    class Shell:
        display_formatter = Formatters()

    monkeypatch.setattr("IPython.get_ipython", lambda: Shell())
    fig, ax = plt.subplots()
    html = plotting._figure_html(fig)
    plt.close(fig)
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html and "\n" not in html
