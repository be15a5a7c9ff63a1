import torch

from workflow_utils.models import LinearRegressionModel, LinearRegressionModelV2, count_parameters


def test_linear_model_seed_42_starts_at_course_values():
    torch.manual_seed(42)
    model = LinearRegressionModel()
    assert round(model.weights.item(), 4) == 0.3367
    assert round(model.bias.item(), 4) == 0.1288


def test_linear_model_computes_a_line():
    model = LinearRegressionModel()
    with torch.no_grad():
        model.weights.fill_(2.0)
        model.bias.fill_(-1.0)
    X = torch.tensor([[0.0], [1.0], [3.0]])
    assert torch.equal(model(X), torch.tensor([[-1.0], [1.0], [5.0]]))


def test_linear_v2_has_the_same_shapes():
    model = LinearRegressionModelV2()
    assert model(torch.zeros(5, 1)).shape == (5, 1)
    assert count_parameters(model) == count_parameters(LinearRegressionModel()) == 2


def test_digits_models_output_ten_logits():
    from workflow_utils.models import DigitsCNN, DigitsMLP

    X = torch.zeros(5, 1, 8, 8)
    assert DigitsMLP()(X).shape == (5, 10)
    assert DigitsCNN()(X).shape == (5, 10)
    assert count_parameters(DigitsCNN()) == 21482 and count_parameters(DigitsMLP()) == 9610


def test_layer_table_lists_every_leaf_layer_and_restores_mode():
    from workflow_utils.models import DigitsCNN, layer_table

    model = DigitsCNN().train()
    table = layer_table(model, (1, 1, 8, 8))
    assert "features.1.3  MaxPool2d    (1, 64, 2, 2)" in table
    assert table.splitlines()[-1] == "total trainable parameters: 21482"
    assert model.training  # put back in the mode it came in


def test_layer_table_prints_the_rows_it_reached_then_names_the_layer_and_size(capsys):
    import pytest
    from torch import nn

    from workflow_utils.models import layer_table

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(100, 10))
    with pytest.raises(
        ValueError,
        match=r"^layer 3 \(Linear\) cannot take its input of shape \(1, 144\); build it with in_features=144 \(it has 100\)\.$",
    ):
        layer_table(model, (1, 1, 8, 8))
    printed = capsys.readouterr().out
    assert "Conv2d" in printed and "(1, 144)" in printed and "Linear" not in printed  # the rows up to the failing layer


def test_layer_table_shows_tuple_outputs_of_an_lstm():
    from torch import nn

    from workflow_utils.models import layer_table

    table = layer_table(nn.LSTM(4, 5, batch_first=True), (2, 3, 4))
    assert "((2, 3, 5), ((1, 2, 5), (1, 2, 5)))" in table and "total trainable parameters: 220" in table
