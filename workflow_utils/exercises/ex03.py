"""Exercises for 03_loss_and_optimizer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise


def _seed42_line() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    from workflow_utils.data import make_line_data, split_data
    from workflow_utils.models import LinearRegressionModel

    with torch.random.fork_rng():
        torch.manual_seed(42)
        model = LinearRegressionModel()
    return model, split_data(*make_line_data())


def _test_mse(value: Any) -> str | None:
    model, (X_train, y_train, X_test, y_test) = _seed42_line()
    with torch.no_grad():
        expected = nn.MSELoss()(model(X_test), y_test).item()
        on_train = nn.MSELoss()(model(X_train), y_train).item()
    if abs(float(value) - expected) < 1e-4:
        return None
    if abs(float(value) - on_train) < 1e-4:
        return "that is the MSE on the training set; use X_test and y_test."
    return f"the untrained seed-42 model's test MSE is not {float(value):.4f}."


def _grad_b(value: Any) -> str | None:
    model, (X_train, y_train, _, _) = _seed42_line()
    nn.MSELoss()(model(X_train), y_train).backward()
    expected = model.bias.grad.item()
    if abs(float(value) - expected) < 1e-4:
        return None
    if abs(float(value) - expected / 2) < 1e-4:
        return "off by a factor of 2: the derivative of error**2 is 2 * error."
    return "compute 2 * mean(prediction - truth) on the training set."


def _diverging_lr(lr: Any) -> str | None:
    if lr == 0.95:
        return None
    if lr == 1.2:
        return "1.2 does blow up, but a smaller rate in the list already does."
    if lr in (0.5, 0.8):
        return f"training with lr={lr} still converges; try a larger one."
    return "pick one of 0.5, 0.8, 0.95 or 1.2."


q1 = Exercise(
    "ex03.q1",
    _test_mse,
    "seed 42, LinearRegressionModel(), then ((model(X_test) - y_test) ** 2).mean().",
    "torch.manual_seed(42)\nmodel = LinearRegressionModel()\nwith torch.inference_mode():\n"
    "    test_mse = ((model(X_test) - y_test) ** 2).mean().item()",
)
q2 = Exercise(
    "ex03.q2",
    _grad_b,
    "for MSE, dL/db = 2 * mean(prediction - truth); compare with model.bias.grad after backward().",
    "torch.manual_seed(42)\nmodel = LinearRegressionModel()\n"
    "grad_b = (2 * (model(X_train) - y_train).mean()).item()",
)
q3 = Exercise(
    "ex03.q3",
    _diverging_lr,
    "train_line(lr) for each rate and look at the last loss, or plot the curves on a log scale.",
    "for lr in (0.5, 0.8, 0.95, 1.2):\n    print(lr, train_line(lr).train_loss[-1])\ndiverging_lr = 0.95",
)
