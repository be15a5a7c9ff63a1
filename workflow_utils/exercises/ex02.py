"""Exercises for 02_model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise


def _seed0(model: Any) -> str | None:
    from workflow_utils.models import LinearRegressionModel  # the reference only: any class that behaves alike passes

    if not isinstance(model, nn.Module):
        return "pass the model instance you created: LinearRegressionModel(), with parentheses."
    with torch.random.fork_rng():  # work out the expected values without disturbing the caller's RNG
        torch.manual_seed(0)
        expected = dict(LinearRegressionModel().named_parameters())
    got = dict(model.named_parameters())
    if list(got) != list(expected) or any(p.shape != (1,) for p in got.values()):
        return f"expected the two single-number parameters weights and bias of the line model, found {list(got)}."
    if not all(torch.equal(got[name].detach(), expected[name].detach()) for name in expected):
        values = ", ".join(f"{name} {p.item():.4f}" for name, p in got.items())
        return f"the parameters are {values}: call torch.manual_seed(0) right before creating the model."
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    with torch.no_grad():
        if not torch.allclose(model(x), got["weights"] * x + got["bias"]):
            return "forward(x) should return weights * x + bias."
    return None


def _quadratic(model: Any) -> str | None:
    if not isinstance(model, nn.Module):
        return "pass an instance of your model class."
    params = list(model.parameters())
    if len(params) != 3 or any(p.numel() != 1 for p in params):
        return f"expected 3 learnable single numbers (nn.Parameter), found {len(params)} parameter tensors."
    a, b, c = (p.detach() for p in params)
    x = torch.linspace(-2, 2, 9).unsqueeze(1)
    with torch.no_grad():
        out = model(x)
    if out.shape != x.shape or not torch.allclose(out, a * x**2 + b * x + c, atol=1e-5):
        return "forward(x) should return a * x**2 + b * x + c with the parameters in that order."
    return None


def _is_affine(model: nn.Module, shape: tuple[int, ...]) -> bool:
    """Whether ``model`` maps inputs of ``shape`` like a linear layer would: f(a) + f(b) == f(a + b) + f(0)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    was_training = model.training
    model.eval()  # dropout off, batch norm fixed: only the layers themselves are tested
    try:
        with torch.no_grad():
            return torch.allclose(model(a) + model(b), model(a + b) + model(torch.zeros(shape)), atol=1e-4)
    finally:
        model.train(was_training)


def _probabilities(model: nn.Module) -> bool:
    """Whether ``model``'s rows are probabilities (non-negative, summing to 1): a softmax in forward."""
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
    return bool(torch.allclose(out.sum(dim=1), torch.ones(len(x)), atol=1e-4) and (out >= 0).all())


def _mlp(model: Any) -> str | None:
    if not isinstance(model, nn.Module):
        return "pass an instance of your model."
    try:
        out = model(torch.zeros(2, 1, 8, 8))
    except (RuntimeError, ValueError):
        return "the model fails on a (2, 1, 8, 8) batch of images: flatten them first (nn.Flatten())."
    if out.shape != (2, 10):
        return f"expected one logit per digit, shape (2, 10), got {tuple(out.shape)}."
    # the layers' weight matrices fix the shape 64 -> 64 -> 10; biases (or batch norm) may come or go
    weights = sum(p.numel() for p in model.parameters() if p.ndim > 1)
    if weights != 64 * 64 + 64 * 10:
        n = sum(p.numel() for p in model.parameters())
        return (
            f"the model has {n} parameters ({weights} in weight matrices); a 64 -> 64 -> 10 MLP has 4,810 "
            "(64 * 64 + 64 * 10 = 4,736 weights and 74 biases)."
        )
    if any(isinstance(m, nn.Softmax) for m in model.modules()) or _probabilities(model):
        return "remove the softmax: return logits; nn.CrossEntropyLoss applies it itself."
    if _is_affine(model, (4, 1, 8, 8)):
        return (
            "two linear layers with nothing between them are one linear layer in disguise: "
            "put an activation such as nn.ReLU() between them."
        )
    return None


def _own_class(model: Any) -> str | None:
    if isinstance(model, type):
        return "pass an instance of your class (with parentheses), not the class itself."
    if not isinstance(model, nn.Module):
        return f"pass an instance of your nn.Module subclass, got {type(model).__name__}."
    module = type(model).__module__ or ""  # class MyNet(nn.Sequential) is the student's own class: accepted
    if module.split(".")[0] in ("torch", "workflow_utils"):
        return f"{type(model).__name__} is a ready-made class: write your own, class MyNet(nn.Module) with __init__ and forward."
    if not any(p.requires_grad for p in model.parameters()):
        return "the model has no learnable parameters: create its layers in __init__, after super().__init__()."
    batch = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    try:
        out = model(batch)
    except Exception as err:  # noqa: BLE001 - any failure here is the student's forward to fix
        try:  # would the flattened images go through? then that is the fix to name, in our words
            model(batch.flatten(1))
        except Exception:  # noqa: BLE001 - not a missing flatten: show the student's own error
            return f"the model fails on a (5, 1, 8, 8) batch: {type(err).__name__}: {err}"
        return (
            f"the model fails on a (5, 1, 8, 8) batch ({type(err).__name__}) but runs on the same images "
            "flattened to (5, 64): flatten them in forward first (nn.Flatten() or x.flatten(1))."
        )
    if not isinstance(out, torch.Tensor) or out.shape != (5, 10):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return f"expected 10 logits per image, shape (5, 10), got {shape}."
    if _probabilities(model):
        return "each row sums to 1: those are probabilities. Return raw logits; the loss applies softmax itself."
    if _is_affine(model, (4, 1, 8, 8)):
        return "the model is linear end to end: add a non-linearity (torch.relu, nn.ReLU) between its layers."
    return None


q1 = Exercise(
    "ex02.q1",
    _seed0,
    "call torch.manual_seed(0) on the line right before LinearRegressionModel().",
    "torch.manual_seed(0)\nmodel_seed0 = LinearRegressionModel()",
    answers=("model_seed0",),
)
q2 = Exercise(
    "ex02.q2",
    _quadratic,
    "three nn.Parameter(torch.randn(1)) in __init__ (after super().__init__()), then a * x**2 + b * x + c.",
    """class QuadraticModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.randn(1))
        self.b = nn.Parameter(torch.randn(1))
        self.c = nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.a * x**2 + self.b * x + self.c


quadratic_model = QuadraticModel()""",
    answers=("quadratic_model",),
)
q3 = Exercise(
    "ex02.q3",
    _mlp,
    "three ideas: each image must become a row of 64 numbers; a hidden layer of 64 units; and something "
    "non-linear between the two linear layers (without it, two linear layers act as one).",
    "small_mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))",
    answers=("small_mlp",),
)
q4 = Exercise(
    "ex02.q4",
    _own_class,
    "class MyNet(nn.Module): create the layers in __init__ after super().__init__(), and in forward flatten "
    "the images, apply the layers with an activation between them, and return the logits.",
    """class MyDigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(self.flatten(x))))


my_model = MyDigitsNet()""",
    answers=("my_model",),
)
