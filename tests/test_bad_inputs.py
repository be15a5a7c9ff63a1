"""Bad input gets one clear error: each case names the exception type and a regex its message must match.

Every message must also be a single line (it is what a learner reads first in a traceback).
The 'meta' device stands in for a second device: it has tensors with shapes but no values, so
nothing can be computed on it, exactly like a GPU the data never reached.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workflow_utils.checkpoint import load_checkpoint, load_model, save_checkpoint, save_model
from workflow_utils.data import (
    ShuffledBatches,
    TensorImageDataset,
    make_line_data,
    make_loader,
    read_image_folder,
    split_data,
    write_digits_image_folder,
)
from workflow_utils.device import get_device, set_seed
from workflow_utils.engine import History, digits_recipe, evaluate, fit, train_step
from workflow_utils.evaluation import accuracy, confusion_matrix, predict
from workflow_utils.models import DigitsCNN, DigitsMLP, LinearRegressionModel, count_parameters, layer_table
from workflow_utils.plotting import plot_confusion_matrix, plot_image_grid, plot_loss_curves, plot_predictions

# --- small builders, called inside each case so every case starts from fresh objects -------------


def images(n=4, shape=(1, 8, 8), dtype=torch.float32):
    return torch.rand(n, *shape).to(dtype)


def labels(n=4):
    return torch.arange(n) % 10


def line():
    return LinearRegressionModel()


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.01)


def line_data():
    return make_line_data()


def classifier(num_classes=3):
    return nn.Linear(4, num_classes)


def fit_classifier(y, num_classes=3, **kwargs):
    model = classifier(num_classes)
    return fit(model, (torch.randn(len(y), 4), y), nn.CrossEntropyLoss(), sgd(model), 1, **kwargs)


def fit_classifier_on(data):
    model = classifier()
    return fit(model, data, nn.CrossEntropyLoss(), sgd(model), 1)


class DictSamples(torch.utils.data.Dataset):
    """A per-sample Dataset that returns a dict, as many tutorials' datasets do."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"x": torch.zeros(4), "label": i % 3}


def adam_checkpoint(tmp):
    model = line()
    save_checkpoint(tmp / "adam.pth", model, torch.optim.Adam(model.parameters()), epoch=1)
    return tmp / "adam.pth"


def json_file(tmp):
    path = tmp / "model.json"
    path.write_text('{"weights": [0.7]}')
    return path


def fit_recipe(steps_per_epoch, batches, **kwargs):
    model = classifier()
    loss_fn, optimizer, scheduler = digits_recipe(model, 2, steps_per_epoch=steps_per_epoch)
    data = [(torch.randn(2, 4), torch.tensor([0, 1]))] * batches
    return fit(model, data, loss_fn, optimizer, 2, scheduler=scheduler, **kwargs)


def meta_model():
    return nn.Linear(4, 3, device="meta")


def split_model():
    return nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2, device="meta"))  # a layer added after .to(device)


def written(tmp, name="model.pth"):
    path = tmp / name
    save_model(line(), path)
    return path


def a_file(tmp):
    path = tmp / "not_a_folder"
    path.write_text("x")
    return path


# --- the table: (description, callable taking tmp_path, exception type, message regex) ------------

