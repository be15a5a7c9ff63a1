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
