"""Step 4, the training loop: one training pass, one evaluation pass, and ``fit``.

``data`` arguments accept either a pair ``(X, y)`` of tensors, used as one full
batch, or anything that yields ``(X, y)`` batches, such as a ``DataLoader``.
Batches are moved to the model's device, so the model decides where work runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from workflow_utils import _validate as check
from workflow_utils.device import set_seed

Batch = tuple[torch.Tensor, torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """What ``fit`` measured, one entry per completed epoch."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    metric_name: str | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    stop_reason: str | None = None  # why training ended early, or None if it ran all epochs


def correct_count(y_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """How many rows of ``y_logits`` have their largest score at the true class ``y``."""
    if y_logits.ndim != 2 or y.shape != y_logits.shape[:1]:
        raise ValueError(
            f"correct_count takes logits (N, classes) and labels (N,), got {tuple(y_logits.shape)} and {tuple(y.shape)}; "
            "pass the model's raw output and the class labels."
        )
    return (y_logits.argmax(dim=1) == y).sum()


def _as_batches(data: tuple[torch.Tensor, torch.Tensor] | Iterable[Batch], name: str = "data") -> Iterable[Batch]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        if len(data[0]) != len(data[1]):
            raise ValueError(
                f"{name} has {len(data[0])} inputs but {len(data[1])} targets; they must pair up one to one."
            )
        return [(data[0], data[1])]
    if isinstance(data, (torch.Tensor, str, bytes, dict)) or not isinstance(data, Iterable):
        raise TypeError(
            f"{name} must be a pair (X, y) of tensors or an iterable of (X, y) batches such as a DataLoader, "
            f"got {type(data).__name__}; pass (X_train, y_train) or a DataLoader."
        )
    return data


def _label_problem(loss_fn: Callable, y_pred: torch.Tensor, y: torch.Tensor) -> str | None:
    """Why ``y`` cannot be class labels for ``y_pred`` under a classification loss, or None."""
    if not isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)) or y_pred.ndim < 2 or y.ndim != y_pred.ndim - 1:
        return None  # not class-index targets (probabilities, regression): nothing to check
    name = type(loss_fn).__name__
    if y.is_floating_point() or y.dtype == torch.bool:
        return f"{name} needs integer class labels (torch.long), got {y.dtype}; convert them with y.long()."
    num_classes = y_pred.shape[1]
    valid = y[y != loss_fn.ignore_index]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= num_classes):
        return (
            f"labels must lie in 0..{num_classes - 1} for a model with {num_classes} outputs, got labels from "
            f"{int(valid.min())} to {int(valid.max())}; give the model's last layer one output per class."
        )
    return None


def _run_epoch(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[Batch],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    metric_fn: MetricFn | None,
    scheduler: LRScheduler | None = None,
    check_labels: bool = False,
    name: str = "data",
) -> dict[str, float]:
    device = check.model_device(model)
    # Sums stay on the device: calling .item() per batch would stall a GPU every step.
    loss_sum = torch.zeros((), device=device)
    metric_sum = torch.zeros((), device=device)
    n_samples = 0
    for X, y in _as_batches(data, name):
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        y_pred = model(X)  # 1. forward pass
        if check_labels:  # first batch only: one cheap look before a GPU could hit a device-side assert
            check_labels = False
            problem = _label_problem(loss_fn, y_pred, y)
            if problem:
                raise ValueError(problem)
        try:
            loss = loss_fn(y_pred, y)  # 2. how wrong were we?
        except (IndexError, RuntimeError) as exc:  # the loss's own message is cryptic: say what is wrong
            problem = _label_problem(loss_fn, y_pred, y)
            if problem:
                raise ValueError(problem) from exc
            raise
        if optimizer is not None:
            optimizer.zero_grad()  # 3. forget the previous batch's gradients
            loss.backward()  # 4. gradients of the loss for every parameter
            optimizer.step()  # 5. nudge the parameters downhill
            if scheduler is not None:
                scheduler.step()  # per batch, as OneCycleLR expects
        loss_sum += loss.detach() * len(X)
        if metric_fn is not None:
            metric_sum += metric_fn(y_pred.detach(), y)
        n_samples += len(X)
    if n_samples == 0:
        raise ValueError("the data yielded no batches; check that the dataset or DataLoader is not empty.")
    result = {"loss": loss_sum.item() / n_samples}
    if metric_fn is not None:
        result["metric"] = metric_sum.item() / n_samples
    return result


