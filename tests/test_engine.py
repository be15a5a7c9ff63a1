import math

import pytest
import torch
from torch import nn

from workflow_utils.data import make_line_data, split_data
from workflow_utils.engine import evaluate, fit, train_step
from workflow_utils.models import LinearRegressionModel


@pytest.fixture
def line():
    X, y = make_line_data()
    return split_data(X, y)


def _seeded_model():
    torch.manual_seed(42)
    return LinearRegressionModel()


def test_fit_reproduces_course_figures(line):
    X_train, y_train, X_test, y_test = line
    model = _seeded_model()
    history = fit(
        model,
        (X_train, y_train),
        nn.L1Loss(),
        torch.optim.SGD(model.parameters(), lr=0.01),
        100,
        val_data=(X_test, y_test),
    )
    assert (round(history.train_loss[0], 4), round(history.val_loss[0], 4)) == (0.3129, 0.4811)
    assert (round(model.weights.item(), 4), round(model.bias.item(), 4)) == (0.5784, 0.3513)
    assert history.epochs == list(range(100)) and len(history.val_loss) == 100
    assert history.best_epoch == 99  # test loss falls every epoch on this run


def test_train_step_updates_and_evaluate_does_not(line):
    X_train, y_train, _, _ = line
    model = _seeded_model()
    before = model.weights.item()
    evaluate(model, (X_train, y_train), nn.L1Loss())
    assert model.weights.item() == before
    bias_before = model.bias.item()
    with torch.no_grad():  # the L1 gradient by hand: mean of sign(residual) * x, and of sign(residual)
        sign = torch.sign(before * X_train + bias_before - y_train)
        expected_w, expected_b = before - 0.1 * (sign * X_train).mean().item(), bias_before - 0.1 * sign.mean().item()
    train_step(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.1))
    assert model.weights.item() == pytest.approx(expected_w, abs=1e-6)
    assert model.bias.item() == pytest.approx(expected_b, abs=1e-6)


def test_minibatches_average_loss_by_sample_count():
    X = torch.arange(10.0).unsqueeze(1)
    y = torch.zeros(10, 1)
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)
    batches = [(X[:7], y[:7]), (X[7:], y[7:])]  # uneven batches
    assert evaluate(model, batches, nn.L1Loss())["loss"] == pytest.approx(4.5)


def test_metric_is_averaged_over_samples():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([0, 1, 1, 0])
    result = evaluate(model, [(X[:3], y[:3]), (X[3:], y[3:])], nn.CrossEntropyLoss(), "accuracy")
    assert result["metric"] == pytest.approx(0.75)


def test_fit_with_seed_resumes_exactly(line):
    X_train, y_train, _, _ = line
    batches = torch.utils.data.TensorDataset(X_train, y_train)

    def loader():
        return torch.utils.data.DataLoader(batches, batch_size=8, shuffle=True)  # global RNG, reseeded by fit

    full = _seeded_model()
    opt = torch.optim.SGD(full.parameters(), lr=0.05, momentum=0.9)
    fit(full, loader(), nn.MSELoss(), opt, 6, seed=1)

    part = _seeded_model()
    opt2 = torch.optim.SGD(part.parameters(), lr=0.05, momentum=0.9)
    fit(part, loader(), nn.MSELoss(), opt2, 3, seed=1)
    state = (part.state_dict(), opt2.state_dict())
    resumed = _seeded_model()
    opt3 = torch.optim.SGD(resumed.parameters(), lr=0.05, momentum=0.9)
    resumed.load_state_dict(state[0])
    opt3.load_state_dict(state[1])
    history = fit(resumed, loader(), nn.MSELoss(), opt3, 3, seed=1, start_epoch=3)
    assert history.epochs == [3, 4, 5]
    assert torch.equal(resumed.weights, full.weights) and torch.equal(resumed.bias, full.bias)


