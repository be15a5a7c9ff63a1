"""Plots for the series. Each helper draws on new (or given) axes and returns the Figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from workflow_utils.engine import History


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
    """Scatter training data, test data and (optionally) predictions for the test inputs."""
    if predictions is not None and len(predictions) != len(X_test):
        raise ValueError(
            f"got {len(predictions)} predictions for {len(X_test)} test points; predict on X_test."
        )
    fig, ax = _figure(ax, figsize=(6, 4))
    ax.scatter(_to_numpy(X_train), _to_numpy(y_train), c="tab:blue", s=12, label="training data")
    ax.scatter(_to_numpy(X_test), _to_numpy(y_test), c="tab:green", s=12, label="test data")
    if predictions is not None:
        ax.scatter(_to_numpy(X_test), _to_numpy(predictions), c="tab:red", s=12, label="predictions")
    ax.set_xlabel("X")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig


def plot_loss_curves(history: History, ax: Axes | None = None, title: str = "Loss curves") -> Figure:
    """Training (and validation) loss per epoch from a ``History``."""
    if not history.epochs:
        raise ValueError("the history is empty; train for at least one epoch before plotting it.")
    fig, ax = _figure(ax, figsize=(6, 4))
    ax.plot(history.epochs, history.train_loss, label="train loss")
    if history.val_loss:
        ax.plot(history.epochs[: len(history.val_loss)], history.val_loss, label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return fig


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax
