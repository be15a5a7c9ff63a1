"""Argument checks shared by the package: each raises one exception whose one-line message names the fix."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn


def positive_int(name: str, value: Any, example: int | str) -> int:
    """``value`` as a positive int (bools refused), else ``ValueError`` suggesting ``name=example``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}; try {name}={example}.")
    return value


def non_negative_int(name: str, value: Any, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}; try {name}={example}.")
    return value


def positive_number(name: str, value: Any, example: float) -> float:
    """A finite number > 0, else ``ValueError`` suggesting ``name=example``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}; try {name}={example}.")
    return value


def module(name: str, value: Any) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module, got {type(value).__name__}; pass the model object itself "
            "(e.g. DigitsCNN()), not its class, output or state_dict."
        )
    return value


def tensor(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}; convert it with torch.as_tensor({name})."
        )
    return value


def path(name: str, value: Any) -> Path:
    if not isinstance(value, (str, Path)):
        raise TypeError(
            f"{name} must be a str or pathlib.Path, got {type(value).__name__}; pass a file path such as 'models/model.pth'."
        )
    return Path(value)


def parent_is_folder(path: Path) -> None:
    """Refuse ``path`` when its nearest existing parent is a file (then nothing can be created there)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"{parent} is a file, not a folder, so {path} cannot be created there; choose another path."
                )
            return