def test_fit_returns_history_on_keyboard_interrupt(line):
    X_train, y_train, _, _ = line
    model = _seeded_model()

    class InterruptingLoss(nn.L1Loss):
        calls = 0

        def forward(self, y_pred, y):  # one call per epoch: interrupt during epoch 3
            InterruptingLoss.calls += 1
            if InterruptingLoss.calls == 4:
                raise KeyboardInterrupt
            return super().forward(y_pred, y)

    history = fit(model, (X_train, y_train), InterruptingLoss(), torch.optim.SGD(model.parameters(), lr=0.01), 10)
    assert history.epochs == [0, 1, 2]
    assert "start_epoch=3" in history.stop_reason


def test_fit_saves_best_checkpoint(line, tmp_path):
    from workflow_utils.checkpoint import load_checkpoint

    X_train, y_train, X_test, y_test = line
    model = _seeded_model()
    history = fit(
        model,
        (X_train, y_train),
        nn.L1Loss(),
        torch.optim.SGD(model.parameters(), lr=0.01),
        5,
        val_data=(X_test, y_test),
        checkpoint_path=tmp_path / "best.pth",
    )
    info = load_checkpoint(tmp_path / "best.pth", LinearRegressionModel())
    assert info["epoch"] == history.best_epoch + 1  # checkpoints store the number of epochs done
    assert info["best_val_loss"] == pytest.approx(min(history.val_loss))


def test_digits_recipe_steps_the_schedule_per_batch():
    from workflow_utils.engine import digits_recipe

    model = nn.Linear(4, 3)
    loss_fn, optimizer, scheduler = digits_recipe(model, epochs=2, steps_per_epoch=3, lr=0.01)
    X, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    batches = [(X[:2], y[:2]), (X[2:4], y[2:4]), (X[4:], y[4:])]
    lrs = []
    fit(
        model,
        batches,
        loss_fn,
        optimizer,
        2,
        scheduler=scheduler,
        on_epoch_end=lambda h: lrs.append(optimizer.param_groups[0]["lr"]),
    )
    assert loss_fn.label_smoothing == 0.1 and isinstance(optimizer, torch.optim.AdamW)
    assert scheduler.last_epoch == 6  # one step per batch
    assert lrs[1] < lrs[0] < 0.01  # one-cycle: annealed towards zero by the end


def test_fit_resumes_exactly_with_shuffled_batches_loader(tmp_path):
    from workflow_utils.checkpoint import load_checkpoint, save_checkpoint
    from workflow_utils.data import TensorImageDataset, make_loader
    from workflow_utils.models import DigitsCNN

    g = torch.Generator().manual_seed(0)
    loader = make_loader(TensorImageDataset(torch.randn(40, 1, 8, 8, generator=g), torch.arange(40) % 10), 16, True)

    def run(epochs, start=0, state=None):
        torch.manual_seed(3)
        model = DigitsCNN(dropout=0.2)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        if state:
            load_checkpoint(state, model, opt)
        fit(model, loader, nn.CrossEntropyLoss(), opt, epochs, start_epoch=start, seed=5)
        return model, opt

    full, _ = run(4)
    half, half_opt = run(2)
    save_checkpoint(tmp_path / "c.pth", half, half_opt, epoch=1)
    resumed, _ = run(2, start=2, state=tmp_path / "c.pth")
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))


