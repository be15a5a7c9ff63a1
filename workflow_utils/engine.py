"""Step 4, the training loop: one training pass, one evaluation pass, and ``fit``.

``data`` arguments accept either a pair ``(X, y)`` of tensors, used as one full
batch, or anything that yields ``(X, y)`` batches, such as a ``DataLoader``.
Batches are moved to the model's device, so the model decides where work runs.

Written by hand in 04_training_loop, "The loop, by hand" (one pass) and "The mini-batch loop, by hand".

``fit``'s options are listed in its docstring (``help(fit)``). The loop comes first, below ``History``: ``fit``
runs the epochs and ``_run_epoch`` the five steps over the batches. The checks that turn a mistake into one clear
line are in ``workflow_utils._fit_checks``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR, ReduceLROnPlateau

from workflow_utils import _fit_checks as checks
from workflow_utils import _validate as check
from workflow_utils._fit_checks import scheduler_timing
from workflow_utils.device import set_seed
from workflow_utils.distributed import is_distributed, is_main_process
from workflow_utils.evaluation import kept_modes, to_eval_mode

Batch = tuple[torch.Tensor, torch.Tensor]
Data = tuple[torch.Tensor, torch.Tensor] | Iterable[Batch]
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Scheduler = LRScheduler | ReduceLROnPlateau


_PER_EPOCH = ("epochs", "train_loss", "val_loss", "train_metric", "val_metric")


@dataclass(repr=False)
class History:
    """What ``fit`` measured, one entry per completed epoch, and the best epoch's weights.

    The lists hold one value per completed epoch, by position; ``history[epoch]`` gives one epoch's values
    by its number, so ``history[history.best_epoch]["val_metric"]`` is right also in a run resumed with
    ``start_epoch`` (whose lists start at that epoch), and an epoch the run does not hold is named. ``fit`` returns the model as it was after the LAST
    epoch; ``best_epoch`` is the one with the lowest validation loss and ``restore_best(model)`` loads its
    weights. ``stop_reason`` says why training ended early; ``warning`` is set (and printed) when the training
    loss ended 100 times above its first epoch's: a loss that explodes without reaching NaN, usually a learning
    rate that is too high.

    Written by hand in 04_training_loop, "Loss curves" (lists of losses per epoch).
    """

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_metric: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    metric_name: str | None = None
    best_epoch: int | None = None  # the epoch number (as in ``epochs``) with the lowest val loss
    best_val_loss: float | None = None
    stop_reason: str | None = None  # why training ended early, or None if it ran all epochs
    warning: str | None = None  # the loss ended 100x above its first epoch's (diverged); None if stop_reason is set
    start_epoch: int | None = None  # the first epoch's number; None: the first entry of ``epochs`` (or 0)
    # a CPU copy of the best epoch's weights (``restore_best``); not compared, shown or saved by ``to_dict``
    best_state: dict[str, torch.Tensor] | None = field(default=None, compare=False)
    __iter__ = None  # history[epoch] looks an epoch up; iterate over history.epochs instead

    def to_dict(self) -> dict:
        """Every measured list and setting as plain Python values (for a checkpoint or JSON), without the weights."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "best_state"}

    def __post_init__(self) -> None:
        if self.start_epoch is None:
            self.start_epoch = self.epochs[0] if self.epochs else 0

    def __getitem__(self, epoch: int) -> dict[str, float | int]:
        """One epoch's values by its number: ``{"epoch", "train_loss", "val_loss", ...}`` (those recorded)."""
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise TypeError(f"index a History by an epoch number (an int), got {type(epoch).__name__}")
        if epoch not in self.epochs:
            held = f"epochs {self.epochs[0]} to {self.epochs[-1]}" if self.epochs else "no epochs yet"
            raise IndexError(
                f"epoch {epoch} is not in this history: it holds {held}"
                + (f" (the run started at start_epoch={self.start_epoch})" if self.start_epoch else "")
                + "; history.epochs lists them."
            )
        position = self.epochs.index(epoch)
        values = {name: getattr(self, name) for name in _PER_EPOCH}
        return {name.removesuffix("s") if name == "epochs" else name: v[position] for name, v in values.items() if v}

    def restore_best(self, model: nn.Module) -> nn.Module:
        """Load the best epoch's weights (lowest validation loss) into ``model`` and return it."""
        if self.best_state is None and not self.epochs:
            raise ValueError("this history has no best epoch to restore: no epoch completed (see stop_reason).")
        if self.best_state is None:
            raise ValueError(
                "this history has no best epoch to restore: fit picks one only when given val_data; "
                "pass val_data=... to fit (or keep the model fit returned, from its last epoch)."
            )
        from workflow_utils.checkpoint import unwrap_model

        unwrap_model(model).load_state_dict(self.best_state)
        return model

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(no epochs completed)"
        done = f"epochs {self.epochs[0]} to {self.epochs[-1]}"
        if self.best_epoch is None:
            return f"History({done}; no val_data, so no best epoch; the model holds epoch {self.epochs[-1]}'s weights)"
        return (
            f"History({done}; best epoch {self.best_epoch} (val loss {self.best_val_loss:.4f}); the model holds "
            f"epoch {self.epochs[-1]}'s weights: history.restore_best(model) loads epoch {self.best_epoch}'s)"
        )


