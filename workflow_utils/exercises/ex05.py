"""Exercises for 05_evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise
from workflow_utils.exercises._line import line_split, new_line_run, train_reference_line


def _line_errors(epochs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Test and training errors (prediction - truth) of the seed-42 L1/SGD line after ``epochs``."""
    model = train_reference_line(*new_line_run(), epochs)
    X_train, y_train, X_test, y_test = line_split()
    with torch.inference_mode():
        return model(X_test) - y_test, model(X_train) - y_train


def _mae_300(mae: Any) -> str | None:
    if isinstance(mae, torch.Tensor):
        return "pass a Python float: call .item() on the tensor."
    if not isinstance(mae, (int, float)):
        return f"pass the MAE as a float, got {type(mae).__name__}."
    test_errors, train_errors = _line_errors(300)
    if abs(mae - test_errors.abs().mean().item()) < 1e-4:
        return None
    if abs(mae - (test_errors**2).mean().item()) < 1e-4:
        return "that is the MSE (squared errors); the MAE averages the absolute errors."
    if abs(mae - train_errors.abs().mean().item()) < 1e-4:
        return "that is measured on the training split; evaluate on X_test and y_test."
    if abs(mae - _line_errors(100)[0].abs().mean().item()) < 1e-4:
        return "that is the MAE after 100 epochs; train a fresh seed-42 model for 300."
    return f"got {mae:.4f}; train a fresh seed-42 model for 300 epochs, then average |prediction - truth| on the test split."


_MATRICES = (  # rows = true class, columns = predicted class; asymmetric so a swap shows
    (torch.tensor([[5, 1, 0], [2, 7, 1], [0, 3, 9]]), 1),
    (torch.tensor([[8, 0, 2], [1, 6, 0], [4, 1, 5]]), 2),
    (torch.tensor([[3, 2], [0, 4]]), 0),
)


def _precision_recall(fn: Any) -> str | None:
    if not callable(fn):
        return "pass your function itself (no parentheses)."
    for matrix, k in _MATRICES:
        got = fn(matrix.clone(), k)
        if not isinstance(got, tuple) or len(got) != 2:
            return f"return a pair (precision, recall), got {got!r}."
        precision, recall = (float(v) for v in got)
        hits = matrix[k, k].item()
        right = (hits / matrix[:, k].sum().item(), hits / matrix[k].sum().item())
        if abs(precision - right[0]) < 1e-6 and abs(recall - right[1]) < 1e-6:
            continue
        if abs(precision - right[1]) < 1e-6 and abs(recall - right[0]) < 1e-6:
            return (
                "precision and recall are swapped: rows are the true class, so recall divides by the row "
                "sum (all real k's) and precision by the column sum (everything predicted as k)."
            )
        if max(precision, recall) > 1:
            return "a precision or recall above 1: divide the diagonal count by a row or column sum."
        return f"for class {k} of {matrix.tolist()} expected ({right[0]:.4f}, {right[1]:.4f}), got ({precision:.4f}, {recall:.4f})."
    return None


def _dropout_model() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))


def _evaluate_fn(evaluate_accuracy: Any) -> str | None:
    from workflow_utils.evaluation import accuracy, predict

    if not callable(evaluate_accuracy):
        return "pass your function itself (no parentheses)."
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(100, 1, 8, 8, generator=g), torch.randint(0, 10, (100,), generator=g)
    batches = [(X[i : i + 32], y[i : i + 32]) for i in range(0, 100, 32)]  # last batch holds 4
    model = _dropout_model()
    logits, labels = predict(_dropout_model(), batches)  # the package's eval-mode pass, as a reference
    expected = accuracy(logits.argmax(dim=1), labels)
    grad_seen: list[bool] = []
    model.register_forward_hook(lambda *_: grad_seen.append(torch.is_grad_enabled()))
    model.train()  # as it would be right after training
    got = evaluate_accuracy(model, batches, torch.device("cpu"))
    if isinstance(got, torch.Tensor):
        return "return a Python float: call .item() on the count."
    if not isinstance(got, (int, float)):
        return f"return the accuracy as a float, got {type(got).__name__}."
    if not grad_seen:
        return "the model was never called: loop over the (X, y) batches of the loader."
    if model.training:
        return "the model is still in training mode, so dropout was active: call model.eval() first."
    if any(grad_seen):
        return "gradients were being tracked: run the loop inside `with torch.inference_mode():`."
    if got > 1:
        return f"got {got}, a count: divide by the number of samples (here 100)."
    if abs(got - expected) > 1e-9:
        return f"expected {expected:.4f}, got {got:.4f}; count argmax(dim=1) == y over all batches, then divide by 100."
    return None


