"""The checks around the training loop: each turns a mistake into one line that names the fix.

``workflow_utils.engine`` holds the loop itself, as written by hand in 04_training_loop; it calls these before
training starts (``fit_args``, ``training_args``), on the first batch (``check_labels``, ``metric_is_a_mean``), on
every batch where it is cheap (``target_problem``), when a loss fails (``label_problem``) and when an epoch ends
badly (``non_finite_reason``, ``interrupted_reason``, ``diverging_warning``). ``tests/test_bad_inputs.py`` lists
every case.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import CyclicLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from workflow_utils import _validate as check

if TYPE_CHECKING:
    from workflow_utils.engine import Batch, Data, History, MetricFn, MixedPrecision, Scheduler


# --- data and batches -----------------------------------------------------------------------------


def as_batches(data: Data, name: str = "data") -> Iterable[Batch]:
    """``data`` as something to iterate over for batches; each batch is then read with ``check.batch_pair``."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return [check.batch_pair(data, name)]
    if isinstance(data, (tuple, list)) and len(data) == 2 and any(check.array_like(t) for t in data):
        raise TypeError(
            f"{name} must be a pair (X, y) of tensors, got {check.describe(data)}; convert them with "
            "torch.as_tensor(X, dtype=torch.float32) and torch.as_tensor(y)."
        )
    if isinstance(data, (torch.Tensor, str, bytes, dict)) or not isinstance(data, Iterable):
        raise TypeError(
            f"{name} must be a pair (X, y) of tensors or an iterable of (X, y) batches such as a DataLoader, "
            f"got {type(data).__name__}; pass (X_train, y_train) or a DataLoader."
        )
    return data


# losses that compare output and target element by element: a target of another shape would broadcast
ELEMENTWISE = (nn.L1Loss, nn.MSELoss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCEWithLogitsLoss, nn.BCELoss)


def target_problem(loss_fn: Callable, y_pred: torch.Tensor, y: torch.Tensor, model_dtype) -> str | None:
    """Why ``y`` cannot be the target of ``y_pred`` under an element-wise loss (shape, dtype), or None.

    Cheap (no look at the values), so it runs on every batch: ``MSELoss`` of ``(N, 1)`` against ``(N,)`` would
    broadcast to ``(N, N)`` and train to the wrong line with only a warning.
    """
    if not isinstance(loss_fn, ELEMENTWISE):
        return None
    name = type(loss_fn).__name__
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)) and not y.is_floating_point():
        return f"{name} needs float 0/1 targets, got {y.dtype}; convert them with y.float()."
    if y.shape != y_pred.shape:
        return (
            f"{name} compares output and target element by element, but the output has shape {tuple(y_pred.shape)} "
            f"and the target {tuple(y.shape)} (they would broadcast to the wrong loss); reshape the target with "
            "y.reshape_as(y_pred) (e.g. y.unsqueeze(1) for one output per row)."
        )
    if not y.is_floating_point():
        return f"{name} needs float targets, got {y.dtype}; convert them with y.float()."
    if model_dtype is not None and y.dtype != model_dtype:
        hint = " (torch.tensor(numpy_array) gives float64)" if y.dtype == torch.float64 else ""
        return (
            f"the targets y are {y.dtype} but the model computes in {model_dtype}{hint}; convert them with y.float()."
        )
    return None


def label_problem(loss_fn: Callable, y_pred: torch.Tensor, y: torch.Tensor) -> str | None:
    """Why ``y`` cannot be targets for ``y_pred`` under a classification loss, or None (looks at the values)."""
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)):
        return target_problem(loss_fn, y_pred, y, None)
    if isinstance(loss_fn, nn.CrossEntropyLoss) and y.shape == y_pred.shape and y.ndim >= 2:
        return probability_problem(y)
    if not isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)) or y_pred.ndim < 2 or y.ndim != y_pred.ndim - 1:
        if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)) and y_pred.ndim >= 1:
            return (
                f"{type(loss_fn).__name__} takes logits (N, classes) and class labels (N,), got an output of shape "
                f"{tuple(y_pred.shape)} and targets of shape {tuple(y.shape)}; give the model one output per class "
                "and pass labels as y.long() of shape (N,)."
            )
        return None  # not class-index targets (regression): nothing to check
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


