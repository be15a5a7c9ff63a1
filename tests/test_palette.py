"""Figures every student can read: the series' colours stay apart under red-green colour blindness.

Colour-vision deficiency is simulated with the matrices of Machado, Oliveira & Fernandes (2009),
"A Physiologically-based Model for Simulation of Color Vision Deficiency", IEEE Transactions on
Visualization and Computer Graphics 15(6), 1291-1298, table for severity 1.0 (dichromacy), applied to
linear RGB. Differences are CIE76 ΔE in CIELAB (D65): about 2.3 is just noticeable; the threshold
below asks for colours that differ at a glance, and the old green/red pair of test data and
predictions (ΔE 7 under deuteranopia) fails it.
"""

import itertools

import matplotlib
import numpy as np
import pytest
import torch

from workflow_utils import plotting
from workflow_utils.engine import History

matplotlib.use("Agg")

MACHADO_2009 = {
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
    ),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
}
MIN_DELTA_E = 40.0  # CIE76; the Okabe-Ito colours the helpers use are at least 51 apart after simulation
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def linear_rgb(color) -> np.ndarray:
    srgb = np.array(matplotlib.colors.to_rgb(color))
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def lab(rgb_linear: np.ndarray) -> np.ndarray:
    xyz = SRGB_TO_XYZ @ np.clip(rgb_linear, 0, 1) / WHITE_D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a, b, deficiency: str | None = None) -> float:
    """CIE76 distance between colours a and b as seen with ``deficiency`` (None: normal vision)."""
    m = MACHADO_2009[deficiency] if deficiency else np.eye(3)
    return float(np.linalg.norm(lab(m @ linear_rgb(a)) - lab(m @ linear_rgb(b))))


def drawn_series(fig) -> dict[str, tuple]:
    """{legend label: (colour, marker or line style)} of every series drawn on the figure's first axes."""
    ax = fig.axes[0]
    series = {}
    for coll in ax.collections:  # scatter plots
        series[coll.get_label()] = (
            tuple(coll.get_facecolor()[0][:3]),
            tuple(tuple(v) for v in coll.get_paths()[0].vertices),
        )
    for line in ax.get_lines():
        series[line.get_label()] = (matplotlib.colors.to_rgb(line.get_color()), line.get_linestyle())
    return series


def helper_figures():
    X = torch.linspace(0, 1, 10).unsqueeze(1)
    history = History(
        epochs=[0, 1, 2],
        train_loss=[1.0, 0.5, 0.3],
        val_loss=[1.1, 0.6, 0.4],
        metric_name="accuracy",
        train_metric=[0.5, 0.7, 0.8],
        val_metric=[0.4, 0.6, 0.7],
    )
    return {
        "plot_predictions": plotting.plot_predictions(X[:6], X[:6], X[6:], X[6:], predictions=X[6:] + 0.1),
        "plot_loss_curves": plotting.plot_loss_curves(history),
        "plot_history_metric": plotting.plot_history_metric(history),
    }


@pytest.mark.parametrize("deficiency", [None, "deuteranopia", "protanopia"])
def test_the_helpers_series_stay_apart(deficiency):
    import matplotlib.pyplot as plt

    for name, fig in helper_figures().items():
        series = drawn_series(fig)
        assert len(series) >= 2, name
        for (a, (color_a, shape_a)), (b, (color_b, shape_b)) in itertools.combinations(series.items(), 2):
            distance = delta_e(color_a, color_b, deficiency)
            assert distance >= MIN_DELTA_E, f"{name}: {a!r} and {b!r} are only ΔE {distance:.1f} apart ({deficiency})"
            assert shape_a != shape_b, f"{name}: {a!r} and {b!r} share a marker or line style"
        plt.close(fig)


@pytest.mark.parametrize("deficiency", ["deuteranopia", "protanopia"])
def test_the_first_colours_of_the_cycle_stay_apart(deficiency):
    """Figures drawn by hand after use_palette() take their first three series from COLORS."""
    for a, b in itertools.combinations(plotting.COLORS[:3], 2):
        assert delta_e(a, b, deficiency) >= MIN_DELTA_E, (a, b)


def test_the_old_green_and_red_fail_the_same_test():
    """The test can fail: test data in tab:green and predictions in tab:red merge under deuteranopia."""
    assert delta_e("tab:green", "tab:red") > 100  # far apart with normal colour vision
    assert delta_e("tab:green", "tab:red", "deuteranopia") < MIN_DELTA_E
    assert delta_e("tab:green", "tab:red", "protanopia") < MIN_DELTA_E


def test_use_palette_sets_colours_and_line_styles_for_hand_drawn_figures():
    import matplotlib.pyplot as plt

    with matplotlib.rc_context():
        plotting.use_palette()
        fig, ax = plt.subplots()
        lines = [ax.plot([0, 1], [i, i])[0] for i in range(3)]
        got = [(matplotlib.colors.to_hex(line.get_color()), line.get_linestyle()) for line in lines]
        plt.close(fig)
    assert got == [(c.lower(), s) for c, s in zip(plotting.COLORS[:3], ("-", "--", "-."))]
