"""Models used in the series, from a two-parameter line to a small CNN."""

from __future__ import annotations

import math

import torch
from torch import nn

from workflow_utils import _validate as check


class LinearRegressionModel(nn.Module):
    """y = weights * x + bias, with both parameters written out as ``nn.Parameter``.

    Written by hand in 02_model, "Build the model by hand".
    """

    def __init__(self) -> None:
        super().__init__()
        # Created in this order (weights, then bias), so seed 42 gives 0.3367 and 0.1288.
        self.weights = nn.Parameter(torch.randn(1, dtype=torch.float32))
        self.bias = nn.Parameter(torch.randn(1, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x + self.bias


class LinearRegressionModelV2(nn.Module):
    """The same line, with ``nn.Linear(1, 1)`` holding the parameters.

    Written by hand in 02_model, "The same model with `nn.Linear`".
    """

    def __init__(self) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(in_features=1, out_features=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters in ``model``.

    Written by hand in 02_model, "Look inside: `parameters()` and `state_dict()`".
    """
    check.module("model", model)
    if not isinstance(trainable_only, bool):
        raise TypeError(
            f"trainable_only must be True or False, got {trainable_only!r}; pass trainable_only=False to count all."
        )
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class DigitsMLP(nn.Module):
    """A multi-layer perceptron for 8x8 digits: flatten the image, then two linear layers.

    Written by hand in 02_model, "An MLP, and why images are flattened".
    """

    def __init__(self, hidden: int = 128, num_classes: int = 10, image_size: int = 8) -> None:
        super().__init__()
        check.positive_int("hidden", hidden, 128)
        check.positive_int("num_classes", num_classes, 10)
        check.positive_int("image_size", image_size, 8)
        self.layers = nn.Sequential(
            nn.Flatten(),  # (B, 1, 8, 8) -> (B, 64): linear layers take flat vectors
            nn.Linear(image_size * image_size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
        self.register_forward_pre_hook(_check_mlp_input)  # clear errors, keeping forward about the model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # input checks: _check_mlp_input, run just before this


def _check_mlp_input(model: DigitsMLP, args: tuple) -> None:
    """Forward pre-hook: one clear error for input a DigitsMLP cannot take."""
    x = args[0]
    pixels = model.layers[1].in_features
    size = round(pixels**0.5)
    if x.ndim < 2 or x.shape[1:].numel() != pixels:
        raise ValueError(
            f"DigitsMLP expects a batch of {size}x{size} images, shape (B, 1, {size}, {size}), got {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0), or pass greyscale images of that size."
        )
    _check_float_input("DigitsMLP", x, model.layers[1].weight)


def _check_cnn_input(model: DigitsCNN, args: tuple) -> None:
    """Forward pre-hook: one clear error for input a DigitsCNN cannot take."""
    x = args[0]
    if x.ndim != 4 or x.shape[1:] != (1, 8, 8):
        if x.ndim == 3 and x.shape[1:] == (8, 8):
            fix = (
                "add the channel with x.unsqueeze(1)"
                if x.shape[0] != 1
                else "add a batch dimension with x.unsqueeze(0)"
            )
        elif x.ndim == 4 and x.shape[1:] == (8, 8, 1):  # channel-last, as numpy, PIL and matplotlib store images
            scale = "" if x.is_floating_point() else " / 255"
            fix = (
                f"the images are channel-last (N, H, W, C): use x.permute(0, 3, 1, 2).float(){scale}, then "
                "normalise them as in training (digits.normalize(...))"
            )
        elif x.ndim == 3 and x.shape == (8, 8, 1):  # one channel-last image
            fix = "it is one channel-last image (H, W, C): use x.permute(2, 0, 1).unsqueeze(0) for a batch of one"
        else:  # other sizes or colour channels: no unsqueeze makes them fit
            fix = "its input must be 1x8x8 greyscale images: resize and convert yours, or build a model for their size"
        raise ValueError(f"DigitsCNN expects a batch of shape (B, 1, 8, 8), got {tuple(x.shape)}; {fix}.")
    _check_float_input("DigitsCNN", x, model.classifier[-1].weight)


def _check_float_input(name: str, x: torch.Tensor, weight: torch.Tensor) -> None:
    if not x.is_floating_point():
        raise ValueError(
            f"{name} expects float images, got {x.dtype}; convert them with x.float() (and divide 0..255 pixels by 255)."
        )
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise ValueError(
            f"{name} has {weight.dtype} weights but got {x.dtype} input; convert it with x.to({weight.dtype})."
        )


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (size kept by padding), batch norm, ReLU, then 2x2 max-pool halving the size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),  # BN adds the bias
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2),
    )


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 digits: two conv blocks (8x8 -> 4x4 -> 2x2), then a linear classifier.

    Written by hand in 02_model, "A small CNN".
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), dropout: float = 0.0, num_classes: int = 10) -> None:
        super().__init__()
        if not (
            isinstance(channels, (tuple, list))
            and len(channels) == 2
            and all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels)
        ):
            raise ValueError(f"channels must be two positive ints, got {channels!r}; try channels=(32, 64).")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}; try dropout=0.0.")
        check.positive_int("num_classes", num_classes, 10)
        c1, c2 = channels
        self.features = nn.Sequential(_conv_block(1, c1), _conv_block(c1, c2))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),  # active in train() mode only; off by default (it did not help here)
            nn.Linear(c2 * 2 * 2, num_classes),
        )
        self.register_forward_pre_hook(_check_cnn_input)  # clear errors, keeping forward about the model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # input checks: _check_cnn_input, run just before this


def layer_table(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    """A text table of each leaf layer's output shape and parameter count for one dummy batch.

    Used in 02_model, "A small CNN".
    """
    check.module("model", model)
    if not (
        isinstance(input_shape, (tuple, list, torch.Size))
        and len(input_shape) > 0
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
    ):
        raise ValueError(
            f"input_shape must be a tuple of positive ints including the batch size, got {input_shape!r}; try (1, 1, 8, 8)."
        )
    rows: list[tuple[str, str, str, int]] = []
    reached: list[tuple[str, nn.Module, tuple]] = []  # the layer being called and its input shape
    leaves = [(name, module) for name, module in model.named_modules() if not list(module.children())]
    hooks = [
        module.register_forward_hook(
            lambda mod, _inp, out, name=name: rows.append(
                (name, type(mod).__name__, _shapes(out), sum(p.numel() for p in mod.parameters()))
            )
        )
        for name, module in leaves
    ] + [
        module.register_forward_pre_hook(
            lambda mod, inp, name=name: reached.append((name, mod, inp[0].shape if inp else ()))
        )
        for name, module in leaves
    ]
    device = check.model_device(model)
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(torch.zeros(input_shape, device=device))
    except (RuntimeError, ValueError, IndexError) as exc:
        if isinstance(exc, ValueError) and not reached:
            raise  # the model's own input check (DigitsCNN's) already names the fix
        print(_table(rows, input_shape))  # the rows it reached, then one line naming the layer
        raise ValueError(_layer_fix(reached[-1] if reached else None, input_shape)) from exc
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return _table(rows, input_shape, f"total trainable parameters: {count_parameters(model)}")


def _shapes(out) -> str:
    """The shape of a layer's output; for a tuple (an LSTM's output, (h, c))) the shapes inside it."""
    if isinstance(out, torch.Tensor):
        return str(tuple(out.shape))
    if isinstance(out, (tuple, list)):
        return "(" + ", ".join(_shapes(o) for o in out) + ")"
    return type(out).__name__


def _layer_fix(reached: tuple[str, nn.Module, tuple] | None, input_shape) -> str:
    """One line naming the layer that could not take its input and the size it should have."""
    if reached is None:
        return f"the model cannot take an input of shape {tuple(input_shape)}; check the input shape the model expects."
    name, layer, shape = reached
    shape = tuple(shape)
    head = f"layer {name} ({type(layer).__name__}) cannot take its input of shape {shape}"
    if isinstance(layer, nn.Linear) and len(shape) >= 2:
        if len(shape) > 2:
            features = math.prod(shape[1:])
            return f"{head}; add nn.Flatten() before it and build it with in_features={features}."
        return f"{head}; build it with in_features={shape[-1]} (it has {layer.in_features})."
    if isinstance(layer, nn.modules.conv._ConvNd) and len(shape) >= 2:
        return f"{head}; build it with in_channels={shape[1]} (it has {layer.in_channels})."
    return f"{head}; change that layer or the layer before it so the sizes agree."


def _table(rows: list[tuple[str, str, str, int]], input_shape, total: str | None = None) -> str:
    header = ("layer", "type", "output shape", "params")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    lines = [f"{'input':<{widths[0]}}  {'':<{widths[1]}}  {str(tuple(input_shape)):<{widths[2]}}"]
    lines += [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}" for r in rows]
    title = f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:<{widths[2]}}  {header[3]:>{widths[3]}}"
    footer = [] if total is None else ["-" * len(title), total]
    return "\n".join(line.rstrip() for line in [title, "-" * len(title), *lines, *footer])
