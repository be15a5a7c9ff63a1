"""Step 1, data: make it, split it, and serve it in batches."""

from __future__ import annotations

import torch


def make_line_data(
    weight: float = 0.7, bias: float = 0.3, start: float = 0.0, end: float = 1.0, step: float = 0.02
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on the line ``y = weight * x + bias`` as column tensors of shape (N, 1)."""
    if not step > 0:
        raise ValueError(f"step must be positive, got {step}; try step=0.02.")
    if not end > start:
        raise ValueError(f"end ({end}) must be greater than start ({start}).")
    X = torch.arange(start, end, step).unsqueeze(dim=1)
    y = weight * X + bias
    return X, y


def split_data(
    X: torch.Tensor, y: torch.Tensor, train_fraction: float = 0.8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split in order: the first ``train_fraction`` of the rows train, the rest test.

    Returns ``X_train, y_train, X_test, y_test``. No shuffling, so the test points
    are the right-hand end of the line, as in the notebooks' plots.
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must pair up one to one.")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be between 0 and 1 (exclusive), got {train_fraction}; try 0.8.")
    n_train = int(train_fraction * len(X))
    if n_train == 0 or n_train == len(X):
        raise ValueError(f"train_fraction={train_fraction} leaves one split empty for {len(X)} rows.")
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