def test_interrupted_fit_keeps_the_weights_of_the_last_completed_step():
    """Interrupt during batch 2 of epoch 2; the model must equal a run of exactly the 10 steps before it."""
    torch.manual_seed(0)
    X, y = torch.randn(16, 3), torch.randn(16, 1)
    batches = [(X[i : i + 4], y[i : i + 4]) for i in range(0, 16, 4)]  # 4 steps per epoch, fixed order

    def fresh():
        torch.manual_seed(1)
        model = nn.Linear(3, 1)
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    class StopAt(nn.MSELoss):
        def __init__(self, call):
            super().__init__()
            self.calls, self.stop_at = 0, call

        def forward(self, y_pred, target):
            self.calls += 1
            if self.calls == self.stop_at:
                raise KeyboardInterrupt  # as if Ctrl+C landed in the forward pass of this batch
            return super().forward(y_pred, target)

    model, opt = fresh()
    history = fit(model, batches, StopAt(4 * 2 + 3), opt, 5)  # the 11th loss call: batch 2 of epoch 2
    assert history.epochs == [0, 1] and "interrupted during epoch 2" in history.stop_reason

    reference, ref_opt = fresh()
    loss_fn = nn.MSELoss()
    for X_b, y_b in (batches * 3)[:10]:  # the 10 steps that completed
        ref_opt.zero_grad()
        loss_fn(reference(X_b), y_b).backward()
        ref_opt.step()
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)
    momentum = [opt.state[p]["momentum_buffer"] for p in model.parameters()]
    ref_momentum = [ref_opt.state[p]["momentum_buffer"] for p in reference.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, ref_momentum))

    one_more, _ = fresh()  # and it is not simply "some" weights: 11 steps would differ
    one_more_opt = torch.optim.SGD(one_more.parameters(), lr=0.1, momentum=0.9)
    for X_b, y_b in (batches * 3)[:11]:
        one_more_opt.zero_grad()
        loss_fn(one_more(X_b), y_b).backward()
        one_more_opt.step()
    assert not torch.equal(model.weight, one_more.weight)


# --- issue 10: figures that must never be silently wrong ------------------------------------------


def _three_batches(n_classes=2):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 4, generator=g)
    y = torch.arange(12) % n_classes
    return [(X[i : i + 4], y[i : i + 4]) for i in range(0, 12, 4)]


def _lr(optimizer):
    return optimizer.param_groups[0]["lr"]


def test_a_per_epoch_scheduler_steps_once_per_epoch():
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(model, _three_batches(), nn.CrossEntropyLoss(), optimizer, 4, scheduler=scheduler)
    assert scheduler.last_epoch == 4 and _lr(optimizer) == pytest.approx(0.5**4)  # not 0.5**12 (per batch)


def test_scheduler_step_batch_overrides_the_default():
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    fit(model, _three_batches(), nn.CrossEntropyLoss(), optimizer, 2, scheduler=scheduler, scheduler_step="batch")
    assert scheduler.last_epoch == 6 and _lr(optimizer) == pytest.approx(0.9**6)


def test_reduce_lr_on_plateau_reads_the_validation_loss():
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)  # barely learns: no epoch improves by 50 %
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=1, threshold=0.5)
    train, val = _three_batches(), [(X + 1.0, y) for X, y in _three_batches()]
    history = fit(model, train, nn.CrossEntropyLoss(), optimizer, 4, val_data=val, scheduler=scheduler)
    # epoch 0 sets the best, epochs 1 and 2 are bad -> reduce once (patience 1), epoch 3 is bad again
    assert _lr(optimizer) == pytest.approx(1e-5) and scheduler.num_bad_epochs == 1
    assert scheduler.best == history.val_loss[0] != history.train_loss[0]  # it read the validation loss


@pytest.mark.parametrize(
    ("make_scheduler", "error", "pattern"),
    [
        (lambda opt, other: other, TypeError, "scheduler is an optimizer"),
        (lambda opt, other: torch.optim.lr_scheduler.StepLR(other, 1), ValueError, "built on another optimizer"),
        (lambda opt, other: "cosine", TypeError, "torch.optim.lr_scheduler object"),
    ],
)
def test_schedulers_that_would_train_wrongly_are_refused(make_scheduler, error, pattern):
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    other = torch.optim.SGD(nn.Linear(4, 2).parameters(), lr=0.1)
    with pytest.raises(error, match=pattern):
        fit(model, _three_batches(), nn.CrossEntropyLoss(), optimizer, 1, scheduler=make_scheduler(optimizer, other))


def test_reduce_lr_on_plateau_per_batch_is_refused():
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(ValueError, match="once per epoch"):
        fit(model, _three_batches(), nn.CrossEntropyLoss(), optimizer, 1, scheduler=scheduler, scheduler_step="batch")


