"""Exercises for 04_training_loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise
from workflow_utils.exercises._line import new_line_run, train_reference_line


def _trained(epochs: int, scheduler_gamma: float | None = None) -> nn.Module:
    model, optimizer = new_line_run()
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=scheduler_gamma) if scheduler_gamma else None
    return train_reference_line(model, optimizer, epochs, scheduler)


def _line_verdict(model: Any, expected: nn.Module, wrong: dict[str, nn.Module]) -> str | None:
    if not hasattr(model, "weights") or not hasattr(model, "bias"):
        return "pass the trained LinearRegressionModel."
    got = (round(model.weights.item(), 4), round(model.bias.item(), 4))
    if got == (round(expected.weights.item(), 4), round(expected.bias.item(), 4)):
        return None
    for reason, other in wrong.items():
        if got == (round(other.weights.item(), 4), round(other.bias.item(), 4)):
            return reason
    return f"got weights {got[0]} and bias {got[1]}; start from a fresh seed-42 model."


def _epochs_300(model: Any) -> str | None:
    return _line_verdict(model, _trained(300), {"those are the values after 100 epochs; train for 300.": _trained(100)})


def _decay(model: Any) -> str | None:
    return _line_verdict(
        model,
        _trained(1000, scheduler_gamma=0.995),
        {"without the scheduler: create ExponentialLR and call scheduler.step() every epoch.": _trained(1000)},
    )


def _step_fn(train_one_step: Any) -> str | None:
    from workflow_utils.models import LinearRegressionModel

    if not callable(train_one_step):
        return "pass your function itself (no parentheses)."
    X, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.3], [1.0]])
    with torch.random.fork_rng():  # the caller's random state stays as it was
        torch.manual_seed(0)
        model = LinearRegressionModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.weights.item()
    losses = [train_one_step(model, X, y, nn.L1Loss(), optimizer) for _ in range(2)]
    if not all(isinstance(v, float) for v in losses):
        return "return the loss as a Python float: loss.item()."
    if model.weights.item() == before:
        return "the weights did not change: call loss.backward() before optimizer.step()."
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = LinearRegressionModel()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(2):
        loss = nn.L1Loss()(reference(X), y)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
    if not torch.allclose(model.weights, reference.weights):
        return "two steps do not match the correct loop: zero the gradients before backward()."
    return None


q1 = Exercise(
    "ex04.q1",
    _epochs_300,
    "the same loop as above with epochs = 300, starting from torch.manual_seed(42).",
    "torch.manual_seed(42)\nmodel_300 = LinearRegressionModel()\n"
    "fit(model_300, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model_300.parameters(), lr=0.01), epochs=300)",
)
q2 = Exercise(
    "ex04.q2",
    _decay,
    "after optimizer.step() each epoch, call scheduler.step(); fit(..., scheduler=...) steps an ExponentialLR "
    "once per epoch for you.",
    "torch.manual_seed(42)\nmodel_decay = LinearRegressionModel()\n"
    "opt = torch.optim.SGD(model_decay.parameters(), lr=0.01)\n"
    "sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.995)\n"
    "fit(model_decay, (X_train, y_train), nn.L1Loss(), opt, epochs=1000, scheduler=sched)",
)
q3 = Exercise(
    "ex04.q3",
    _step_fn,
    "forward, loss, zero_grad, backward, step; return loss.item().",
    "def train_one_step(model, X, y, loss_fn, optimizer):\n    loss = loss_fn(model(X), y)\n"
    "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n    return loss.item()",
)