# --- the loop, as written by hand in 04_training_loop ---------------------------------------------------
# fit runs the epochs; _run_epoch is the five steps over the batches. The checks that turn a mistake into one
# clear line live in workflow_utils/_fit_checks.py.


def fit(
    model: nn.Module,
    train_data: Data,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    val_data: Data | None = None,
    metric: str | MetricFn | tuple[str, MetricFn] | None = None,
    scheduler: Scheduler | None = None,
    scheduler_step: Literal["batch", "epoch"] | None = None,
    start_epoch: int = 0,
    seed: int | None = None,
    print_every: int | None = None,
    decimals: int = 4,
    progress: bool = False,
    checkpoint_path: str | Path | None = None,
    last_checkpoint_path: str | Path | None = None,
    on_epoch_end: Callable[[History], None] | None = None,
    amp: bool = False,
) -> History:
    """Train for ``epochs`` epochs, validating after each; return the ``History``. The model keeps the LAST
    epoch's weights (``history.restore_best(model)`` loads the best's) and its train/eval mode. Options: ``help(fit)``.

    Written by hand in 04_training_loop, "The loop, by hand" and "The mini-batch loop, by hand".
    """
    device, timing, precision = checks.fit_args(**locals())
    metric_name, metric_fn = _resolve_metric(metric)
    history = History(metric_name=metric_name, start_epoch=start_epoch)
    per_batch = scheduler if timing == "batch" else None  # stepped after every batch, else once per epoch
    one_epoch = partial(_train_and_validate, model, train_data, val_data, loss_fn, optimizer, metric_fn, device)
    one_epoch = partial(one_epoch, precision, per_batch)
    with kept_modes(model):  # the caller's train/eval mode comes back at the end
        for epoch in _epoch_range(start_epoch, epochs, progress and is_main_process()):
            try:
                _prepare_epoch(train_data, seed, epoch)
                train, val, history.stop_reason = one_epoch(epoch, first=epoch == start_epoch)
                if history.stop_reason:
                    break
                _step_epoch_scheduler(scheduler if timing == "epoch" else None, (val or train)["loss"])
                _record(history, epoch, train, val, model)
                _save_checkpoints(history, model, optimizer, scheduler, checkpoint_path, last_checkpoint_path)
                _print_epoch(history, print_every, start_epoch, decimals, validated=val is not None)
                if on_epoch_end is not None:
                    on_epoch_end(history)
            except (KeyboardInterrupt, checks.SaveRefused) as stop:
                history.stop_reason = checks.stop_reason(stop, history, epoch, timing, last_checkpoint_path)
                break
    _report_end(history, print_every, checkpoint_path)
    return history


def _train_and_validate(
    model,
    train_data,
    val_data,
    loss_fn,
    optimizer,
    metric_fn,
    device,
    precision: MixedPrecision | None,
    batch_scheduler,
    epoch: int,
    first: bool,
) -> tuple[dict[str, float], dict[str, float] | None, str | None]:
    """One training pass and one validation pass: ``(train, val, stop_reason)``; NaN weights are rolled back."""
    weights_before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    train = _run_epoch(
        model, train_data, loss_fn, optimizer, metric_fn, device, batch_scheduler, first, "train_data", precision
    )
    val = (
        None
        if val_data is None
        else _evaluate(model, val_data, loss_fn, metric_fn, device, first, "val_data", precision)
    )
    stop_reason = checks.non_finite_reason(epoch, train, val, train_data, val_data)
    if stop_reason and not math.isfinite(train["loss"]):
        model.load_state_dict(weights_before)  # keep the last finite weights
    return train, val, stop_reason