def probability_problem(y: torch.Tensor) -> str | None:
    """CrossEntropyLoss reads targets shaped like the logits as class probabilities: they must be rows summing to 1."""
    if not y.is_floating_point():
        return (
            f"CrossEntropyLoss got targets shaped like the logits {tuple(y.shape)} but of dtype {y.dtype}; pass class "
            "labels of shape (N,), e.g. y.argmax(dim=1) for one-hot rows."
        )
    sums = y.detach().double().sum(dim=1)
    if bool((y < 0).any()) or not bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3)):
        return (
            "CrossEntropyLoss reads float targets shaped like the logits as class probabilities (each row >= 0, "
            "summing to 1), but these rows do not sum to 1; for class labels pass y.long() of shape (N,), for "
            "probabilities normalise the rows."
        )
    return None


def check_labels(loss_fn: Callable, y_pred: torch.Tensor, y: torch.Tensor) -> None:
    """One cheap look at the first batch, before a GPU could hit a device-side assert."""
    problem = label_problem(loss_fn, y_pred, y)
    if problem:
        raise ValueError(problem)


def check_loss_fn(loss_fn: Callable) -> None:
    if isinstance(loss_fn, type):
        raise TypeError(
            f"loss_fn is the class {loss_fn.__name__}, not an instance; pass {loss_fn.__name__}() with parentheses."
        )
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be callable like nn.MSELoss(), got {type(loss_fn).__name__}; pass an instance, e.g. nn.MSELoss()."
        )
    reduction = getattr(loss_fn, "reduction", "mean")
    if isinstance(loss_fn, nn.Module) and reduction != "mean":
        raise ValueError(
            f"loss_fn has reduction={reduction!r}, but the loop weights each batch's mean loss by its size; "
            f"build it with the default reduction='mean', e.g. {type(loss_fn).__name__}()."
        )


def training_args(model: nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer | None) -> torch.device:
    """Check what every loop needs; return the one device the model lives on."""
    check.module("model", model)
    check_loss_fn(loss_fn)
    if optimizer is not None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}; "
                "build one with torch.optim.SGD(model.parameters(), lr=0.01)."
            )
        optimizer_covers(model, optimizer)
    return check.model_device(model)


def optimizer_covers(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The optimizer must update the model's trainable parameters: none is an error, some left out a warning."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameter (none requires grad), so training would change "
            "nothing; unfreeze the layers to train with layer.requires_grad_(True), or use evaluate() to only measure."
        )
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    left_out = [name for name, p in trainable if id(p) not in held]
    if len(left_out) == len(trainable):
        raise ValueError(
            "the optimizer holds none of the model's parameters, so training would change nothing; "
            "build it from this model: torch.optim.SGD(model.parameters(), lr=0.01)."
        )
    if left_out:
        shown = ", ".join(left_out[:5]) + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else "")
        warnings.warn(
            f"the optimizer leaves out {len(left_out)} of the model's trainable parameters ({shown}), so they never "
            "train; build it from model.parameters(), or freeze them with requires_grad_(False).",
            UserWarning,
            stacklevel=4,
        )  # a split or 'meta' model fails here, before any training


