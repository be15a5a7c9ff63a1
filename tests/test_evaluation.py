import pytest
import torch
from torch import nn

from workflow_utils.evaluation import accuracy, confusion_matrix, predict


def test_accuracy_is_an_exact_fraction():
    assert accuracy(torch.tensor([1, 2, 3, 0]), torch.tensor([1, 2, 0, 0])) == 0.75
    assert accuracy(torch.ones(270, dtype=torch.long), torch.cat([torch.ones(269), torch.zeros(1)]).long()) == 269 / 270


def test_accuracy_rejects_logits_for_labels():
    with pytest.raises(ValueError, match="argmax"):
        accuracy(torch.zeros(4, 10), torch.zeros(4, dtype=torch.long))


def test_confusion_matrix_counts_true_rows_predicted_columns():
    y_true = torch.tensor([0, 0, 1, 2, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 2, 2, 0])
    m = confusion_matrix(y_pred, y_true, num_classes=3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert m.sum() == 6 and m.trace() == 4


def test_predict_runs_in_eval_mode_over_a_loader():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.9))
    X = torch.randn(7, 2)
    batches = [(X[:4], torch.zeros(4)), (X[4:], torch.ones(3))]
    logits, labels = predict(model, batches)
    assert model.training, "predict puts the caller's train mode back"
    assert logits.shape == (7, 2) and labels.tolist() == [0] * 4 + [1] * 3
    with torch.no_grad():
        assert torch.equal(logits, model.eval()(X))  # dropout off: deterministic and equal to a plain call
    only_logits, none = predict(model, X)
    assert torch.equal(only_logits, logits) and len(none) == 0


def test_predict_takes_an_x_y_pair_as_fit_and_evaluate_do():
    model = nn.Linear(2, 3)
    X, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    logits, labels = predict(model, (X, y))
    assert torch.equal(labels, y) and logits.shape == (5, 3)


def test_predict_over_unlabelled_batches_returns_no_labels():
    """Prediction is the time there are no labels: a loader of inputs alone, or TensorDataset(X), works."""
    from torch.utils.data import DataLoader, TensorDataset

    model = nn.Linear(2, 3)
    X = torch.randn(7, 2)
    for loader in (DataLoader(X, batch_size=3), DataLoader(TensorDataset(X), batch_size=3)):
        logits, labels = predict(model, loader)
        assert logits.shape == (7, 3) and labels.numel() == 0
        with torch.no_grad():
            assert torch.allclose(logits, model(X))


def test_channels_last_uint8_images_are_named_with_the_permute_and_the_scaling():
    from workflow_utils.models import DigitsCNN

    images = torch.randint(0, 256, (4, 8, 8, 1), dtype=torch.uint8)  # (N, H, W, C), as numpy/PIL give them
    with pytest.raises(ValueError, match=r"channel-last.*\.permute\(0, 3, 1, 2\)\.float\(\) / 255"):
        predict(DigitsCNN(), images)
    with pytest.raises(ValueError, match=r"channel-last.*\.permute\(0, 3, 1, 2\)\.float\(\), then normalise"):
        predict(DigitsCNN(), images.float() / 255)
    with pytest.raises(ValueError, match=r"one channel-last image .*x\.permute\(2, 0, 1\)\.unsqueeze\(0\)"):
        DigitsCNN()(torch.rand(8, 8, 1))
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(10))  # no shape check of its own
    with pytest.raises(ValueError, match=r"channel-last.*X\.permute\(0, 3, 1, 2\)\.float\(\) / 255"):
        predict(plain, images)
    with pytest.raises(ValueError, match=r"channel-last.*X\.permute\(0, 3, 1, 2\)\.float\(\), then normalise"):
        predict(plain, images.float() / 255)
    fixed = images.permute(0, 3, 1, 2).float() / 255
    assert predict(DigitsCNN(), fixed)[0].shape == (4, 10)  # the named fix works


def test_predict_and_evaluate_take_a_module_reloaded_with_torch_export(tmp_path):
    """torch.export's reloaded module refuses .eval(); its graph already holds the mode it was exported in."""
    from workflow_utils.engine import evaluate
    from workflow_utils.models import DigitsCNN

    torch.manual_seed(0)
    model = DigitsCNN().eval()
    X = torch.randn(3, 1, 8, 8)
    torch.export.save(torch.export.export(model, (X,)), tmp_path / "cnn.pt2")
    exported = torch.export.load(tmp_path / "cnn.pt2").module()
    logits, _ = predict(exported, X)
    with torch.no_grad():
        assert torch.allclose(logits, model(X), atol=1e-5)
    assert evaluate(exported, (X, torch.tensor([0, 1, 2])), nn.CrossEntropyLoss())["loss"] > 0


def test_predict_refuses_labelled_and_unlabelled_batches_mixed_and_takes_a_list_pair():
    model = nn.Linear(2, 3)
    X, y = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    for batches in ([(X[:3], y[:3]), (X[3:],)], [(X[:3],), (X[3:], y[3:])]):
        with pytest.raises(ValueError, match="mixes batches with labels and batches without"):
            predict(model, batches)
    logits, labels = predict(model, [X, y])  # a list pair, as fit takes
    assert logits.shape == (6, 3) and torch.equal(labels, y)


def test_a_module_exported_in_train_mode_is_refused_with_the_fix(tmp_path):
    from workflow_utils.models import DigitsCNN

    model = DigitsCNN().train()
    exported = torch.export.export(model, (torch.randn(2, 1, 8, 8),)).module()
    with pytest.raises(ValueError, match=r"exported in train mode.*export it again after model\.eval\(\)"):
        predict(exported, torch.randn(3, 1, 8, 8))
