"""Step 5, evaluation: predictions and metrics on data the model never trained on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from workflow_utils import _validate as check


def accuracy(y_pred: torch.Tensor, y_true: torch.Tensor) -> float:
    """Fraction (0 to 1) of predicted class labels equal to the true labels.

    ``y_pred`` and ``y_true`` are 1-D tensors of class labels of one shape ``(N,)``, N >= 1 (integers, or floats
    holding whole numbers). Logits or probabilities are refused with the conversion to use: ``logits.argmax(dim=1)``
    for two or more columns, ``(logits > 0).long().squeeze(1)`` for one logit per row. Raises ``TypeError`` for
    non-tensors, ``ValueError`` for shapes, fractions or devices that differ.
    Written by hand in 05_evaluation, "Accuracy, by hand once".
    """
    check.tensor("y_pred", y_pred)
    check.tensor("y_true", y_true)
    if y_pred.ndim == 0 or y_true.ndim == 0:
        raise ValueError(
            f"accuracy takes 1-D tensors of labels, got shapes {tuple(y_pred.shape)} and {tuple(y_true.shape)}; "
            "for a single prediction pass y_pred.reshape(1) and y_true.reshape(1)."
        )
    if y_pred.shape != y_true.shape:
        raise ValueError(
            f"y_pred has shape {tuple(y_pred.shape)} but y_true has {tuple(y_true.shape)}; "
            f"pass class labels for both ({_to_labels_hint(y_pred, y_true)})."
        )
    if len(y_true) == 0:
        raise ValueError("no labels to score; pass at least one prediction.")
    for name, t in (("y_pred", y_pred), ("y_true", y_true)):
        if t.is_floating_point() and not bool((t == t.round()).all()):
            raise ValueError(
                f"{name} holds fractions (e.g. {_first_fraction(t):.4g}), not class labels; for probabilities use "
                "probs.argmax(dim=1), or (probs > 0.5).long() for one probability per row."
            )
    check.same_device("y_pred", y_pred, "y_true", y_true)
    return (y_pred == y_true).sum().item() / len(y_true)


def _to_labels_hint(y_pred: torch.Tensor, y_true: torch.Tensor) -> str:
    """How to turn ``y_pred`` into labels shaped like ``y_true``: argmax only when there are classes to choose from."""
    if y_pred.ndim == 2 and y_pred.shape[1] == 1:
        return "one logit per row is a binary prediction: use (logits > 0).long().squeeze(1)"
    if y_pred.ndim == 2 and y_pred.shape[1] >= 2 and y_pred.shape[0] == y_true.shape[0]:
        return "use logits.argmax(dim=1) for predictions"
    return "both of shape (N,), one label per sample"


def _first_fraction(t: torch.Tensor) -> float:
    return t[t != t.round()].reshape(-1)[0].item()


@contextlib.contextmanager
def kept_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the ``with`` block the model may switch between train and eval mode; afterwards every
    submodule is back in the mode it was in, even after an error.

    ``predict``, ``evaluate`` and ``fit`` use it, so a loop that validates every few batches keeps
    training in train mode (05_evaluation, "The evaluation recipe").
    """
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def to_eval_mode(model: nn.Module) -> None:
    """``model.eval()``. A module reloaded with ``torch.export.load(...).module()`` refuses to switch: its
    graph keeps the mode it was exported in, so one exported in train mode (dropout on, batch norm updating)
    is refused with the fix (06_save_and_load, "Export: a model file that needs no Python class", exports
    in eval mode)."""
    try:
        model.eval()
    except NotImplementedError:
        if _exported_in_train_mode(model):
            raise ValueError(
                "this model was exported in train mode (its graph keeps dropout on and batch norm updating), so "
                "its predictions would be random; export it again after model.eval()."
            ) from None


def _exported_in_train_mode(model: nn.Module) -> bool:
    """Whether an exported graph runs dropout or batch norm as in training (their ``train`` argument set)."""
    for node in getattr(getattr(model, "graph", None), "nodes", ()):
        target = str(node.target)
        if target == "aten.dropout.default" and len(node.args) > 2 and node.args[2] is True:
            return True
        if target == "aten.batch_norm.default" and len(node.args) > 5 and node.args[5] is True:
            return True
    return False


