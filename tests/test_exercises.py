"""Each check accepts its solution and rejects typical wrong answers; unattempted never breaks."""

import warnings

import pytest
import torch
from torch import nn

from workflow_utils.data import make_line_data, read_image_folder, split_data, write_digits_image_folder
from workflow_utils.exercises import ex01, ex02, ex07
from workflow_utils.models import LinearRegressionModel, LinearRegressionModelV2


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the digits exercises use data/digits relative to the notebook
    return tmp_path


def verdict(exercise, *answer, capsys):
    exercise.check(*answer)
    out = capsys.readouterr().out
    ok = f"{exercise.name}: correct!" in out  # a report line (ex03.q4's one test score) may follow it
    assert ok == exercise.passes(*answer)  # the silent check agrees with the printed verdict
    return ok, out


def test_unattempted_says_so(capsys):
    ok, out = verdict(ex01.q1, None, None, capsys=capsys)
    assert not ok and "not attempted yet" in out
    ok, out = verdict(ex07.q1, None, lambda drawing: (1, None), capsys=capsys)  # a helper after the answer
    assert not ok and "not attempted yet" in out


def test_ex01_q1_line(capsys):
    X, y = make_line_data(weight=-1.5, bias=2.0, step=0.01)
    assert verdict(ex01.q1, X, y, capsys=capsys)[0]
    ok, out = verdict(ex01.q1, X.flatten(), y.flatten(), capsys=capsys)  # forgot unsqueeze
    assert not ok and "shape (100, 1)" in out
    ok, out = verdict(ex01.q1, *make_line_data(weight=1.5, bias=2.0, step=0.01), capsys=capsys)  # sign slip
    assert not ok and "-1.5 * X + 2.0" in out and "hint:" in out


def test_ex01_q1_accepts_float64_and_names_the_dtype_it_rejects(capsys):
    X64 = torch.arange(0, 1, 0.01, dtype=torch.float64).unsqueeze(1)
    assert verdict(ex01.q1, X64, -1.5 * X64 + 2.0, capsys=capsys)[0]  # was "expected ... Double ... Float"
    X, y = make_line_data(weight=-1.5, bias=2.0, step=0.01)
    assert verdict(ex01.q1, X.double(), y, capsys=capsys)[0]  # mixed float precisions are fine too
    ints = torch.arange(100).unsqueeze(1)
    ok, out = verdict(ex01.q1, ints, ints, capsys=capsys)
    assert not ok and "torch.int64 (whole numbers)" in out and "raised" not in out


def test_ex01_q2_split(capsys):
    X, y = make_line_data(weight=-1.5, bias=2.0, step=0.01)
    X_train, _, X_test, _ = split_data(X, y, 0.7)
    assert verdict(ex01.q2, X_train, X_test, capsys=capsys)[0]
    X80, _, X20, _ = split_data(X, y, 0.8)
    assert "expected 70 training" in verdict(ex01.q2, X80, X20, capsys=capsys)[1]
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    assert "in order" in verdict(ex01.q2, X[perm][:70], X[perm][70:], capsys=capsys)[1]


def test_ex01_q2_checks_the_test_split_too(capsys):
    X, y = make_line_data(weight=-1.5, bias=2.0, step=0.01)
    ok, out = verdict(ex01.q2, X[:70], X[:30], capsys=capsys)  # the test split repeats training points
    assert not ok and "the test split should be the last 30 points" in out
    assert not verdict(ex01.q2, X[:70], X[70:].flip(0), capsys=capsys)[0]  # reversed test split
    assert verdict(ex01.q2, X[:70].double(), X[70:].double(), capsys=capsys)[0]  # float64 is fine


def test_ex01_q4_leaves_the_global_rng_alone(in_tmp, capsys):
    from workflow_utils.data import load_digits_data, make_loader

    val = load_digits_data("data/digits").val.dataset
    for shuffle in (False, True):  # iterating any loader draws a base seed from the global RNG
        torch.manual_seed(7)
        verdict(ex01.q4, make_loader(val, batch_size=32, shuffle=shuffle), capsys=capsys)
        after_check = torch.rand(3)
        torch.manual_seed(7)
        assert torch.equal(after_check, torch.rand(3))


def test_ex01_q3_validation_stats(in_tmp, capsys):
    root = write_digits_image_folder("data/digits")
    train, val = read_image_folder(root, "train")[0], read_image_folder(root, "val")[0]
    right = (val - train.mean()) / train.std()
    assert verdict(ex01.q3, right.mean().item(), right.std().item(), capsys=capsys)[0]
    # the statistics the notebook already printed are not the answer any more: it needs new work
    assert not verdict(ex01.q3, train.mean().item(), train.std().item(), capsys=capsys)[0]
    own = (val - val.mean()) / val.std()
    assert "its own statistics" in verdict(ex01.q3, own.mean().item(), own.std().item(), capsys=capsys)[1]
    assert "raw validation pixels" in verdict(ex01.q3, val.mean().item(), val.std().item(), capsys=capsys)[1]


def test_ex01_q4_validation_loader(in_tmp, capsys):
    from workflow_utils.data import load_digits_data, make_loader

    val = load_digits_data("data/digits").val.dataset
    assert verdict(ex01.q4, make_loader(val, batch_size=32, shuffle=False), capsys=capsys)[0]
    assert "must not shuffle" in verdict(ex01.q4, make_loader(val, batch_size=32, shuffle=True), capsys=capsys)[1]
    assert "32 images" in verdict(ex01.q4, make_loader(val, batch_size=64, shuffle=False), capsys=capsys)[1]


def test_ex01_q3_names_pixels_normalised_twice(in_tmp, capsys):
    from workflow_utils.data import load_digits_data

    digits = load_digits_data("data/digits")  # its images are normalised with the training statistics
    assert verdict(ex01.q3, digits.val.dataset.images.mean(), digits.val.dataset.images.std(), capsys=capsys)[0]
    twice = (digits.val.dataset.images - digits.mean) / digits.std  # the typical slip: normalised again
    ok, out = verdict(ex01.q3, twice.mean().item(), twice.std().item(), capsys=capsys)
    assert not ok and "normalised twice" in out


def test_ex01_q4_names_a_dataset_and_leaves_the_loader_as_found(in_tmp, capsys):
    from torch.utils.data import DataLoader

    from workflow_utils.data import load_digits_data, make_loader

    val = load_digits_data("data/digits").val.dataset
    ok, out = verdict(ex01.q4, val, capsys=capsys)  # the dataset, not a loader: was torch's "len() of a 0-d tensor"
    assert not ok and "that is a Dataset" in out and "0-d" not in out
    assert verdict(ex01.q4, DataLoader(val, batch_size=32), capsys=capsys)[0]  # torch's own loader is fine
    generator = torch.Generator().manual_seed(1)
    shuffled = DataLoader(val, batch_size=32, shuffle=True, generator=generator)
    state = generator.get_state()
    assert "must not shuffle" in verdict(ex01.q4, shuffled, capsys=capsys)[1]
    assert torch.equal(generator.get_state(), state)  # the check drew no orders from the student's generator
    ours = make_loader(val, batch_size=32, shuffle=True)
    verdict(ex01.q4, ours, capsys=capsys)
    assert ours.sampler.epoch == 0  # the next pass still gets epoch 0's order


class NotebookLine(nn.Module):
    """The line model as 02_model writes it in a cell: a class of its own, not the package's."""

    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(1, dtype=torch.float32))
        self.bias = nn.Parameter(torch.randn(1, dtype=torch.float32))

    def forward(self, x):
        return self.weights * x + self.bias


def test_ex02_q1_seed_zero(capsys):
    torch.manual_seed(0)
    assert verdict(ex02.q1, LinearRegressionModel(), capsys=capsys)[0]
    torch.manual_seed(0)
    assert verdict(ex02.q1, NotebookLine(), capsys=capsys)[0]  # the notebook's own class behaves the same
    torch.manual_seed(42)
    assert "manual_seed(0) right before" in verdict(ex02.q1, LinearRegressionModel(), capsys=capsys)[1]
    assert "with parentheses" in verdict(ex02.q1, LinearRegressionModel, capsys=capsys)[1]
    torch.manual_seed(0)
    assert "weights and bias" in verdict(ex02.q1, LinearRegressionModelV2(), capsys=capsys)[1]


class Quadratic(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = (nn.Parameter(torch.randn(1)) for _ in range(3))

    def forward(self, x):
        return self.a * x**2 + self.b * x + self.c


class PlainTensors(Quadratic):
    def __init__(self):
        nn.Module.__init__(self)
        self.a, self.b, self.c = torch.randn(1), torch.randn(1), torch.randn(1)  # not registered


class Swapped(Quadratic):
    def forward(self, x):
        return self.c * x**2 + self.b * x + self.a


def test_ex02_q2_quadratic(capsys):
    assert verdict(ex02.q2, Quadratic(), capsys=capsys)[0]
    assert "expected 3 learnable" in verdict(ex02.q2, PlainTensors(), capsys=capsys)[1]
    assert "a * x**2 + b * x + c" in verdict(ex02.q2, Swapped(), capsys=capsys)[1]


def test_ex02_q3_mlp(capsys):
    good = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    assert verdict(ex02.q3, good, capsys=capsys)[0]
    no_flatten = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    assert "flatten them first" in verdict(ex02.q3, no_flatten, capsys=capsys)[1]
    with_softmax = nn.Sequential(*good, nn.Softmax(dim=1))
    assert "remove the softmax" in verdict(ex02.q3, with_softmax, capsys=capsys)[1]
    wide = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    assert "4,810" in verdict(ex02.q3, wide, capsys=capsys)[1]
    no_activation = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Linear(64, 10))  # 4,810 parameters too
    assert "one linear layer in disguise" in verdict(ex02.q3, no_activation, capsys=capsys)[1]
    tanh = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
    assert verdict(ex02.q3, tanh, capsys=capsys)[0]  # any non-linearity will do


class SoftmaxInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x):
        return torch.softmax(self.out(torch.relu(self.hidden(x.flatten(1)))), dim=1)


def test_ex02_q3_accepts_the_64_64_10_shape_with_or_without_biases(capsys):
    no_bias = nn.Sequential(nn.Flatten(), nn.Linear(64, 64, bias=False), nn.ReLU(), nn.Linear(64, 10, bias=False))
    assert verdict(ex02.q3, no_bias, capsys=capsys)[0]  # was rejected: 4,736 parameters, not 4,810
    normed = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    assert verdict(ex02.q3, normed, capsys=capsys)[0]
    narrow = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    ok, out = verdict(ex02.q3, narrow, capsys=capsys)
    assert not ok and "4,736 weights" in out


def test_ex02_q3_rejects_a_softmax_written_in_forward(capsys):
    ok, out = verdict(ex02.q3, SoftmaxInForward(), capsys=capsys)  # was accepted: only nn.Softmax was looked for
    assert not ok and "remove the softmax" in out


def test_ex02_q4_names_a_missing_flatten_in_its_own_words(capsys):
    class NoFlatten(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.out(torch.relu(self.hidden(x)))

    ok, out = verdict(ex02.q4, NoFlatten(), capsys=capsys)
    assert not ok and "flatten them in forward first" in out and "mat1" not in out  # not torch's sentence


def test_ex02_q3_hint_is_not_the_answer():
    assert "nn.Sequential(" not in ex02.q3.hint_text and "non-linear" in ex02.q3.hint_text


def test_hint_and_solution_print(capsys):
    ex02.q3.hint()
    ex02.q3.solution()
    out = capsys.readouterr().out
    assert "ex02.q3 hint: three ideas" in out and "small_mlp = nn.Sequential" in out


# --- 03 and 04 ---------------------------------------------------------------------------------

from workflow_utils.engine import fit  # noqa: E402
from workflow_utils.exercises import ex03, ex04  # noqa: E402


def _line_and_model(seed=42):
    X_train, y_train, X_test, y_test = split_data(*make_line_data())
    torch.manual_seed(seed)
    return LinearRegressionModel(), X_train, y_train, X_test, y_test


def test_ex03_q1_test_mse(capsys):
    model, X_train, y_train, X_test, y_test = _line_and_model()
    with torch.no_grad():
        assert verdict(ex03.q1, ((model(X_test) - y_test) ** 2).mean().item(), capsys=capsys)[0]
        assert "training set" in verdict(ex03.q1, ((model(X_train) - y_train) ** 2).mean().item(), capsys=capsys)[1]
        assert "not attempted" not in verdict(ex03.q1, (model(X_test) - y_test).abs().mean().item(), capsys=capsys)[1]
        assert not ex03.q1.passes((model(X_test) - y_test).abs().mean().item())  # L1 is not MSE


def test_ex03_q2_bias_gradient(capsys):
    model, X_train, y_train, _, _ = _line_and_model()
    with torch.no_grad():
        error_mean = (model(X_train) - y_train).mean().item()
    assert verdict(ex03.q2, 2 * error_mean, capsys=capsys)[0]
    assert "factor of 2" in verdict(ex03.q2, error_mean, capsys=capsys)[1]
    assert not ex03.q2.passes(-2 * error_mean)  # sign flipped


def test_ex03_q1_q2_name_the_typical_slips(capsys):
    X_train, y_train, X_test, y_test = split_data(*make_line_data())
    torch.manual_seed(42)
    model = LinearRegressionModel()
    errors = model(X_test) - y_test
    with warnings.catch_warnings():  # a loss that still requires grad: was torch's UserWarning
        warnings.simplefilter("error")
        assert verdict(ex03.q1, nn.MSELoss()(model(X_test), y_test), capsys=capsys)[0]
    assert "mean absolute error" in verdict(ex03.q1, errors.abs().mean().item(), capsys=capsys)[1]
    assert "square root" in verdict(ex03.q1, (errors**2).mean().sqrt().item(), capsys=capsys)[1]
    right = (2 * (model(X_train) - y_train).mean()).item()
    assert verdict(ex03.q2, right, capsys=capsys)[0]
    assert "sign is flipped" in verdict(ex03.q2, -right, capsys=capsys)[1]
    assert "test set" in verdict(ex03.q2, (2 * errors.mean()).item(), capsys=capsys)[1]


def test_ex03_q3_diverging_rate(capsys):
    from workflow_utils.models import LinearRegressionModel as Line

    def final_loss(lr):  # the claim behind the answer: 0.8 converges, 0.95 blows up
        X_train, y_train, _, _ = split_data(*make_line_data())
        torch.manual_seed(42)
        m = Line()
        return fit(m, (X_train, y_train), nn.MSELoss(), torch.optim.SGD(m.parameters(), lr=lr), 100).train_loss[-1]

    assert final_loss(0.8) < 0.01 and final_loss(0.95) > 1.0
    assert verdict(ex03.q3, 0.95, capsys=capsys)[0]
    assert "still converges" in verdict(ex03.q3, 0.8, capsys=capsys)[1]
    assert "smaller rate" in verdict(ex03.q3, 1.2, capsys=capsys)[1]


def _fit_line(epochs, gamma=None):
    model, X_train, y_train, _, _ = _line_and_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma) if gamma else None
    fit(model, (X_train, y_train), nn.L1Loss(), opt, epochs, scheduler=sched)
    return model


def _fit_line_history(epochs):
    model, X_train, y_train, _, _ = _line_and_model()
    return model, fit(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.01), epochs)


def test_ex04_q1_300_epochs(capsys):
    model, history = _fit_line_history(300)
    assert verdict(ex04.q1, model, history.train_loss, capsys=capsys)[0]
    assert verdict(ex04.q1, model, history, capsys=capsys)[0]  # unusual but correct: the History itself
    as_tensors = [torch.tensor(v) for v in history.train_loss]  # unusual: loss tensors kept, not .item()
    assert verdict(ex04.q1, model, as_tensors, capsys=capsys)[0]
    assert "after 100 epochs" not in verdict(ex04.q1, *_fit_line_history(100), capsys=capsys)[1]
    assert "cover 100 epochs" in verdict(ex04.q1, *_fit_line_history(100), capsys=capsys)[1]
    assert "LinearRegressionModel" in verdict(ex04.q1, "model", history.train_loss, capsys=capsys)[1]


def test_ex04_q1_judges_the_epoch_count(capsys):
    # L1 + SGD hops between two states, so the weights after 200, 250, 400 or 1000 epochs equal those
    # after 300 (the old check passed them) and 299/301 equal each other: only the losses tell them apart
    for epochs in (200, 250, 299, 301, 400, 1000):
        ok, out = verdict(ex04.q1, *_fit_line_history(epochs), capsys=capsys)
        assert not ok and f"cover {epochs} epochs, not 300" in out, epochs
    model_300, history_300 = _fit_line_history(300)
    assert "pass its training losses too" in verdict(ex04.q1, model_300, capsys=capsys)[1]
    model_301 = _fit_line_history(301)[0]
    assert "not those after that run" in verdict(ex04.q1, model_301, history_300.train_loss, capsys=capsys)[1]
    model_adam, X_train, y_train, _, _ = _line_and_model()
    adam = fit(model_adam, (X_train, y_train), nn.L1Loss(), torch.optim.Adam(model_adam.parameters(), lr=0.01), 300)
    assert "from epoch 1 your loss" in verdict(ex04.q1, model_adam, adam.train_loss, capsys=capsys)[1]


def test_ex04_q2_decaying_rate(capsys):
    good = _fit_line(1000, gamma=0.995)
    assert verdict(ex04.q2, good, capsys=capsys)[0]
    assert "without the scheduler" in verdict(ex04.q2, _fit_line(1000), capsys=capsys)[1]
    assert not ex04.q2.passes(_fit_line(1000, gamma=0.9))


def test_ex04_q3_step_function(capsys):
    def right(model, X, y, loss_fn, optimizer):
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def no_backward(model, X, y, loss_fn, optimizer):
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        optimizer.step()
        return loss.item()

    def no_zero_grad(model, X, y, loss_fn, optimizer):
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    assert verdict(ex04.q3, right, capsys=capsys)[0]
    assert "did not change" in verdict(ex04.q3, no_backward, capsys=capsys)[1]
    assert "zero the gradients" in verdict(ex04.q3, no_zero_grad, capsys=capsys)[1]


# --- 05 ----------------------------------------------------------------------------------------

from workflow_utils.exercises import ex05, ex06  # noqa: E402


def test_ex05_q2_precision_recall(capsys):
    def right(matrix, k):
        hits = matrix[k, k].item()
        return hits / matrix[:, k].sum().item(), hits / matrix[k].sum().item()

    def swapped(matrix, k):
        return right(matrix, k)[::-1]

    def counts(matrix, k):
        return matrix[k, k].item(), matrix[k].sum().item()

    assert verdict(ex05.q2, right, capsys=capsys)[0]
    assert "swapped" in verdict(ex05.q2, swapped, capsys=capsys)[1]
    assert "above 1" in verdict(ex05.q2, counts, capsys=capsys)[1]
    assert "no parentheses" in verdict(ex05.q2, right(torch.eye(3), 0), capsys=capsys)[1]


def _accuracy_fn(eval_mode=True, inference=True, divide=True):
    def evaluate_accuracy(model, loader, device):
        if eval_mode:
            model.eval()
        correct, total = 0, 0
        with torch.inference_mode(inference):
            for X, y in loader:
                X, y = X.to(device), y.to(device)
                correct += (model(X).argmax(dim=1) == y).sum().item()
                total += len(y)
        return correct / total if divide else correct

    return evaluate_accuracy


