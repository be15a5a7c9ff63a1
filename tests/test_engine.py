import pytest
import torch
from torch import nn

from workflow_utils.data import make_line_data, split_data
from workflow_utils.engine import correct_count, evaluate, fit, train_step
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
    history = fit(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.01), 100,
                  val_data=(X_test, y_test))
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
    train_step(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.1))
    assert model.weights.item() != before


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
    result = evaluate(model, [(X[:3], y[:3]), (X[3:], y[3:])], nn.CrossEntropyLoss(), correct_count)
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


def test_fit_stops_on_non_finite_loss(line, capsys):
    X_train, y_train, _, _ = line
    model = _seeded_model()
    history = fit(model, (X_train * 1e20, y_train), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=10.0), 50)
    assert history.stop_reason is not None and "smaller" in history.stop_reason
    assert len(history.train_loss) < 50
    assert all(torch.isfinite(torch.tensor(history.train_loss)))
    assert "learning rate" in capsys.readouterr().out


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
    history = fit(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.01), 5,
                  val_data=(X_test, y_test), checkpoint_path=tmp_path / "best.pth")
    info = load_checkpoint(tmp_path / "best.pth", LinearRegressionModel())
    assert info["epoch"] == history.best_epoch
    assert info["best_val_loss"] == pytest.approx(min(history.val_loss))


def test_fit_rejects_bad_epochs(line):
    X_train, y_train, _, _ = line
    model = _seeded_model()
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, (X_train, y_train), nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.01), 0)


def test_empty_loader_is_explained():
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="no batches"):
        evaluate(model, [], nn.L1Loss())


def test_digits_recipe_steps_the_schedule_per_batch():
    from workflow_utils.engine import digits_recipe

    model = nn.Linear(4, 3)
    loss_fn, optimizer, scheduler = digits_recipe(model, epochs=2, steps_per_epoch=3, lr=0.01)
    X, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    batches = [(X[:2], y[:2]), (X[2:4], y[2:4]), (X[4:], y[4:])]
    lrs = []
    fit(model, batches, loss_fn, optimizer, 2, scheduler=scheduler,
        on_epoch_end=lambda h: lrs.append(optimizer.param_groups[0]["lr"]))
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