class _Fixed(nn.Module):
    """Returns preset logits, one row per input row (the input's first column is the row index)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, X):
        return self.logits[X[:, 0].long()] + 0 * self.unused


def test_a_metric_that_returns_a_batch_mean_is_weighted_not_averaged_twice():
    # 10 rows in batches of 5; half of the predictions are right.
    logits = torch.tensor([[1.0, 0.0]] * 10)
    y = torch.tensor([0, 1] * 5)
    X = torch.arange(10.0).unsqueeze(1)
    batches = [(X[:5], y[:5]), (X[5:], y[5:])]

    def batch_accuracy(y_pred, y):
        return (y_pred.argmax(dim=1) == y).float().mean()

    result = evaluate(_Fixed(logits), batches, nn.CrossEntropyLoss(), batch_accuracy)
    assert result["metric"] == pytest.approx(0.5)  # the old contract (a sum) reported 0.10
    assert evaluate(_Fixed(logits), batches, nn.CrossEntropyLoss(), "accuracy")["metric"] == pytest.approx(0.5)


def test_a_metric_that_returns_a_sum_is_refused():
    batches = _three_batches()
    model = nn.Linear(4, 2)

    def correct(y_pred, y):
        return (y_pred.argmax(dim=1) == y).sum()

    with pytest.raises(ValueError, match="returns a sum over the batch"):
        fit(model, batches, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), 1, metric=correct)


def test_binary_and_regression_metrics_are_named_and_right(capsys):
    X = torch.arange(8.0).unsqueeze(1)
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0], [1.0], [1.0], [-1.0], [-1.0]])
    targets = torch.tensor([[1.0], [0.0], [0.0], [0.0], [1.0], [0.0], [1.0], [0.0]])  # 5 of 8 right
    model = _Fixed(logits)
    result = evaluate(model, [(X[:3], targets[:3]), (X[3:], targets[3:])], nn.BCEWithLogitsLoss(), "binary_accuracy")
    assert result["metric"] == pytest.approx(5 / 8)

    reg = nn.Linear(1, 1)
    Xr, yr = torch.randn(20, 1), torch.randn(20, 1)
    history = fit(
        reg,
        (Xr, yr),
        nn.MSELoss(),
        torch.optim.SGD(reg.parameters(), lr=0.01),
        1,
        val_data=(Xr, yr),
        metric="mae",
        print_every=1,
    )
    out = capsys.readouterr().out
    assert history.metric_name == "mae" and "train mae" in out and "accuracy" not in out
    assert history.val_metric[0] == pytest.approx((reg(Xr) - yr).abs().mean().item(), rel=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_a_loss_that_is_not_a_batch_mean_is_refused(reduction):
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="reduction='mean'"):
        fit(
            model,
            _three_batches(),
            nn.CrossEntropyLoss(reduction=reduction),
            torch.optim.SGD(model.parameters(), lr=0.1),
            1,
        )


def test_nan_in_the_training_inputs_is_named_and_the_weights_stay_finite(capsys):
    X, y = torch.randn(8, 2), torch.randn(8, 1)
    X[5, 1] = float("nan")
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, [(X[:4], y[:4]), (X[4:], y[4:])], nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), 3)
    assert "train_data's inputs X hold NaN or inf (first in batch 1)" in history.stop_reason
    assert "learning rate" not in history.stop_reason and history.epochs == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # rolled back to finite weights
    assert history.stop_reason in capsys.readouterr().out


def test_nan_only_in_the_validation_data_stops_with_its_name():
    X, y = torch.randn(8, 2), torch.randn(8, 1)
    X_val = X.clone()
    X_val[2, 0] = float("nan")
    model = nn.Linear(2, 1)
    history = fit(model, (X, y), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), 5, val_data=(X_val, y))
    assert "val_data's inputs X hold NaN or inf" in history.stop_reason
    assert history.best_epoch is None and history.epochs == []  # no silently frozen best epoch
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _recipe_run(batches, epochs):
    from workflow_utils.engine import digits_recipe

    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    return (model, *digits_recipe(model, epochs, steps_per_epoch=len(batches), lr=0.05))


class _StopAtCall(nn.Module):
    def __init__(self, loss_fn, at):
        super().__init__()
        self.loss_fn, self.at, self.calls = loss_fn, at, 0

    def forward(self, y_pred, y):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.loss_fn(y_pred, y)


def test_ctrl_c_advice_resumes_a_one_cycle_run_exactly(tmp_path):
    batches = _three_batches()
    full, loss_fn, opt, sched = _recipe_run(batches, 5)
    fit(full, batches, loss_fn, opt, 5, scheduler=sched, seed=1)

    model, loss_fn, opt, sched = _recipe_run(batches, 5)
    last = tmp_path / "last.pth"
    history = fit(
        model, batches, _StopAtCall(loss_fn, 3 * 3 + 2), opt, 5, scheduler=sched, seed=1, last_checkpoint_path=last
    )
    assert history.epochs == [0, 1, 2] and "start_epoch=3" in history.stop_reason and str(last) in history.stop_reason

    from workflow_utils.checkpoint import load_checkpoint  # follow the printed advice

    model, loss_fn, opt, sched = _recipe_run(batches, 5)
    info = load_checkpoint(last, model, opt, scheduler=sched)
    fit(model, batches, loss_fn, opt, 5 - info["epoch"], scheduler=sched, seed=1, start_epoch=info["epoch"])
    assert info["epoch"] == 3
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), model.state_dict().values()))


def test_ctrl_c_advice_without_a_checkpoint_does_not_suggest_a_crashing_resume():
    batches = _three_batches()
    model, loss_fn, opt, sched = _recipe_run(batches, 3)
    history = fit(model, batches, _StopAtCall(loss_fn, 5), opt, 3, scheduler=sched)
    assert "start_epoch" not in history.stop_reason and "rebuild optimizer and scheduler" in history.stop_reason
    with pytest.raises(ValueError, match=r"OneCycleLR has 5 steps left but fit would take 6"):  # the old advice
        fit(model, batches, loss_fn, opt, 2, scheduler=sched, start_epoch=1)


def test_ctrl_c_inside_on_epoch_end_keeps_the_history():
    batches = _three_batches()
    model = nn.Linear(4, 2)

    def stop_after_second_epoch(history):
        if len(history.epochs) == 2:
            raise KeyboardInterrupt

    history = fit(
        model,
        batches,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        5,
        on_epoch_end=stop_after_second_epoch,
    )
    assert history.epochs == [0, 1] and len(history.train_loss) == 2
    assert history.stop_reason.startswith("interrupted after epoch 1") and "start_epoch=2" in history.stop_reason


def test_a_sum_metric_is_caught_even_when_the_first_batch_scores_zero():
    logits = torch.tensor([[1.0, 0.0]] * 8)
    y = torch.tensor([1, 1, 1, 1, 0, 1, 0, 1])  # batch 1: no right answer (0 either way); batch 2: two right
    X = torch.arange(8.0).unsqueeze(1)

    def correct(y_pred, y):
        return (y_pred.argmax(dim=1) == y).sum()

    with pytest.raises(ValueError, match="returns a sum"):
        evaluate(_Fixed(logits), [(X[:4], y[:4]), (X[4:], y[4:])], nn.CrossEntropyLoss(), correct)


class _RecordsDtype(nn.Module):
    """A linear layer that records the dtype of its output, i.e. what autocast computed in."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.dtypes = set()

    def forward(self, x):
        out = self.linear(x)
        self.dtypes.add(out.dtype)
        return out