def test_ex05_q3_evaluation_recipe(capsys):
    assert verdict(ex05.q3, _accuracy_fn(), capsys=capsys)[0]
    assert "model.eval()" in verdict(ex05.q3, _accuracy_fn(eval_mode=False), capsys=capsys)[1]
    assert "inference_mode" in verdict(ex05.q3, _accuracy_fn(inference=False), capsys=capsys)[1]
    assert "a count" in verdict(ex05.q3, _accuracy_fn(divide=False), capsys=capsys)[1]


# --- 06 ----------------------------------------------------------------------------------------


def _line_run(epochs, momentum=0.0):
    model, X_train, y_train, _, _ = _line_and_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum)
    fit(model, (X_train, y_train), nn.L1Loss(), optimizer, epochs)
    return model, optimizer, X_train, y_train


def test_ex06_q1_state_dict_file(tmp_path, capsys):
    model_0 = _line_run(100)[0]
    good, whole, fresh = tmp_path / "good.pth", tmp_path / "whole.pth", tmp_path / "fresh.pth"
    torch.save(model_0.state_dict(), good)
    torch.save(model_0, whole)
    torch.save(_line_and_model()[0].state_dict(), fresh)
    assert verdict(ex06.q1, good, capsys=capsys)[0]
    assert verdict(ex06.q1, str(good), capsys=capsys)[0]
    assert "refuses this file" in verdict(ex06.q1, whole, capsys=capsys)[1]
    assert "not model_0's trained" in verdict(ex06.q1, fresh, capsys=capsys)[1]
    assert "no file at" in verdict(ex06.q1, tmp_path / "missing.pth", capsys=capsys)[1]


def test_ex06_q2_checkpoint_with_loss(tmp_path, capsys):
    model, optimizer, X_train, y_train = _line_run(50, momentum=0.9)
    with torch.inference_mode():
        loss = nn.L1Loss()(model(X_train), y_train)

    def saved(name, **checkpoint):
        torch.save(checkpoint, tmp_path / name)
        return tmp_path / name

    parts = {"epoch": 50, "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict()}
    assert verdict(ex06.q2, saved("good.pth", **parts, loss=loss.item()), capsys=capsys)[0]
    assert "missing 'loss'" in verdict(ex06.q2, saved("no_loss.pth", **parts), capsys=capsys)[1]
    no_opt = {k: v for k, v in parts.items() if k != "optimizer_state"}
    assert "momentum is lost" in verdict(ex06.q2, saved("no_opt.pth", **no_opt, loss=loss.item()), capsys=capsys)[1]
    assert ".item()" in verdict(ex06.q2, saved("tensor.pth", **parts, loss=loss), capsys=capsys)[1]
    assert "expected the L1 loss" in verdict(ex06.q2, saved("wrong.pth", **parts, loss=0.5), capsys=capsys)[1]


def _resume_fn(load_optimizer=True, momentum=0.9, same_model=True):
    def resume(path):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = LinearRegressionModel()
        model.load_state_dict(checkpoint["model_state"])
        optimizer = torch.optim.SGD(
            (model if same_model else LinearRegressionModel()).parameters(), lr=0.01, momentum=momentum
        )
        if load_optimizer:
            optimizer.load_state_dict(checkpoint["optimizer_state"])
        return model, optimizer, checkpoint["epoch"]

    return resume


def test_ex06_q3_resume(capsys):
    assert verdict(ex06.q3, _resume_fn(), capsys=capsys)[0]
    assert "starts cold" in verdict(ex06.q3, _resume_fn(load_optimizer=False), capsys=capsys)[1]
    assert "different model" in verdict(ex06.q3, _resume_fn(same_model=False), capsys=capsys)[1]
    assert "(model, optimizer, epochs_done)" in verdict(ex06.q3, lambda path: LinearRegressionModel(), capsys=capsys)[1]


# --- 07 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_reader(tmp_path_factory):
    """A quickly trained DigitsMLP and a read_digit function built on it, as in notebook 07."""
    import os

    from workflow_utils.data import load_digits_data
    from workflow_utils.engine import digits_recipe
    from workflow_utils.evaluation import predict
    from workflow_utils.models import DigitsMLP

    root = tmp_path_factory.mktemp("digits")
    old = os.getcwd()
    os.chdir(root)
    try:
        digits = load_digits_data("data/digits")
        torch.manual_seed(42)
        mlp = DigitsMLP()
        loss_fn, optimizer, scheduler = digits_recipe(mlp, 20, steps_per_epoch=len(digits.train))
        fit(mlp, digits.train, loss_fn, optimizer, 20, scheduler=scheduler, seed=42)
    finally:
        os.chdir(old)

    def read_digit(drawing):
        probabilities = predict(mlp, digits.normalize(drawing / 16).reshape(1, 1, 8, 8))[0].softmax(dim=1)[0]
        return probabilities.argmax().item(), probabilities

    return root, digits, mlp, read_digit


class _Wrapped(nn.Module):
    """A student's own model class around a trained one: an unusual but correct answer to ex07."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def test_ex07_q1_drawn_one(digits_reader, capsys):
    read_digit = digits_reader[3]
    one = torch.zeros(8, 8)
    one[:, 3:5] = 16
    assert verdict(ex07.q1, one, read_digit, capsys=capsys)[0]
    assert "0-1 scale" in verdict(ex07.q1, one / 16, read_digit, capsys=capsys)[1]
    assert "shape (8, 8)" in verdict(ex07.q1, one.flatten(), read_digit, capsys=capsys)[1]
    zero = torch.zeros(8, 8)
    zero[1:7, 2] = zero[1:7, 5] = zero[1, 2:6] = zero[6, 2:6] = 16
    ok, out = verdict(ex07.q1, zero, read_digit, capsys=capsys)
    assert not ok and "reads your drawing as a 0" in out


def test_ex07_q2_trained_mlp(digits_reader, monkeypatch, capsys):
    from workflow_utils.models import DigitsCNN, DigitsMLP

    _, _, mlp, _ = digits_reader
    monkeypatch.chdir(digits_reader[0].parent)  # any folder will do: the check reads no files
    assert verdict(ex07.q2, mlp, capsys=capsys)[0]
    assert "that is the CNN" in verdict(ex07.q2, DigitsCNN(), capsys=capsys)[1]
    torch.manual_seed(0)
    assert "train it" in verdict(ex07.q2, DigitsMLP(), capsys=capsys)[1]


def test_ex07_q3_batch_reader(digits_reader, capsys):
    from workflow_utils.evaluation import predict

    _, digits, mlp, read_digit = digits_reader

    def reader(prepare, softmax_dim=1):
        def read_many(drawings):
            probabilities = predict(mlp, prepare(drawings))[0].softmax(dim=softmax_dim)
            return probabilities.argmax(dim=1), probabilities

        return read_many

    right = reader(lambda d: digits.normalize(d / 16).unsqueeze(1))
    assert verdict(ex07.q3, right, read_digit, capsys=capsys)[0]
    not_normalized = reader(lambda d: (d / 16).unsqueeze(1))
    assert "digits.normalize" in verdict(ex07.q3, not_normalized, read_digit, capsys=capsys)[1]
    one_image = reader(lambda d: digits.normalize(d / 16).reshape(1, 1, 8, 8))
    assert "(N, 1, 8, 8)" in verdict(ex07.q3, one_image, read_digit, capsys=capsys)[1]
    wrong_dim = reader(lambda d: digits.normalize(d / 16).unsqueeze(1), softmax_dim=0)
    assert "softmax over dim=1" in verdict(ex07.q3, wrong_dim, read_digit, capsys=capsys)[1]


def test_checks_leave_the_callers_folder_and_random_state_alone(tmp_path, monkeypatch, capsys):
    """Checks neither write data/digits into the current folder nor re-seed the caller's RNG."""
    from workflow_utils.data import TensorImageDataset, make_loader
    from workflow_utils.exercises import ex04
    from workflow_utils.models import DigitsMLP

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()

    def train_one_step(model, X, y, loss_fn, optimizer):
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    assert verdict(ex04.q3, train_one_step, capsys=capsys)[0]
    assert torch.equal(torch.random.get_rng_state(), state)  # ex04.q3 used to leave the RNG at seed 0
    assert not verdict(ex01.q3, 0.3, 0.4, capsys=capsys)[0]
    loader = make_loader(TensorImageDataset(torch.rand(5, 1, 8, 8), torch.arange(5)), batch_size=32)
    assert "32 images" in verdict(ex01.q4, loader, capsys=capsys)[1]
    torch.manual_seed(0)
    assert "train it" in verdict(ex07.q2, DigitsMLP(), capsys=capsys)[1]
    assert list(tmp_path.iterdir()) == []  # no data/digits written here


# --- the open-ended exercises: a whole step from a blank cell, checked by what it does ---------


def test_ex01_q5_own_line(capsys):
    def splits(X, fraction=0.8):
        return split_data(X, 2 * X - 1, train_fraction=fraction)

    assert verdict(ex01.q5, *splits(torch.arange(0, 2, 0.01).unsqueeze(1)), capsys=capsys)[0]
    assert verdict(ex01.q5, *splits(torch.arange(0, 2, 2 / 128).unsqueeze(1)), capsys=capsys)[0]  # any step will do
    assert (
        "160 training points" in verdict(ex01.q5, *splits(torch.arange(0, 2, 0.01).unsqueeze(1), 0.7), capsys=capsys)[1]
    )
    assert (
        "shape (N, 1)"
        in verdict(ex01.q5, *(t.flatten() for t in splits(torch.arange(0, 2, 0.01).unsqueeze(1))), capsys=capsys)[1]
    )
    X = torch.arange(0, 2, 0.01).unsqueeze(1)
    assert "y = 2 * x - 1" in verdict(ex01.q5, *split_data(X, 2 * X + 1, train_fraction=0.8), capsys=capsys)[1]
    assert "one step short of 2" in verdict(ex01.q5, *splits(torch.linspace(0, 2, 150).unsqueeze(1)), capsys=capsys)[1]
    shuffled = X[torch.randperm(200, generator=torch.Generator().manual_seed(0))]
    assert "evenly spaced" in verdict(ex01.q5, *splits(shuffled), capsys=capsys)[1]


class OwnNet(nn.Module):
    def __init__(self, activation=True, softmax=False):
        super().__init__()
        self.hidden, self.out = nn.Linear(64, 32), nn.Linear(32, 10)
        self.activation, self.softmax = activation, softmax

    def forward(self, x):
        h = self.hidden(x.flatten(1))
        logits = self.out(torch.relu(h) if self.activation else h)
        return logits.softmax(dim=1) if self.softmax else logits


def test_ex02_q4_own_model_class(capsys):
    assert verdict(ex02.q4, OwnNet(), capsys=capsys)[0]
    assert "linear end to end" in verdict(ex02.q4, OwnNet(activation=False), capsys=capsys)[1]
    assert "probabilities" in verdict(ex02.q4, OwnNet(softmax=True), capsys=capsys)[1]
    assert "not the class itself" in verdict(ex02.q4, OwnNet, capsys=capsys)[1]
    ready_made = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    assert "ready-made" in verdict(ex02.q4, ready_made, capsys=capsys)[1]
    from workflow_utils.models import DigitsCNN

    assert "ready-made" in verdict(ex02.q4, DigitsCNN(), capsys=capsys)[1]


class SequentialNet(nn.Sequential):
    """A correct, unusual answer: the student's own class, built on nn.Sequential."""

    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


class BatchNormDropoutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.drop, self.out = nn.Dropout(0.5), nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.out(self.drop(torch.relu(self.bn(self.conv(x))).flatten(1)))


def test_ex02_q4_accepts_a_subclass_of_sequential(capsys):
    ok, out = verdict(ex02.q4, SequentialNet(), capsys=capsys)
    assert ok, out  # was rejected as "a ready-made class"


@pytest.mark.parametrize("exercise", ["q3", "q4"])
@pytest.mark.parametrize("training", [True, False])
def test_ex02_checks_leave_the_model_and_the_rng_as_they_found_them(exercise, training, capsys):
    torch.manual_seed(0)
    if exercise == "q3":
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10)
        )
    else:
        model = BatchNormDropoutNet()
    model.train(training)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    torch.manual_seed(7)
    verdict(getattr(ex02, exercise), model, capsys=capsys)
    after_check = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after_check, torch.rand(3))  # the check did not advance the global RNG
    assert all(m.training == training for m in model.modules())  # train/eval mode as it was
    for name, b in model.named_buffers():  # BatchNorm's running statistics untouched
        assert torch.equal(b, buffers[name]), name


