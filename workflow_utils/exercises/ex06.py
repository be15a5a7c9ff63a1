"""Exercises for 06_save_and_load."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise
from workflow_utils.exercises._line import line_split, new_line_run, train_reference_line


def _load(path: Any) -> tuple[Any, str | None]:
    """The file's contents loaded safely, or a message saying why they can't be."""
    from workflow_utils.checkpoint import safe_load

    if not isinstance(path, (str, Path)):
        return None, f"pass the path of the file you saved, got {type(path).__name__}."
    try:
        return safe_load(path), None
    except (FileNotFoundError, IsADirectoryError):  # a folder is no file either
        return None, f"there is no file at {Path(path).as_posix()}; save it with torch.save(..., path) first."
    except Exception:  # noqa: BLE001 - any other refusal of the safe loader means the same thing here
        return None, (
            "the safe loader (weights_only=True) refuses this file: it holds pickled objects. "
            "Save state_dict()s, Python numbers and plain dicts only (a NumPy number counts as an object: "
            "float(x) makes it a Python one)."
        )


def _same_weights(state: dict, model: nn.Module) -> bool:
    return all(
        torch.allclose(state[name].float().cpu(), value, atol=1e-5) for name, value in model.state_dict().items()
    )


def _saved_state_dict(path: Any) -> str | None:
    state, problem = _load(path)
    if problem:
        return problem
    if not isinstance(state, dict) or set(state) != {"weights", "bias"}:
        keys = list(state) if isinstance(state, dict) else type(state).__name__
        return f"expected model_0.state_dict() with keys ['weights', 'bias'], found {keys}."
    if not _same_weights(state, train_reference_line(*new_line_run(), epochs=100)):
        return (
            f"the file holds weights {state['weights'].item():.4f} and bias {state['bias'].item():.4f}, not "
            "model_0's trained 0.5784 and 0.3513: save model_0 after training, not a fresh model."
        )
    return None


def _checkpoint_with_loss(path: Any) -> str | None:
    checkpoint, problem = _load(path)
    if problem:
        return problem
    if not isinstance(checkpoint, dict):
        return f"save a dict, found {type(checkpoint).__name__}."
    missing = [key for key in ("epoch", "model_state", "optimizer_state", "loss") if key not in checkpoint]
    if missing:
        why = {"optimizer_state": " (without it the momentum is lost on resume)", "loss": ""}
        return "the checkpoint is missing " + ", ".join(f"'{key}'{why.get(key, '')}" for key in missing) + "."
    if checkpoint["epoch"] != 50:
        return f"'epoch' is {checkpoint['epoch']!r}; the first half ran 50 epochs."
    if isinstance(checkpoint["loss"], torch.Tensor):
        return "store the loss as a Python number with .item(), so printing it needs no tensor."
    expected_model = train_reference_line(*new_line_run(momentum=0.9), epochs=50)
    if not _same_weights(checkpoint["model_state"], expected_model):
        return "'model_state' is not first_half_model's state after 50 epochs; save first_half_model.state_dict()."
    X_train, y_train, _, _ = line_split()
    with torch.inference_mode():
        expected_loss = nn.L1Loss()(expected_model(X_train), y_train).item()
    if abs(float(checkpoint["loss"]) - expected_loss) > 1e-4:
        return f"'loss' is {checkpoint['loss']:.4f}; expected the L1 loss of the saved weights on X_train, {expected_loss:.4f}."
    return None


def _resume_fn(resume: Any) -> str | None:
    if not callable(resume):
        return "pass your function itself (no parentheses)."
    model, optimizer = new_line_run(momentum=0.9)
    train_reference_line(model, optimizer, epochs=30)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pth"
        torch.save({"epoch": 30, "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict()}, path)
        result = resume(path)
    if not isinstance(result, tuple) or len(result) != 3:
        return "return three things: (model, optimizer, epochs_done)."
    got_model, got_opt, epochs_done = result
    if not isinstance(got_model, nn.Module) or not isinstance(got_opt, torch.optim.Optimizer):
        return "return the rebuilt model and optimizer objects first, then the epoch."
    if epochs_done != 30:
        return f"epochs_done is {epochs_done!r}, but the checkpoint says 30: return checkpoint['epoch']."
    if not _same_weights(got_model.state_dict(), model):
        return "the model does not hold the saved weights: call model.load_state_dict(checkpoint['model_state'])."
    if not any(p is q for p in got_model.parameters() for q in got_opt.param_groups[0]["params"]):
        return "the optimizer updates a different model's parameters: build it from the model you return."
    if not got_opt.state:
        return "the optimizer starts cold: call optimizer.load_state_dict(checkpoint['optimizer_state'])."
    train_reference_line(got_model, got_opt, epochs=20)
    straight = train_reference_line(*new_line_run(momentum=0.9), epochs=50)
    if not _same_weights(got_model.state_dict(), straight):
        return "20 more epochs from your resumed run do not match an uninterrupted 50: use SGD(lr=0.01, momentum=0.9)."
    return None


def _scheduled_run() -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    """A fresh seed-42 line with AdamW and a 50-step one-cycle schedule, like the digits recipe."""
    model, _ = new_line_run()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    return model, optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=50)


def _train(parts: tuple, epochs: int, start_epoch: int = 0) -> None:
    from workflow_utils.engine import fit

    X_train, y_train, _, _ = line_split()
    model, optimizer, scheduler = parts
    fit(model, (X_train, y_train), nn.L1Loss(), optimizer, epochs, scheduler=scheduler, start_epoch=start_epoch)


def _train_until_stopped(parts: tuple, epochs: int) -> None:
    """The first ``epochs`` epochs of a run planned for 50, as if stopped there: 04's five steps by hand.

    (``fit`` refuses a one-cycle schedule it would leave mid-cycle, so the stop is written out.)
    """
    X_train, y_train, _, _ = line_split()
    model, optimizer, scheduler = parts
    model.train()
    for _ in range(epochs):
        loss = nn.L1Loss()(model(X_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def _save_and_load_fns(save_run: Any, load_run: Any) -> str | None:
    if not callable(save_run) or not callable(load_run):
        return "pass both functions themselves: ex06.q4.check(save_run, load_run)."
    first = _scheduled_run()
    _train_until_stopped(first, 30)
    resumed = _scheduled_run()  # fresh objects, as after a restart
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.pth"
        save_run(path, *first, 30)
        _, problem = _load(path)
        if problem:
            return problem
        epochs_done = load_run(path, *resumed)
    if epochs_done != 30:
        return f"load_run returned {epochs_done!r}; it should return the number of epochs done, 30."
    if not _same_weights(resumed[0].state_dict(), first[0]):
        return "the model does not hold the saved weights: save model.state_dict() and load it with load_state_dict."
    if not resumed[1].state:
        return "the optimizer starts cold: save optimizer.state_dict() too and load it back."
    if resumed[2].last_epoch != first[2].last_epoch:
        return "the learning-rate schedule starts over: save scheduler.state_dict() too and load it back."
    _train(resumed, 20, start_epoch=30)
    straight = _scheduled_run()
    _train(straight, 50)
    if not _same_weights(resumed[0].state_dict(), straight[0]):
        return "20 more epochs from your resumed run do not match an uninterrupted 50: load every state you saved."
    return None


q1 = Exercise(
    "ex06.q1",
    _saved_state_dict,
    "torch.save(model_0.state_dict(), path) saves only the learned tensors.",
    "q1_path = MODEL_DIR / 'ex06_q1_model_0.pth'\ntorch.save(model_0.state_dict(), q1_path)",
    answers=("q1_path",),
)
q2 = Exercise(
    "ex06.q2",
    _checkpoint_with_loss,
    "a checkpoint is a dict: add 'loss': nn.L1Loss()(first_half_model(X_train), y_train).item() next to 'epoch', "
    "'model_state' and 'optimizer_state'.",
    "with torch.inference_mode():  # L1, as in part 1\n"
    "    loss_50 = nn.L1Loss()(first_half_model(X_train.to(device)), y_train.to(device)).item()\n"
    "q2_path = MODEL_DIR / 'ex06_q2_checkpoint.pth'\n"
    "torch.save({'epoch': 50, 'model_state': first_half_model.state_dict(),\n"
    "            'optimizer_state': first_half_opt.state_dict(), 'loss': loss_50}, q2_path)",
    answers=("q2_path",),
)
q3 = Exercise(
    "ex06.q3",
    _resume_fn,
    "build LinearRegressionModel() and SGD(model.parameters(), lr=0.01, momentum=0.9), then load both "
    "states from torch.load(path, weights_only=True).",
    "def resume(path):\n    checkpoint = torch.load(path, map_location='cpu', weights_only=True)\n"
    "    model = LinearRegressionModel()\n    model.load_state_dict(checkpoint['model_state'])\n"
    "    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)\n"
    "    optimizer.load_state_dict(checkpoint['optimizer_state'])\n"
    "    return model, optimizer, checkpoint['epoch']",
    answers=("resume",),
)
q4 = Exercise(
    "ex06.q4",
    _save_and_load_fns,
    "a checkpoint is a dict of state_dict()s plus the epoch; load_run pours each state into the object it was "
    "passed (load_state_dict) and returns the epoch.",
    "def save_run(path, model, optimizer, scheduler, epochs_done):\n"
    "    torch.save({'epoch': epochs_done, 'model': model.state_dict(), 'optimizer': optimizer.state_dict(),\n"
    "                'scheduler': scheduler.state_dict()}, path)\n\n\n"
    "def load_run(path, model, optimizer, scheduler):\n"
    "    checkpoint = torch.load(path, map_location='cpu', weights_only=True)\n"
    "    model.load_state_dict(checkpoint['model'])\n    optimizer.load_state_dict(checkpoint['optimizer'])\n"
    "    scheduler.load_state_dict(checkpoint['scheduler'])\n    return checkpoint['epoch']",
    answers=("save_run", "load_run"),
)
