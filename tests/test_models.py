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