def _run_epoch(
    model: nn.Module,
    data: Data,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer | None,
    metric_fn: MetricFn | None,
    device: torch.device,
    batch_scheduler: Scheduler | None = None,
    first: bool = False,
    name: str = "data",
    precision: MixedPrecision | None = None,
) -> dict[str, float]:
    # Sums stay on the device: calling .item() per batch would stall a GPU every step.
    loss_sum = torch.zeros((), device=device)
    metric_dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
    metric_sum = torch.zeros((), device=device, dtype=metric_dtype)
    n_samples = 0
    check_metric = first and metric_fn is not None and metric_fn not in METRICS.values()
    weights = check.weight_dtype(model)
    for batch in checks.as_batches(data, name):
        X, y = check.batch_pair(batch, name)  # one clear error for a dict, a triple, inputs without labels
        check.input_dtype(name, X, weights, model)
        check.device_takes(name, y, device)
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _precision_context(precision):
            y_pred = check.forward(model, X, name)  # 1. forward pass
            problem = checks.target_problem(loss_fn, y_pred, y, weights[0])
            if problem:
                raise ValueError(problem)
            if first:
                first = False
                checks.check_labels(loss_fn, y_pred, y)
            if check_metric:  # until a batch shows the function returns a mean (a batch scoring 0 cannot)
                check_metric = not checks.metric_is_a_mean(metric_fn, y_pred.detach(), y)
            loss = _loss(loss_fn, y_pred, y)  # 2. how wrong were we?
        if optimizer is not None:
            _optimizer_step(loss, optimizer, precision)  # 3.-5. zero the gradients, backward, step
            if batch_scheduler is not None:
                batch_scheduler.step()  # a per-batch schedule such as OneCycleLR
        loss_sum += loss.detach() * len(X)
        if metric_fn is not None:
            metric_sum += torch.as_tensor(metric_fn(y_pred.detach(), y)).to(metric_dtype) * len(X)
        n_samples += len(X)
    if n_samples == 0:
        raise ValueError(f"{name} yielded no batches; check that the dataset or DataLoader is not empty.")
    loss_total, metric_total, n_samples = _summed_over_processes(loss_sum, metric_sum, n_samples)
    result = {"loss": loss_total / n_samples}
    if metric_fn is not None:
        result["metric"] = metric_total / n_samples
    return result


def _loss(loss_fn: Callable, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    try:
        loss = loss_fn(y_pred, y)
    except (IndexError, RuntimeError) as exc:  # the loss's own message is cryptic: say what is wrong
        problem = checks.label_problem(loss_fn, y_pred, y)
        if problem:
            raise ValueError(problem) from exc
        raise
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return one number (the batch mean), got {shape}; reduce it with .mean().")
    return loss


def _optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, precision: MixedPrecision | None) -> None:
    """Steps 3-5 of the loop: zero the gradients, backpropagate, update (through the GradScaler if any)."""
    optimizer.zero_grad()  # 3. forget the previous batch's gradients
    scaler = None if precision is None else precision.scaler
    if scaler is None:
        loss.backward()  # 4. gradients of the loss for every parameter
        optimizer.step()  # 5. nudge the parameters downhill
        return
    scaler.scale(loss).backward()  # float16 gradients, scaled up so small ones survive
    scaler.step(optimizer)  # unscales; skips the step if a gradient overflowed
    scaler.update()


def _summed_over_processes(loss_sum: torch.Tensor, metric_sum: torch.Tensor, n: int) -> tuple[float, float, int]:
    """The sums and sample count over every process under torch.distributed (each saw its share), else this one's."""
    if not is_distributed():
        return loss_sum.item(), metric_sum.item(), n
    count = torch.tensor(n, device=metric_sum.device, dtype=metric_sum.dtype)
    totals = torch.stack([loss_sum.to(metric_sum.dtype), metric_sum, count])
    torch.distributed.all_reduce(totals)  # SUM over the processes
    loss_total, metric_total, count = totals.tolist()
    return loss_total, metric_total, round(count)


