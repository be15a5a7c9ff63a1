"""The seed-42 straight-line run that several checks recompute to compare an answer with."""

from __future__ import annotations

import torch
from torch import nn


def line_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """X_train, y_train, X_test, y_test of the series' line (0.7 x + 0.3, 80/20 in order)."""
    from workflow_utils.data import make_line_data, split_data

    return split_data(*make_line_data())


def new_line_run(momentum: float = 0.0) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A fresh seed-42 LinearRegressionModel and SGD(lr=0.01), leaving the caller's RNG state alone."""
    from workflow_utils.models import LinearRegressionModel

    with torch.random.fork_rng():
        torch.manual_seed(42)
        model = LinearRegressionModel()
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum)


def train_reference_line(model: nn.Module, optimizer: torch.optim.Optimizer, epochs: int, scheduler=None) -> nn.Module:
    """``epochs`` full-batch L1 steps on the training split, as the notebooks' ``fit`` calls do."""
    from workflow_utils.engine import fit

    X_train, y_train, _, _ = line_split()
    fit(model, (X_train, y_train), nn.L1Loss(), optimizer, epochs, scheduler=scheduler)
    return model
