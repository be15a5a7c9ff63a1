"""Exercises for 07_putting_it_all_together."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise


def _drawn_one(drawing: Any, read_digit: Any) -> str | None:
    if not isinstance(drawing, torch.Tensor):
        return f"pass the drawing as a tensor (torch.tensor([...], dtype=torch.float32)), got {type(drawing).__name__}."
    if drawing.shape != (8, 8):
        return f"draw on an 8x8 grid: expected shape (8, 8), got {tuple(drawing.shape)}."
    if not callable(read_digit):
        return "pass read_digit as the second argument, so the check can ask the model."
    drawing = drawing.float()
    if drawing.min() < 0 or drawing.max() > 16:
        return "use grey levels from 0 (paper) to 16 (ink), the data set's scale."
    if drawing.max() <= 1:
        return "that looks like the 0-1 scale; read_digit divides by 16, so draw with grey levels 0-16."
    digit, _ = read_digit(drawing)
    if digit != 1:
        return f"the model reads your drawing as a {digit}; make a thick vertical stroke in the middle columns."
    return None


PASS_ACCURACY = 0.95  # on the validation split; the notebook's 20-epoch MLP reaches 261 of 270 (0.9667)


def _correct(model: nn.Module, split: str) -> tuple[int, int]:
    """(right, total) on a digits split, normalised with the training statistics as load_digits_data does."""
    from workflow_utils.evaluation import predict
    from workflow_utils.exercises._digits import digits_splits

    train_images, _ = digits_splits()["train"]
    images, labels = digits_splits()[split]
    normalised = (images - train_images.mean().item()) / train_images.std().item()
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), normalised.dtype)
    logits, _ = predict(model, normalised.to(dtype))  # a float64 model gets float64 images
    return int((logits.argmax(dim=1) == labels).sum().item()), len(labels)


def _judged_on_validation(model: nn.Module, fix: str) -> str | None:
    """None when the validation accuracy reaches PASS_ACCURACY; the test split is not looked at here."""
    right, total = _correct(model, "val")
    if right / total < PASS_ACCURACY:
        return f"its validation accuracy is {right}/{total} ({right / total:.4f}), below {PASS_ACCURACY}: {fix}"
    return None


def _validation_then_test(model: nn.Module) -> str:
    """The accepted model scored on the test split: once, after it was judged on validation."""
    val_right, val_total = _correct(model, "val")
    right, total = _correct(model, "test")
    return (
        f"validation accuracy {val_right}/{val_total} ({val_right / val_total:.4f}); "
        f"test accuracy, measured once now: {right}/{total} ({right / total:.4f})"
    )


def _trained_mlp(model: Any) -> str | None:
    from workflow_utils.models import DigitsCNN, DigitsMLP

    if isinstance(model, DigitsCNN):
        return "that is the CNN; build the model with DigitsMLP() instead, then train it with the same recipe."
    if not isinstance(model, DigitsMLP):
        return f"pass the trained DigitsMLP, got {type(model).__name__}."
    return _judged_on_validation(model, "train it with digits_recipe for the notebook's number of epochs.")


def _own_pipeline(model: Any) -> str | None:
    if not isinstance(model, nn.Module):
        return f"pass your trained model, got {type(model).__name__}."
    if type(model).__module__.split(".")[0] in ("workflow_utils", "torch"):
        return f"{type(model).__name__} is ready-made: write your own class (class MyNet(nn.Module)) and train it."
    return _judged_on_validation(model, "train longer, or keep the epoch with the best validation loss.")


def _test_drawings() -> torch.Tensor:
    """The 270 test-split digits as the data set stores them: 8x8 grey levels 0-16."""
    from sklearn.datasets import load_digits

    from workflow_utils.data import digits_split_indices

    images = torch.tensor(load_digits().images, dtype=torch.float32)
    return images[torch.as_tensor(digits_split_indices()["test"])]


def _batch_reader(read_many: Any, read_digit: Any) -> str | None:
    if not callable(read_many) or not callable(read_digit):
        return "pass your function itself, then read_digit: ex07.q3.check(read_many, read_digit)."
    drawings = _test_drawings()
    try:
        result = read_many(drawings.clone())
    except RuntimeError as err:
        if "shape" in str(err):
            return "reshape the batch to (N, 1, 8, 8), e.g. with drawings.unsqueeze(1), not to a single image."
        raise
    if not isinstance(result, tuple) or len(result) != 2:
        return "return two things, like read_digit: (digits, probabilities)."
    got_digits, got_probs = (torch.as_tensor(v).cpu() for v in result)
    if got_probs.shape != (len(drawings), 10) or got_digits.shape != (len(drawings),):
        return (
            f"for {len(drawings)} drawings expect digits of shape ({len(drawings)},) and probabilities of shape "
            f"({len(drawings)}, 10), got {tuple(got_digits.shape)} and {tuple(got_probs.shape)}."
        )
    if not torch.allclose(got_probs.sum(dim=1), torch.ones(len(drawings)), atol=1e-4):
        return "each row of probabilities should sum to 1: apply softmax over dim=1, the 10 classes."
    expected = [read_digit(d) for d in drawings]
    expected_probs = torch.stack([p.cpu() for _, p in expected])
    if not torch.allclose(got_probs, expected_probs, atol=1e-4):
        return (
            "your probabilities differ from read_digit's: prepare the batch exactly as read_digit does "
            "(divide by 16, then digits.normalize)."
        )
    if not torch.equal(got_digits.long(), torch.tensor([digit for digit, _ in expected])):
        return "the digits should be the most probable class of each row: probabilities.argmax(dim=1)."
    return None


q1 = Exercise(
    "ex07.q1",
    _drawn_one,
    "an 8x8 torch.tensor of grey levels 0-16, dtype=torch.float32; the 1s in this data set are a thick "
    "vertical stroke down the middle columns.",
    "one = torch.zeros(8, 8)\none[:, 3:5] = 16  # a thick stroke down the middle",
    answers=("one", "read_digit"),
)
q2 = Exercise(
    "ex07.q2",
    _trained_mlp,
    "rerun steps 2 to 4 with model = DigitsMLP().to(device), and a new digits_recipe for it.",
    "torch.manual_seed(42)\nmlp = DigitsMLP().to(device)\n"
    "mlp_loss, mlp_opt, mlp_sched = digits_recipe(mlp, epochs, steps_per_epoch=len(digits.train))\n"
    "fit(mlp, digits.train, mlp_loss, mlp_opt, epochs, val_data=digits.val, metric='accuracy',\n"
    "    scheduler=mlp_sched, seed=42)",
    report=_validation_then_test,
    answers=("mlp",),
)
q3 = Exercise(
    "ex07.q3",
    _batch_reader,
    "the same steps as read_digit, for a batch: drawings / 16, digits.normalize, unsqueeze(1) to "
    "(N, 1, 8, 8), then softmax and argmax over dim=1.",
    "def read_many(drawings):\n    x = digits.normalize(drawings / 16).unsqueeze(1)\n"
    "    probabilities = predict(reloaded, x)[0].softmax(dim=1)\n"
    "    return probabilities.argmax(dim=1), probabilities",
    answers=("read_many", "read_digit"),
)
q4 = Exercise(
    "ex07.q4",
    _own_pipeline,
    "steps 2 to 5 of this notebook with your own class: seed, build, digits_recipe, fit with val_data and "
    "checkpoint_path, then load_model the best epoch into a new instance.",
    """class TwoLayerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x):
        return self.layers(x)


torch.manual_seed(0)
net = TwoLayerNet().to(device)
net_loss, net_opt, net_sched = digits_recipe(net, 10, steps_per_epoch=len(digits.train))
fit(net, digits.train, net_loss, net_opt, 10, val_data=digits.val, metric="accuracy", scheduler=net_sched,
    seed=0, checkpoint_path="models/ex07_q4_best.pth")
my_net = load_model(TwoLayerNet(), "models/ex07_q4_best.pth").to(device)""",
    report=_validation_then_test,
    answers=("my_net",),
)
