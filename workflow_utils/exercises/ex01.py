"""Exercises for 01_data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from workflow_utils.exercises import Exercise


def _floats(**tensors: Any) -> str | None:
    """What is wrong with tensors that should hold float inputs or targets (None if nothing)."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            return f"{name} should be a tensor, got {type(t).__name__}; make it with torch.arange or make_line_data."
        if not t.is_floating_point():
            return f"{name} holds {t.dtype} (whole numbers); inputs and targets on a line are floats, e.g. float32."
    return None


def _line(X: Any, y: Any) -> str | None:
    if (problem := _floats(X=X, y=y)) is not None:
        return problem
    if X.shape != (100, 1) or y.shape != (100, 1):
        return f"X and y should both have shape (100, 1), got {tuple(X.shape)} and {tuple(y.shape)}."
    X, y = X.double(), y.double()  # float32 (the default) and float64 answers are compared alike
    expected_X = torch.arange(0, 1, 0.01, dtype=torch.float64).unsqueeze(1)
    if not torch.allclose(X, expected_X, atol=1e-6):
        return "X should run from 0 to 0.99 in steps of 0.01."
    if not torch.allclose(y, -1.5 * X + 2.0, atol=1e-6):
        return "y does not equal -1.5 * X + 2.0."
    return None


def _split(X_train: Any, X_test: Any) -> str | None:
    if (problem := _floats(X_ex_train=X_train, X_ex_test=X_test)) is not None:
        return problem
    if len(X_train) + len(X_test) != 100:
        return f"the two splits should hold all 100 points, got {len(X_train)} + {len(X_test)}."
    if (len(X_train), len(X_test)) != (70, 30):
        return f"expected 70 training and 30 test points, got {len(X_train)} and {len(X_test)}."
    if X_train.shape != (70, 1) or X_test.shape != (30, 1):
        return f"each split keeps one row per point, (70, 1) and (30, 1); got {tuple(X_train.shape)} and {tuple(X_test.shape)}."
    X = torch.arange(0, 1, 0.01, dtype=torch.float64).unsqueeze(1)
    if not torch.allclose(X_train.double(), X[:70], atol=1e-6):
        return "the training split should be the first 70 points, in order."
    if not torch.allclose(X_test.double(), X[70:], atol=1e-6):
        return "the test split should be the last 30 points, in order: the ones the training split leaves out."
    return None


def _val_stats(mean: Any, std: Any) -> str | None:
    from workflow_utils.exercises._digits import digits_splits

    splits = digits_splits()
    train, val = splits["train"][0], splits["val"][0]
    once = (val - train.mean()) / train.std()  # the right answer's pixels
    candidates = {  # what each kind of answer computes, keyed by what to say about it
        None: once,
        "those are exactly 0 and 1: that split was normalised with its own statistics. Normalise the "
        "validation pixels with the training mean and std.": (val - val.mean()) / val.std(),
        "those are the raw validation pixels on the 0..1 scale; normalise them first.": val,
        "those pixels were normalised twice: digits.val.dataset holds images normalised already. Start "
        "from the raw pixels, read_image_folder('data/digits', 'val').": (once - train.mean()) / train.std(),
    }
    for problem, pixels in candidates.items():
        if abs(float(mean) - pixels.mean().item()) < 5e-4 and abs(float(std) - pixels.std().item()) < 5e-4:
            return problem
    return "expected the mean and std of the validation pixels after normalising them with the training statistics."


@contextlib.contextmanager
def _loader_left_as_found(loader: Any) -> Iterator[None]:
    """Restore what iterating ``loader`` advances: its generator and its sampler's epoch (``make_loader``)."""
    generator = getattr(loader, "generator", None)
    state = generator.get_state() if isinstance(generator, torch.Generator) else None
    sampler = getattr(loader, "batch_sampler", None) or getattr(loader, "sampler", None)
    samplers = [
        s for s in (getattr(loader, "sampler", None), getattr(sampler, "sampler", None), sampler) if s is not None
    ]
    epochs = [(s, s.epoch) for s in samplers if isinstance(getattr(s, "epoch", None), int)]
    try:
        yield
    finally:
        if state is not None:
            generator.set_state(state)
        for s, epoch in epochs:
            s.epoch = epoch


