"""Exercises for 02_model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise


def _seed0(model: Any) -> str | None:
    from workflow_utils.models import LinearRegressionModel

    if not isinstance(model, LinearRegressionModel):
        return "pass the LinearRegressionModel instance you created."
    with torch.random.fork_rng():  # work out the expected values without disturbing the caller's RNG
        torch.manual_seed(0)
        expected = LinearRegressionModel()
    if torch.equal(model.weights, expected.weights) and torch.equal(model.bias, expected.bias):
        return None
    return f"the parameters are {model.weights.item():.4f} and {model.bias.item():.4f}: seed 0 right before creating the model."


def _quadratic(model: Any) -> str | None:
    if not isinstance(model, nn.Module):
        return "pass an instance of your model class."
    params = list(model.parameters())
    if len(params) != 3 or any(p.numel() != 1 for p in params):
        return f"expected 3 learnable single numbers (nn.Parameter), found {len(params)} parameter tensors."
    a, b, c = (p.detach() for p in params)
    x = torch.linspace(-2, 2, 9).unsqueeze(1)
    with torch.no_grad():
        out = model(x)
    if out.shape != x.shape or not torch.allclose(out, a * x**2 + b * x + c, atol=1e-5):
        return "forward(x) should return a * x**2 + b * x + c with the parameters in that order."
    return None


def _mlp(model: Any) -> str | None:
    if not isinstance(model, nn.Module):
        return "pass an instance of your model."
    try:
        out = model(torch.zeros(2, 1, 8, 8))
    except RuntimeError:
        return "the model fails on a (2, 1, 8, 8) batch of images: flatten them first (nn.Flatten())."
    if out.shape != (2, 10):
        return f"expected one logit per digit, shape (2, 10), got {tuple(out.shape)}."
    n = sum(p.numel() for p in model.parameters())
    if n != 64 * 64 + 64 + 64 * 10 + 10:
        return f"the model has {n} parameters; a 64 -> 64 -> 10 MLP has 4,810."
    if any(isinstance(m, nn.Softmax) for m in model.modules()):
        return "remove the softmax: return logits; nn.CrossEntropyLoss applies it itself."
    return None


q1 = Exercise(
    "ex02.q1",
    _seed0,
    "call torch.manual_seed(0) on the line right before LinearRegressionModel().",
    "torch.manual_seed(0)\nmodel_seed0 = LinearRegressionModel()",
)
q2 = Exercise(
    "ex02.q2",
    _quadratic,
    "three nn.Parameter(torch.randn(1)) in __init__ (after super().__init__()), then a * x**2 + b * x + c.",
    """class QuadraticModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.randn(1))
        self.b = nn.Parameter(torch.randn(1))
        self.c = nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.a * x**2 + self.b * x + self.c""",
)
q3 = Exercise(
    "ex02.q3",
    _mlp,
    "nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).",
    "small_mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))",
)