def train_step(
    model: nn.Module,
    data: Data,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    metric: str | MetricFn | tuple[str, MetricFn] | None = None,
    scheduler: Scheduler | None = None,
) -> dict[str, float]:
    """Train on every batch of ``data`` once; return ``{"loss": float}`` (and ``"metric"``), sample means.

    ``data``, ``metric`` and ``scheduler`` as for ``fit``; ``optimizer`` is required.

    A per-batch scheduler (OneCycleLR) steps after every optimizer step, any other once at the end.
    Written by hand in 04_training_loop, "The loop, by hand".
    """
    if optimizer is None:
        raise TypeError(
            "train_step needs an optimizer to train with; pass torch.optim.SGD(model.parameters(), lr=0.01), "
            "or call evaluate(model, data, loss_fn) to measure the loss without training."
        )
    device = checks.training_args(model, loss_fn, optimizer)
    timing = scheduler_timing(scheduler, optimizer)
    _, metric_fn = _resolve_metric(metric)
    model.train()
    result = _run_epoch(
        model, data, loss_fn, optimizer, metric_fn, device, scheduler if timing == "batch" else None, first=True
    )
    _step_epoch_scheduler(scheduler if timing == "epoch" else None, result["loss"])
    return result


def evaluate(
    model: nn.Module, data: Data, loss_fn: nn.Module, metric: str | MetricFn | tuple[str, MetricFn] | None = None
) -> dict[str, float]:
    """Mean ``loss`` (and ``metric``) over ``data`` in eval mode, without tracking gradients; the model's
    train/eval mode is put back as it was afterwards.

    Returns ``{"loss": float}``, plus ``"metric": float`` when a metric is given: means over every sample,
    each batch weighted by its size. ``data`` and ``metric`` as for ``fit``. The straight-line notebooks call this pass the *test step*. Written by hand in 04_training_loop, "The loop, by hand".
    """
    device = checks.training_args(model, loss_fn, None)
    _, metric_fn = _resolve_metric(metric)
    return _evaluate(model, data, loss_fn, metric_fn, device, first=True)


def _evaluate(
    model: nn.Module,
    data: Data,
    loss_fn: Callable,
    metric_fn: MetricFn | None,
    device: torch.device,
    first: bool,
    name: str = "data",
    precision: MixedPrecision | None = None,
) -> dict[str, float]:
    with kept_modes(model), torch.inference_mode():
        to_eval_mode(model)
        return _run_epoch(model, data, loss_fn, None, metric_fn, device, first=first, name=name, precision=precision)