# One row per line, so the table reads as a table.
# fmt: off
CASES = [
    # wrong tensor shapes and dtypes
    ("CNN on (B, 8, 8): no channel", lambda t: DigitsCNN()(torch.rand(4, 8, 8)), ValueError, r"\(B, 1, 8, 8\).*unsqueeze\(1\)"),
    ("CNN on RGB (B, 3, 8, 8)", lambda t: DigitsCNN()(images(shape=(3, 8, 8))), ValueError, r"got \(4, 3, 8, 8\)"),
    ("CNN on one image without batch", lambda t: DigitsCNN()(torch.rand(1, 8, 8)), ValueError, r"unsqueeze\(0\)"),
    ("predict: channel-last uint8 images (N, H, W, C)", lambda t: predict(DigitsCNN(), torch.randint(0, 256, (4, 8, 8, 1), dtype=torch.uint8)), ValueError, r"channel-last.*permute\(0, 3, 1, 2\)\.float\(\) / 255"),
    ("CNN on uint8 pixels", lambda t: DigitsCNN()(images(dtype=torch.uint8)), ValueError, r"got torch\.uint8; convert them with x\.float\(\)"),
    ("CNN on float64 images", lambda t: DigitsCNN()(images(dtype=torch.float64)), ValueError, r"x\.to\(torch\.float32\)"),
    ("MLP on RGB (B, 3, 8, 8)", lambda t: DigitsMLP()(images(shape=(3, 8, 8))), ValueError, r"DigitsMLP expects .*\(B, 1, 8, 8\)"),
    ("CNN with one channel count", lambda t: DigitsCNN(channels=(32,)), ValueError, r"try channels=\(32, 64\)"),
    ("CNN with dropout 1.5", lambda t: DigitsCNN(dropout=1.5), ValueError, r"try dropout=0\.0"),
    ("layer_table with a bad shape", lambda t: layer_table(DigitsCNN(), (1, 8, "8")), ValueError, r"try \(1, 1, 8, 8\)"),
    ("accuracy: logits vs labels", lambda t: accuracy(torch.rand(4, 10), labels()), ValueError, r"argmax\(dim=1\)"),
    ("accuracy: no labels", lambda t: accuracy(torch.tensor([]), torch.tensor([])), ValueError, r"pass at least one prediction"),
    ("accuracy: a list, not a tensor", lambda t: accuracy([1, 2], labels(2)), TypeError, r"torch\.as_tensor\(y_pred\)"),
    ("evaluate: metric 'accuracy' with labels of another batch", lambda t: evaluate(nn.Linear(4, 10), [(torch.rand(4, 4), torch.zeros(4, 1))], lambda p, y: p.mean(), "accuracy"), ValueError, r"logits \(N, classes\) and labels \(N,\)"),
    ("confusion_matrix: float labels", lambda t: confusion_matrix(labels().float(), labels(), 10), ValueError, r"integer class labels.*\.long\(\)"),
    ("confusion_matrix: label 10 of 10 classes", lambda t: confusion_matrix(labels(), torch.tensor([0, 1, 2, 10]), 10), ValueError, r"0\.\.9; check num_classes"),
    ("confusion_matrix: negative prediction", lambda t: confusion_matrix(torch.tensor([0, -1]), torch.tensor([0, 1]), 10), ValueError, r"0\.\.9; check num_classes"),
    ("confusion_matrix: num_classes 0", lambda t: confusion_matrix(labels(), labels(), 0), ValueError, r"try num_classes=10"),
    ("confusion_matrix: shapes differ", lambda t: confusion_matrix(labels(3), labels(4), 10), ValueError, r"argmax\(dim=1\)"),
    ("plot_predictions: train predictions for test points", lambda t: plot_predictions(*split_data(*line_data()), predictions=torch.zeros(40, 1)), ValueError, r"40 predictions for 10 test points; predict on X_test"),
    ("plot_predictions: unpaired training data", lambda t: plot_predictions(torch.zeros(5, 1), torch.zeros(4, 1), torch.zeros(2, 1), torch.zeros(2, 1)), ValueError, r"X_train has 5 points but y_train has 4"),
    ("plot_image_grid: fewer labels than images", lambda t: plot_image_grid(images(4), labels(3)), ValueError, r"3 labels for 4 images"),
    ("plot_image_grid: no channel", lambda t: plot_image_grid(torch.rand(4, 8, 8), labels()), ValueError, r"unsqueeze\(1\)"),
    ("plot_confusion_matrix: not square", lambda t: plot_confusion_matrix(torch.zeros(3, 4)), ValueError, r"square \(K, K\)"),
    ("plot_loss_curves: a dict, not a History", lambda t: plot_loss_curves({"train_loss": [1.0]}), TypeError, r"history = fit\(\.\.\.\)"),
    ("plot_loss_curves: empty History", lambda t: plot_loss_curves(History()), ValueError, r"train for at least one epoch"),
    # classification labels the loss cannot use
    ("fit: float labels for CrossEntropy", lambda t: fit_classifier(torch.tensor([0.0, 1.0, 2.0, 1.0])), ValueError, r"integer class labels \(torch\.long\), got torch\.float32; convert them with y\.long\(\)"),
    ("fit: label 3 with 3 classes", lambda t: fit_classifier(torch.tensor([0, 1, 2, 3])), ValueError, r"0\.\.2 for a model with 3 outputs.*one output per class"),
    ("fit: negative label", lambda t: fit_classifier(torch.tensor([0, -2, 1, 1])), ValueError, r"labels from -2 to 1"),
    ("evaluate: bad label in a later batch", lambda t: evaluate(classifier(), [(torch.randn(2, 4), torch.tensor([0, 1])), (torch.randn(2, 4), torch.tensor([1, 7]))], nn.CrossEntropyLoss()), ValueError, r"0\.\.2 for a model with 3 outputs"),
    # devices
    ("predict: model on 'meta'", lambda t: predict(meta_model(), torch.randn(2, 4)), ValueError, r"'meta' device.*to_empty\(device='cpu'\)"),
    ("fit: model on 'meta'", lambda t: (m := meta_model(), fit(m, (torch.randn(2, 4), torch.tensor([0, 1])), nn.CrossEntropyLoss(), sgd(m), 1)), ValueError, r"'meta' device"),
    ("evaluate: model on 'meta'", lambda t: evaluate(meta_model(), (torch.randn(2, 4), torch.tensor([0, 1])), nn.CrossEntropyLoss()), ValueError, r"'meta' device"),
    ("evaluate: model split over two devices", lambda t: evaluate(split_model(), (torch.randn(2, 4), torch.randn(2, 2)), nn.MSELoss()), ValueError, r"several devices \(cpu, meta\).*model\.to\(device\)"),
    ("predict: model without parameters", lambda t: predict(nn.Identity(), torch.randn(2, 4)), ValueError, r"Identity has no parameters"),
    ("accuracy: predictions and labels on two devices", lambda t: accuracy(labels().to("meta"), labels()), ValueError, r"y_pred is on meta but y_true is on cpu.*\.cpu\(\)"),
    ("confusion_matrix: two devices", lambda t: confusion_matrix(labels().to("meta"), labels(), 10), ValueError, r"move both to one device"),
    # empty data
    ("evaluate: empty loader", lambda t: evaluate(line(), [], nn.L1Loss()), ValueError, r"no batches; check that the dataset or DataLoader is not empty"),
    ("predict: empty loader", lambda t: predict(line(), []), ValueError, r"check that the loader is not empty"),
    ("TensorImageDataset: no images", lambda t: TensorImageDataset(images(0), labels(0)), ValueError, r"dataset is empty"),
    ("make_loader: empty dataset", lambda t: make_loader(TensorDataset(torch.zeros(0, 1))), ValueError, r"dataset is empty"),
    ("make_loader: plain tensors, not a Dataset", lambda t: make_loader(images()), TypeError, r"TensorImageDataset\(images, labels\)"),
    # non-positive counts and rates
    ("fit: epochs=0", lambda t: fit(line(), line_data(), nn.L1Loss(), sgd(line()), 0), ValueError, r"epochs must be a positive int, got 0; try epochs=10"),
    ("fit: epochs=True", lambda t: fit(line(), line_data(), nn.L1Loss(), sgd(line()), True), ValueError, r"try epochs=10"),
    ("fit: print_every=0", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, print_every=0)), ValueError, r"try print_every=1"),
    ("fit: negative start_epoch", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, start_epoch=-1)), ValueError, r"try start_epoch=0"),
    ("digits_recipe: lr=0", lambda t: digits_recipe(DigitsCNN(), 5, 10, lr=0), ValueError, r"lr must be a positive number, got 0; try lr=0\.002"),
    ("digits_recipe: lr=nan", lambda t: digits_recipe(DigitsCNN(), 5, 10, lr=math.nan), ValueError, r"try lr=0\.002"),
    ("digits_recipe: epochs=0", lambda t: digits_recipe(DigitsCNN(), 0, 10), ValueError, r"try epochs=10"),
    ("digits_recipe: steps_per_epoch=0", lambda t: digits_recipe(DigitsCNN(), 5, 0), ValueError, r"len\(train_loader\)"),
    ("ShuffledBatches: batch_size=0", lambda t: ShuffledBatches(10, 0, shuffle=True), ValueError, r"batch_size must be a positive int, got 0; try batch_size=64"),
    ("make_loader: batch_size=-1", lambda t: make_loader(TensorImageDataset(images(), labels()), batch_size=-1), ValueError, r"try batch_size=64"),
    # paths
    ("load_model: missing file", lambda t: load_model(line(), t / "missing.pth"), FileNotFoundError, r"save one first or check the path"),
    ("load_model: a folder", lambda t: load_model(line(), t), IsADirectoryError, r"is a folder, not a checkpoint file"),
    ("save_model: parent is a file", lambda t: save_model(line(), a_file(t) / "model.pth"), NotADirectoryError, r"is a file, not a folder.*choose another path"),
    ("save_model: path is a folder", lambda t: save_model(line(), t), IsADirectoryError, r"pass a file path"),
    ("save_model: path is a number", lambda t: save_model(line(), 3), TypeError, r"models/model\.pth"),
    ("load_checkpoint: bare state_dict", lambda t: load_checkpoint(written(t), line()), ValueError, r"load it with load_model\(model, path\)"),
    ("load_checkpoint: no optimizer state", lambda t: (m := line(), save_checkpoint(t / "c.pth", m, epoch=0), load_checkpoint(t / "c.pth", m, sgd(m))), ValueError, r"pass optimizer=None"),
    ("save_checkpoint: epoch as a float", lambda t: save_checkpoint(t / "c.pth", line(), epoch=1.5), TypeError, r"epoch=len\(history\.epochs\)"),
    ("read_image_folder: missing folder", lambda t: read_image_folder(t / "nowhere", "train"), FileNotFoundError, r"write_digits_image_folder"),
    ("read_image_folder: folder without PNGs", lambda t: ((t / "empty" / "train" / "0").mkdir(parents=True), read_image_folder(t / "empty", "train")), ValueError, r"holds no PNG files"),
    ("write_digits_image_folder: parent is a file", lambda t: write_digits_image_folder(a_file(t) / "digits"), NotADirectoryError, r"is a file, not a folder"),
    # wrong types
    ("fit: a function instead of a model", lambda t: fit(lambda x: x, line_data(), nn.L1Loss(), sgd(line()), 1), TypeError, r"must be a torch\.nn\.Module, got function"),
    ("fit: the model class, not an instance", lambda t: fit(LinearRegressionModel, line_data(), nn.L1Loss(), sgd(line()), 1), TypeError, r"not its class"),
    ("fit: optimizer is a string", lambda t: fit(line(), line_data(), nn.L1Loss(), "sgd", 1), TypeError, r"torch\.optim\.SGD\(model\.parameters\(\), lr=0\.01\)"),
    ("fit: optimizer of another model", lambda t: fit(line(), line_data(), nn.L1Loss(), sgd(line()), 1), ValueError, r"none of the model's parameters"),
    ("fit: loss class, not an instance", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss, sgd(m), 1)), TypeError, r"pass L1Loss\(\) with parentheses"),
    ("fit: train_data is one tensor", lambda t: (m := line(), fit(m, line_data()[0], nn.L1Loss(), sgd(m), 1)), TypeError, r"train_data must be a pair \(X, y\).*DataLoader"),
    ("fit: train_data is a number", lambda t: (m := line(), fit(m, 5, nn.L1Loss(), sgd(m), 1)), TypeError, r"got int"),
    ("fit: unpaired X and y", lambda t: (m := line(), fit(m, (torch.zeros(5, 1), torch.zeros(4, 1)), nn.L1Loss(), sgd(m), 1)), ValueError, r"5 inputs but 4 targets"),
    ("fit: checkpoint without val_data", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, checkpoint_path=t / "b.pth")), ValueError, r"needs val_data"),
    ("train_step: optimizer is a dict", lambda t: train_step(line(), line_data(), nn.L1Loss(), {"lr": 0.1}), TypeError, r"torch\.optim\.Optimizer"),
    ("TensorImageDataset: 9 images, 8 labels", lambda t: TensorImageDataset(images(9), labels(8)), ValueError, r"9 images but 8 labels"),
    ("TensorImageDataset: (N, H, W) images", lambda t: TensorImageDataset(torch.rand(4, 8, 8), labels()), ValueError, r"unsqueeze\(1\)"),
    ("TensorImageDataset: float labels", lambda t: TensorImageDataset(images(), labels().float()), ValueError, r"labels\.long\(\)"),
    ("TensorImageDataset: one-hot labels", lambda t: TensorImageDataset(images(), torch.eye(4, dtype=torch.long)), ValueError, r"shape \(N,\).*reshape"),
    # seeds, devices by name, fractions, steps
    ("set_seed(-1)", lambda t: set_seed(-1), ValueError, r"non-negative int, got -1; try set_seed\(42\)"),
    ("set_seed(1.5)", lambda t: set_seed(1.5), ValueError, r"got 1\.5"),
    ("set_seed(True)", lambda t: set_seed(True), ValueError, r"got True"),
    ("set_seed('42')", lambda t: set_seed("42"), ValueError, r"got '42'"),
    ("set_seed(2**64)", lambda t: set_seed(2**64), ValueError, r"below 2\*\*64"),
    ("get_device('gpu')", lambda t: get_device("gpu"), ValueError, r"use 'cpu', 'cuda', 'mps' or None"),
    ("get_device(torch.device)", lambda t: get_device(torch.device("cpu")), TypeError, r"pass prefer='cpu'"),
    ("get_device(0)", lambda t: get_device(0), ValueError, r"not a device type"),
    ("split_data: fraction 1.0", lambda t: split_data(*line_data(), 1.0), ValueError, r"between 0 and 1 \(exclusive\), got 1\.0; try 0\.8"),
    ("split_data: fraction -0.2", lambda t: split_data(*line_data(), -0.2), ValueError, r"try 0\.8"),
    ("split_data: fraction as text", lambda t: split_data(*line_data(), "0.8"), ValueError, r"try 0\.8"),
    ("split_data: too few rows to split", lambda t: split_data(torch.zeros(2, 1), torch.zeros(2, 1), 0.1), ValueError, r"leaves one split empty"),
    ("split_data: lists, not tensors", lambda t: split_data([1.0, 2.0], [1.0, 2.0]), TypeError, r"torch\.as_tensor\(X\)"),
    ("make_line_data: step=0", lambda t: make_line_data(step=0), ValueError, r"step must be positive, got 0; try step=0\.02"),
    ("make_line_data: negative step", lambda t: make_line_data(step=-0.1), ValueError, r"try step=0\.02"),
    ("make_line_data: step=nan", lambda t: make_line_data(step=math.nan), ValueError, r"finite number"),
    ("make_line_data: end before start", lambda t: make_line_data(start=1, end=0), ValueError, r"swap them"),
    # data on disk and the student's own data (issue 10: items 1, 5, 6)
    ("write_digits_image_folder: a folder of the user's files", lambda t: ((t / "proj").mkdir(), (t / "proj" / "notes.txt").write_text("mine"), write_digits_image_folder(t / "proj")), FileExistsError, r"did not write .*pass an empty or new folder such as 'data/digits'"),
    ("write_digits_image_folder: another program's manifest.json", lambda t: ((t / "exp").mkdir(), (t / "exp" / "manifest.json").write_text('{"run": 1}'), write_digits_image_folder(t / "exp")), FileExistsError, r"no digits manifest\.json"),
    ("write_digits_image_folder: a file at the root path", lambda t: write_digits_image_folder(a_file(t)), NotADirectoryError, r"is a file, not a folder, so the digits cannot go there; pass a new folder"),
    ("write_digits_image_folder: a link to a missing folder", lambda t: ((t / "link").symlink_to(t / "gone"), write_digits_image_folder(t / "link")), FileNotFoundError, r"is a link to .*gone, which does not exist; create that folder"),
    ("read_image_folder: an EPS file named 0000.png", lambda t: ((d := t / "d" / "train" / "0").mkdir(parents=True), (d / "0000.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n"), read_image_folder(t / "d", "train")), ValueError, r"0000\.png is not a valid PNG image .*replace it with a PNG or remove it"),
    ("read_image_folder: a truncated PNG", lambda t: ((d := t / "d" / "train" / "0").mkdir(parents=True), __import__("PIL.Image").Image.new("L", (8, 8)).save(d / "0000.png"), (d / "0000.png").write_bytes((d / "0000.png").read_bytes()[:45]), read_image_folder(t / "d", "train")), ValueError, r"not a valid PNG image \(another format, truncated or corrupt\)"),
    ("read_image_folder: images of two sizes", lambda t: ((d := t / "d" / "train" / "0").mkdir(parents=True), __import__("PIL.Image").Image.new("L", (8, 8)).save(d / "0000.png"), __import__("PIL.Image").Image.new("L", (16, 16)).save(d / "0001.png"), read_image_folder(t / "d", "train")), ValueError, r"0001\.png is 16x16 pixels but the other images are 8x8; resize it or remove it"),
    ("read_image_folder: a class folder named 'cat'", lambda t: ((d := t / "d" / "train" / "cat").mkdir(parents=True), __import__("PIL.Image").Image.new("L", (8, 8)).save(d / "0000.png"), read_image_folder(t / "d", "train")), ValueError, r"not named by a class number; name class folders 0, 1, 2"),
    ("split_data: stratify a continuous target", lambda t: split_data(*line_data(), stratify=True), ValueError, r"needs class labels .*use shuffle=True for a regression target"),
    ("split_data: shuffle='yes'", lambda t: split_data(*line_data(), shuffle="yes"), TypeError, r"shuffle must be True or False, got 'yes'; try shuffle=True"),
    ("TensorImageDataset: tabular rows (N, 13)", lambda t: TensorImageDataset(torch.rand(4, 13), labels()), ValueError, r"rows of features, not images; for tabular data use torch\.utils\.data\.TensorDataset\(X, y\)"),
    ("make_loader: an IterableDataset", lambda t: make_loader(type("Stream", (torch.utils.data.IterableDataset,), {"__iter__": lambda self: iter(range(3)), "__len__": lambda self: 3})()), TypeError, r"use DataLoader\(dataset, batch_size=\.\.\.\) for it"),
    ("plot_predictions: tabular X (N, 13)", lambda t: plot_predictions(torch.rand(8, 13), torch.rand(8, 1), torch.rand(2, 13), torch.rand(2, 1)), ValueError, r"X_train has shape \(8, 13\); pick one feature column"),
    ("plot_predictions: numpy arrays", lambda t: plot_predictions(*(a.numpy() for a in split_data(*line_data()))), TypeError, r"convert it with torch\.as_tensor\(X_train\)"),
    # checkpoints: only what load_checkpoint reads back, never over the real state, never a file named like a folder
    ("save_checkpoint: a History as an extra", lambda t: save_checkpoint(t / "c.pth", line(), epoch=1, history=History()), TypeError, r"history=history\.to_dict\(\)"),
    ("save_checkpoint: a model as an extra", lambda t: save_checkpoint(t / "c.pth", line(), epoch=1, teacher=line()), TypeError, r"teacher=teacher\.state_dict\(\)"),
    ("save_checkpoint: a slice inside an extra dict", lambda t: save_checkpoint(t / "c.pth", line(), epoch=1, data={"rows": slice(0, 5)}), TypeError, r"data= \(it holds a slice.*pass plain numbers"),
    ("save_checkpoint: model_state= extra", lambda t: save_checkpoint(t / "c.pth", line(), epoch=1, model_state={}), TypeError, r"under another name, e\.g\. my_model_state="),
    ("save_checkpoint: optimizer_state= extra", lambda t: (m := line(), save_checkpoint(t / "c.pth", m, sgd(m), epoch=1, optimizer_state={})), TypeError, r"my_optimizer_state="),
    ("save_model: 'newfolder/' (trailing slash)", lambda t: save_model(line(), f"{t}/newfolder/"), IsADirectoryError, r"names a folder, not a file.*newfolder.model\.pth"),
    # --- engine (issue 10): figures that would be silently wrong ---
    ("fit: an unknown metric name", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, metric="acc")), ValueError, r"unknown metric 'acc'; choose one of 'accuracy'"),
    ("fit: a metric that returns a per-batch sum", lambda t: fit_classifier(torch.tensor([0, 1, 2, 1]), metric=lambda p, y: (p.argmax(1) == p.argmax(1)).sum()), ValueError, r"returns a sum over the batch.*return the mean over the batch instead \(\.mean\(\) where it has \.sum\(\)\)"),
    ("fit: a metric that returns one number per row", lambda t: fit_classifier(torch.tensor([0, 1, 2, 1]), metric=lambda p, y: (p.argmax(1) == y).float()), ValueError, r"one number per batch.*\.mean\(\)"),
    ("fit: metric is a number", lambda t: fit_classifier(torch.tensor([0, 1, 2, 1]), metric=3), TypeError, r"try metric='accuracy'"),
    ("fit: metric 'mae' on (N, 1) vs (N,)", lambda t: (m := line(), fit(m, (torch.zeros(4, 1), torch.zeros(4)), lambda p, y: p.mean(), sgd(m), 1, metric="mae")), ValueError, r"y\.reshape_as\(y_pred\)"),
    ("fit: loss with reduction='sum'", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(reduction="sum"), sgd(m), 1)), ValueError, r"reduction='mean'"),
    ("fit: a loss function returning one value per row", lambda t: (m := line(), fit(m, line_data(), lambda p, y: (p - y).abs(), sgd(m), 1)), ValueError, r"one number \(the batch mean\).*\.mean\(\)"),
    ("fit: an optimizer passed as scheduler", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, scheduler=sgd(m))), TypeError, r"scheduler is an optimizer"),
    ("fit: a scheduler of another optimizer", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, scheduler=torch.optim.lr_scheduler.StepLR(sgd(m), 1))), ValueError, r"built on another optimizer"),
    ("fit: scheduler_step='step'", lambda t: (m := line(), o := sgd(m), fit(m, line_data(), nn.L1Loss(), o, 1, scheduler=torch.optim.lr_scheduler.StepLR(o, 1), scheduler_step="step")), ValueError, r"'batch', 'epoch' or None"),
    ("fit: ReduceLROnPlateau per batch", lambda t: (m := line(), o := sgd(m), fit(m, line_data(), nn.L1Loss(), o, 1, scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(o), scheduler_step="batch")), ValueError, r"once per epoch"),
    ("fit: BCEWithLogitsLoss with integer targets", lambda t: (m := nn.Linear(4, 1), fit(m, (torch.randn(4, 4), torch.tensor([[0], [1], [1], [0]])), nn.BCEWithLogitsLoss(), sgd(m), 1)), ValueError, r"float 0/1 targets.*y\.float\(\)"),
    ("fit: BCEWithLogitsLoss with (N,) targets for (N, 1) logits", lambda t: (m := nn.Linear(4, 1), fit(m, (torch.randn(4, 4), torch.tensor([0.0, 1.0, 1.0, 0.0])), nn.BCEWithLogitsLoss(), sgd(m), 1)), ValueError, r"y\.unsqueeze\(1\)"),
    ("fit: last_checkpoint_path is a number", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, last_checkpoint_path=3)), TypeError, r"str or pathlib\.Path"),
    ("fit: on_epoch_end is not callable", lambda t: (m := line(), fit(m, line_data(), nn.L1Loss(), sgd(m), 1, on_epoch_end="plot")), TypeError, r"function taking the History"),
    # --- distributed (08_scaling_up): torchrun set-up and the per-process loaders ---
    (
        "distributed.setup outside torchrun",
        lambda t: __import__("workflow_utils.distributed", fromlist=["setup"]).setup(),
        RuntimeError,
        r"needs the variables torchrun sets.*torchrun --nproc_per_node=2 script\.py",
    ),
    (
        "DistributedBatches: batch_size 0",
        lambda t: __import__("workflow_utils.distributed", fromlist=["x"]).DistributedBatches(
            range(10), 0, shuffle=False, num_replicas=1, rank=0
        ),
        ValueError,
        r"batch_size must be a positive int, got 0; try batch_size=32",
    ),
    (
        "distributed_loader: global_batch_size 0",
        lambda t: __import__("workflow_utils.distributed", fromlist=["x"]).distributed_loader(TensorDataset(torch.zeros(10)), 0),
        ValueError,
        r"global_batch_size must be a positive int, got 0; try global_batch_size=64",
    ),
    # issue 18, kind 1: every batch is (X, y) tensors
    ("fit: a Dataset returning dicts", lambda t: fit_classifier_on(DataLoader(DictSamples(), batch_size=2)), TypeError, r"got a dict with keys \['x', 'label'\]; make the Dataset's __getitem__ return a pair \(x, y\)"),
    ("fit: a Dataset returning (x, y, weight)", lambda t: fit_classifier_on(DataLoader(TensorDataset(torch.randn(4, 4), labels(4) % 3, torch.ones(4)), batch_size=2)), TypeError, r"a list of 3 items.*fit takes no sample weights"),
    ("fit: DataLoader(X) without labels", lambda t: fit_classifier_on(DataLoader(torch.randn(4, 4), batch_size=2)), TypeError, r"got a tensor of shape \(2, 4\).*TensorDataset\(X, y\)"),
    ("train_step: a numpy (X, y) pair", lambda t: train_step(m := classifier(), (np.zeros((4, 4), "float32"), np.zeros(4, "int64")), nn.CrossEntropyLoss(), sgd(m)), TypeError, r"torch\.as_tensor\(X, dtype=torch\.float32\)"),
    ("predict: a numpy array", lambda t: predict(classifier(), np.zeros((4, 4), "float32")), TypeError, r"torch\.as_tensor\(data, dtype=torch\.float32\)"),
    ("predict: a list of rows", lambda t: predict(classifier(), [[0.0] * 4] * 3), TypeError, r"torch\.as_tensor\(data, dtype=torch\.float32\)"),
    ("evaluate: a Dataset of strings", lambda t: evaluate(classifier(), [(["a", "b"], torch.tensor([0, 1]))], nn.CrossEntropyLoss()), TypeError, r"convert each part to a tensor"),
    # kind 2: output against target
    ("fit: L1Loss of (N, 1) outputs against (N,) targets", lambda t: fit(m := line(), (torch.zeros(4, 1), torch.zeros(4)), nn.L1Loss(), sgd(m), 1), ValueError, r"output has shape \(4, 1\) and the target \(4,\).*y\.reshape_as\(y_pred\)"),
    ("fit: MSELoss of (N, 1) outputs against (N,) targets", lambda t: fit(m := line(), (torch.zeros(4, 1), torch.zeros(4)), nn.MSELoss(), sgd(m), 1), ValueError, r"y\.reshape_as\(y_pred\)"),
    ("fit: float64 inputs into a float32 model", lambda t: fit(m := line(), (torch.zeros(4, 1, dtype=torch.float64), torch.zeros(4, 1)), nn.MSELoss(), sgd(m), 1), ValueError, r"torch\.float64 but the model's weights are torch\.float32.*X\.float\(\)"),
    ("fit: float64 targets for a float32 model", lambda t: fit(m := line(), (torch.zeros(4, 1), torch.zeros(4, 1, dtype=torch.float64)), nn.MSELoss(), sgd(m), 1), ValueError, r"targets y are torch\.float64.*y\.float\(\)"),
    ("fit: CrossEntropy with float targets that are not probabilities", lambda t: fit_classifier(torch.rand(4, 3) * 5), ValueError, r"rows do not sum to 1; for class labels pass y\.long\(\)"),
    ("fit: a 1-sample batch into BatchNorm", lambda t: fit(m := nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), [(torch.randn(1, 4), torch.tensor([0]))], nn.CrossEntropyLoss(), sgd(m), 1), ValueError, r"drop_last=True"),
    ("fit: inputs of the wrong width", lambda t: fit_classifier_on([(torch.randn(4, 5), torch.tensor([0, 1, 2, 1]))]), ValueError, r"cannot take train_data's inputs X of shape \(4, 5\).*layer_table"),
    # kind 3: accuracy and its hints
    ("accuracy: one logit per row vs labels", lambda t: accuracy(torch.randn(4, 1), labels() % 2), ValueError, r"\(logits > 0\)\.long\(\)\.squeeze\(1\)"),
    ("accuracy: probabilities", lambda t: accuracy(torch.tensor([0.4, 0.9]), torch.tensor([0, 1])), ValueError, r"fractions \(e\.g\. 0\.4\).*probs\.argmax\(dim=1\)"),
    ("accuracy: 0-d tensors", lambda t: accuracy(torch.tensor(1), torch.tensor(1)), ValueError, r"1-D tensors of labels.*reshape\(1\)"),
    # kind 4: optimizer, model and state agree
    ("fit: a model with no trainable parameter", lambda t: fit(m := line().requires_grad_(False), (torch.zeros(4, 1), torch.zeros(4, 1)), nn.MSELoss(), sgd(m), 1), ValueError, r"no trainable parameter.*requires_grad_\(True\)"),
    ("train_step: optimizer=None", lambda t: train_step(line(), (torch.zeros(4, 1), torch.zeros(4, 1)), nn.MSELoss(), None), TypeError, r"needs an optimizer.*evaluate\(model, data, loss_fn\)"),
    ("load_checkpoint: Adam state into SGD", lambda t: load_checkpoint(adam_checkpoint(t), m := line(), sgd(m)), ValueError, r"state of another optimizer .*this SGD.*build the optimizer class that was saved"),
    ("load_checkpoint: a scheduler where map_location goes", lambda t: load_checkpoint(adam_checkpoint(t), m := line(), o := torch.optim.Adam(m.parameters()), torch.optim.lr_scheduler.StepLR(o, 1)), TypeError, r"map_location got a StepLR; pass the scheduler by name: scheduler=scheduler"),
    ("fit: digits_recipe with the wrong steps_per_epoch", lambda t: fit_recipe(steps_per_epoch=2, batches=3), ValueError, r"OneCycleLR has 4 steps left but fit would take 6.*steps_per_epoch=len\(train_loader\)"),
    # kind 5: schedulers, complete
    ("fit: OneCycleLR stepped per epoch", lambda t: fit_recipe(steps_per_epoch=3, batches=3, scheduler_step="epoch"), ValueError, r"stepped once per epoch.*it would take 2, stopping with the learning rate mid-cycle"),
    ("fit: ReduceLROnPlateau(mode='max') fed a loss", lambda t: fit(m := line(), (torch.zeros(4, 1), torch.zeros(4, 1)), nn.MSELoss(), o := sgd(m), 1, scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="max")), ValueError, r"mode='max'.*build it with mode='min'"),
    # kind 7: helpers beyond fit
    ("layer_table: a Linear of the wrong width", lambda t: layer_table(nn.Sequential(nn.Flatten(), nn.Linear(60, 10)), (1, 1, 8, 8)), ValueError, r"layer 1 \(Linear\) cannot take its input of shape \(1, 64\); build it with in_features=64"),
    ("CNN on 28x28 images", lambda t: DigitsCNN()(images(shape=(1, 28, 28))), ValueError, r"must be 1x8x8 greyscale images"),
    ("plot_image_grid: too few class names", lambda t: plot_image_grid(images(), labels(), class_names=("a", "b")), ValueError, r"run from 0 to 3 but class_names holds 2 names"),
    ("plot_image_grid: string labels", lambda t: plot_image_grid(images(2), ["cat", "dog"]), TypeError, r"got strings such as 'cat'.*class_names="),
    ("plot_loss_curves: lists of different lengths", lambda t: plot_loss_curves(History(epochs=[0, 1], train_loss=[1.0])), ValueError, r"2 epochs but 1 train_loss values"),
    ("make_loader: shuffle='no'", lambda t: make_loader(TensorDataset(torch.zeros(4, 1), torch.zeros(4)), shuffle="no"), TypeError, r"shuffle must be True or False, got 'no'"),
    ("count_parameters: trainable_only='no'", lambda t: count_parameters(line(), trainable_only="no"), TypeError, r"trainable_only must be True or False"),
    # kind 10: messages that mislead
    ("read_image_folder: split '../..'", lambda t: read_image_folder(t, "../.."), ValueError, r"one folder name inside root"),
    ("load_model: a JSON file", lambda t: load_model(line(), json_file(t)), ValueError, r"not a file written by torch\.save \(it holds text such as JSON or CSV\)"),
    # --- end of the bad-input table ---
]
# fmt: on


