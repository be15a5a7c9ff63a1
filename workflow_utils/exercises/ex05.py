"""Exercises for 05_evaluation."""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise
from workflow_utils.exercises._line import line_split, new_line_run


def _line_run(epochs: int, fit_points: int = 30) -> dict[str, float]:
    """MAEs of the seed-42 L1/SGD line trained on the first ``fit_points`` training points."""
    from workflow_utils.engine import fit

    X_train, y_train, X_test, y_test = line_split()
    model, optimizer = new_line_run()
    fit(model, (X_train[:fit_points], y_train[:fit_points]), nn.L1Loss(), optimizer, epochs)
    with torch.inference_mode():
        test_errors = model(X_test) - y_test
        return {
            "fit": (model(X_train[:fit_points]) - y_train[:fit_points]).abs().mean().item(),
            "val": (model(X_train[30:]) - y_train[30:]).abs().mean().item(),
            "test": test_errors.abs().mean().item(),
            "test_mse": (test_errors**2).mean().item(),
        }


def _choose_then_test(chosen_epochs: Any, test_mae: Any = None) -> str | None:
    if isinstance(chosen_epochs, bool) or not isinstance(chosen_epochs, numbers.Integral):  # NumPy ints too
        return f"pass the number of epochs you chose (100 or 300) first, got {type(chosen_epochs).__name__}."
    if chosen_epochs not in (100, 300):
        return f"choose between the two runs, 100 or 300 epochs, got {chosen_epochs}."
    if isinstance(test_mae, torch.Tensor):
        return "pass the test MAE as a Python float: call .item() on the tensor."
    if isinstance(test_mae, bool) or not isinstance(test_mae, numbers.Real):  # NumPy floats too
        return f"pass the chosen model's test MAE as a float second, got {type(test_mae).__name__}."
    runs = {epochs: _line_run(epochs) for epochs in (100, 300)}
    best = min(runs, key=lambda epochs: runs[epochs]["val"])
    if chosen_epochs != best:
        return (
            f"the validation MAEs are {runs[100]['val']:.4f} (100 epochs) and {runs[300]['val']:.4f} (300 "
            f"epochs): choose the run with the lower one."
        )
    chosen = runs[chosen_epochs]
    if abs(test_mae - chosen["test"]) < 1e-4:
        return None
    if abs(test_mae - chosen["val"]) < 1e-4:
        return "that is the validation MAE, used to choose; now score the chosen model once on X_test, y_test."
    if abs(test_mae - chosen["test_mse"]) < 1e-4:
        return "that is the MSE (squared errors); the MAE averages the absolute errors."
    if abs(test_mae - chosen["fit"]) < 1e-4:
        return "that is measured on the 30 training points; evaluate on X_test and y_test."
    if abs(test_mae - _line_run(chosen_epochs, fit_points=40)["test"]) < 1e-4:
        return "that model also trained on the 10 validation points: train on X_train[:30] only."
    if abs(test_mae - runs[100 if chosen_epochs == 300 else 300]["test"]) < 1e-4:
        return "that is the test MAE of the other run; score the model you chose."
    return (
        f"got {test_mae:.4f}; train a fresh seed-42 model on X_train[:30] for {chosen_epochs} epochs, then "
        "average |prediction - truth| on the test split."
    )


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
        if not isinstance(got, (tuple, list)) or len(got) != 2:  # a list of two is a pair too
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


def _loader(seed: int):
    """100 random 8x8 images in a real DataLoader of batches of 32 (the last holds 4), not shuffled.

    A DataLoader, not a list of batches, so an answer may use len(loader.dataset) as 04 does.
    """
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(100, 1, 8, 8, generator=g), torch.randint(0, 10, (100,), generator=g)
    return DataLoader(TensorDataset(X, y), batch_size=32)


def _evaluate_fn(evaluate_accuracy: Any) -> str | None:
    from workflow_utils.evaluation import accuracy, predict

    if not callable(evaluate_accuracy):
        return "pass your function itself (no parentheses)."
    batches = _loader(0)
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
    batches = _loader(1)
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
    _choose_then_test,
    "train two fresh seed-42 models on X_train[:30], compare their MAE on X_train[30:] (validation), and "
    "compute the test MAE of the better one only: (y_pred - y_test).abs().mean().item().",
    "X_train, y_train, X_test, y_test = split_data(*make_line_data(weight=0.7, bias=0.3))  # part 2 reused X_test\n"
    "X_fit, y_fit, X_val, y_val = X_train[:30], y_train[:30], X_train[30:], y_train[30:]\n"
    "models, val_mae = {}, {}\n"
    "for epochs in (100, 300):\n"
    "    torch.manual_seed(42)\n"
    "    models[epochs] = LinearRegressionModel()\n"
    "    fit(models[epochs], (X_fit, y_fit), nn.L1Loss(), torch.optim.SGD(models[epochs].parameters(), lr=0.01),\n"
    "        epochs=epochs)\n"
    "    models[epochs].eval()\n"
    "    with torch.inference_mode():\n"
    "        val_mae[epochs] = (models[epochs](X_val) - y_val).abs().mean().item()\n"
    "chosen_epochs = min(val_mae, key=val_mae.get)  # chosen on validation\n"
    "with torch.inference_mode():  # the test split, once\n"
    "    test_mae = (models[chosen_epochs](X_test) - y_test).abs().mean().item()",
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