# fit's options, appended to its docstring (help(fit)) so the function itself stays on one screen
_FIT_OPTIONS = """
    Args:
        model (nn.Module): the model; batches are moved to the device its parameters are on.
        train_data: a pair ``(X, y)`` of tensors (one full batch) or an iterable of ``(X, y)`` batches such as
            a ``DataLoader``. X's dtype must be the model's (``X.float()``); for element-wise losses (L1, MSE,
            BCE) y must have the output's shape (``y.reshape_as(y_pred)``), for CrossEntropyLoss be class labels
            ``(N,)`` of dtype long (or probability rows).
        loss_fn: a loss such as ``nn.MSELoss()`` with ``reduction='mean'`` (fit weights each batch by its size).
        optimizer (torch.optim.Optimizer): built on this model's parameters (one left out gives a warning).
        epochs (int): epochs to run in this call, >= 1.
        val_data: like ``train_data``; evaluated after every epoch in eval mode, without gradients.
        metric (str | function | (name, function)): ``'accuracy'`` (class logits ``(N, C)``, labels ``(N,)``),
            ``'binary_accuracy'`` (one logit per row; 0/1 targets), ``'mae'``, ``'mse'``, or a function
            ``(y_pred, y) -> mean over the batch``; ``("r2", function)`` names it (a lambda is named "metric").
            ``History.metric_name`` holds the name; a function returning a sum is refused.
        scheduler: a ``torch.optim.lr_scheduler`` object on ``optimizer``; OneCycleLR and CyclicLR step once per
            batch, the others once per epoch (ReduceLROnPlateau, built with mode='min', on the validation loss,
            else the training loss). A OneCycleLR must have exactly the steps this call takes.
        scheduler_step ('batch' | 'epoch' | None): overrides when the scheduler steps.
        start_epoch (int): the number of the first epoch, e.g. the ``epoch`` a checkpoint stored, to resume.
        seed (int | None): epoch ``e`` re-seeds with ``seed + e`` and calls the sampler's ``set_epoch(e)``, so
            a run resumed at ``start_epoch`` repeats exactly what the uninterrupted run would have done.
        print_every (int | None): print a line every that many epochs, under a one-line legend: the train figures
            are the mean over the epoch's batches while the weights changed, the val figures come after the epoch.
        decimals (int): decimals of the printed floats (2 suits CNN training, which no two kinds of hardware
            repeat to 4 decimals).
        progress (bool): show a tqdm bar over the epochs.
        checkpoint_path (str | Path | None): keep the best epoch by validation loss here (needs ``val_data``).
        last_checkpoint_path (str | Path | None): keep the last completed epoch here. Both store ``epoch``, the
            number of epochs done, i.e. the ``start_epoch`` to resume at, and the plain model's keys (also for
            a ``torch.compile``d or DDP model).
        on_epoch_end (function | None): called with the ``History`` after each epoch (a ``LiveLossPlot``, say).
        amp (bool): mixed precision for the forward pass and loss (``torch.autocast``): bfloat16 on the CPU,
            float16 with a ``torch.amp.GradScaler`` on CUDA; the weights stay float32. Off by default.

    Returns:
        History: losses (and metrics) per epoch, ``best_epoch`` and ``stop_reason``.

    Raises:
        ValueError, TypeError: one line naming the fix, before training starts where it can be known (bad
        arguments, a scheduler whose steps do not fit) or at the first batch that shows it (a batch that is not
        ``(X, y)``, dtypes, shapes, labels out of range).

    Ctrl-C and a non-finite loss stop early; ``History.stop_reason`` says why and how to go on. Under
    ``torch.distributed`` (a ``DistributedDataParallel`` model, loaders from ``workflow_utils.distributed``)
    each process passes over its share: the figures are summed over the processes, so every one records those
    of the whole epoch, and only rank 0 prints, shows the bar and writes checkpoints.
"""


fit.__doc__ += _FIT_OPTIONS


# --- the small steps fit calls around the loop ------------------------------------------------------------


def _step_epoch_scheduler(scheduler: Scheduler | None, monitored_loss: float) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(monitored_loss)
    else:
        scheduler.step()


# The bar shows how far the run is, not how long it took: a notebook stores what it shows, and times differ.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"


def _epoch_range(start_epoch: int, epochs: int, progress: bool) -> Iterable[int]:
    epoch_range = range(start_epoch, start_epoch + epochs)
    return _with_progress_bar(epoch_range) if progress else epoch_range


def _with_progress_bar(epochs: range) -> Iterator[int]:
    """The epochs under a tqdm bar. In Jupyter the bar is a widget; a notebook also stores its text, which is
    what GitHub, an untrusted notebook or a runtime without the widget shows. tqdm writes that text once, as
    the bar starts ("0/20"), so it is written again as the loop ends: the stored text is the finished bar."""
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm_notebook

    if not issubclass(tqdm, tqdm_notebook):  # a terminal: tqdm redraws its line on stderr
        yield from tqdm(epochs, desc="epochs", bar_format=BAR_FORMAT)
        return
    from IPython.display import display

    bar = tqdm(epochs, desc="epochs", bar_format=BAR_FORMAT, display=False)
    shown = display(bar.container, display_id=True)
    try:
        yield from bar
    finally:
        shown.update(bar.container)


