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


def _trained_scheduler_first(epochs: int, gamma: float) -> nn.Module:
    """The typical slip: scheduler.step() before optimizer.step(), so every epoch uses the next epoch's rate."""
    import warnings

    from workflow_utils.exercises._line import line_split

    X_train, y_train, _, _ = line_split()
    model, optimizer = new_line_run()
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's own warning about this order: the verdict says it instead
        for _ in range(epochs):
            loss = nn.L1Loss()(model(X_train), y_train)
            optimizer.zero_grad()
            loss.backward()
            scheduler.step()
            optimizer.step()
    return model


def _distance(a: Any, b: nn.Module) -> float:
    return max(abs(a.weights.item() - b.weights.item()), abs(a.bias.item() - b.bias.item()))


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


def _reference_losses(epochs: int) -> tuple[nn.Module, list[float], list[float]]:
    """The seed-42 L1/SGD line after ``epochs`` epochs, its training loss and its test loss in each epoch."""
    from workflow_utils.engine import fit
    from workflow_utils.exercises._line import line_split

    model, optimizer = new_line_run()
    X_train, y_train, X_test, y_test = line_split()
    history = fit(model, (X_train, y_train), nn.L1Loss(), optimizer, epochs, val_data=(X_test, y_test))
    return model, history.train_loss, history.val_loss


def _epochs_300(model: Any, losses: Any = None) -> str | None:
    if not hasattr(model, "weights") or not hasattr(model, "bias"):
        return "pass the trained LinearRegressionModel first, then its losses."
    if losses is None:
        return (
            "pass its training losses too: ex04.q1.check(model_300, history.train_loss). The weights alone "
            "cannot tell 300 epochs from 200: L1 + SGD ends up hopping between the same two points."
        )
    losses = getattr(losses, "train_loss", losses)  # fit's History works as well as its list
    try:
        values = [float(v) for v in losses]
    except (TypeError, ValueError):
        return f"pass the losses as a list of numbers, one per epoch (history.train_loss), got {type(losses).__name__}."
    if len(values) != 300:
        return f"your losses cover {len(values)} epochs, not 300: train for exactly 300 epochs (epochs=300)."
    expected_model, expected, test_losses = _reference_losses(300)
    if all(abs(got - want) <= 1e-4 for got, want in zip(values, test_losses)):
        return "those are the test losses (history.val_loss); pass the training losses, history.train_loss."
    if all(abs(got - want) <= 1e-4 for got, want in zip(values, expected[1:])):
        return (
            "each loss belongs to the next epoch: you recorded it after optimizer.step(), so it is the loss of the "
            "updated model. Record loss.item() of the loss computed in that epoch's forward pass."
        )
    for epoch, (got, want) in enumerate(zip(values, expected)):
        if abs(got - want) > 1e-4:
            return (
                f"from epoch {epoch} your loss ({got:.4f}) differs from a fresh seed-42 run with L1, SGD and "
                f"lr 0.01 ({want:.4f}): call torch.manual_seed(42) right before building a new model."
            )
    got_params = (round(model.weights.item(), 4), round(model.bias.item(), 4))
    if got_params != (round(expected_model.weights.item(), 4), round(expected_model.bias.item(), 4)):
        return "the losses are right, but the model's weights are not those after that run: pass the model you trained."
    return None


def _decay(model: Any) -> str | None:
    expected = _trained(1000, scheduler_gamma=0.995)
    verdict = _line_verdict(
        model,
        expected,
        {"without the scheduler: create ExponentialLR and call scheduler.step() every epoch.": _trained(1000)},
    )
    if verdict is not None:
        return verdict
    # The two orders agree to 4 decimals (both decay to the same point) and differ from the 6th on (about 2e-6);
    # a correct run written another way (LambdaLR, the rate decayed by hand, fit) matches the reference exactly.
    early = _trained_scheduler_first(1000, gamma=0.995)
    if _distance(model, early) <= _distance(early, expected) / 4:
        return (
            "scheduler.step() ran before optimizer.step() in each epoch, so every step used the next epoch's "
            "smaller rate: call optimizer.step() first, then scheduler.step()."
        )
    return None


