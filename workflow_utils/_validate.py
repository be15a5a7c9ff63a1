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
