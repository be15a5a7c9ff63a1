import pytest
import torch

from workflow_utils.data import make_line_data, split_data


def test_make_line_data_shapes_and_values():
    X, y = make_line_data(weight=0.7, bias=0.3)
    assert X.shape == (50, 1) and y.shape == (50, 1)
    assert torch.allclose(y, 0.7 * X + 0.3)


def test_split_data_is_ordered_80_20():
    X, y = make_line_data()
    X_train, y_train, X_test, y_test = split_data(X, y, 0.8)
    assert (len(X_train), len(X_test)) == (40, 10)
    assert torch.equal(torch.cat([X_train, X_test]), X)
    assert torch.equal(torch.cat([y_train, y_test]), y)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_split_data_rejects_bad_fractions(fraction):
    X, y = make_line_data()
    with pytest.raises(ValueError, match="train_fraction"):
        split_data(X, y, fraction)


def test_split_data_rejects_unpaired_rows():
    X, y = make_line_data()
    with pytest.raises(ValueError, match="pair up"):
        split_data(X, y[:-1])


def test_make_line_data_rejects_non_positive_step():
    with pytest.raises(ValueError, match="step must be positive"):
        make_line_data(step=0)