def test_fit_amp_trains_in_bfloat16_on_cpu():
    torch.manual_seed(0)
    X = torch.randn(64, 2)
    y = X @ torch.tensor([[0.7], [-0.3]]) + 0.3
    model = _RecordsDtype()
    history = fit(
        model, (X, y), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), 30, val_data=(X, y), amp=True
    )
    assert model.dtypes == {torch.bfloat16}  # the forward pass ran under autocast, training and validation
    assert model.linear.weight.dtype == torch.float32  # the weights themselves stay float32
    assert history.train_loss[-1] < 0.05 * history.train_loss[0]
    assert history.val_loss[-1] < 0.05 * history.val_loss[0]
    model.dtypes.clear()
    fit(model, (X, y), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), 1)
    assert model.dtypes == {torch.float32}  # amp is off by default


def test_fit_amp_must_be_a_bool(line):
    X_train, y_train, _, _ = line
    model = _seeded_model()
    with pytest.raises(TypeError, match=r"amp must be True or False.*amp=True"):
        fit(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.01), 1, amp="yes")


def test_mixed_precision_picks_float16_with_a_grad_scaler_on_cuda_only():
    from workflow_utils.engine import mixed_precision

    cpu = mixed_precision(torch.device("cpu"), True)
    assert (cpu.dtype, cpu.scaler) == (torch.bfloat16, None)
    assert mixed_precision(torch.device("cpu"), False) is None
    if torch.cuda.is_available():
        cuda = mixed_precision(torch.device("cuda"), True)
        assert cuda.dtype == torch.float16 and isinstance(cuda.scaler, torch.amp.GradScaler)


