"""Exercises for 05_evaluation."""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise
from workflow_utils.exercises._line import line_split, new_line_run

RATES = (0.02, 0.05)  # the two candidate learning rates of exercise 1
EPOCHS = 300  # each trained this long, L1 loss and SGD, from a seed-42 line model
_EITHER = " or ".join(str(lr) for lr in RATES)  # "0.02 or 0.05"


def _fit_and_validation() -> tuple[torch.Tensor, ...]:
    """X_fit, y_fit, X_val, y_val: 10 of the 40 training points held out at random (split_data's seed 42)."""
    from workflow_utils.data import split_data

    X_train, y_train, _, _ = line_split()
    return split_data(X_train, y_train, train_fraction=0.75, shuffle=True)


def _line_run(lr: float, fit_on: str = "random 30") -> dict[str, float]:
    """MAEs of the seed-42 L1/SGD line trained ``EPOCHS`` epochs at ``lr`` (on the 30 fitting points by default)."""
    from workflow_utils.engine import fit

    X_train, y_train, X_test, y_test = line_split()
    X_fit, y_fit, X_val, y_val = _fit_and_validation()
    data = {"random 30": (X_fit, y_fit), "all 40": (X_train, y_train), "first 30": (X_train[:30], y_train[:30])}
    model, _ = new_line_run()
    fit(model, data[fit_on], nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=lr), EPOCHS)
    with torch.inference_mode():
        test_errors = model(X_test) - y_test
        return {
            "fit": (model(X_fit) - y_fit).abs().mean().item(),
            "val": (model(X_val) - y_val).abs().mean().item(),
            "test": test_errors.abs().mean().item(),
            "test_mse": (test_errors**2).mean().item(),
        }


def _candidate_runs() -> dict[float, dict[str, float]]:
    """Each candidate rate's MAEs: validation chooses 0.02, the test split would choose 0.05 (tested)."""
    return {lr: _line_run(lr) for lr in RATES}