def scheduler_timing(
    scheduler: Scheduler | None, optimizer: torch.optim.Optimizer, step: Literal["batch", "epoch"] | None = None
) -> str | None:
    """When ``scheduler`` steps: ``"batch"`` (OneCycleLR, CyclicLR) or ``"epoch"`` (the others), unless ``step`` says.

    Used by hand in 04_training_loop, "Training the CNN properly" (a one-cycle schedule, per batch).
    """
    if scheduler is None:
        return None
    if isinstance(scheduler, torch.optim.Optimizer):
        raise TypeError(
            "scheduler is an optimizer (it would take a second step per batch); pass a learning-rate scheduler, e.g. torch.optim.lr_scheduler.StepLR(optimizer, 10)."
        )
    if not isinstance(scheduler, (LRScheduler, ReduceLROnPlateau)):
        raise TypeError(
            f"scheduler must be a torch.optim.lr_scheduler object, got {type(scheduler).__name__}; pass scheduler=None to train without one."
        )
    if scheduler.optimizer is not optimizer:
        raise ValueError(
            "the scheduler was built on another optimizer, so the learning rate would never change; build it on the optimizer you pass to fit."
        )
    if step not in (None, "batch", "epoch"):
        raise ValueError(
            f"scheduler_step must be 'batch', 'epoch' or None (chosen from the scheduler's type), got {step!r}."
        )
    if step == "batch" and isinstance(scheduler, ReduceLROnPlateau):
        raise ValueError(
            "ReduceLROnPlateau reads the validation loss once per epoch; pass scheduler_step='epoch' (or leave it None)."
        )
    if isinstance(scheduler, ReduceLROnPlateau) and scheduler.mode != "min":
        raise ValueError(
            f"ReduceLROnPlateau was built with mode={scheduler.mode!r}, but the loop feeds it the loss, which should "
            "fall (it would cut the learning rate while the loss improves); build it with mode='min' (the default)."
        )
    return step or ("batch" if isinstance(scheduler, (OneCycleLR, CyclicLR)) else "epoch")


def schedule_length(
    scheduler: Scheduler | None, timing: str | None, train_data: Data, epochs: int, scheduler_step
) -> None:
    """A OneCycleLR must have the steps fit will take: too few crash mid-run, too few taken stop mid-cycle.
    Other schedules with a length (T_max, total_iters) get a warning when it counts batches but they are
    stepped per epoch, or counts epochs but they are stepped per batch."""
    if not isinstance(scheduler, OneCycleLR):
        _length_unit(scheduler, timing, train_data, epochs)
        return
    remaining = scheduler.total_steps - scheduler.last_epoch
    batches = 1 if isinstance(train_data, (tuple, list)) and len(train_data) == 2 else length_or_none(train_data)
    if timing == "epoch":
        if epochs != remaining:
            raise ValueError(
                f"OneCycleLR has {remaining} steps left but stepped once per epoch (scheduler_step={scheduler_step!r}) "
                f"it would take {epochs}, "
                + ("stopping with the learning rate mid-cycle" if epochs < remaining else "and then fail")
                + "; let fit step it once per batch (scheduler_step=None), or build it with total_steps=epochs."
            )
        return
    if batches is None:
        return  # a generator: its length is unknown until it ends
    planned = epochs * batches
    if planned > remaining or (planned < remaining and scheduler.last_epoch == 0):
        raise ValueError(
            f"OneCycleLR has {remaining} steps left but fit would take {planned} ({epochs} epochs x {batches} batches), "
            + ("so it would fail part-way" if planned > remaining else "stopping with the learning rate mid-cycle")
            + "; build it with total_steps=epochs * len(train_loader), e.g. "
            "digits_recipe(model, epochs, steps_per_epoch=len(train_loader))."
        )