def test_help_fit_documents_every_option():
    import inspect

    doc = inspect.getdoc(fit)
    for name in inspect.signature(fit).parameters:
        assert f"    {name} (" in doc or f"    {name}:" in doc, f"fit's docstring does not describe {name}"
    assert "module docstring" not in doc
    assert '"loss"' in inspect.getdoc(evaluate) and '"metric"' in inspect.getdoc(evaluate)


def test_a_custom_metric_can_be_named_and_a_lambda_is_not_called_lambda(line, capsys):
    X_train, y_train, _, _ = line
    model = _seeded_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    history = fit(model, (X_train, y_train), nn.L1Loss(), opt, 1, metric=("abs err", lambda p, y: (p - y).abs().mean()))
    assert history.metric_name == "abs err"
    history = fit(
        model, (X_train, y_train), nn.L1Loss(), opt, 1, metric=lambda p, y: (p - y).abs().mean(), print_every=1
    )
    assert history.metric_name == "metric" and "train metric" in capsys.readouterr().out


def test_an_optimizer_over_part_of_the_model_warns_naming_what_it_leaves_out(line):
    X_train, y_train, _, _ = line
    model, other = _seeded_model(), _seeded_model()
    with pytest.warns(UserWarning, match=r"leaves out 1 of the model's trainable parameters \(bias\)"):
        fit(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD([model.weights, other.bias], lr=0.01), 1)


def test_amp_with_a_broadcasting_target_is_refused_too(line):
    X_train, y_train, _, _ = line
    model = _seeded_model()
    with pytest.raises(ValueError, match=r"y\.reshape_as\(y_pred\)"):
        fit(
            model,
            (X_train, y_train.squeeze(1)),
            nn.MSELoss(),
            torch.optim.SGD(model.parameters(), lr=0.01),
            1,
            amp=True,
        )


def _line_history(loss_fn: nn.Module, lr: float, epochs: int):
    """A seed-42 nn.Linear fitted to the straight line y = 0.7x + 0.3 with SGD; its History."""
    torch.manual_seed(42)
    X = torch.arange(0, 1, 0.02).unsqueeze(1)
    model = nn.Linear(1, 1)
    return fit(model, (X, 0.7 * X + 0.3), loss_fn, torch.optim.SGD(model.parameters(), lr=lr), epochs)