def _setup(loss_fn, make_optimizer, seed=42):
    model = _line_and_model(seed)[0]
    return model, loss_fn, make_optimizer(model.parameters())


def test_ex03_q4_own_loss_and_optimizer(capsys):
    assert verdict(ex03.q4, *_setup(nn.L1Loss(), lambda p: torch.optim.Adam(p, lr=0.01)), capsys=capsys)[0]
    assert verdict(ex03.q4, *_setup(nn.MSELoss(), lambda p: torch.optim.SGD(p, lr=0.5)), capsys=capsys)[0]
    slow = verdict(ex03.q4, *_setup(nn.L1Loss(), lambda p: torch.optim.SGD(p, lr=0.01)), capsys=capsys)[1]
    assert "validation MAE is 0.0658" in slow
    assert (
        "training blew up"
        in verdict(ex03.q4, *_setup(nn.MSELoss(), lambda p: torch.optim.SGD(p, lr=1.5)), capsys=capsys)[1]
    )
    assert (
        "untrained"
        in verdict(ex03.q4, *_setup(nn.L1Loss(), lambda p: torch.optim.Adam(p, lr=0.01), seed=0), capsys=capsys)[1]
    )
    model, loss_fn, _ = _setup(nn.L1Loss(), lambda p: None)
    other = LinearRegressionModel()
    assert "another model's" in verdict(ex03.q4, model, loss_fn, torch.optim.Adam(other.parameters()), capsys=capsys)[1]


def test_ex03_q4_chooses_on_validation_and_tests_once(capsys):
    """The series' rule (01, 'Why three splits?'): choose on validation, score the test split once."""
    ok, out = verdict(ex03.q4, *_setup(nn.L1Loss(), lambda p: torch.optim.Adam(p, lr=0.01)), capsys=capsys)
    assert ok and "validation MAE 0.0003; test MAE, measured once now: 0.0004" in out
    ok, out = verdict(ex03.q4, *_setup(nn.L1Loss(), lambda p: torch.optim.SGD(p, lr=0.01)), capsys=capsys)
    assert not ok and "test MAE" not in out  # a rejected choice never sees the test split


def test_ex03_q4_names_a_class_passed_for_an_instance(capsys):
    model, _, optimizer = _setup(None, lambda p: torch.optim.Adam(p, lr=0.01))
    ok, out = verdict(ex03.q4, model, nn.MSELoss, optimizer, capsys=capsys)
    assert not ok and "not classes" in out and "nn.MSELoss()" in out
    assert "ambiguous" not in out and "raised" not in out  # was "Boolean value of Tensor ... is ambiguous"
    assert len(out.splitlines()) == 2  # one line for the verdict, one for the hint
    ok, out = verdict(ex03.q4, model, nn.L1Loss(), torch.optim.SGD, capsys=capsys)
    assert not ok and "not classes" in out