def _choose_then_test(chosen_lr: Any, test_mae: Any = None) -> str | None:
    if isinstance(chosen_lr, bool) or not isinstance(chosen_lr, numbers.Real):  # NumPy numbers too
        return f"pass the learning rate you chose ({_EITHER}) first, got {type(chosen_lr).__name__}."
    chosen = next((lr for lr in RATES if abs(chosen_lr - lr) < 1e-6), None)  # a float32 0.02 is 0.02 too
    if chosen is None:
        return f"choose between the two learning rates, {_EITHER}, got {chosen_lr}."
    if isinstance(test_mae, torch.Tensor):
        return "pass the test MAE as a Python float: call .item() on the tensor."
    if isinstance(test_mae, bool) or not isinstance(test_mae, numbers.Real):  # NumPy floats too
        return f"pass the chosen model's test MAE as a float second, got {type(test_mae).__name__}."
    runs = _candidate_runs()
    by_val = min(runs, key=lambda lr: runs[lr]["val"])
    val_maes = " and ".join(f"{runs[lr]['val']:.4f} (lr {lr})" for lr in RATES)
    if chosen != by_val:
        if chosen == min(runs, key=lambda lr: runs[lr]["test"]):
            return (
                f"lr {chosen} has the higher validation MAE ({val_maes}); if you compared test MAEs, you chose "
                "by the test split, which only scores the model already chosen. Choose on validation."
            )
        return f"the validation MAEs are {val_maes}: choose the rate with the lower one."
    run = runs[chosen]
    if abs(test_mae - run["test"]) < 1e-4:
        return None
    if abs(test_mae - run["val"]) < 1e-4:
        return "that is the validation MAE, used to choose; now score the chosen model once on X_test, y_test."
    if abs(test_mae - run["test_mse"]) < 1e-4:
        return "that is the MSE (squared errors); the MAE averages the absolute errors."
    if abs(test_mae - run["fit"]) < 1e-4:
        return "that is measured on the 30 fitting points; evaluate on X_test and y_test."
    if abs(test_mae - _line_run(chosen, fit_on="all 40")["test"]) < 1e-4:
        return "that model also trained on the 10 validation points: train on X_fit, the other 30, only."
    if abs(test_mae - _line_run(chosen, fit_on="first 30")["test"]) < 1e-4:
        return (
            "that model trained on X_train[:30]: hold out 10 random points with "
            "split_data(X_train, y_train, train_fraction=0.75, shuffle=True) and train on the other 30."
        )
    other = next(lr for lr in RATES if lr != chosen)
    if abs(test_mae - runs[other]["test"]) < 1e-4:
        return "that is the test MAE of the other run; score the model you chose."
    return (
        f"got {test_mae:.4f}; train a fresh seed-42 model on X_fit for {EPOCHS} epochs at lr {chosen}, then "
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


_DROPOUT_ON = "the model predicted in training mode, so dropout was active: call model.eval() before the loop."


def _watch_predictions(model: nn.Module) -> tuple[list[bool], list[bool]]:
    """Lists filled while the answer runs: per forward pass, whether gradients were tracked; per dropout call,
    whether it was in training mode. Judged while predicting, so an answer may restore the caller's mode after.

    Hooks on the modules themselves, so an answer that evaluates ``copy.deepcopy(model)`` is watched too.
    """
    grad_seen: list[bool] = []
    dropout_on: list[bool] = []
    model.register_forward_hook(lambda *_: grad_seen.append(torch.is_grad_enabled()))
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.register_forward_hook(lambda module, *_: dropout_on.append(module.training))
    return grad_seen, dropout_on


def _evaluate_fn(evaluate_accuracy: Any) -> str | None:
    from workflow_utils.evaluation import accuracy, predict

    if not callable(evaluate_accuracy):
        return "pass your function itself (no parentheses)."
    batches = _loader(0)
    model = _dropout_model()
    logits, labels = predict(_dropout_model(), batches)  # the package's eval-mode pass, as a reference
    expected = accuracy(logits.argmax(dim=1), labels)
    grad_seen, dropout_on = _watch_predictions(model)
    model.train()  # as it would be right after training
    got = evaluate_accuracy(model, batches, torch.device("cpu"))
    if isinstance(got, torch.Tensor):
        return "return a Python float: call .item() on the count."
    if not isinstance(got, (int, float)):
        return f"return the accuracy as a float, got {type(got).__name__}."
    if not grad_seen:
        return "the model was never called: loop over the (X, y) batches of the loader."
    if any(dropout_on):
        return _DROPOUT_ON
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
    grad_seen, dropout_on = _watch_predictions(model)
    model.train()  # as it would be right after training
    with torch.random.fork_rng():  # dropout left on would draw from the caller's random state
        got = confusion(model, batches, 10, torch.device("cpu"))
    if not isinstance(got, torch.Tensor) or got.shape != (10, 10):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return f"return a (10, 10) tensor of counts, got {shape}."
    if any(dropout_on):
        return _DROPOUT_ON
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
    "hold out 10 random training points with split_data(X_train, y_train, train_fraction=0.75, shuffle=True); "
    "train one fresh seed-42 model per rate on the other 30, compare their MAE on the held-out 10 (validation), "
    "and compute the test MAE of the better one only: (y_pred - y_test).abs().mean().item().",
    "X_fit, y_fit, X_val, y_val = split_data(X_train, y_train, train_fraction=0.75, shuffle=True)\n"
    "models, val_mae = {}, {}\n"
    "for lr in (0.02, 0.05):\n"
    "    torch.manual_seed(42)\n"
    "    models[lr] = LinearRegressionModel()\n"
    "    optimizer = torch.optim.SGD(models[lr].parameters(), lr=lr)\n"
    "    fit(models[lr], (X_fit, y_fit), nn.L1Loss(), optimizer, epochs=300)\n"
    "    models[lr].eval()\n"
    "    with torch.inference_mode():\n"
    "        val_mae[lr] = (models[lr](X_val) - y_val).abs().mean().item()\n"
    "chosen_lr = min(val_mae, key=val_mae.get)  # chosen on validation\n"
    "with torch.inference_mode():  # the test split, once\n"
    "    test_mae = (models[chosen_lr](X_test) - y_test).abs().mean().item()",
    answers=("chosen_lr", "test_mae"),
)
q2 = Exercise(
    "ex05.q2",
    _precision_recall,
    "matrix[k, k] counts the hits; matrix[k] is row k (every real k), matrix[:, k] is column k (every "
    "image predicted as k).",
    "def precision_recall(matrix, k):\n    hits = matrix[k, k].item()\n"
    "    return hits / matrix[:, k].sum().item(), hits / matrix[k].sum().item()",
    answers=("precision_recall",),
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
    answers=("evaluate_accuracy",),
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
    answers=("confusion",),
)
