"""Exercises for 01_data."""

from __future__ import annotations

from typing import Any

import torch

from workflow_utils.exercises import Exercise


def _line(X: Any, y: Any) -> str | None:
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        return "X and y should both be tensors."
    if X.shape != (100, 1) or y.shape != (100, 1):
        return f"X and y should both have shape (100, 1), got {tuple(X.shape)} and {tuple(y.shape)}."
    expected_X = torch.arange(0, 1, 0.01).unsqueeze(1)
    if not torch.allclose(X, expected_X, atol=1e-6):
        return "X should run from 0 to 0.99 in steps of 0.01."
    if not torch.allclose(y, -1.5 * X + 2.0, atol=1e-6):
        return "y does not equal -1.5 * X + 2.0."
    return None


def _split(X_train: Any, X_test: Any) -> str | None:
    if len(X_train) + len(X_test) != 100:
        return f"the two splits should hold all 100 points, got {len(X_train)} + {len(X_test)}."
    if (len(X_train), len(X_test)) != (70, 30):
        return f"expected 70 training and 30 test points, got {len(X_train)} and {len(X_test)}."
    if not torch.allclose(X_train, torch.arange(0, 1, 0.01).unsqueeze(1)[:70], atol=1e-6):
        return "the training split should be the first 70 points, in order."
    return None


def _stats(mean: Any, std: Any) -> str | None:
    from workflow_utils.exercises._digits import digits_splits

    splits = digits_splits()
    train, _ = splits["train"]
    if abs(float(mean) - train.mean().item()) < 5e-5 and abs(float(std) - train.std().item()) < 5e-5:
        return None
    everything = torch.cat([images for images, _ in splits.values()])
    if abs(float(mean) - everything.mean().item()) < 5e-5:
        return "that is the mean over all three splits: leakage. Use the training split only."
    return "expected the mean and std of the training pixels on the 0..1 scale."


def _val_loader(loader: Any) -> str | None:
    from workflow_utils.exercises._digits import digits_splits

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


q1 = Exercise(
    "ex01.q1",
    _line,
    "make_line_data(weight=..., bias=..., step=...) returns X and y with one row per point.",
    "X, y = make_line_data(weight=-1.5, bias=2.0, step=0.01)",
)
q2 = Exercise(
    "ex01.q2",
    _split,
    "split_data(X, y, train_fraction=...) keeps the order; 70 % of 100 points is 70.",
    "X_train, y_train, X_test, y_test = split_data(X, y, train_fraction=0.7)",
)
q3 = Exercise(
    "ex01.q3",
    _stats,
    "read_image_folder('data/digits', 'train') gives pixels in 0..1; take .mean() and .std() of those only.",
    "images, _ = read_image_folder('data/digits', 'train')\nmean, std = images.mean().item(), images.std().item()",
)
q4 = Exercise(
    "ex01.q4",
    _val_loader,
    "make_loader(dataset, batch_size=..., shuffle=...) — which splits should shuffle?",
    "val_loader = make_loader(load_digits_data('data/digits').val.dataset, batch_size=32, shuffle=False)",
)