def predict(model: nn.Module, data: torch.Tensor | Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and true labels for ``data`` (a loader of ``(X, y)`` batches, or a tensor of inputs), on the CPU.

    Runs in eval mode under ``torch.inference_mode()``, then puts the model back in the mode it was in
    (``kept_modes``). ``data`` may also be one ``(X, y)`` pair of tensors, as ``fit`` takes, or a loader of
    inputs without labels; for inputs without labels the returned labels are empty. A numpy array or a list
    of rows is refused (convert it with ``torch.as_tensor``). Written by hand in 05_evaluation, "The
    evaluation recipe".
    """
    check.module("model", model)
    device = check.model_device(model, default=None)
    if check.array_like(data):
        raise TypeError(
            f"data must be a tensor of inputs or an iterable of (X, y) batches, got {check.describe(data)}; "
            "convert it with torch.as_tensor(data, dtype=torch.float32)."
        )
    if not isinstance(data, (torch.Tensor, Iterable)) or isinstance(data, (str, bytes, dict)):
        raise TypeError(
            f"data must be a tensor of inputs or an iterable of (X, y) batches such as a DataLoader, "
            f"got {type(data).__name__}; pass digits.test or a tensor of images."
        )
    weights = check.weight_dtype(model)
    logits, labels = [], []
    with kept_modes(model), torch.inference_mode():
        to_eval_mode(model)
        if isinstance(data, torch.Tensor):
            if data.ndim == 0:
                raise ValueError("data is a single number; pass a batch of inputs, e.g. data.reshape(1, 1).")
            check.input_dtype("data", data, weights, model)
            return check.forward(model, data.to(device)).cpu(), torch.empty(0, dtype=torch.long)
        for X, y in _batches(data):
            check.input_dtype("data", X, weights, model)
            logits.append(check.forward(model, X.to(device)).cpu())
            labels.append(y)
    if not logits:
        raise ValueError("the data yielded no batches; check that the loader is not empty.")
    if any(y is None for y in labels):  # inputs without labels: prediction is exactly that case
        return torch.cat(logits), torch.empty(0, dtype=torch.long)
    return torch.cat(logits), torch.cat([y.cpu() for y in labels])


def _batches(data):
    """``(X, y)`` for each batch of ``data``, ``y`` None for a batch of inputs alone; a pair of tensors
    ``(X, y)`` (a tuple or a list, as ``fit`` and ``evaluate`` take) is one batch. Batches with labels mixed
    with batches without are refused: the labels would no longer line up with the predictions."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        if data[0].ndim > 0 and data[1].ndim > 0 and len(data[0]) == len(data[1]):
            data = [tuple(data)]
    labelled = None
    for batch in data:
        if isinstance(batch, torch.Tensor):
            pair = batch, None  # a DataLoader over a tensor of inputs
        elif isinstance(batch, (tuple, list)) and len(batch) == 1 and isinstance(batch[0], torch.Tensor):
            pair = batch[0], None  # TensorDataset(X) yields (X,)
        else:
            pair = check.batch_pair(batch)
        if labelled is not None and labelled != (pair[1] is not None):
            raise ValueError(
                "data mixes batches with labels and batches without, so the labels would not line up with the "
                "predictions; give every batch its labels, or none."
            )
        labelled = pair[1] is not None
        yield pair


def confusion_matrix(y_pred: torch.Tensor, y_true: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts with rows = true class, columns = predicted class.

    Written by hand in 05_evaluation, "Where are the mistakes? The confusion matrix".
    """
    check.positive_int("num_classes", num_classes, 10)
    check.tensor("y_pred", y_pred)
    check.tensor("y_true", y_true)
    if y_pred.shape != y_true.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_pred and y_true must be 1-D label tensors of one shape, got {tuple(y_pred.shape)} and "
            f"{tuple(y_true.shape)}; use logits.argmax(dim=1) for predictions."
        )
    for name, t in (("y_pred", y_pred), ("y_true", y_true)):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(
                f"{name} must hold integer class labels, got {t.dtype}; use logits.argmax(dim=1) or {name}.long()."
            )
    check.same_device("y_pred", y_pred, "y_true", y_true)
    if len(y_true) and int(y_pred.min()) < 0:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}; check num_classes.")
    if len(y_true) and (int(y_true.max()) >= num_classes or int(y_pred.max()) >= num_classes or int(y_true.min()) < 0):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}; check num_classes.")
    flat = y_true.long() * num_classes + y_pred.long()
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)