def test_a_loss_that_explodes_without_nan_is_named(capsys):
    """lr=1e6 on the straight line: the loss grows by orders of magnitude and stays finite; fit says so."""
    history = _line_history(nn.L1Loss(), lr=1e6, epochs=5)
    losses = history.train_loss
    assert all(math.isfinite(loss) for loss in losses) and history.stop_reason is None
    # L1 with SGD jumps back and forth: a huge loss, then about the first one, and so on
    assert losses[3] > 1e5 * losses[0] and losses[4] < 2 * losses[0]
    expected = (
        f"warning: the training loss grew from {losses[0]:.4g} (epoch 0) to {losses[3]:.4g} (epoch 3): "
        "training diverged; try a learning rate about 10 times smaller."
    )
    assert history.warning == expected
    assert capsys.readouterr().out.splitlines() == [expected]


def test_a_loss_that_falls_gives_no_warning(capsys):
    history = _line_history(nn.L1Loss(), lr=0.01, epochs=20)
    assert history.warning is None and capsys.readouterr().out == ""


def test_a_run_stopped_for_inf_gets_the_stop_reason_only(capsys):
    """MSE with lr=100 reaches inf: the stop reason already names the learning rate, so no second warning."""
    history = _line_history(nn.MSELoss(), lr=100.0, epochs=100)
    assert history.stop_reason is not None and "learning rate" in history.stop_reason
    assert history.warning is None
    assert capsys.readouterr().out.splitlines() == [history.stop_reason]


def test_printed_lines_say_when_each_figure_was_measured(line, capsys):
    """The train figures are the mean while the epoch trained, the val figures come after it: a legend says so."""
    X_train, y_train, X_test, y_test = line
    torch.manual_seed(42)
    model = LinearRegressionModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    fit(model, (X_train, y_train), nn.L1Loss(), opt, 4, val_data=(X_test, y_test), print_every=2)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "(train: mean over the epoch's batches, each before its step; val: after the epoch)"
    assert [p[:9] for p in printed[1:]] == ["epoch   0", "epoch   2"]
    fit(model, (X_train, y_train), nn.L1Loss(), opt, 2, start_epoch=4, print_every=1)  # resumed, no val_data
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "(train: mean over the epoch's batches, each before its step)" and len(printed) == 3
    assert printed[1].startswith("epoch   4 | train loss") and printed[2].startswith("epoch   5 |")
    fit(model, (X_train, y_train), nn.L1Loss(), opt, 1)  # print_every not given: nothing printed
    assert capsys.readouterr().out == ""


def _line_run(epochs=30, lr=0.3, start_epoch=0, **options):
    torch.manual_seed(0)
    X = torch.linspace(0, 1, 20).unsqueeze(1)
    y = 0.7 * X + 0.3
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    history = fit(
        model, (X, y), nn.L1Loss(), optimizer, epochs, val_data=(X[::3], y[::3]), start_epoch=start_epoch, **options
    )
    return model, history


def test_fit_says_it_returns_the_last_epoch_and_restore_best_loads_the_best(capsys):
    """The model fit hands back is the last epoch's; the repr and the end line say so, and one call loads the best."""
    model, history = _line_run(print_every=10)
    assert history.best_epoch != history.epochs[-1]  # L1 with a large step hops: the last is not the best
    out = capsys.readouterr().out
    assert (
        f"the model holds epoch {history.epochs[-1]}'s weights; the best epoch by val loss was {history.best_epoch}"
        in out
    )
    assert f"best epoch {history.best_epoch}" in repr(history) and "restore_best" in repr(history)
    X = torch.linspace(0, 1, 20).unsqueeze(1)
    last_loss = nn.L1Loss()(model(X[::3]), 0.7 * X[::3] + 0.3).item()
    history.restore_best(model)
    best_loss = nn.L1Loss()(model(X[::3]), 0.7 * X[::3] + 0.3).item()
    assert best_loss == pytest.approx(history.best_val_loss, abs=1e-6) and best_loss < last_loss


def test_restore_best_matches_the_best_checkpoint(tmp_path):
    from workflow_utils.checkpoint import load_model

    model, history = _line_run(checkpoint_path=tmp_path / "best.pth")
    saved = load_model(nn.Linear(1, 1), tmp_path / "best.pth")
    history.restore_best(model)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), saved.state_dict().values()))