def _epoch_fn(train_mode=True, weighted=True):
    def train_epoch(model, loader, loss_fn, optimizer, device):
        if train_mode:
            model.train()
        total, seen = 0.0, 0
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            loss = loss_fn(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * (len(y) if weighted else 1)
            seen += len(y) if weighted else 1
        return total / seen

    return train_epoch


def test_ex04_q4_train_epoch(capsys):
    assert verdict(ex04.q4, _epoch_fn(), capsys=capsys)[0]
    assert "still in eval mode" in verdict(ex04.q4, _epoch_fn(train_mode=False), capsys=capsys)[1]
    assert "weight each by its batch size" in verdict(ex04.q4, _epoch_fn(weighted=False), capsys=capsys)[1]
    assert "did not change" in verdict(ex04.q4, lambda model, loader, *_: 0.0, capsys=capsys)[1]


def test_ex04_q4_accepts_dividing_by_the_dataset_size(capsys):
    def train_epoch(model, loader, loss_fn, optimizer, device):  # the pattern 08's script uses
        model.train()
        total = 0.0
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            loss = loss_fn(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        return total / len(loader.dataset)

    assert verdict(ex04.q4, train_epoch, capsys=capsys)[0]  # the check used to pass a plain list


def test_ex05_q3_leaves_the_random_state_alone(capsys):
    for answer in (_accuracy_fn(), _accuracy_fn(eval_mode=False)):  # dropout left on draws random masks
        state = torch.random.get_rng_state()
        verdict(ex05.q3, answer, capsys=capsys)
        assert torch.equal(torch.random.get_rng_state(), state)


def test_ex05_q3_q4_accept_dividing_by_the_dataset_size(capsys):
    # 04's validation_accuracy divides by len(loader.dataset); the checks used to pass a plain list
    def evaluate_accuracy(model, loader, device):
        model.eval()
        correct = 0
        with torch.no_grad():
            for X, y in loader:
                correct += (model(X.to(device)).argmax(dim=1) == y.to(device)).sum().item()
        return correct / len(loader.dataset)

    def confusion(model, loader, num_classes, device):
        matrix = _confusion_fn()(model, loader, num_classes, device)
        assert matrix.sum().item() == len(loader.dataset)
        return matrix

    assert verdict(ex05.q3, evaluate_accuracy, capsys=capsys)[0]
    assert verdict(ex05.q4, confusion, capsys=capsys)[0]


def test_ex05_q2_accepts_a_list_pair(capsys):
    def as_list(matrix, k):
        hits = matrix[k, k].item()
        return [hits / matrix[:, k].sum().item(), hits / matrix[k].sum().item()]

    assert verdict(ex05.q2, as_list, capsys=capsys)[0]


def test_ex04_q1_names_test_losses_passed_for_training_losses(capsys):
    model, X_train, y_train, X_test, y_test = _line_and_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    history = fit(model, (X_train, y_train), nn.L1Loss(), optimizer, 300, val_data=(X_test, y_test))
    assert "those are the test losses" in verdict(ex04.q1, model, history.val_loss, capsys=capsys)[1]


def test_ex06_q2_names_a_numpy_loss(tmp_path, capsys):
    import numpy as np

    model, optimizer, X_train, y_train = _line_run(50, momentum=0.9)
    with torch.inference_mode():
        loss = nn.L1Loss()(model(X_train), y_train).item()
    path = tmp_path / "numpy_loss.pth"
    state = {"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict()}
    torch.save({"epoch": 50, **state, "loss": np.float32(loss)}, path)
    assert "NumPy number" in verdict(ex06.q2, path, capsys=capsys)[1]


def _confusion_fn(eval_mode=True, swap=False):
    def confusion(model, loader, num_classes, device):
        if eval_mode:
            model.eval()
        matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
        with torch.inference_mode():
            for X, y in loader:
                for true, pred in zip(y.tolist(), model(X.to(device)).argmax(dim=1).tolist()):
                    matrix[(pred, true) if swap else (true, pred)] += 1
        return matrix

    return confusion


def test_ex05_q4_confusion_matrix(capsys):
    assert verdict(ex05.q4, _confusion_fn(), capsys=capsys)[0]
    assert "model.eval()" in verdict(ex05.q4, _confusion_fn(eval_mode=False), capsys=capsys)[1]
    assert "swapped" in verdict(ex05.q4, _confusion_fn(swap=True), capsys=capsys)[1]
    assert "(10, 10) tensor" in verdict(ex05.q4, lambda *_: [[0] * 10] * 10, capsys=capsys)[1]


def _run_fns(keys=("model", "optimizer", "scheduler")):
    def save_run(path, model, optimizer, scheduler, epochs_done):
        objects = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
        torch.save({"epoch": epochs_done, **{k: objects[k].state_dict() for k in keys}}, path)

    def load_run(path, model, optimizer, scheduler):
        checkpoint = torch.load(path, weights_only=True)
        objects = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
        for k in keys:
            objects[k].load_state_dict(checkpoint[k])
        return checkpoint["epoch"]

    return save_run, load_run


def test_ex06_q4_save_and_load_a_run(capsys):
    assert verdict(ex06.q4, *_run_fns(), capsys=capsys)[0]
    assert "schedule starts over" in verdict(ex06.q4, *_run_fns(("model", "optimizer")), capsys=capsys)[1]
    assert "starts cold" in verdict(ex06.q4, *_run_fns(("model", "scheduler")), capsys=capsys)[1]
    pickled = (lambda path, model, *_: torch.save(model, path), _run_fns()[1])
    assert "refuses this file" in verdict(ex06.q4, *pickled, capsys=capsys)[1]


def test_ex07_q4_own_pipeline(digits_reader, capsys):
    from workflow_utils.models import DigitsMLP

    mlp = digits_reader[2]

    assert verdict(ex07.q4, _Wrapped(mlp), capsys=capsys)[0]
    assert "ready-made" in verdict(ex07.q4, mlp, capsys=capsys)[1]
    torch.manual_seed(0)
    assert "below 0.95" in verdict(ex07.q4, _Wrapped(DigitsMLP()), capsys=capsys)[1]


def test_ex07_checks_leave_the_models_mode_alone(digits_reader, capsys):
    mlp = digits_reader[2]

    shared = {m: m.training for m in mlp.modules()}  # the fixture's model is shared with other tests
    for exercise, model in ((ex07.q2, mlp), (ex07.q4, _Wrapped(mlp))):
        for mode in ("train", "eval", "mixed"):
            model.train(mode != "eval")
            if mode == "mixed":
                mlp.layers[1].eval()  # one layer in eval mode, the rest training
            before = {name: m.training for name, m in model.named_modules()}
            assert verdict(exercise, model, capsys=capsys)[0]
            assert {name: m.training for name, m in model.named_modules()} == before, (exercise.name, mode)
    for m, training in shared.items():
        m.train(training)


# --- every solution runs, in a namespace like its notebook's, and passes its own check ---------

import ast  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = {
    1: "01_data",
    2: "02_model",
    3: "03_loss_and_optimizer",
    4: "04_training_loop",
    5: "05_evaluation",
    6: "06_save_and_load",
    7: "07_putting_it_all_together",
}


def check_arguments(lesson: str, name: str) -> list[str]:
    """The argument expressions of ``name.check(...)`` in the lesson notebook's exercise cell."""
    pattern = re.compile(rf"^{re.escape(name)}\.check\(.*\)$", re.MULTILINE)
    for cell in json.loads((NOTEBOOKS / f"{lesson}.ipynb").read_text())["cells"]:
        found = pattern.search("".join(cell["source"]))
        if cell["cell_type"] == "code" and found:
            return [ast.unparse(arg) for arg in ast.parse(found.group(0)).body[0].value.args]
    raise AssertionError(f"{lesson}.ipynb has no cell calling {name}.check(...)")


def exercises_of(module):
    return [getattr(module, q) for q in sorted(vars(module)) if re.fullmatch(r"q\d", q)]


def _line_namespace():
    from workflow_utils.data import make_line_data, split_data

    X_train, y_train, X_test, y_test = split_data(*make_line_data(weight=0.7, bias=0.3))
    return {
        "torch": torch,
        "nn": nn,
        "fit": fit,
        "make_line_data": make_line_data,
        "split_data": split_data,
        "LinearRegressionModel": LinearRegressionModel,
        "device": torch.device("cpu"),
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
    }


def _namespace_01(tmp_path):
    from workflow_utils.data import load_digits_data, make_loader

    root = write_digits_image_folder("data/digits")
    train, _ = read_image_folder(root, "train")
    return {
        **_line_namespace(),
        "read_image_folder": read_image_folder,
        "make_loader": make_loader,
        "digits": load_digits_data("data/digits"),
        "mean": train.mean().item(),
        "std": train.std().item(),
    }


def _namespace_03(tmp_path):
    ns = _line_namespace()

    def train_line(lr, optimizer_name="SGD", loss_fn=None, epochs=100):  # as 03 defines it
        torch.manual_seed(42)
        model = LinearRegressionModel()
        optimizer = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam}[optimizer_name](model.parameters(), lr=lr)
        return fit(model, (ns["X_train"], ns["y_train"]), loss_fn or nn.MSELoss(), optimizer, epochs)

    return {**ns, "train_line": train_line, "loss_fn": nn.L1Loss(), "model": nn.Linear(2, 2)}


def _namespace_05(tmp_path):
    # part 2 of 05 gives its objects names of its own (test_notebook_names.py), so exercise 1 finds part 1's line
    # split; a cross-entropy loss_fn left in the namespace must not matter to a solution
    return {**_line_namespace(), "loss_fn": nn.CrossEntropyLoss()}


def _namespace_06(tmp_path):
    from pathlib import Path as _Path

    ns = {**_line_namespace(), "MODEL_DIR": _Path("models")}
    ns["MODEL_DIR"].mkdir()
    ns["model_0"] = _line_run(100)[0]
    ns["first_half_model"], ns["first_half_opt"] = _line_run(50, momentum=0.9)[:2]
    ns["loss_fn"] = nn.L1Loss()  # part 1's; part 2 has its own names (tests/test_notebook_names.py)
    return ns


NAMESPACES = {
    1: _namespace_01,
    2: lambda _: {"torch": torch, "nn": nn, "LinearRegressionModel": NotebookLine},
    3: _namespace_03,
    4: lambda _: _line_namespace(),
    5: _namespace_05,
    6: _namespace_06,
}


@pytest.mark.parametrize("number", sorted(NAMESPACES))
def test_every_solution_runs_and_passes_its_check(number, in_tmp, capsys):
    module = {1: ex01, 2: ex02, 3: ex03, 4: ex04, 5: ex05, 6: ex06}[number]
    namespace = NAMESPACES[number](in_tmp)
    for exercise in exercises_of(module):
        exec(exercise.solution_code, namespace)  # in order, like the solution notebook
        answer = [eval(arg, namespace) for arg in check_arguments(LESSONS[number], exercise.name)]
        assert verdict(exercise, *answer, capsys=capsys)[0], f"{exercise.name}'s solution fails its check"


def test_every_07_solution_runs_and_passes_its_check(digits_reader, in_tmp, capsys):
    from workflow_utils.checkpoint import load_model
    from workflow_utils.engine import digits_recipe
    from workflow_utils.evaluation import predict
    from workflow_utils.models import DigitsMLP

    _, digits, mlp, read_digit = digits_reader
    namespace = {
        "torch": torch,
        "nn": nn,
        "fit": fit,
        "digits": digits,
        "epochs": 20,
        "device": torch.device("cpu"),
        "DigitsMLP": DigitsMLP,
        "digits_recipe": digits_recipe,
        "predict": predict,
        "load_model": load_model,
        "reloaded": mlp,
        "read_digit": read_digit,
    }
    for exercise in exercises_of(ex07):
        exec(exercise.solution_code, namespace)
        answer = [eval(arg, namespace) for arg in check_arguments(LESSONS[7], exercise.name)]
        assert verdict(exercise, *answer, capsys=capsys)[0], f"{exercise.name}'s solution fails its check"


def test_every_exercise_has_a_check_cell_and_a_solution_cell():
    for number, lesson in LESSONS.items():
        module = {1: ex01, 2: ex02, 3: ex03, 4: ex04, 5: ex05, 6: ex06, 7: ex07}[number]
        solutions = (NOTEBOOKS / "solutions" / f"{lesson}_solutions.ipynb").read_text()
        for exercise in exercises_of(module):
            assert check_arguments(lesson, exercise.name)
            assert f"{exercise.name}.check(" in solutions, f"{lesson}_solutions.ipynb does not solve {exercise.name}"


def test_the_readme_counts_the_exercises():
    import importlib
    import re
    from pathlib import Path

    from workflow_utils.exercises import Exercise

    counts = []
    for path in sorted((Path(__file__).resolve().parents[1] / "workflow_utils" / "exercises").glob("ex0*.py")):
        module = importlib.import_module(f"workflow_utils.exercises.{path.stem}")
        counts.append(sum(isinstance(v, Exercise) for v in vars(module).values()))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert int(re.search(r"(\d+) checked exercises", readme).group(1)) == sum(counts)


# --- ex08 -------------------------------------------------------------------------------------------------


def test_ex08_q1_accepts_the_makefiles_form_and_a_path_to_torchrun(capsys):
    from workflow_utils.exercises import ex08

    rest = "--nproc_per_node=4 -m workflow_utils.train_digits --epochs 10 --batch-size 128"
    for command in (f"OMP_NUM_THREADS=1 torchrun {rest}", f".venv/bin/torchrun {rest}", f".venv/bin/python -m torch.distributed.run {rest}"):  # fmt: skip
        assert verdict(ex08.q1, command, capsys=capsys)[0], command
    assert "start the command with torchrun" in verdict(ex08.q1, f"OMP_NUM_THREADS=1 python {rest}", capsys=capsys)[1]
    out = verdict(ex08.q1, f"torchrun {rest} '", capsys=capsys)[1]  # a stray quote: our words, not shlex's
    assert "never closed" in out and "raised" not in out


def test_ex08_q2_accepts_a_list_as_well_as_a_tuple(capsys):
    import math

    import numpy as np

    from workflow_utils.exercises import ex08

    def shares(n_images, processes):
        per_process = math.ceil(n_images / processes)
        return [per_process, per_process * processes - n_images]

    assert verdict(ex08.q2, shares, capsys=capsys)[0]
    assert verdict(ex08.q2, lambda n, p: np.array(shares(n, p)), capsys=capsys)[0]  # a NumPy pair is two numbers
    assert "round up" in verdict(ex08.q2, lambda n, p: [n // p, 0], capsys=capsys)[1]
    assert "two numbers" in verdict(ex08.q2, lambda n, p: "629, 1", capsys=capsys)[1]


# --- checks that judge right ("Learnable alone", item 5): each fault has its own test ------------

import copy  # noqa: E402

import numpy as np  # noqa: E402


def _restoring_accuracy_fn(use_copy=False):
    """A correct evaluate_accuracy that hands the caller's model back in the mode it came in."""

    def evaluate_accuracy(model, loader, device):
        judged = copy.deepcopy(model).eval() if use_copy else model  # a copy: the caller's model is never touched
        was_training = judged.training
        judged.eval()
        try:
            correct = 0
            with torch.inference_mode():
                for X, y in loader:
                    correct += (judged(X.to(device)).argmax(dim=1) == y.to(device)).sum().item()
        finally:
            judged.train(was_training)
        return correct / len(loader.dataset)

    return evaluate_accuracy


def _late_eval_accuracy_fn():
    """The typical mistake: the loop runs in training mode, model.eval() comes only after it."""
    inner = _accuracy_fn(eval_mode=False)

    def evaluate_accuracy(model, loader, device):
        result = inner(model, loader, device)
        model.eval()
        return result

    return evaluate_accuracy


def _restoring_confusion_fn(use_copy=False):
    def confusion(model, loader, num_classes, device):
        judged = copy.deepcopy(model) if use_copy else model
        was_training = judged.training
        matrix = _confusion_fn()(judged, loader, num_classes, device)  # eval mode, inference_mode
        judged.train(was_training)
        return matrix

    return confusion


def test_ex05_q3_q4_accept_an_evaluation_that_restores_the_callers_mode(capsys):
    # was rejected with "the model is still in training mode, so dropout was active" (it was not)
    for use_copy in (False, True):
        ok, out = verdict(ex05.q3, _restoring_accuracy_fn(use_copy), capsys=capsys)
        assert ok, out
        ok, out = verdict(ex05.q4, _restoring_confusion_fn(use_copy), capsys=capsys)
        assert ok, out
    for answer in (_accuracy_fn(eval_mode=False), _late_eval_accuracy_fn()):  # predicted in training mode
        ok, out = verdict(ex05.q3, answer, capsys=capsys)
        assert not ok and "dropout was active" in out and "model.eval()" in out, out
    ok, out = verdict(ex05.q4, _confusion_fn(eval_mode=False), capsys=capsys)
    assert not ok and "dropout was active" in out


def _one_step(order):
    """train_one_step with its steps in ``order`` (names of the steps below)."""

    def train_one_step(model, X, y, loss_fn, optimizer):
        loss = loss_fn(model(X), y)
        steps = {
            "zero_grad": optimizer.zero_grad,
            "model.zero_grad": model.zero_grad,
            "zero_grad(set_to_none=False)": lambda: optimizer.zero_grad(set_to_none=False),
            "backward": loss.backward,
            "step": optimizer.step,
        }
        for name in order:
            steps[name]()
        return loss.item()

    return train_one_step


def test_ex04_q3_names_zero_grad_between_backward_and_step(capsys):
    for order in (
        ("model.zero_grad", "backward", "step"),  # unusual but correct: the model's zero_grad
        ("backward", "step", "zero_grad"),  # unusual but correct: clear after the step, ready for the next
        ("zero_grad(set_to_none=False)", "backward", "step"),
    ):
        ok, out = verdict(ex04.q3, _one_step(order), capsys=capsys)
        assert ok, (order, out)
    ok, out = verdict(ex04.q3, _one_step(("backward", "zero_grad", "step")), capsys=capsys)
    assert not ok and "zero_grad() came after loss.backward()" in out and "cleared the gradients" in out
    assert "call loss.backward() before optimizer.step()" not in out  # the student did call it before step
    ok, out = verdict(ex04.q3, _one_step(("backward", "zero_grad(set_to_none=False)", "step")), capsys=capsys)
    assert not ok and "cleared the gradients" in out
    ok, out = verdict(ex04.q3, _one_step(("zero_grad", "step", "backward")), capsys=capsys)
    assert not ok and "optimizer.step() ran before loss.backward()" in out
    ok, out = verdict(ex04.q3, _one_step(("zero_grad", "step")), capsys=capsys)
    assert not ok and "loss.backward() was never called" in out
    # 04's rule 3 broken: step before backward, zero_grad in between; the weights still move (a step late)
    ok, out = verdict(ex04.q3, _one_step(("step", "zero_grad", "backward")), capsys=capsys)
    assert not ok and "optimizer.step() ran before loss.backward()" in out
    assert "zero the gradients before backward()" not in out  # they did zero them


def _hand_loop_losses(record_after_step=False, epochs=300):
    """The 04 loop written by hand, recording each epoch's loss before or after optimizer.step()."""
    model, X_train, y_train, _, _ = _line_and_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    for _ in range(epochs):
        loss = nn.L1Loss()(model(X_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if record_after_step:
            with torch.inference_mode():
                losses.append(nn.L1Loss()(model(X_train), y_train).item())  # the updated model's loss
        else:
            losses.append(loss.item())
    return model, losses


def test_ex04_q1_names_losses_recorded_after_the_step(capsys):
    model, losses = _hand_loop_losses()
    assert verdict(ex04.q1, model, losses, capsys=capsys)[0]  # a hand-written loop's plain list
    assert verdict(ex04.q1, model, np.array(losses, dtype=np.float32), capsys=capsys)[0]  # unusual: a NumPy array
    assert verdict(ex04.q1, model, torch.tensor(losses), capsys=capsys)[0]  # unusual: one 1-D tensor
    ok, out = verdict(ex04.q1, *_hand_loop_losses(record_after_step=True), capsys=capsys)
    assert not ok and "after optimizer.step()" in out and "belongs to the next epoch" in out
    reason = out.split("\n  hint:")[0]
    assert "manual_seed" not in reason  # was: "call torch.manual_seed(42) right before building a new model"


def _decay_run(order="after", schedule="exponential"):
    """1000 epochs with a rate decaying by 0.995 per epoch, written by hand."""
    model, X_train, y_train, _, _ = _line_and_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = {
        "exponential": lambda: torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.995),
        "lambda": lambda: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.995**epoch),
        "by hand": lambda: None,
    }[schedule]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns about the wrong order; the check must say it too
        for _ in range(1000):
            loss = (model(X_train) - y_train).abs().mean()  # L1 written out
            optimizer.zero_grad()
            loss.backward()
            if order == "before":
                scheduler.step()
            optimizer.step()
            if order == "after" and scheduler is not None:
                scheduler.step()
            elif scheduler is None:
                for group in optimizer.param_groups:
                    group["lr"] *= 0.995
    return model


def test_ex04_q2_names_the_scheduler_stepped_before_the_optimizer(capsys):
    assert verdict(ex04.q2, _decay_run(), capsys=capsys)[0]
    assert verdict(ex04.q2, _decay_run(schedule="lambda"), capsys=capsys)[0]  # unusual: LambdaLR
    assert verdict(ex04.q2, _decay_run(schedule="by hand"), capsys=capsys)[0]  # unusual: the rate decayed by hand
    ok, out = verdict(ex04.q2, _decay_run(order="before"), capsys=capsys)
    assert not ok and "scheduler.step() ran before optimizer.step()" in out


def test_ex05_q1_the_test_split_would_choose_another_rate(capsys):
    runs = ex05._candidate_runs()
    by_val = min(runs, key=lambda lr: runs[lr]["val"])
    by_test = min(runs, key=lambda lr: runs[lr]["test"])
    assert (by_val, by_test) == (0.02, 0.05)  # the exercise can tell the two criteria apart
    margin = min(abs(runs[0.02][s] - runs[0.05][s]) for s in ("val", "test"))
    assert margin > 0.005  # a clear margin, not a near-tie that a CPU kernel could flip
    ok, out = verdict(ex05.q1, 0.05, runs[0.05]["test"], capsys=capsys)
    assert not ok and "chose by the test split" in out
    ok, out = verdict(ex05.q1, 0.02, runs[0.02]["test"], capsys=capsys)
    assert ok, out


def _rate_run(lr, fit_on="random 30"):
    """Validation and test errors of a seed-42 line trained 300 epochs at ``lr`` on 30 random training points."""
    model, X_train, y_train, X_test, y_test = _line_and_model()
    X_fit, y_fit, X_val, y_val = split_data(X_train, y_train, train_fraction=0.75, shuffle=True)
    data = {"random 30": (X_fit, y_fit), "all 40": (X_train, y_train), "first 30": (X_train[:30], y_train[:30])}
    fit(model, data[fit_on], nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=lr), 300)
    with torch.inference_mode():
        return model(X_val) - y_val, model(X_test) - y_test


def test_ex05_q1_chooses_the_rate_on_validation_and_tests_once(capsys):
    val_02, test_02 = _rate_run(0.02)
    val_05, test_05 = _rate_run(0.05)
    assert val_02.abs().mean() < val_05.abs().mean()  # validation chooses 0.02
    mae = test_02.abs().mean().item()
    assert verdict(ex05.q1, 0.02, mae, capsys=capsys)[0]
    assert verdict(ex05.q1, np.float32(0.02), np.float64(mae), capsys=capsys)[0]  # unusual: NumPy numbers
    assert verdict(ex05.q1, 2e-2, nn.L1Loss()(test_02, torch.zeros_like(test_02)).item(), capsys=capsys)[0]
    assert "validation MAE" in verdict(ex05.q1, 0.02, val_02.abs().mean().item(), capsys=capsys)[1]
    assert "that is the MSE" in verdict(ex05.q1, 0.02, (test_02**2).mean().item(), capsys=capsys)[1]
    assert "other run" in verdict(ex05.q1, 0.02, test_05.abs().mean().item(), capsys=capsys)[1]
    all_40 = _rate_run(0.02, fit_on="all 40")[1].abs().mean().item()  # trained on the validation points too
    assert "10 validation points" in verdict(ex05.q1, 0.02, all_40, capsys=capsys)[1]
    in_order = _rate_run(0.02, fit_on="first 30")[1].abs().mean().item()
    assert "shuffle=True" in verdict(ex05.q1, 0.02, in_order, capsys=capsys)[1]
    assert ".item()" in verdict(ex05.q1, 0.02, test_02.abs().mean(), capsys=capsys)[1]
    assert "0.02 or 0.05" in verdict(ex05.q1, 0.01, mae, capsys=capsys)[1]
    assert "0.02 or 0.05" in verdict(ex05.q1, 300, mae, capsys=capsys)[1]  # the old exercise's answer


def test_ex05_q1_prompt_states_what_the_check_uses():
    prompt = next(
        "".join(cell["source"])
        for cell in json.loads((NOTEBOOKS / "05_evaluation.ipynb").read_text())["cells"]
        if "".join(cell["source"]).startswith("**1 (easy).**")
    )
    for stated in ("0.02", "0.05", "300 epochs", "train_fraction=0.75", "shuffle=True", "seed-42"):
        assert stated in prompt, stated
    assert ex05.RATES == (0.02, 0.05) and ex05.EPOCHS == 300


def test_ex07_prompts_state_the_threshold_the_check_uses():
    cells = [
        "".join(c["source"]) for c in json.loads((NOTEBOOKS / "07_putting_it_all_together.ipynb").read_text())["cells"]
    ]
    for number in ("**2 (medium).**", "**4 (open-ended"):
        prompt = " ".join(next(text for text in cells if text.startswith(number)).split())  # lines joined
        assert "validation split (0.95 or better passes)" in prompt and "once on the test split" in prompt
    assert ex07.PASS_ACCURACY == 0.95


def test_ex07_q2_q4_judge_on_validation_then_report_the_test_score_once(digits_reader, capsys):
    from workflow_utils.models import DigitsMLP

    mlp = digits_reader[2]

    score = r"validation accuracy \d+/270 \(0\.\d{4}\); test accuracy, measured once now: (\d+)/270 \((0\.\d{4})\)"
    for exercise, model in ((ex07.q2, mlp), (ex07.q4, _Wrapped(mlp))):
        ok, out = verdict(exercise, model, capsys=capsys)
        found = re.search(score, out)
        assert ok and found and out.count("test accuracy") == 1, out
        assert f"{int(found.group(1)) / 270:.4f}" == found.group(2)  # the accuracy is the count over 270
    torch.manual_seed(0)
    for exercise, model in ((ex07.q2, DigitsMLP()), (ex07.q4, _Wrapped(DigitsMLP()))):
        ok, out = verdict(exercise, model, capsys=capsys)
        assert not ok and "validation accuracy" in out and "test" not in out  # a rejected model never meets it
    import copy

    as_float64 = copy.deepcopy(mlp).double()  # unusual but correct: the same trained model in float64
    for exercise in (ex07.q2, ex07.q4):
        ok, out = verdict(exercise, as_float64 if exercise is ex07.q2 else _Wrapped(as_float64), capsys=capsys)
        assert ok and re.search(score, out), out


def test_ex04_q4_hints_go_from_a_nudge_to_the_method(monkeypatch, capsys):
    monkeypatch.setattr(ex04.q4, "_hints_shown", 0)
    ok, out = verdict(ex04.q4, _epoch_fn(weighted=False), capsys=capsys)
    assert not ok and "ex04.q4.hint()" in out  # the verdict points to hint() ...
    assert "len(y)" not in out and "zero_grad" not in out  # ... and does not spell out the algorithm
    shown = []
    for _ in range(4):
        ex04.q4.hint()
        shown.append(capsys.readouterr().out)
    assert [f"hint {n} of 3" in text for n, text in zip((1, 2, 3), shown)] == [True] * 3
    assert "len(y)" not in shown[0] and "zero_grad" not in shown[0]  # level 1 is a nudge
    assert "len(y)" in shown[2]  # level 3 is the method
    assert "hint 3 of 3" in shown[3] and "solution()" in shown[3]  # no level 4: the last again, and where to go
    ex02.q3.hint()  # an exercise with one hint prints it as before
    assert capsys.readouterr().out.startswith("ex02.q3 hint: three ideas")


def test_the_touched_checks_leave_the_rng_the_folder_and_the_answer_alone(digits_reader, tmp_path, monkeypatch, capsys):
    import os

    mlp = digits_reader[2]

    _, test_02 = _rate_run(0.02)
    model_300, losses_300 = _hand_loop_losses()
    answers = [
        (ex04.q1, model_300, losses_300),
        (ex04.q1, *_hand_loop_losses(record_after_step=True)),
        (ex04.q2, _decay_run()),
        (ex04.q2, _decay_run(order="before")),
        (ex04.q3, _one_step(("zero_grad", "backward", "step"))),
        (ex04.q3, _one_step(("backward", "zero_grad", "step"))),
        (ex04.q4, _epoch_fn()),
        (ex05.q1, 0.02, test_02.abs().mean().item()),
        (ex05.q1, 0.05, 0.0),
        (ex05.q3, _restoring_accuracy_fn()),
        (ex05.q4, _confusion_fn(eval_mode=False)),
        (ex07.q2, mlp),
        (ex07.q4, _Wrapped(mlp)),
    ]
    monkeypatch.chdir(tmp_path)
    for exercise, *answer in answers:
        modules = [a for a in answer if isinstance(a, nn.Module)]
        states = [copy.deepcopy(m.state_dict()) for m in modules]
        modes = [[s.training for s in m.modules()] for m in modules]
        torch.manual_seed(7)
        rng = torch.random.get_rng_state()
        verdict(exercise, *answer, capsys=capsys)
        assert torch.equal(torch.random.get_rng_state(), rng), exercise.name
        assert os.getcwd() == str(tmp_path) and list(tmp_path.iterdir()) == [], exercise.name
        for m, state, mode in zip(modules, states, modes):
            assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items()), exercise.name
            assert [s.training for s in m.modules()] == mode, exercise.name


# --- ex00 (00_tensors_and_autograd): unusual right answers pass, each typical slip is named -------------

from workflow_utils.exercises import ex00  # noqa: E402

LESSON_00 = "00_tensors_and_autograd"


def _slope_tensor(dtype=torch.float32, shape=(), backward_calls=1):
    """ex_a after f(a) = a**3 - 5*a and ``backward_calls`` calls of backward(), as exercise 4 asks (once)."""
    a = torch.full(shape, 2.0, dtype=dtype, requires_grad=True)
    for _ in range(backward_calls):
        (a**3 - 5 * a).sum().backward()
    return a


def test_ex00_q1_grid_and_column(capsys):
    grid = torch.arange(12).reshape(3, 4)
    assert verdict(ex00.q1, grid, grid[:, 2], capsys=capsys)[0]
    floats = torch.arange(12.0).view(3, 4)  # unusual: float dtype, view instead of reshape, a (3, 1) column
    assert verdict(ex00.q1, floats, floats[:, 2:3], capsys=capsys)[0]
    typed = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]], dtype=torch.float64)
    assert verdict(ex00.q1, typed, typed.T[2], capsys=capsys)[0]  # unusual: typed out, the column via a transpose
    assert verdict(ex00.q1, grid, grid[:, [2]], capsys=capsys)[0]  # a list index keeps the dimension
    ok, out = verdict(ex00.q1, grid, grid[2], capsys=capsys)  # a row for a column
    assert not ok and "that is row 2" in out and "hint:" in out
    ok, out = verdict(ex00.q1, grid, grid[:, 3], capsys=capsys)  # counting from 1
    assert not ok and "column 3" in out and "counting starts at 0" in out


