"""Property-based tests (Hypothesis): generated malformed and unusual inputs for the loop's public functions.

For every generated case, ``fit``, ``evaluate``, ``train_step``, ``predict`` and ``accuracy`` either raise ONE
``ValueError``/``TypeError`` from ``workflow_utils`` whose one-line message names the fix, or return exactly what a
plain hand-written computation gives. Never an exception from inside torch or numpy, never a torch warning (a
silent broadcast warns), never a hang (each example has a deadline). ``derandomize=True`` makes every run try the
same examples, so CI is deterministic.
"""

from __future__ import annotations

import copy
import math
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau, StepLR
from torch.utils.data import DataLoader, TensorDataset

from workflow_utils.engine import evaluate, fit, train_step
from workflow_utils.evaluation import accuracy, predict

PACKAGE = Path(__file__).resolve().parents[1] / "workflow_utils"
FIX_WORDS = (
    "use ",
    "pass ",
    "try ",
    "convert",
    "build",
    "reshape",
    "give ",
    "make ",
    "add ",
    "return ",
    "call ",
    "let ",
)

PROPERTY = settings(
    max_examples=25,
    deadline=20_000,  # ms per example, generous for a loaded CI machine: a hang fails instead of waiting forever
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def assert_clear_error(exc: BaseException) -> None:
    """One ValueError/TypeError raised by workflow_utils itself, on one line, naming a fix."""
    raised_in = Path(traceback.extract_tb(exc.__traceback__)[-1].filename).resolve()
    assert PACKAGE in raised_in.parents, f"{type(exc).__name__} raised inside {raised_in}, not by workflow_utils: {exc}"
    assert type(exc) in (ValueError, TypeError), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert "\n" not in message and len(message) < 400, message
    advice = message.split(";", 1)[-1].lower() if ";" in message else message.lower()
    assert ";" in message and any(word in advice for word in FIX_WORDS), f"names no fix: {message}"


def _raised_in_this_file(exc: BaseException) -> bool:
    return Path(traceback.extract_tb(exc.__traceback__)[-1].filename).resolve() == Path(__file__).resolve()


def outcome(call):
    """``("ok", result)`` or ``("error", exc)``; torch warnings (a broadcast, say) count as failures here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return "ok", call()
        except Exception as exc:  # noqa: BLE001 - each is judged by assert_clear_error
            return "error", exc


# --- strategies -----------------------------------------------------------------------------------

N = st.integers(1, 6)
FEATURES = st.integers(1, 3)


@st.composite
def regression_batches(draw):
    """A list of batches for nn.Linear(F, 1), some of them malformed in one way."""
    features = draw(FEATURES)
    sizes = draw(st.lists(N, min_size=1, max_size=3))
    flaw = draw(
        st.sampled_from(
            [
                "none",
                "none",
                "y_flat",
                "x_float64",
                "y_float64",
                "x_int",
                "dict",
                "triple",
                "x_only",
                "numpy",
                "unpaired",
                "width",
                "y_long",
            ]
        )
    )
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    batches = []
    for n in sizes:
        X, y = torch.randn(n, features, generator=g), torch.randn(n, 1, generator=g)
        batch = {
            "none": (X, y),
            "y_flat": (X, y.reshape(-1)),
            "x_float64": (X.double(), y),
            "y_float64": (X, y.double()),
            "x_int": ((X * 10).long(), y),
            "dict": {"x": X, "y": y},
            "triple": (X, y, torch.ones(n)),
            "x_only": X,
            "numpy": (X.numpy(), y.numpy()),
            "unpaired": (X, y[:-1] if n > 1 else torch.randn(2, 1)),
            "width": (torch.randn(n, features + 1, generator=g), y),
            "y_long": (X, y.round().long()),
        }[flaw]
        batches.append(batch)
    return features, Batches(batches), flaw


class Batches:
    """An iterable of batches, as a DataLoader is (a plain list of two tensors would read as one (X, y) pair)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __repr__(self):
        return f"Batches({self.batches!r})"


LOSSES = st.sampled_from([nn.L1Loss, nn.MSELoss, nn.SmoothL1Loss, nn.HuberLoss])


def _linear(features: int, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(features, 1)


def _hand_epoch(model, batches, loss_fn, optimizer=None):
    """The loop written out: mean loss over samples, training when an optimizer is given."""
    total, count = 0.0, 0
    for X, y in batches:
        loss = loss_fn(model(X), y)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total += loss.item() * len(X)
        count += len(X)
    return total / count


# --- evaluate and train_step on generated regression batches ---------------------------------------


@PROPERTY
@given(case=regression_batches(), loss_class=LOSSES)
def test_evaluate_matches_the_hand_loop_or_refuses(case, loss_class):
    features, batches, flaw = case
    model = _linear(features)
    kind, got = outcome(lambda: evaluate(model, batches, loss_class()))
    if kind == "error":
        assert flaw != "none", f"a well-formed case was refused: {got}"
        assert_clear_error(got)
        return
    assert flaw == "none", f"{flaw} was accepted"
    with torch.no_grad():
        expected = _hand_epoch(model, batches, loss_class())
    assert got["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-7)


@PROPERTY
@given(case=regression_batches(), loss_class=LOSSES, lr=st.sampled_from([0.01, 0.1]))
def test_train_step_matches_the_hand_loop_or_refuses(case, loss_class, lr):
    features, batches, flaw = case
    model = _linear(features)
    twin = copy.deepcopy(model)
    kind, got = outcome(lambda: train_step(model, batches, loss_class(), torch.optim.SGD(model.parameters(), lr=lr)))
    if kind == "error":
        assert flaw != "none", f"a well-formed case was refused: {got}"
        assert_clear_error(got)
        return
    assert flaw == "none", f"{flaw} was accepted"
    expected = _hand_epoch(twin, batches, loss_class(), torch.optim.SGD(twin.parameters(), lr=lr))
    assert got["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


# --- classification: labels, losses and metrics ----------------------------------------------------


@st.composite
def classification_case(draw):
    classes = draw(st.integers(1, 4))
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    label_kind = draw(
        st.sampled_from(
            ["ok", "ok", "out_of_range", "negative", "float", "column", "probabilities", "bad_probabilities"]
        )
    )
    y = torch.randint(0, classes, (n,), generator=g)
    y = {
        "ok": y,
        "out_of_range": y + classes,
        "negative": y - classes,
        "float": y.float(),
        "column": y.unsqueeze(1),
        "probabilities": torch.softmax(torch.randn(n, classes, generator=g), dim=1),
        "bad_probabilities": torch.rand(n, classes, generator=g) * 3,
    }[label_kind]
    metric = draw(st.sampled_from([None, "accuracy", "binary_accuracy", "mae", "mse", "mean_fn", "sum_fn"]))
    X = torch.randn(n, 3, generator=g)
    return classes, X, y, label_kind, metric


def _mean_fn(y_pred, y):
    return (y_pred.argmax(1) == y).float().mean()


def _sum_fn(y_pred, y):
    # a per-batch sum (correct + one per sample): it grows with the batch, so the doubling test always sees it
    return (y_pred.argmax(1) == y).float().sum() + float(len(y))


def _hand_metric(name, y_pred, y):
    if name == "accuracy":
        return (y_pred.argmax(1) == y).float().mean().item()
    if name == "mean_fn":
        return _mean_fn(y_pred, y).item()
    if name == "binary_accuracy":
        return ((y_pred.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).float().mean().item()
    raise AssertionError(f"no hand computation for {name}")


@PROPERTY
@given(case=classification_case())
def test_cross_entropy_with_any_labels_and_metric_matches_or_refuses(case):
    classes, X, y, label_kind, metric = case
    torch.manual_seed(0)
    model = nn.Linear(3, classes)
    metric_arg = {"mean_fn": _mean_fn, "sum_fn": _sum_fn}.get(metric, metric)
    kind, got = outcome(lambda: evaluate(model, (X, y), nn.CrossEntropyLoss(), metric=metric_arg))
    # what a learner may rightly expect to work: integer labels in range, or probability rows,
    # with a metric that fits (accuracy/mean_fn need labels; none fits probability rows but None)
    labels_ok = label_kind == "ok" or label_kind == "probabilities"
    metric_ok = metric is None or (label_kind == "ok" and metric in ("accuracy", "mean_fn"))
    if kind == "error":
        assert not (labels_ok and metric_ok), f"a well-formed case was refused: {got}"
        if metric in ("mean_fn", "sum_fn") and _raised_in_this_file(got):
            return  # the learner's own metric function failed on these targets: its traceback is theirs to read
        assert_clear_error(got)
        return
    assert label_kind in ("ok", "probabilities"), f"labels {label_kind} were accepted"
    with torch.no_grad():
        logits = model(X)
        assert got["loss"] == pytest.approx(nn.CrossEntropyLoss()(logits, y).item(), rel=1e-5, abs=1e-7)
        if metric in ("accuracy", "mean_fn") or (metric == "binary_accuracy" and classes == 1):
            assert got["metric"] == pytest.approx(_hand_metric(metric, logits, y))
        else:  # binary_accuracy, mae, mse on class logits would be a wrong figure: they must have raised
            assert metric is None, f"metric {metric} was accepted for class logits"


# --- accuracy --------------------------------------------------------------------------------------


@st.composite
def accuracy_inputs(draw):
    n = draw(st.integers(0, 6))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    shape = draw(
        st.sampled_from(
            ["labels", "labels", "logits", "one_logit", "scalar", "shorter", "probabilities", "float_labels", "list"]
        )
    )
    y_true = torch.randint(0, 3, (n,), generator=g)
    y_pred = {
        "labels": torch.randint(0, 3, (n,), generator=g),
        "logits": torch.randn(n, 3, generator=g),
        "one_logit": torch.randn(n, 1, generator=g),
        "scalar": torch.tensor(1),
        "shorter": torch.randint(0, 3, (max(n - 1, 0),), generator=g),
        "probabilities": torch.rand(n, generator=g) * 0.98 + 0.01,
        "float_labels": torch.randint(0, 3, (n,), generator=g).float(),
        "list": torch.randint(0, 3, (n,), generator=g).tolist(),
    }[shape]
    return y_pred, y_true, shape


@PROPERTY
@given(case=accuracy_inputs())
def test_accuracy_equals_the_hand_count_or_refuses(case):
    y_pred, y_true, shape = case
    kind, got = outcome(lambda: accuracy(y_pred, y_true))
    if kind == "error":
        assert not (shape in ("labels", "float_labels") and len(y_true)), f"well-formed labels were refused: {got}"
        assert_clear_error(got)
        if shape == "one_logit":  # argmax of one column is always 0: never suggest it
            assert "squeeze(1)" in str(got) and "argmax" not in str(got)
        return
    assert shape in ("labels", "float_labels"), f"{shape} was scored"
    hand = sum(int(a) == int(b) for a, b in zip(y_pred.tolist(), y_true.tolist())) / len(y_true)
    assert got == hand


# --- predict ---------------------------------------------------------------------------------------


@st.composite
def predict_inputs(draw):
    n = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(n, 2, generator=g), torch.randint(0, 3, (n,), generator=g)
    batch_size = draw(st.integers(1, 4))
    kind = draw(
        st.sampled_from(["tensor", "loader", "pairs", "numpy", "rows", "x_only_loader", "float64", "scalar", "wide"])
    )
    data = {
        "tensor": X,
        "loader": DataLoader(TensorDataset(X, y), batch_size=batch_size),
        "pairs": [(X[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)],
        "numpy": X.numpy(),
        "rows": X.tolist(),
        "x_only_loader": DataLoader(X, batch_size=batch_size),
        "float64": X.double(),
        "scalar": torch.tensor(0.5),
        "wide": torch.randn(n, 5, generator=g),
    }[kind]
    return X, y, data, kind


@PROPERTY
@given(case=predict_inputs())
def test_predict_returns_the_model_output_or_refuses(case):
    X, y, data, kind = case
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    result, got = outcome(lambda: predict(model, data))
    accepted = ("tensor", "loader", "pairs", "x_only_loader")  # inputs without labels: prediction's own case
    if result == "error":
        assert kind not in accepted, f"well-formed data were refused: {got}"
        assert_clear_error(got)
        return
    assert kind in accepted, f"{kind} was accepted"
    logits, labels = got
    with torch.no_grad():
        assert torch.allclose(logits, model(X), atol=1e-6) and len(logits) == len(X)  # one row per input
    assert torch.equal(labels, y) if kind in ("loader", "pairs") else len(labels) == 0


# --- fit with schedulers ---------------------------------------------------------------------------


@st.composite
def scheduler_case(draw):
    epochs = draw(st.integers(1, 3))
    batches = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["onecycle", "step", "plateau_min", "plateau_max"]))
    total = draw(st.integers(1, 10))
    step = draw(st.sampled_from([None, "batch", "epoch"]))
    return epochs, batches, kind, total, step


def _scheduler(kind, optimizer, total):
    if kind == "onecycle":
        return OneCycleLR(optimizer, max_lr=0.1, total_steps=total)
    if kind == "step":
        return StepLR(optimizer, step_size=1, gamma=0.5)
    return ReduceLROnPlateau(optimizer, mode="min" if kind == "plateau_min" else "max", patience=0)


@PROPERTY
@given(case=scheduler_case())
def test_fit_steps_a_scheduler_exactly_as_by_hand_or_refuses(case):
    epochs, batches, kind, total, step = case
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 2, generator=g), torch.randn(4, 1, generator=g)) for _ in range(batches)]
    model = _linear(2)
    twin = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = _scheduler(kind, optimizer, total)
    call = lambda: fit(model, data, nn.MSELoss(), optimizer, epochs, scheduler=scheduler, scheduler_step=step)  # noqa: E731
    result, got = outcome(call)
    per_batch = step == "batch" or (step is None and kind == "onecycle")
    planned = epochs * batches if per_batch else epochs
    fits = {
        "onecycle": planned == total,
        "step": True,
        "plateau_min": not (step == "batch"),
        "plateau_max": False,  # fit feeds it a loss, which should fall
    }[kind]
    if result == "error":
        assert not fits, f"a well-formed schedule was refused: {got}"
        assert_clear_error(got)
        return
    assert fits, f"{kind} with {planned} of {total} steps (step={step}) was accepted"
    # by hand: the same loop, stepping the twin's scheduler where fit should
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    twin_sched = _scheduler(kind, twin_opt, total)
    for _ in range(epochs):
        losses = []
        for X, y in data:
            loss = nn.MSELoss()(twin(X), y)
            twin_opt.zero_grad()
            loss.backward()
            twin_opt.step()
            losses.append(loss.item() * len(X))
            if per_batch:
                twin_sched.step()
        if not per_batch:
            if isinstance(twin_sched, ReduceLROnPlateau):
                twin_sched.step(sum(losses) / (4 * batches))
            else:
                twin_sched.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(twin_opt.param_groups[0]["lr"], rel=1e-9)
    assert all(math.isfinite(v) for v in got.train_loss)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_the_property_tests_see_a_torch_error_as_a_failure():
    """The judge itself: an error from inside torch is not taken for one of ours."""
    kind, exc = outcome(lambda: nn.Linear(2, 1)(torch.zeros(3, 5)))
    assert kind == "error"
    with pytest.raises(AssertionError, match="not by workflow_utils"):
        assert_clear_error(exc)
    kind, exc = outcome(lambda: np.zeros(2).reshape(3))
    with pytest.raises(AssertionError):
        assert_clear_error(exc)


@st.composite
def mixed_modes(draw):
    """A small model whose submodules are each in train or eval mode, as a caller may have left them."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4), nn.Linear(4, 2))
    for module in model.modules():
        module.training = draw(st.booleans())
    return model


@PROPERTY
@given(model=mixed_modes(), which=st.sampled_from(["predict", "evaluate", "fit", "fit-fails"]))
def test_every_helper_leaves_each_submodule_in_the_mode_it_found(model, which):
    """predict, evaluate and fit put back every submodule's train/eval mode, also when they raise."""
    before = [m.training for m in model.modules()]
    X, y = torch.randn(8, 3), torch.randn(8, 2)
    if which == "predict":
        predict(model, X)
    elif which == "evaluate":
        evaluate(model, (X, y), nn.MSELoss())
    elif which == "fit":
        fit(model, (X, y), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.01), 2, val_data=(X, y))
    else:
        with pytest.raises(ValueError):  # stopped by our own check after the first forward pass
            fit(model, (X, y[:, :1]), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.01), 2)
    assert [m.training for m in model.modules()] == before