def _prepare_epoch(train_data: Data, seed: int | None, epoch: int) -> None:
    """Seed the epoch and tell the sampler which epoch it is, so a resumed run repeats exactly."""
    if seed is not None:
        set_seed(seed + epoch)
    sampler = getattr(train_data, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # the shuffle order of this epoch, also when resuming


def _record(history: History, epoch: int, train: dict[str, float], val: dict[str, float] | None, model=None) -> None:
    history.epochs.append(epoch)
    history.train_loss.append(train["loss"])
    if "metric" in train:
        history.train_metric.append(train["metric"])
    if val is not None:
        history.val_loss.append(val["loss"])
        if "metric" in val:
            history.val_metric.append(val["metric"])
        if history.best_val_loss is None or val["loss"] < history.best_val_loss:
            history.best_epoch, history.best_val_loss = epoch, val["loss"]
            if model is not None:
                from workflow_utils.checkpoint import unwrap_model

                state = unwrap_model(model).state_dict()
                history.best_state = {
                    k: v.detach().to("cpu", copy=True) if torch.is_tensor(v) else copy.deepcopy(v)
                    for k, v in state.items()
                }


def _save_checkpoints(history: History, model, optimizer, scheduler, best_path, last_path) -> None:
    """Write the best epoch (when this one is it) and the last completed epoch, if asked for; rank 0 only.

    ``save_checkpoint`` stores the plain model inside a DDP or compiled one, so ``load_model(DigitsCNN(), path)`` works.
    """
    from workflow_utils.checkpoint import save_checkpoint

    if not is_main_process():
        return  # under torch.distributed every process holds the same weights: one writer is enough
    done = history.epochs[-1] + 1  # checkpoints record the number of epochs completed
    save = partial(save_checkpoint, model=model, optimizer=optimizer, epoch=done, scheduler=scheduler)
    try:
        if best_path is not None and history.best_epoch == history.epochs[-1]:
            save(best_path, best_val_loss=history.best_val_loss)
        if last_path is not None:
            save(last_path, best_val_loss=history.best_val_loss)
    except PermissionError as exc:  # a file another program holds open: stop, keeping what was measured
        if is_distributed():
            raise  # the other processes would wait for this one forever: end the job as a whole
        raise checks.SaveRefused(f"stopped after epoch {history.epochs[-1]}: {exc}") from exc


def _report_end(history: History, print_every: int | None = None, best_path=None) -> None:
    """Print why training stopped early and whether it diverged (once, on the main process); with
    ``print_every``, also which epoch's weights the model holds when that is not the best epoch."""
    history.warning = None if history.stop_reason else checks.diverging_warning(history)
    last = history.epochs[-1] if history.epochs else None
    saved = f" (saved in {Path(best_path).name})" if best_path is not None else ""
    kept = (
        f"(the model holds epoch {last}'s weights; the best epoch by val loss was {history.best_epoch}{saved}: "
        "history.restore_best(model) loads it)"
        if print_every and history.best_epoch is not None and history.best_epoch != last
        else None
    )
    for line in (history.stop_reason, history.warning, kept):
        if line and is_main_process():
            print(line)


def _print_epoch(history: History, print_every: int | None, start_epoch: int, decimals: int, validated: bool) -> None:
    """Every ``print_every`` epochs (rank 0 only), the epoch's line; above the first, a legend: when each was measured."""
    epoch = history.epochs[-1]
    if not print_every or (epoch - start_epoch) % print_every != 0 or not is_main_process():
        return
    if epoch == start_epoch:
        print(_epoch_legend(validated))
    print(_epoch_line(history, decimals))


def _epoch_legend(validated: bool) -> str:
    """What the epoch lines' figures are, and when each was measured (04, "The loop, by hand")."""
    train = "train: mean over the epoch's batches, each before its step"
    return f"({train}; val: after the epoch)" if validated else f"({train})"


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


# --- metrics: each returns the mean over one batch; fit weights batches by their size ------------


def _accuracy(y_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of rows whose largest logit is the true class (logits (N, classes), labels (N,))."""
    if y_logits.ndim != 2 or y.shape != y_logits.shape[:1]:
        raise ValueError(
            f"metric 'accuracy' takes logits (N, classes) and labels (N,), got {tuple(y_logits.shape)} and "
            f"{tuple(y.shape)}; for one logit per row use metric='binary_accuracy', for numbers metric='mae'."
        )
    return (y_logits.argmax(dim=1) == y).float().mean()


def _binary_accuracy(y_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Share of rows where ``logit > 0`` matches ``target > 0.5``.

    Logits ``(N,)`` or ``(N, 1)`` (before the sigmoid, so the threshold is 0, i.e. probability 0.5); targets
    one per row, any shape with N elements, 0/1 as float, int or bool.
    """
    if y_logits.numel() != y.numel() or (y_logits.ndim == 2 and y_logits.shape[1] != 1):
        raise ValueError(
            f"metric 'binary_accuracy' takes one logit per row and one 0/1 target, got {tuple(y_logits.shape)} and "
            f"{tuple(y.shape)}; for several classes use metric='accuracy'."
        )
    return ((y_logits.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).float().mean()


def _same_shape(name: str, y_pred: torch.Tensor, y: torch.Tensor) -> None:
    if y_pred.shape != y.shape:  # broadcasting (N, 1) against (N,) would silently compare N x N pairs
        raise ValueError(
            f"metric {name!r} needs predictions and targets of one shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}; reshape y with y.reshape_as(y_pred)."
        )


def _mae(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    _same_shape("mae", y_pred, y)
    return (y_pred - y).abs().mean()


def _mse(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    _same_shape("mse", y_pred, y)
    return (y_pred - y).pow(2).mean()


METRICS: dict[str, MetricFn] = {"accuracy": _accuracy, "binary_accuracy": _binary_accuracy, "mae": _mae, "mse": _mse}


def _resolve_metric(metric: str | MetricFn | None) -> tuple[str | None, MetricFn | None]:
    """``(name, function)`` for a metric given by name or as a function returning a batch mean."""
    if metric is None:
        return None, None
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(
                f"unknown metric {metric!r}; choose one of {', '.join(repr(m) for m in METRICS)}, or pass a function returning a batch mean."
            )
        return metric, METRICS[metric]
    if isinstance(metric, tuple) and len(metric) == 2 and isinstance(metric[0], str) and callable(metric[1]):
        return metric  # ("r2", function): the name the history and the printed lines use
    if not callable(metric):
        raise TypeError(
            f"metric must be a name such as 'accuracy' or a function (y_pred, y) -> batch mean, got {type(metric).__name__}; try metric='accuracy'."
        )
    name = getattr(metric, "__name__", "metric").strip("<>_")
    return ("metric" if name in ("", "lambda") else name), metric


# --- mixed precision (fit(amp=True)) -------------------------------------------------------------


@dataclass
class MixedPrecision:
    """``fit(amp=True)``'s settings for one device: the autocast dtype and, for CUDA float16, a GradScaler.

    Timed by hand in 08_scaling_up, "Mixed precision".

    The forward pass and the loss run under ``torch.autocast`` (matrix products in ``dtype``, reductions and
    losses kept in float32); the weights, their gradients and the optimizer stay float32.
    """

    device_type: str
    dtype: torch.dtype
    scaler: torch.amp.GradScaler | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device_type, dtype=self.dtype)


def mixed_precision(device: torch.device, amp: bool) -> MixedPrecision | None:
    """``MixedPrecision`` for ``device`` when ``amp`` is True, else None (plain float32).

    bfloat16 on the CPU (and MPS); float16 with a ``torch.amp.GradScaler`` on CUDA, since float16's small
    range would round small gradients to zero without the scaling. Timed by hand in 08_scaling_up, "Mixed precision".
    """
    if not isinstance(amp, bool):
        raise TypeError(f"amp must be True or False, got {type(amp).__name__}; try amp=True.")
    if not amp:
        return None
    if device.type == "cuda":
        return MixedPrecision("cuda", torch.float16, torch.amp.GradScaler("cuda"))
    return MixedPrecision(device.type, torch.bfloat16)


def _precision_context(precision: MixedPrecision | None) -> contextlib.AbstractContextManager:
    """Autocast for the forward pass and loss under ``fit(amp=True)``, else nothing."""
    return contextlib.nullcontext() if precision is None else precision.autocast()


# --- the series' recipe for the digits CNN ----------------------------------------------------------


def digits_recipe(
    model: nn.Module, epochs: int, steps_per_epoch: int, lr: float = 2e-3
) -> tuple[nn.Module, torch.optim.Optimizer, LRScheduler]:
    """The series' tested settings for the digits CNN: ``(loss_fn, optimizer, scheduler)``.

    Cross-entropy with label smoothing 0.1, AdamW (weight decay 1e-4) and a one-cycle learning
    rate peaking at ``lr``; ``fit`` steps the one-cycle scheduler once per batch.
    Tried out in 04_training_loop, "Training the CNN properly".
    """
    check.module("model", model)
    check.positive_number("lr", lr, 2e-3)
    check.positive_int("epochs", epochs, 10)
    check.positive_int("steps_per_epoch", steps_per_epoch, "len(train_loader)")
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)  # don't push the logits to infinity
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    return loss_fn, optimizer, scheduler
