"""A student's next step: the public API on other tabular data sets, checked against a bare hand-written loop.

Three of scikit-learn's bundled data sets (no download), one per kind of problem:
wine (3 classes, rows sorted by class), breast_cancer (two classes, one logit with BCE) and
diabetes (regression). Each is trained, evaluated, saved, loaded and used to predict with
``workflow_utils``, then trained again with a plain loop on the same split, same seed, same
batches; the figures must agree (accuracy within 1 point, regression error within 5 %) and the
printed lines must name the right metric.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from workflow_utils.checkpoint import load_model, save_model
from workflow_utils.data import make_loader, split_data
from workflow_utils.engine import evaluate, fit
from workflow_utils.evaluation import predict

EPOCHS = 30


def _load(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    return torch.tensor(bunch.data, dtype=torch.float32), torch.tensor(bunch.target)


def _standardize(X_train: torch.Tensor, X_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = X_train.mean(dim=0), X_train.std(dim=0)  # training statistics only: no leakage
    return (X_train - mean) / std, (X_test - mean) / std


def _model(n_features: int, n_outputs: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, n_outputs))


# name, targets as the loss wants them, outputs, loss, metric, how to score predictions by hand
PROBLEMS = {
    "wine": (
        lambda y: y.long(),
        3,
        nn.CrossEntropyLoss,
        "accuracy",
        lambda out, y: (out.argmax(1) == y).float().mean(),
    ),
    "breast_cancer": (
        lambda y: y.float().unsqueeze(1),
        1,
        nn.BCEWithLogitsLoss,
        "binary_accuracy",
        lambda out, y: ((out > 0).float() == y).float().mean(),
    ),
    "diabetes": (
        lambda y: (y.float().unsqueeze(1) - 150) / 80,
        1,
        nn.MSELoss,
        "mae",
        lambda out, y: (out - y).abs().mean(),
    ),
}


def _bare_loop(model, loader, loss_fn, optimizer, epochs: int) -> None:
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)  # the same batches fit sees
        model.train()
        for X, y in loader:
            loss = loss_fn(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_the_public_api_on_own_data_matches_a_bare_loop(name, tmp_path, capsys):
    to_target, n_out, make_loss, metric, score = PROBLEMS[name]
    X, y = _load(name)
    stratify = name != "diabetes"
    X_train, y_train, X_test, y_test = split_data(X, to_target(y), 0.8, shuffle=True, stratify=stratify, seed=42)
    X_train, X_test = _standardize(X_train, X_test)
    if name == "wine":  # sorted by class: a plain in-order split would test on one class only
        assert y_test.unique().numel() == 3

    # with the package
    model = _model(X.shape[1], n_out)
    train_loader = make_loader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = fit(
        model, train_loader, make_loss(), optimizer, EPOCHS, val_data=(X_test, y_test), metric=metric, print_every=10
    )
    printed = capsys.readouterr().out
    assert history.metric_name == metric and f"train {metric} " in printed and f"val {metric} " in printed
    if metric == "mae":
        assert "accuracy" not in printed  # a regression error is never called accuracy
    test_figure = evaluate(model, (X_test, y_test), make_loss(), metric)["metric"]

    save_model(model, tmp_path / f"{name}.pth")
    reloaded = load_model(_model(X.shape[1], n_out), tmp_path / f"{name}.pth")
    logits, _ = predict(reloaded, X_test)
    assert score(logits, y_test).item() == pytest.approx(test_figure, abs=1e-6)  # what evaluate reported

    # the same training written by hand
    bare = _model(X.shape[1], n_out)
    bare_loader = make_loader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True, seed=1)
    _bare_loop(bare, bare_loader, make_loss(), torch.optim.Adam(bare.parameters(), lr=0.01), EPOCHS)
    bare.eval()
    with torch.inference_mode():
        bare_figure = score(bare(X_test), y_test).item()

    if metric == "mae":
        assert test_figure == pytest.approx(bare_figure, rel=0.05)
        assert test_figure < (y_test - y_train.mean()).abs().mean().item()  # better than predicting the mean
    else:
        assert abs(test_figure - bare_figure) <= 0.01
        assert test_figure >= 0.9