def test_the_readme_states_the_real_number_of_cases():
    """README promises a number of bad inputs; that number is this table's, and every case is distinct."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    promised = __import__("re").search(r"lists all (\d+) cases", readme)
    assert promised, "README should say how many bad inputs tests/test_bad_inputs.py lists"
    assert len({description for description, *_ in CASES}) == len(CASES) == int(promised.group(1))


@pytest.mark.parametrize(("description", "call", "error", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_one_clear_error(description, call, error, pattern, tmp_path):
    with pytest.raises(error) as info:
        call(tmp_path)
    message = str(info.value)
    assert type(info.value) is error, f"{description}: got {type(info.value).__name__}, a subclass of {error.__name__}"
    assert "\n" not in message, f"{description}: the message spans lines: {message!r}"
    assert len(message) < 400, f"{description}: the message is too long to read at a glance"
    assert __import__("re").search(pattern, message), f"{description}: {message!r} does not match {pattern!r}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_get_device_cuda_without_cuda_names_the_fix():
    with pytest.raises(RuntimeError, match=r"not available on this machine; call get_device\(\)"):
        get_device("cuda")


def test_non_finite_loss_stops_fit_with_a_message(capsys):
    X, y = line_data()
    model = line()
    history = fit(model, (X * 1e20, y), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=10.0), 50)
    assert history.stop_reason.startswith("stopped at epoch") and "try one 10x smaller" in history.stop_reason
    assert "\n" not in history.stop_reason
    assert history.stop_reason in capsys.readouterr().out
    assert all(math.isfinite(v) for v in history.train_loss)


def test_label_check_costs_one_look_per_fit():
    """The label range is checked on the first batch of the first epoch only (no per-batch GPU sync)."""
    seen = []

    class Counting(nn.CrossEntropyLoss):
        pass

    import workflow_utils._fit_checks as checks

    original = checks.label_problem
    try:
        checks.label_problem = lambda *a: seen.append(1) or original(*a)
        model = classifier()
        batches = [(torch.randn(2, 4), torch.tensor([0, 1]))] * 5
        fit(model, batches, Counting(), sgd(model), 3, val_data=batches)
    finally:
        checks.label_problem = original
    assert len(seen) == 2  # one training batch and one validation batch, in epoch 0