def test_ex00_q1_names_grid_shape_and_fill_order_slips(capsys):
    column = torch.tensor([2, 6, 10])
    ok, out = verdict(ex00.q1, torch.arange(12).reshape(4, 3), column, capsys=capsys)
    assert not ok and "shape (4, 3)" in out
    ok, out = verdict(ex00.q1, torch.arange(1, 13).reshape(3, 4), column, capsys=capsys)
    assert not ok and "0 to 11" in out
    ok, out = verdict(ex00.q1, torch.arange(12).reshape(4, 3).T, column, capsys=capsys)
    assert not ok and "column by column" in out
    ok, out = verdict(ex00.q1, [[0, 1, 2, 3]], column, capsys=capsys)
    assert not ok and "should be a tensor, got list" in out and "raised" not in out
    ok, out = verdict(ex00.q1, torch.arange(12).reshape(3, 4), None, capsys=capsys)
    assert not ok and "ex_column is still None" in out


def test_ex00_q2_areas(capsys):
    heights, widths = torch.tensor([1, 2, 3]), torch.tensor([10, 20, 30, 40])
    assert verdict(ex00.q2, heights.unsqueeze(dim=1) * widths, capsys=capsys)[0]
    assert verdict(ex00.q2, torch.outer(heights, widths), capsys=capsys)[0]  # unusual: no broadcasting at all
    as_floats = heights.double().reshape(3, 1) * widths.float().reshape(1, 4)  # unusual: mixed float dtypes
    assert verdict(ex00.q2, as_floats, capsys=capsys)[0]
    ok, out = verdict(ex00.q2, widths.unsqueeze(dim=1) * heights, capsys=capsys)  # the table on its side
    assert not ok and "shape (4, 3)" in out and "rows should follow heights" in out
    ok, out = verdict(ex00.q2, heights.unsqueeze(dim=1) + widths, capsys=capsys)  # + for *
    assert not ok and "sums" in out and "products" in out
    ok, out = verdict(ex00.q2, heights[:, None, None] * widths, capsys=capsys)  # one dimension too many
    assert not ok and "(3, 1, 4)" in out