def test_restore_best_without_val_data_is_refused_in_one_line():
    model = nn.Linear(1, 1)
    history = fit(
        model, (torch.zeros(4, 1), torch.zeros(4, 1)), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.1), 2
    )
    with pytest.raises(ValueError, match="pass val_data="):
        history.restore_best(model)
    assert "no best epoch" in repr(history)


def test_a_resumed_history_is_indexed_by_epoch_number():
    """With start_epoch=5, history[best_epoch] is the best epoch's values; an epoch not in the run is named."""
    _, history = _line_run(epochs=8, start_epoch=5)
    assert history.epochs == [5, 6, 7, 8, 9, 10, 11, 12]
    best = history[history.best_epoch]
    assert best["epoch"] == history.best_epoch and best["val_loss"] == history.best_val_loss
    with pytest.raises(
        IndexError,
        match=r"epoch 3 is not in this history: it holds epochs 5 to 12 \(the run started at start_epoch=5\)",
    ):
        history[3]
    with pytest.raises(TypeError, match="epoch number"):
        history["best"]


def test_evaluate_and_fit_leave_a_model_in_eval_mode_in_eval_mode():
    """A hand-written loop that validates every few batches keeps training in train mode afterwards."""
    model = nn.Sequential(nn.Linear(1, 1), nn.Dropout(0.5))
    data = (torch.zeros(4, 1), torch.zeros(4, 1))
    model.train()
    evaluate(model, data, nn.L1Loss())
    assert model.training
    model.eval()
    fit(model, data, nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.1), 1, val_data=data)
    assert not model.training


def test_float64_targets_for_apples_gpu_are_refused_before_torch_moves_them():
    from workflow_utils import _validate as check

    with pytest.raises(
        ValueError, match=r"float64, which Apple's GPU \(mps\) cannot hold; convert them with y\.float\(\)"
    ):
        check.device_takes("train_data", torch.zeros(3, dtype=torch.float64), torch.device("mps"))
    check.device_takes("train_data", torch.zeros(3), torch.device("mps"))
    check.device_takes("train_data", torch.zeros(3, dtype=torch.float64), torch.device("cpu"))


def _loader_and_model(n=80, batch_size=8):
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    X = torch.rand(n, 1)
    loader = DataLoader(TensorDataset(X, 0.7 * X + 0.3), batch_size=batch_size)
    model = nn.Linear(1, 1)
    return loader, model, torch.optim.SGD(model.parameters(), lr=0.1)


@pytest.mark.parametrize(
    "build",
    [
        lambda opt, epochs, batches: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * batches),
        lambda opt, epochs, batches: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2 * batches),
    ],
    ids=["cosine sized in batches", "warm-up sized in batches"],
)
def test_a_schedule_sized_in_batches_but_stepped_per_epoch_is_named(build):
    loader, model, optimizer = _loader_and_model()
    scheduler = build(optimizer, 6, len(loader))
    with pytest.warns(UserWarning, match=r"counts batches .* steps it once per epoch, 6 times.*scheduler_step='batch'"):
        fit(model, loader, nn.MSELoss(), optimizer, 6, scheduler=scheduler)


def test_a_schedule_sized_in_epochs_but_stepped_per_batch_is_named():
    loader, model, optimizer = _loader_and_model()
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=6)
    with pytest.warns(UserWarning, match=r"T_max=6 counts epochs, but scheduler_step='batch' steps it 10 times"):
        fit(model, loader, nn.MSELoss(), optimizer, 6, scheduler=scheduler, scheduler_step="batch")


def test_schedules_in_the_unit_they_are_stepped_in_train_without_a_word(recwarn):
    """Both right ways end the cosine at its floor (0), with no warning."""
    for step, t_max in (("epoch", 6), ("batch", None)):
        loader, model, optimizer = _loader_and_model()
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max or 6 * len(loader))
        fit(model, loader, nn.MSELoss(), optimizer, 6, scheduler=scheduler, scheduler_step=step)
        assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
    assert [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)] == []
