"""Models used in the series, from a two-parameter line to a small CNN."""

from __future__ import annotations

import torch
from torch import nn


class LinearRegressionModel(nn.Module):
    """y = weights * x + bias, with both parameters written out as ``nn.Parameter``."""

    def __init__(self) -> None:
        super().__init__()
        # Created in this order (weights, then bias), so seed 42 gives 0.3367 and 0.1288.
        self.weights = nn.Parameter(torch.randn(1, dtype=torch.float32))
        self.bias = nn.Parameter(torch.randn(1, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x + self.bias


class LinearRegressionModelV2(nn.Module):
    """The same line, with ``nn.Linear(1, 1)`` holding the parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_features=1, out_features=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
