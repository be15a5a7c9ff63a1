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
    assert not model.training and logits.shape == (7, 2) and labels.tolist() == [0] * 4 + [1] * 3
    with torch.no_grad():
        assert torch.equal(logits, model(X))  # dropout off: deterministic and equal to a plain call
    only_logits, none = predict(model, X)
    assert torch.equal(only_logits, logits) and len(none) == 0