def test_ex00_q3_predicted_classes(capsys):
    from workflow_utils.exercises.ex00 import EX00_SCORES

    scores = torch.tensor(EX00_SCORES)
    assert verdict(ex00.q3, scores.argmax(dim=1), capsys=capsys)[0]
    assert verdict(ex00.q3, scores.max(dim=-1).indices, capsys=capsys)[0]  # unusual: max's indices, dim=-1
    assert verdict(ex00.q3, scores.argmax(dim=1, keepdim=True), capsys=capsys)[0]  # unusual: shape (4, 1)
    assert verdict(ex00.q3, scores.argmax(dim=1).float(), capsys=capsys)[0]  # unusual: float class numbers
    ok, out = verdict(ex00.q3, scores.argmax(dim=0), capsys=capsys)  # the wrong dimension
    assert not ok and "dim=0 runs down the columns" in out
    ok, out = verdict(ex00.q3, scores.argmax(), capsys=capsys)  # no dim at all
    assert not ok and "without dim=" in out
    ok, out = verdict(ex00.q3, scores.max(dim=1).values, capsys=capsys)  # values for positions
    assert not ok and "highest scores themselves" in out
    ok, out = verdict(ex00.q3, scores.max(dim=1), capsys=capsys)  # the (values, indices) pair
    assert not ok and ".indices" in out and "raised" not in out