def same_device(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    if a.device != b.device:
        raise ValueError(
            f"{a_name} is on {a.device} but {b_name} is on {b.device}; move both to one device first, "
            f"e.g. {a_name}.cpu() and {b_name}.cpu(), or {b_name}.to({a_name}.device)."
        )


def model_device(model: nn.Module, default: torch.device | None = torch.device("cpu")) -> torch.device:
    """The one device holding every parameter of ``model``; clear errors for split or 'meta' models.

    A model without parameters gives ``default`` (or a ``ValueError`` when ``default`` is None).
    """
    devices = {p.device for p in model.parameters()}
    if not devices:
        if default is None:
            raise ValueError(
                f"{type(model).__name__} has no parameters, so there is no device to run it on; "
                "pass a model with parameters, or call it directly on your data."
            )
        return default
    if len(devices) > 1:
        names = ", ".join(sorted(str(d) for d in devices))
        raise ValueError(
            f"{type(model).__name__} has parameters on several devices ({names}); "
            "move the whole model with model.to(device) after adding every layer."
        )
    (device,) = devices
    if device.type == "meta":
        raise ValueError(
            f"{type(model).__name__}'s parameters are on the 'meta' device, which holds no values; "
            "create it on a real device with model.to_empty(device='cpu') and load its weights, or build it without device='meta'."
        )
    return device


# --- batches: every loop of the package reads its data through these --------------------------------


def array_like(value: Any) -> bool:
    """A numpy array, or a list of numbers or of rows of numbers: data that needs ``torch.as_tensor`` first."""
    if type(value).__module__ == "numpy":
        return True
    if not isinstance(value, list) or not value:
        return False
    first = value[0]
    return isinstance(first, (int, float)) or (
        isinstance(first, list) and all(isinstance(v, (int, float)) for v in first)
    )


def describe(value: Any) -> str:
    """A few words for what ``value`` is (our wording: ``type(x).__name__``, shapes, dict keys)."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)[:5]}"
    if isinstance(value, (tuple, list)):
        kinds = ", ".join(type(v).__name__ for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"a {type(value).__name__} of {len(value)} items ({kinds})"
    return f"a {type(value).__name__}"


def _pair_fix(batch: Any) -> str:
    if isinstance(batch, dict):
        keys = list(batch)
        example = f"sample[{keys[0]!r}], sample[{keys[-1]!r}]" if len(keys) >= 2 else "x, y"
        return f"make the Dataset's __getitem__ return a pair (x, y), e.g. return {example}"
    if isinstance(batch, torch.Tensor) or (isinstance(batch, (tuple, list)) and len(batch) == 1):
        return (
            "the data holds inputs without labels: build it from TensorDataset(X, y) so each batch carries its labels"
        )
    if isinstance(batch, (tuple, list)) and len(batch) > 2:
        return "make the Dataset return only (x, y) (fit takes no sample weights), e.g. TensorDataset(X, y)"
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return (
            "convert each part to a tensor, e.g. torch.as_tensor(x, dtype=torch.float32) in the Dataset's __getitem__"
        )
    return "yield (X, y) pairs of tensors, e.g. from DataLoader(TensorDataset(X, y), batch_size=32)"


def batch_pair(batch: Any, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` as ``(X, y)`` tensors with one target per input row, else one TypeError/ValueError naming the fix."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        raise TypeError(f"{name} must yield (X, y) pairs of tensors, got {describe(batch)}; {_pair_fix(batch)}.")
    X, y = batch
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"{name}'s batches need one row per sample, got X of shape {tuple(X.shape)} and y of shape "
            f"{tuple(y.shape)}; give each a first (batch) dimension, e.g. X.reshape(-1, 1)."
        )
    if len(X) != len(y):
        raise ValueError(
            f"{name} gave a batch of {len(X)} inputs but {len(y)} targets; give every input row one target "
            "(X and y of one length), e.g. TensorDataset(X, y)."
        )
    return X, y


def weight_dtype(model: nn.Module) -> tuple[torch.dtype | None, bool]:
    """``(dtype of the model's floating weights or None, whether it takes integer indices (an Embedding))``."""
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    return dtype, any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in model.modules())


def device_takes(name: str, y: torch.Tensor, device: torch.device) -> None:
    """Refuse float64 targets for Apple's GPU (mps has no float64) before ``.to(device)`` fails inside torch."""
    if device.type == "mps" and y.dtype == torch.float64:
        raise ValueError(
            f"{name}'s targets y are float64, which Apple's GPU (mps) cannot hold; convert them with y.float() "
            "(torch.tensor(numpy_array) gives float64)."
        )


def channels_last_hint(model: nn.Module, X: torch.Tensor) -> str:
    """For a 4-D batch that looks channel-last (N, H, W, C) given to a model with 2-D convolutions: the fix."""
    if X.ndim != 4 or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return ""
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    if X.shape[-1] != first.in_channels or X.shape[1] == first.in_channels:
        return ""
    scale = " / 255" if not X.is_floating_point() else ""
    return (
        f"; X looks channel-last, (N, H, W, C) = {tuple(X.shape)}, and the convolutions expect (N, C, H, W): "
        f"use X.permute(0, 3, 1, 2).float(){scale}, then normalise as in training"
    )


def input_dtype(name: str, X: torch.Tensor, weights: tuple[torch.dtype | None, bool], model=None) -> None:
    """Refuse inputs whose dtype the model's weights cannot multiply (float64 into float32, ints into Linear).

    ``weights`` is ``weight_dtype(model)``, worked out once per pass rather than per batch.
    """
    dtype, takes_indices = weights
    if dtype is None:
        return
    if X.is_floating_point() and X.dtype != dtype:
        hint = " (torch.tensor(numpy_array) gives float64)" if X.dtype == torch.float64 else ""
        fix = "X.float()" if dtype == torch.float32 else f"X.to({dtype})"
        raise ValueError(
            f"{name}'s inputs X are {X.dtype} but the model's weights are {dtype}{hint}; convert them with {fix}."
        )
    if not X.is_floating_point() and not takes_indices:
        hint = channels_last_hint(model, X) if model is not None else ""
        if hint:
            raise ValueError(f"{name}'s inputs X are {X.dtype}, but the model computes in {dtype}{hint}.")
        raise ValueError(
            f"{name}'s inputs X are {X.dtype}, but the model computes in {dtype}; convert them with X.float() "
            "(scale images to 0..1 first, e.g. X.float() / 255)."
        )


def forward(model: nn.Module, X: torch.Tensor, name: str = "data") -> torch.Tensor:
    """``model(X)``; a batch the model's layers cannot take raises one ValueError naming it and the fix."""
    try:
        return model(X)
    except ValueError as exc:
        batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if len(X) == 1 and model.training and batchnorm:
            raise ValueError(
                f"{name} gave a batch of 1 sample, and BatchNorm cannot normalise one sample while training; "
                "pass drop_last=True to the DataLoader (or pick a batch size that leaves no single sample over)."
            ) from exc
        raise
    except RuntimeError as exc:
        if "shape" not in str(exc) and "size" not in str(exc) and "dtype" not in str(exc):
            raise  # not a mismatch between X and the layers (e.g. out of memory): torch's own error
        hint = channels_last_hint(model, X)
        if hint:
            raise ValueError(f"{type(model).__name__} cannot take {name}'s inputs X{hint}.") from exc
        raise ValueError(
            f"{type(model).__name__} cannot take {name}'s inputs X of shape {tuple(X.shape)} and dtype {X.dtype} "
            "(the error above is from inside the model); make X's shape match the first layer, "
            "e.g. layer_table(model, tuple(X.shape)) shows where the shapes stop fitting."
        ) from exc