def _length_unit(scheduler: Scheduler | None, timing: str | None, train_data: Data, epochs: int) -> None:
    """Warn when a schedule's length is in the other unit than its steps (a cosine sized in batches but
    stepped per epoch ends far from its floor; a warm-up sized in batches stays warming for epochs).

    The length left (``T_max`` or ``total_iters`` minus the steps already taken, for a resumed run) is read
    as batches when it is the whole run's batches, or a multiple of a loader's 8 or more batches that is
    longer than the run's epochs; as epochs when it is exactly the run's epochs but stepped per batch.
    """
    length = next((getattr(scheduler, a) for a in ("T_max", "total_iters") if hasattr(scheduler, a)), None)
    batches = None if isinstance(train_data, (tuple, list)) else length_or_none(train_data)
    if not isinstance(length, int) or not batches or batches < 2:
        return
    left = length - max(scheduler.last_epoch, 0)
    name, unit = type(scheduler).__name__, "T_max" if hasattr(scheduler, "T_max") else "total_iters"
    in_batches = left == epochs * batches or (batches >= 8 and left > epochs and left % batches == 0)
    if timing == "epoch" and in_batches:
        message = (
            f"{name}'s {unit}={length} counts batches ({length // batches} epochs x {batches} batches), but fit "
            f"steps it once per epoch, {epochs} times, so it ends at step {epochs} of {left}; pass "
            f"scheduler_step='batch', or build it with {unit}={length // batches} (epochs)."
        )
    elif timing == "batch" and left == epochs:
        message = (
            f"{name}'s {unit}={length} counts epochs, but scheduler_step='batch' steps it {batches} times per "
            f"epoch, so it finishes within the first epoch; pass scheduler_step='epoch', or build it with "
            f"{unit}={length} * len(train_loader)."
        )
    else:
        return
    warnings.warn(message, UserWarning, stacklevel=5)


def length_or_none(data: Data) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


def metric_is_a_mean(metric_fn: MetricFn, y_pred: torch.Tensor, y: torch.Tensor) -> bool:
    """True once a batch shows the metric is a mean; a per-batch sum (fit would average it twice) raises.

    A batch scoring 0 cannot tell the two apart, so the caller asks again on the next batch.
    """
    once = torch.as_tensor(metric_fn(y_pred, y)).detach().cpu().double()
    if once.ndim != 0:
        raise ValueError(
            f"the metric must return one number per batch, got shape {tuple(once.shape)}; reduce it with .mean()."
        )
    twice = torch.as_tensor(metric_fn(torch.cat([y_pred, y_pred]), torch.cat([y, y]))).detach().cpu().double()
    if once != 0 and torch.isclose(twice, 2 * once):
        raise ValueError(
            "the metric returns a sum over the batch (it doubles when the batch is doubled), so the reported "
            "figure would be wrong; return the mean over the batch instead (.mean() where it has .sum())."
        )
    return bool(once != 0)


def fit_args(
    model,
    train_data,
    loss_fn,
    optimizer,
    epochs,
    val_data,
    metric,
    start_epoch,
    seed,
    print_every,
    decimals,
    checkpoint_path,
    last_checkpoint_path,
    on_epoch_end,
    scheduler,
    scheduler_step,
    amp,
    **_,
) -> tuple[torch.device, str | None, MixedPrecision | None]:
    """Every argument check of ``fit`` in one place; return the model's device, when the scheduler steps and the
    mixed-precision settings (``engine.mixed_precision``, which checks ``amp``; None without it)."""
    from workflow_utils.engine import mixed_precision  # here, not at the top: engine imports this module

    check.positive_int("epochs", epochs, 10)
    device = training_args(model, loss_fn, optimizer)
    as_batches(train_data, "train_data")
    if val_data is not None:
        as_batches(val_data, "val_data")
    check.non_negative_int("start_epoch", start_epoch, 0)
    if seed is not None:
        check.non_negative_int("seed", seed, 42)
    if print_every is not None:
        check.positive_int("print_every", print_every, 1)
    check.non_negative_int("decimals", decimals, 4)
    if checkpoint_path is not None and val_data is None:
        raise ValueError("checkpoint_path keeps the best epoch by validation loss, so it needs val_data too.")
    for name, path in (("checkpoint_path", checkpoint_path), ("last_checkpoint_path", last_checkpoint_path)):
        if path is not None:
            check.path(name, path)
    if on_epoch_end is not None and not callable(on_epoch_end):
        raise TypeError(
            f"on_epoch_end must be a function taking the History, got {type(on_epoch_end).__name__}; pass e.g. a LiveLossPlot()."
        )
    timing = scheduler_timing(scheduler, optimizer, scheduler_step)
    schedule_length(scheduler, timing, train_data, epochs, scheduler_step)
    return device, timing, mixed_precision(device, amp)