def train_step(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[Batch],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    metric_fn: MetricFn | None = None,
    scheduler: LRScheduler | None = None,
) -> dict[str, float]:
    """Train on every batch of ``data`` once; return the mean ``loss`` (and ``metric``).

    ``scheduler``, if given, steps after every optimizer step (once per batch).
    """
    _check_training_args(model, loss_fn, optimizer)
    model.train()
    return _run_epoch(model, data, loss_fn, optimizer, metric_fn, scheduler, check_labels=True)


def _check_training_args(model: nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer | None) -> None:
    check.module("model", model)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable like nn.MSELoss(), got {type(loss_fn).__name__}; pass an instance, e.g. nn.MSELoss().")
    if isinstance(loss_fn, type):
        raise TypeError(f"loss_fn is the class {loss_fn.__name__}, not an instance; pass {loss_fn.__name__}() with parentheses.")
    if optimizer is None:
        return
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}; "
            "build one with torch.optim.SGD(model.parameters(), lr=0.01)."
        )
    own = {id(p) for p in model.parameters()}
    if not any(id(p) in own for group in optimizer.param_groups for p in group["params"]):
        raise ValueError(
            "the optimizer holds none of the model's parameters, so training would change nothing; "
            "build it from this model: torch.optim.SGD(model.parameters(), lr=0.01)."
        )


def evaluate(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable[Batch],
    loss_fn: nn.Module,
    metric_fn: MetricFn | None = None,
) -> dict[str, float]:
    """Mean ``loss`` (and ``metric``) over ``data`` in eval mode, without tracking gradients."""
    _check_training_args(model, loss_fn, None)
    return _evaluate(model, data, loss_fn, metric_fn, check_labels=True)


def _evaluate(
    model: nn.Module, data, loss_fn: nn.Module, metric_fn: MetricFn | None, check_labels: bool, name: str = "data"
) -> dict[str, float]:
    model.eval()
    with torch.inference_mode():
        return _run_epoch(model, data, loss_fn, None, metric_fn, check_labels=check_labels, name=name)


test_step = evaluate  # the name the straight-line notebooks use for the same job


