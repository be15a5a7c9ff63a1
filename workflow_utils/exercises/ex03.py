"""Exercises for 03_loss_and_optimizer."""

from __future__ import annotations

import copy
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


def _number(value: Any) -> float:
    """``value`` as a float; a one-number tensor that requires grad is detached first (no torch warning)."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
    return float(value)


def _test_mse(value: Any) -> str | None:
    model, (X_train, y_train, X_test, y_test) = _seed42_line()
    value = _number(value)
    with torch.no_grad():
        errors = model(X_test) - y_test
        expected = (errors**2).mean().item()
        on_train = nn.MSELoss()(model(X_train), y_train).item()
    if abs(value - expected) < 1e-4:
        return None
    if abs(value - on_train) < 1e-4:
        return "that is the MSE on the training set; use X_test and y_test."
    if abs(value - errors.abs().mean().item()) < 1e-4:
        return "that is the mean absolute error (L1); MSE squares each error before averaging."
    if abs(value - expected**0.5) < 1e-4:
        return "that is the square root of the MSE (the RMSE); leave out the square root."
    return f"the untrained seed-42 model's test MSE is not {value:.4f}."


def _grad_b(value: Any) -> str | None:
    model, (X_train, y_train, X_test, y_test) = _seed42_line()
    value = _number(value)
    nn.MSELoss()(model(X_train), y_train).backward()
    expected = model.bias.grad.item()
    if abs(value - expected) < 1e-4:
        return None
    if abs(value - expected / 2) < 1e-4:
        return "off by a factor of 2: the derivative of error**2 is 2 * error."
    if abs(value + expected) < 1e-4:
        return "the sign is flipped: the error is prediction - truth, not truth - prediction."
    with torch.no_grad():
        on_test = 2 * (model(X_test) - y_test).mean().item()
    if abs(value - on_test) < 1e-4:
        return "that is the gradient on the test set; use X_train and y_train."
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
    answers=("test_mse",),
)
q2 = Exercise(
    "ex03.q2",
    _grad_b,
    "for MSE, dL/db = 2 * mean(prediction - truth); compare with model.bias.grad after backward().",
    "torch.manual_seed(42)\nmodel = LinearRegressionModel()\ngrad_b = (2 * (model(X_train) - y_train).mean()).item()",
    answers=("grad_b",),
)
q3 = Exercise(
    "ex03.q3",
    _diverging_lr,
    "train_line(lr) for each rate and look at the last loss, or plot the curves on a log scale.",
    "for lr in (0.5, 0.8, 0.95, 1.2):\n    print(lr, train_line(lr).train_loss[-1])\ndiverging_lr = 0.95",
    answers=("diverging_lr",),
)


def _validation_split() -> tuple[torch.Tensor, ...]:
    """X_fit, y_fit, X_val, y_val: the 40 training points split 80/20 in order (32 to fit, 8 to choose)."""
    from workflow_utils.data import split_data

    _, (X_train, y_train, _, _) = _seed42_line()
    return split_data(X_train, y_train, train_fraction=0.8)


def _trained_copy(model: nn.Module, loss_fn: Any, optimizer: torch.optim.Optimizer) -> nn.Module:
    """A copy of ``model`` after 100 full-batch steps on the 32 fitting points; the originals stay untrained."""
    X_fit, y_fit, _, _ = _validation_split()
    model, optimizer = copy.deepcopy((model, optimizer))  # train copies: one memo keeps the optimizer on the copy
    for _ in range(100):  # the five-step loop, as written by hand in 04_training_loop
        loss = loss_fn(model(X_fit), y_fit)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def _mae_on(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(X) - y).abs().mean().item()


def _own_setup(model: Any, loss_fn: Any, optimizer: Any) -> str | None:
    fresh, _ = _seed42_line()
    if isinstance(model, type) or isinstance(loss_fn, type) or isinstance(optimizer, type):
        return "pass instances, not classes: LinearRegressionModel(), nn.MSELoss() and torch.optim.SGD(...), with parentheses."
    if not hasattr(model, "weights") or not hasattr(model, "bias"):
        return "pass a LinearRegressionModel first, then your loss function and optimizer."
    if not (torch.equal(model.weights, fresh.weights) and torch.equal(model.bias, fresh.bias)):
        return "pass the model untrained, created right after torch.manual_seed(42): the check trains a copy."
    if not callable(loss_fn):
        return "the second argument should be a loss function such as nn.MSELoss()."
    if not isinstance(optimizer, torch.optim.Optimizer):
        return f"the third argument should be a torch.optim optimizer, got {type(optimizer).__name__}."
    owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not all(id(p) in owned for p in model.parameters()):
        return "the optimizer updates another model's parameters: build it from model.parameters()."
    _, _, X_val, y_val = _validation_split()
    mae = _mae_on(_trained_copy(model, loss_fn, optimizer), X_val, y_val)
    if not mae < 1e3:  # also catches inf and nan
        return f"training blew up (validation MAE {mae:.3g} after 100 steps): the learning rate is too large."
    if not mae < 0.01:
        return (
            f"after 100 steps on the 32 fitting points the validation MAE is {mae:.4f}, not below 0.01: "
            "pick another loss, optimizer or rate, and compare them on validation again."
        )
    return None


def _test_once(model: nn.Module, loss_fn: Any, optimizer: torch.optim.Optimizer) -> str:
    """The chosen setup scored on the test split: once, after the choice was made on validation."""
    _, (_, _, X_test, y_test) = _seed42_line()
    _, _, X_val, y_val = _validation_split()
    trained = _trained_copy(model, loss_fn, optimizer)
    return f"validation MAE {_mae_on(trained, X_val, y_val):.4f}; test MAE, measured once now: {_mae_on(trained, X_test, y_test):.4f}"


q4 = Exercise(
    "ex03.q4",
    _own_setup,
    "L1 with SGD at lr=0.01 ends near 0.07 on validation. This notebook showed two ways to go faster: Adam, "
    "and MSE with a larger learning rate (the learning-rate figure shows how large is too large).",
    "X_fit, y_fit, X_val, y_val = split_data(X_train, y_train, train_fraction=0.8)\n"
    "torch.manual_seed(42)\nmy_model = LinearRegressionModel()\nmy_loss_fn = nn.L1Loss()\n"
    "my_optimizer = torch.optim.Adam(my_model.parameters(), lr=0.01)",
    report=_test_once,
    answers=("my_model", "my_loss_fn", "my_optimizer"),
)