def _confusion_fn(confusion: Any) -> str | None:
    from workflow_utils.evaluation import confusion_matrix, predict

    if not callable(confusion):
        return "pass your function itself (no parentheses)."
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(100, 1, 8, 8, generator=g), torch.randint(0, 10, (100,), generator=g)
    batches = [(X[i : i + 32], y[i : i + 32]) for i in range(0, 100, 32)]
    logits, labels = predict(_dropout_model(), batches)
    expected = confusion_matrix(logits.argmax(dim=1), labels, num_classes=10)
    model = _dropout_model()
    grad_seen: list[bool] = []
    model.register_forward_hook(lambda *_: grad_seen.append(torch.is_grad_enabled()))
    model.train()  # as it would be right after training
    with torch.random.fork_rng():  # dropout left on would draw from the caller's random state
        got = confusion(model, batches, 10, torch.device("cpu"))
    if not isinstance(got, torch.Tensor) or got.shape != (10, 10):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return f"return a (10, 10) tensor of counts, got {shape}."
    if model.training:
        return "the model is still in training mode, so dropout was active: call model.eval() first."
    if any(grad_seen):
        return "gradients were being tracked: run the loop inside `with torch.inference_mode():`."
    if got.sum().item() != 100:
        return f"the counts add up to {got.sum().item()}, not the 100 samples: count every sample of every batch once."
    if torch.equal(got.long(), expected.T):
        return "rows and columns are swapped: row = the true class, column = the predicted class."
    if not torch.equal(got.long(), expected):
        return "some counts differ: for each sample add 1 at [true class, predicted class], the prediction being argmax(dim=1)."
    return None


q1 = Exercise(
    "ex05.q1",
    _mae_300,
    "fit a fresh seed-42 LinearRegressionModel for 300 epochs, predict X_test in inference mode, then "
    "(y_pred - y_test).abs().mean().item().",
    "X_train, y_train, X_test, y_test = split_data(*make_line_data(weight=0.7, bias=0.3))  # part 2 reused X_test\n"
    "torch.manual_seed(42)\nmodel_300 = LinearRegressionModel()\n"
    "fit(model_300, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model_300.parameters(), lr=0.01), epochs=300)\n"
    "model_300.eval()\nwith torch.inference_mode():\n    mae_300 = (model_300(X_test) - y_test).abs().mean().item()",
)
q2 = Exercise(
    "ex05.q2",
    _precision_recall,
    "matrix[k, k] counts the hits; matrix[k] is row k (every real k), matrix[:, k] is column k (every "
    "image predicted as k).",
    "def precision_recall(matrix, k):\n    hits = matrix[k, k].item()\n"
    "    return hits / matrix[:, k].sum().item(), hits / matrix[k].sum().item()",
)
q3 = Exercise(
    "ex05.q3",
    _evaluate_fn,
    "model.eval(), then `with torch.inference_mode():` loop over the batches, move X and y to the device, "
    "add up (model(X).argmax(dim=1) == y).sum().item() and count the samples.",
    "def evaluate_accuracy(model, loader, device):\n    model.eval()\n    correct, total = 0, 0\n"
    "    with torch.inference_mode():\n        for X, y in loader:\n            X, y = X.to(device), y.to(device)\n"
    "            correct += (model(X).argmax(dim=1) == y).sum().item()\n            total += len(y)\n"
    "    return correct / total",
)
q4 = Exercise(
    "ex05.q4",
    _confusion_fn,
    "the evaluation recipe from exercise 3; start from torch.zeros(num_classes, num_classes, dtype=torch.long) and "
    "add 1 at [true, predicted] for every sample.",
    "def confusion(model, loader, num_classes, device):\n    model.eval()\n"
    "    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)\n    with torch.inference_mode():\n"
    "        for X, y in loader:\n            preds = model(X.to(device)).argmax(dim=1).cpu()\n"
    "            for true, pred in zip(y.tolist(), preds.tolist()):\n                matrix[true, pred] += 1\n"
    "    return matrix",
)