def _watch_the_steps(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """A log of "backward" (gradients computed) and each optimizer step, with or without gradients to apply."""
    events: list[str] = []

    def backward_seen(grad: torch.Tensor) -> None:
        if not events or events[-1] != "backward":  # one entry per backward(), not one per parameter
            events.append("backward")

    def step_seen(opt: torch.optim.Optimizer, *_: Any) -> None:
        grads = [p.grad for group in opt.param_groups for p in group["params"]]
        cleared = all(g is None or not g.any() for g in grads)
        events.append("step without gradients" if cleared else "step")

    for p in model.parameters():
        p.register_hook(backward_seen)
    optimizer.register_step_pre_hook(step_seen)
    return events


def _order_slip(events: list[str]) -> str:
    """Why optimizer.step() changed nothing, read from the log of the calls ("call" starts each one)."""
    if "backward" not in events:
        return "loss.backward() was never called, so there were no gradients: call it before optimizer.step()."
    if not any(e.startswith("step") for e in events):
        return "optimizer.step() was never called: it is the step that changes the weights."
    calls: list[list[str]] = []
    for event in events:
        if event == "call":
            calls.append([])
        elif calls:
            calls[-1].append(event)
    for call in calls:
        if "step without gradients" in call:
            if "backward" in call[: call.index("step without gradients")]:
                return (
                    "optimizer.zero_grad() came after loss.backward() and cleared the gradients, so "
                    "optimizer.step() had nothing to apply. Zero the gradients first, before backward()."
                )
            return (
                "optimizer.step() ran before loss.backward(), so it had no gradients to apply: "
                "call backward() first, then step()."
            )
    return "call loss.backward() before optimizer.step(), and step() once per call."


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
    events = _watch_the_steps(model, optimizer)
    losses = []
    for _ in range(2):
        events.append("call")
        losses.append(train_one_step(model, X, y, nn.L1Loss(), optimizer))
    if not all(isinstance(v, float) for v in losses):
        return "return the loss as a Python float: loss.item()."
    if model.weights.item() == before:
        return f"the weights did not change: {_order_slip(events)}"
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
        if "step without gradients" in events:  # a step found nothing to apply: the order, not a missing zero_grad
            return f"two steps do not match the correct loop: {_order_slip(events)}"
        return "two steps do not match the correct loop: zero the gradients before backward()."
    return None


def _small_classifier() -> tuple[nn.Module, torch.optim.Optimizer]:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def _reference_epoch(batches) -> tuple[nn.Module, list[float]]:
    """One correct epoch over ``batches``: the trained model and each batch's loss."""
    model, optimizer = _small_classifier()
    model.train()
    losses = []
    for X, y in batches:
        loss = nn.CrossEntropyLoss()(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def _epoch_fn(train_epoch: Any) -> str | None:
    if not callable(train_epoch):
        return "pass your function itself (no parentheses)."
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(100, 8, generator=g), torch.randint(0, 3, (100,), generator=g)
    # a real DataLoader (no shuffling), so len(loader.dataset) and len(loader) work as in the notebooks
    batches = DataLoader(TensorDataset(X, y), batch_size=32)  # the last batch holds 4
    model, optimizer = _small_classifier()
    before = [p.detach().clone() for p in model.parameters()]
    model.eval()  # as it is after a validation pass
    got = train_epoch(model, batches, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
    reference, losses = _reference_epoch(batches)
    if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
        return "the weights did not change: each batch needs loss.backward() and optimizer.step()."
    if not model.training:
        return "the model is still in eval mode: call model.train() at the start (batch norm and dropout need it)."
    if not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parameters(), reference.parameters())):
        return "the weights differ from a correct epoch: per batch, forward, loss, zero_grad, backward, step."
    if isinstance(got, torch.Tensor) or not isinstance(got, (int, float)):
        return f"return the mean loss as a Python float (loss.item()), got {type(got).__name__}."
    sizes = [len(yb) for _, yb in batches]  # 32, 32, 32, 4
    weighted = sum(v * n for v, n in zip(losses, sizes)) / sum(sizes)
    if abs(got - sum(losses) / len(losses)) < 1e-6:
        return "that is the mean of the batch losses; weight each by its batch size (the last batch holds only 4)."
    if abs(got - weighted) > 1e-6:
        return f"expected the mean loss over all 100 samples, {weighted:.4f}, got {got:.4f}."
    return None


q1 = Exercise(
    "ex04.q1",
    _epochs_300,
    "the same loop as above with epochs = 300, starting from torch.manual_seed(42); fit returns a History "
    "whose train_loss holds one loss per epoch.",
    "torch.manual_seed(42)\nmodel_300 = LinearRegressionModel()\n"
    "history_300 = fit(model_300, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model_300.parameters(), lr=0.01), "
    "epochs=300)\nlosses_300 = history_300.train_loss",
    answers=("model_300", "losses_300"),
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
    answers=("model_decay",),
)
q3 = Exercise(
    "ex04.q3",
    _step_fn,
    "forward, loss, zero_grad, backward, step; return loss.item().",
    "def train_one_step(model, X, y, loss_fn, optimizer):\n    loss = loss_fn(model(X), y)\n"
    "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n    return loss.item()",
    answers=("train_one_step",),
)
q4 = Exercise(
    "ex04.q4",
    _epoch_fn,
    (
        "one epoch is train_one_step (exercise 3) once per batch of the loader. Before the loop, which mode "
        "must the model be in? And which mean loss is asked for: of the batches, or of the samples?",
        "call model.train() first. Then for each (X, y) batch of the loader: move both to the device, then "
        "forward, loss, zero_grad, backward, step.",
        "for the mean over samples, keep two totals: add loss.item() * len(y) and len(y) for every batch, "
        "and return the first divided by the second (the last batch is smaller than the others).",
    ),
    "def train_epoch(model, loader, loss_fn, optimizer, device):\n    model.train()\n    total, seen = 0.0, 0\n"
    "    for X, y in loader:\n        X, y = X.to(device), y.to(device)\n        loss = loss_fn(model(X), y)\n"
    "        optimizer.zero_grad()\n        loss.backward()\n        optimizer.step()\n"
    "        total += loss.item() * len(y)\n        seen += len(y)\n    return total / seen",
    answers=("train_epoch",),
)