def non_finite_reason(epoch: int, train: dict, val: dict | None, train_data: Data, val_data: Data | None) -> str | None:
    """Why the epoch's losses are not finite (which data tensor holds NaN/inf, or the learning rate), or None."""
    for name, result, data in (("training", train, train_data), ("validation", val, val_data)):
        if result is None or math.isfinite(result["loss"]):
            continue
        kept = "the weights from before this epoch" if name == "training" else "its weights"
        where = find_non_finite(data, "train_data" if name == "training" else "val_data")
        if where:
            return f"stopped at epoch {epoch}: the {name} loss became {result['loss']} because {where}; clean or drop those rows (the model keeps {kept})."
        if name == "training":
            return (
                f"stopped at epoch {epoch}: the training loss became {result['loss']}. The learning rate is probably "
                f"too large; try one 10x smaller (the model keeps {kept})."
            )
        return f"stopped at epoch {epoch}: the validation loss became {result['loss']} while the training loss is finite; check the model's output on val_data."
    return None


def find_non_finite(data: Data, name: str) -> str | None:
    """Where the first NaN/inf input or target of ``data`` is, in words, or None when all are finite."""
    for i, batch in enumerate(as_batches(data, name)):
        X, y = check.batch_pair(batch, name)
        for label, t in (("inputs X", X), ("targets y", y)):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
                return f"{name}'s {label} hold NaN or inf (first in batch {i})"
    return None


def interrupted_reason(
    history: History, epoch: int, timing: str | None, last_checkpoint_path: str | Path | None
) -> str:
    """What a Ctrl-C during ``epoch`` kept, and advice that works as printed."""
    done = history.epochs[-1] + 1 if history.epochs else epoch
    head = (
        f"interrupted {'after' if done > epoch else 'during'} epoch {epoch}; the history holds epochs up to {done - 1}"
    )
    if last_checkpoint_path is not None and history.epochs:
        return (
            f"{head}. To resume exactly, rebuild model, optimizer and scheduler, call "
            f"load_checkpoint({str(last_checkpoint_path)!r}, model, optimizer, scheduler=scheduler), "
            f"then fit(..., start_epoch={done}) for the remaining epochs."
        )
    if timing == "batch":
        return (
            f"{head} and the model its last completed step. The per-batch scheduler has used its steps for "
            "this run, so rebuild optimizer and scheduler to train again; pass last_checkpoint_path= to be able to resume."
        )
    return (
        f"{head} and the model its last completed step. To go on, call fit again with start_epoch={done} "
        "(not an exact resume: pass last_checkpoint_path= for that)."
    )


class SaveRefused(Exception):
    """A checkpoint could not be written during ``fit``; its message is the run's ``stop_reason``."""


def stop_reason(stop: BaseException, history: History, epoch: int, timing, last_checkpoint_path) -> str:
    """Why ``fit`` stopped early: a refused save says so itself; Ctrl+C gets ``interrupted_reason``."""
    if isinstance(stop, SaveRefused):
        return f"{stop} The history so far is returned, and the model holds that epoch's weights."
    return interrupted_reason(history, epoch, timing, last_checkpoint_path)


def diverging_warning(history: History) -> str | None:
    """A note when a training loss of the last two epochs is at least 100 times its first epoch's.

    Two epochs, because a loss that diverges can also jump back and forth (L1 with SGD does).
    """
    losses, epochs = list(history.train_loss), list(history.epochs)  # by position, not by epoch number
    if len(losses) < 2 or not all(math.isfinite(loss) for loss in losses):
        return None
    high = max(range(len(losses) - 2 if len(losses) > 2 else 1, len(losses)), key=losses.__getitem__)
    if losses[high] <= 100 * losses[0]:
        return None
    return (
        f"warning: the training loss grew from {losses[0]:.4g} (epoch {epochs[0]}) to {losses[high]:.4g} "
        f"(epoch {epochs[high]}): training diverged; try a learning rate about 10 times smaller."
    )