def fit(
    model: nn.Module,
    train_data: tuple[torch.Tensor, torch.Tensor] | Iterable[Batch],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    val_data: tuple[torch.Tensor, torch.Tensor] | Iterable[Batch] | None = None,
    metric_fn: MetricFn | None = None,
    metric_name: str = "accuracy",
    scheduler: LRScheduler | None = None,
    start_epoch: int = 0,
    seed: int | None = None,
    print_every: int | None = None,
    decimals: int = 4,
    progress: bool = False,
    checkpoint_path: str | Path | None = None,
    on_epoch_end: Callable[[History], None] | None = None,
) -> History:
    """Train for ``epochs`` epochs, evaluating on ``val_data`` after each; return the ``History``.

    ``metric_fn(y_pred, y)`` returns a per-batch *sum* (e.g. ``correct_count``) that is
    averaged over samples. With ``seed``, each epoch re-seeds with ``seed + epoch`` (and a
    loader whose sampler has ``set_epoch`` gets the epoch), so a run resumed from a
    checkpoint at ``start_epoch`` repeats exactly what the uninterrupted run would have done. With ``checkpoint_path``, the best epoch by validation loss is
    saved there. ``print_every`` prints a line every that many epochs, floats rounded to
    ``decimals`` (2 suits CNN training, which no two kinds of hardware repeat to 4 decimals).
    ``KeyboardInterrupt`` and a non-finite loss end training early with the history so far;
    ``History.stop_reason`` says why.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}; try epochs=10.")
    _check_training_args(model, loss_fn, optimizer)
    _as_batches(train_data, "train_data")
    if val_data is not None:
        _as_batches(val_data, "val_data")
    check.model_device(model)  # a split or 'meta' model fails here, before any training
    check.non_negative_int("start_epoch", start_epoch, 0)
    if seed is not None:
        check.non_negative_int("seed", seed, 42)
    if print_every is not None:
        check.positive_int("print_every", print_every, 1)
    check.non_negative_int("decimals", decimals, 4)
    if scheduler is not None and not hasattr(scheduler, "step"):
        raise TypeError(f"scheduler must be a learning-rate scheduler with .step(), got {type(scheduler).__name__}; pass scheduler=None to train without one.")
    if metric_fn is not None and not callable(metric_fn):
        raise TypeError(f"metric_fn must be callable like correct_count, got {type(metric_fn).__name__}; pass metric_fn=correct_count.")
    if checkpoint_path is not None and val_data is None:
        raise ValueError("checkpoint_path keeps the best epoch by validation loss, so it needs val_data too.")
    history = History(metric_name=metric_name if metric_fn is not None else None)
    epoch_range = range(start_epoch, start_epoch + epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_range = tqdm(epoch_range, desc="epochs")
    for epoch in epoch_range:
        try:
            if seed is not None:
                set_seed(seed + epoch)
            sampler = getattr(train_data, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)  # the shuffle order of this epoch, also when resuming
            model.train()
            train = _run_epoch(
                model, train_data, loss_fn, optimizer, metric_fn, scheduler,
                check_labels=epoch == start_epoch, name="train_data",
            )
            if not math.isfinite(train["loss"]):
                history.stop_reason = (
                    f"stopped at epoch {epoch}: the training loss became {train['loss']}. "
                    "The learning rate is probably too large; try one 10x smaller."
                )
                print(history.stop_reason)
                break
            val = (
                _evaluate(model, val_data, loss_fn, metric_fn, epoch == start_epoch, name="val_data")
                if val_data is not None
                else None
            )
        except KeyboardInterrupt:
            history.stop_reason = (
                f"interrupted during epoch {epoch}; the history holds the epochs before it and the model "
                f"keeps the weights of its last completed step. To go on, call fit again with "
                f"start_epoch={epoch}; for an exact resume, first load the checkpoint saved after epoch {epoch - 1}."
            )
            print(history.stop_reason)
            break
        _record(history, epoch, train, val)
        if val is not None and (history.best_val_loss is None or val["loss"] < history.best_val_loss):
            history.best_epoch, history.best_val_loss = epoch, val["loss"]
            if checkpoint_path is not None:
                from workflow_utils.checkpoint import save_checkpoint

                save_checkpoint(
                    checkpoint_path, model, optimizer, epoch=epoch, best_val_loss=val["loss"], scheduler=scheduler
                )
        if print_every and (epoch - start_epoch) % print_every == 0:
            print(_epoch_line(history, decimals))
        if on_epoch_end is not None:
            on_epoch_end(history)
    return history


def _record(history: History, epoch: int, train: dict[str, float], val: dict[str, float] | None) -> None:
    history.epochs.append(epoch)
    history.train_loss.append(train["loss"])
    if "metric" in train:
        history.train_metric.append(train["metric"])
    if val is not None:
        history.val_loss.append(val["loss"])
        if "metric" in val:
            history.val_metric.append(val["metric"])


def _epoch_line(history: History, decimals: int = 4) -> str:
    d = decimals
    parts = [f"epoch {history.epochs[-1]:>3}", f"train loss {history.train_loss[-1]:.{d}f}"]
    if history.train_metric:
        parts.append(f"train {history.metric_name} {history.train_metric[-1]:.{d}f}")
    if history.val_loss:
        parts.append(f"val loss {history.val_loss[-1]:.{d}f}")
    if history.val_metric:
        parts.append(f"val {history.metric_name} {history.val_metric[-1]:.{d}f}")
    return " | ".join(parts)


def digits_recipe(
    model: nn.Module, epochs: int, steps_per_epoch: int, lr: float = 2e-3
) -> tuple[nn.Module, torch.optim.Optimizer, LRScheduler]:
    """The series' tested settings for the digits CNN: ``(loss_fn, optimizer, scheduler)``.

    Cross-entropy with label smoothing 0.1, AdamW (weight decay 1e-4) and a one-cycle learning
    rate peaking at ``lr``; pass the scheduler to ``fit``, which steps it once per batch.
    """
    check.module("model", model)
    check.positive_number("lr", lr, 2e-3)
    check.positive_int("epochs", epochs, 10)
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be a positive int (use len(train_loader)), got {steps_per_epoch!r}.")
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)  # don't push the logits to infinity
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    return loss_fn, optimizer, scheduler