def _val_loader(loader: Any) -> str | None:
    from torch.utils.data import DataLoader, Dataset

    from workflow_utils.exercises._digits import digits_splits

    if isinstance(loader, Dataset):
        return "that is a Dataset; pass a loader built on it: make_loader(dataset, batch_size=..., shuffle=...)."
    if not isinstance(loader, DataLoader):
        return f"pass a DataLoader, such as make_loader(dataset, batch_size=..., shuffle=...), got {type(loader).__name__}."
    with _loader_left_as_found(loader):  # reading it must not move its shuffling on to the next epoch
        batches = list(loader)
    if not batches or len(batches[0]) != 2:
        return "the loader should yield (images, labels) batches."
    if len(batches[0][1]) != 32:
        return f"the first batch should hold 32 images, got {len(batches[0][1])}."
    labels = torch.cat([y for _, y in batches])
    expected = digits_splits()["val"][1]
    if len(labels) != len(expected):
        return f"the loader should cover all {len(expected)} validation images once, got {len(labels)}."
    if not torch.equal(labels, expected):
        return "the labels come out in a different order: a validation loader must not shuffle."
    return None


def _own_line(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> str | None:
    parts = {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
    for name, t in parts.items():
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != 1:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            return f"{name} should be a tensor of shape (N, 1), one row per point, got {shape}."
    if len(X_train) != len(y_train) or len(X_test) != len(y_test):
        return "each input split needs its targets: len(X_train) == len(y_train) and len(X_test) == len(y_test)."
    X, y = torch.cat([X_train, X_test]).float(), torch.cat([y_train, y_test]).float()
    if len(X) < 100:
        return f"use at least 100 points, got {len(X)}."
    if not torch.allclose(y, 2 * X - 1, atol=1e-5):
        return "the targets should follow y = 2 * x - 1."
    gaps = X.flatten().diff()
    if abs(X[0].item()) > 1e-6 or (gaps <= 0).any() or not torch.allclose(gaps, gaps[0].expand_as(gaps), atol=1e-5):
        return "the inputs should start at 0 and be evenly spaced, in increasing order, with the training points first."
    if X[-1].item() >= 2 or X[-1].item() + gaps[0].item() < 2 - 1e-5:
        return "the inputs should cover 0 <= x < 2, up to one step short of 2."
    if len(X_train) not in (int(0.8 * len(X)), round(0.8 * len(X))):
        return f"80 % of {len(X)} points is {round(0.8 * len(X))} training points, got {len(X_train)}."
    return None


q1 = Exercise(
    "ex01.q1",
    _line,
    "make_line_data(weight=..., bias=..., step=...) returns X and y with one row per point.",
    "X_ex, y_ex = make_line_data(weight=-1.5, bias=2.0, step=0.01)",
    answers=("X_ex", "y_ex"),
)
q2 = Exercise(
    "ex01.q2",
    _split,
    "split_data(X, y, train_fraction=...) keeps the order; 70 % of 100 points is 70.",
    "X_ex_train, y_ex_train, X_ex_test, y_ex_test = split_data(X_ex, y_ex, train_fraction=0.7)",
    answers=("X_ex_train", "X_ex_test"),
)
q3 = Exercise(
    "ex01.q3",
    _val_stats,
    "read_image_folder('data/digits', 'val') gives the validation pixels in 0..1; subtract the training mean, "
    "divide by the training std, then measure.",
    "val_images, _ = read_image_folder('data/digits', 'val')\nval_normalised = (val_images - mean) / std\n"
    "val_mean, val_std = val_normalised.mean().item(), val_normalised.std().item()",
    answers=("val_mean", "val_std"),
)
q4 = Exercise(
    "ex01.q4",
    _val_loader,
    "make_loader(dataset, batch_size=..., shuffle=...) — which splits should shuffle?",
    "val_loader_ex = make_loader(digits.val.dataset, batch_size=32, shuffle=False)",
    answers=("val_loader_ex",),
)
q5 = Exercise(
    "ex01.q5",
    _own_line,
    "the same three steps as at the top of this notebook: inputs as a column with unsqueeze, targets from "
    "the formula, then the first 80 % for training.",
    "X_new = torch.arange(0, 2, 0.01).unsqueeze(dim=1)\ny_new = 2 * X_new - 1\n"
    "X_new_train, y_new_train, X_new_test, y_new_test = split_data(X_new, y_new, train_fraction=0.8)",
    answers=("X_new_train", "y_new_train", "X_new_test", "y_new_test"),
)