def test_ex00_q4_autograd_slope(capsys):
    assert verdict(ex00.q4, _slope_tensor(), 7, capsys=capsys)[0]
    assert verdict(ex00.q4, _slope_tensor(torch.float64, (1,)), 7.0, capsys=capsys)[0]  # unusual: float64, (1,)
    assert verdict(ex00.q4, _slope_tensor(), torch.tensor(7.0), capsys=capsys)[0]  # unusual: a tensor by hand
    ok, out = verdict(ex00.q4, _slope_tensor(backward_calls=2), 7, capsys=capsys)  # f and backward() run twice
    assert not ok and "backward() ran 2 times" in out and "add up" in out
    ok, out = verdict(ex00.q4, torch.tensor(2.0, requires_grad=True), 7, capsys=capsys)  # never called backward
    assert not ok and "ex_a.grad is None" in out and "backward()" in out
    ok, out = verdict(ex00.q4, torch.tensor(2.0), 7, capsys=capsys)  # forgot requires_grad
    assert not ok and "requires_grad=True" in out


def test_ex00_q4_names_the_slips_on_paper_and_the_wrong_tensor(capsys):
    ok, out = verdict(ex00.q4, _slope_tensor(), -2, capsys=capsys)  # the value for the slope
    assert not ok and "f(2) = -2" in out
    ok, out = verdict(ex00.q4, _slope_tensor(), 12, capsys=capsys)  # the slope of a**3 alone
    assert not ok and "a³ alone" in out
    ok, out = verdict(ex00.q4, _slope_tensor(), None, capsys=capsys)
    assert not ok and "ex_by_hand is still None" in out
    a = torch.tensor(2.0, requires_grad=True)
    f = a**3 - 5 * a
    f.backward()
    ok, out = verdict(ex00.q4, f, 7, capsys=capsys)  # the result passed for ex_a
    assert not ok and "that is f, the result" in out
    ok, out = verdict(ex00.q4, a.grad, 7, capsys=capsys)  # the gradient passed for ex_a
    assert not ok and "gradient itself" in out
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the check reads no .grad of a non-leaf (PyTorch would warn)
        ok, out = verdict(ex00.q4, torch.ones((), requires_grad=True) * 2, 7, capsys=capsys)
    assert not ok and "computed from another tensor" in out


def test_ex00_hints_go_from_a_nudge_to_the_method(monkeypatch, capsys):
    for exercise, method in ((ex00.q1, "[:, 2]"), (ex00.q2, "unsqueeze"), (ex00.q3, "dim=1"), (ex00.q4, "backward()")):  # fmt: skip
        monkeypatch.setattr(exercise, "_hints_shown", 0)
        shown = []
        for _ in range(3):
            exercise.hint()
            shown.append(capsys.readouterr().out)
        assert [f"hint {n} of 3" in text for n, text in zip((1, 2, 3), shown)] == [True] * 3
        assert method not in shown[0] and method in shown[2], exercise.name  # a nudge first, the method last
        assert "solution()" in shown[2]


def test_ex00_every_solution_runs_and_passes_its_check(capsys):
    namespace = {  # what the notebook's exercise cells define before the student's line
        "torch": torch,
        "heights": torch.tensor([1, 2, 3]),
        "widths": torch.tensor([10, 20, 30, 40]),
        "ex_scores": torch.tensor([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.3, 0.2, 0.5], [0.2, 0.5, 0.3]]),
    }
    for exercise in exercises_of(ex00):
        exec(exercise.solution_code, namespace)
        answer = [eval(arg, namespace) for arg in check_arguments(LESSON_00, exercise.name)]
        assert verdict(exercise, *answer, capsys=capsys)[0], f"{exercise.name}'s solution fails its check"


def test_ex00_the_notebook_gives_the_scores_the_check_uses():
    from workflow_utils.exercises.ex00 import EX00_SCORES

    cell = next(
        "".join(c["source"])
        for c in json.loads((NOTEBOOKS / f"{LESSON_00}.ipynb").read_text())["cells"]
        if "ex00.q3.check(" in "".join(c["source"])
    )
    namespace = {"torch": torch}
    exec(cell.split("ex_best =")[0], namespace)
    assert torch.equal(namespace["ex_scores"], torch.tensor(EX00_SCORES))


def test_ex00_every_exercise_has_a_check_cell_and_a_solution_cell():
    solutions = (NOTEBOOKS / "solutions" / f"{LESSON_00}_solutions.ipynb").read_text()
    assert len(exercises_of(ex00)) == 4
    for exercise in exercises_of(ex00):
        assert check_arguments(LESSON_00, exercise.name)
        assert f"{exercise.name}.check(" in solutions, f"{LESSON_00}_solutions.ipynb does not solve {exercise.name}"


def test_ex00_checks_leave_the_rng_and_the_answer_alone(capsys):
    a = _slope_tensor()
    answers = [
        (ex00.q1, torch.arange(12).reshape(3, 4), torch.tensor([2, 6, 10])),
        (ex00.q2, torch.ones(3, 4)),
        (ex00.q3, torch.tensor([1, 0, 2, 1])),
        (ex00.q4, a, 7),
        (ex00.q4, _slope_tensor(backward_calls=2), 7),
    ]
    for exercise, *answer in answers:
        before = [t.clone() for t in answer if isinstance(t, torch.Tensor)]
        torch.manual_seed(7)
        rng = torch.random.get_rng_state()
        verdict(exercise, *answer, capsys=capsys)
        assert torch.equal(torch.random.get_rng_state(), rng), exercise.name
        after = [t for t in answer if isinstance(t, torch.Tensor)]
        assert all(torch.equal(x.detach(), y.detach()) for x, y in zip(before, after)), exercise.name
    assert a.requires_grad and a.grad.item() == 7.0  # q4 reads the gradient; it never runs backward() again


def test_ex00_q3_names_classes_counted_from_one(capsys):
    from workflow_utils.exercises.ex00 import EX00_SCORES

    scores = torch.tensor(EX00_SCORES)
    ok, out = verdict(ex00.q3, scores.argmax(dim=1) + 1, capsys=capsys)  # classes numbered 1, 2, 3
    assert not ok and "counting starts at 0: the classes are 0, 1 and 2" in out
    ok, out = verdict(ex00.q3, scores.argmax(dim=1, keepdim=True) + 1.0, capsys=capsys)  # any shape or dtype
    assert not ok and "counting starts at 0" in out


def test_ex00_q4_names_a_whole_number_ex_a(capsys):
    for whole in (torch.tensor(2), torch.tensor([2]), torch.tensor(2, dtype=torch.int32)):
        ok, out = verdict(ex00.q4, whole, 7, capsys=capsys)
        assert not ok and "ex_a holds a whole number" in out and "write 2.0" in out, whole


def test_ex00_q4_rejects_the_slope_as_text(capsys):
    for text in ("7", "7.0"):
        ok, out = verdict(ex00.q4, _slope_tensor(), text, capsys=capsys)
        assert not ok and "ex_by_hand is the text" in out and "without quotes" in out


def test_ex00_q4_accepts_a_computed_ex_a_that_retains_its_gradient(capsys):
    start = torch.tensor(1.0, requires_grad=True)
    a = start * 2  # not a leaf; retain_grad() asks autograd to fill its .grad all the same
    a.retain_grad()
    (a**3 - 5 * a).backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verdict(ex00.q4, a, 7, capsys=capsys)[0]
        waiting = torch.tensor(1.0, requires_grad=True) * 2  # retains its gradient, but backward() never ran
        waiting.retain_grad()
        ok, out = verdict(ex00.q4, waiting, 7, capsys=capsys)
    assert not ok and "ex_a.grad is None" in out and "computed from another tensor" not in out


def _solution_expressions(exercise):
    """Each statement of the solution, as the code it runs (the right-hand side of an assignment)."""
    lines = [line.split("#")[0].strip() for line in exercise.solution_code.splitlines()]
    return [line.split(" = ", 1)[-1] for line in lines if line]


@pytest.mark.parametrize("exercise", [ex00.q2, ex00.q3, ex00.q4], ids=lambda e: e.name)
def test_ex00_hints_describe_the_method_without_the_solution_code(exercise):
    for expression in _solution_expressions(exercise):
        assert all(expression not in hint for hint in exercise.hints), (exercise.name, expression)


def test_ex00_q4_second_hint_leaves_the_derivatives_to_the_student():
    second = ex00.q4.hints[1]
    assert "power rule" in second and "straight line" in second
    assert "3·a²" not in second and "is −5" not in second
