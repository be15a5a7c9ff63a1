"""Step 6, save and load: state_dicts and resumable checkpoints, written atomically.

Every write goes to a temporary file in the target folder and is renamed over the
target only once complete, so an interrupted save never destroys the previous good
file. Every read uses ``torch.load(..., weights_only=True)``, which refuses pickles
that would run code.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from workflow_utils import _validate as check


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` via a temp file and a rename; return the path."""
    path = check.path("path", path)
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; pass a file path such as {path / 'model.pth'}.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent} is a file, not a folder, so {path} cannot be written; choose a path inside a folder.")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write into {path.parent} (no write permission); choose a folder you own, e.g. models/.")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def safe_load(path: str | Path, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True`` and one clear error for a missing or broken file."""
    path = check.path("path", path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file; pass the file inside it, e.g. {path / 'model.pth'}.")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; save one first or check the path.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise pickle.UnpicklingError(
            f"{path} holds more than tensors and plain containers, so weights_only loading refused it "
            "(it could run code). Save model.state_dict() instead of the whole model."
        ) from exc
    except (RuntimeError, EOFError) as exc:
        if "on a CUDA device" in str(exc) or "on an MPS device" in str(exc):
            raise RuntimeError(
                f"{path} was saved from a model on a GPU this machine does not have; load it with map_location='cpu'."
            ) from exc
        raise RuntimeError(f"{path} is not a readable PyTorch file (truncated or corrupt?); save it again.") from exc


def save_model(model: nn.Module, path: str | Path) -> Path:
    """Save ``model.state_dict()`` (the learned tensors, not the class) to ``path``."""
    check.module("model", model)
    return atomic_save(model.state_dict(), path)


def load_model(model: nn.Module, path: str | Path, map_location: str | torch.device | None = "cpu") -> nn.Module:
    """Load a saved state_dict into ``model`` (a fresh instance of the same class); return it."""
    check.module("model", model)
    state = safe_load(path, map_location)
    if isinstance(state, dict) and "model_state" in state:
        state = state["model_state"]
    _load_state_dict(model, state, path)
    return model


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int,
    scheduler: LRScheduler | None = None,
    **extra: Any,
) -> Path:
    """Save model, optimizer (and scheduler) state, the epoch just finished and ``extra`` plain values."""
    check.module("model", model)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}; pass the optimizer object.")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise TypeError(f"epoch must be an int (the epoch just finished), got {epoch!r}; pass epoch=history.epochs[-1].")
    checkpoint = {"model_state": model.state_dict(), "epoch": epoch, **extra}
    if optimizer is not None:
        checkpoint["optimizer_state"] = optimizer.state_dict()
    if scheduler is not None:
        checkpoint["scheduler_state"] = scheduler.state_dict()
    return atomic_save(checkpoint, path)


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device | None = "cpu",
    scheduler: LRScheduler | None = None,
) -> dict[str, Any]:
    """Restore ``model`` (and ``optimizer``, ``scheduler``) from ``path``; return the other entries."""
    check.module("model", model)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}; pass the optimizer object.")
    checkpoint = safe_load(path, map_location)
    if not isinstance(checkpoint, dict) or "model_state" not in checkpoint:
        raise ValueError(f"{path} is not a checkpoint from save_checkpoint; for a bare state_dict use load_model.")
    _load_state_dict(model, checkpoint["model_state"], path)
    if optimizer is not None:
        if "optimizer_state" not in checkpoint:
            raise ValueError(f"{path} has no optimizer state; pass optimizer=None to load the model only.")
        optimizer.load_state_dict(checkpoint["optimizer_state"])
    if scheduler is not None:
        if "scheduler_state" not in checkpoint:
            raise ValueError(f"{path} has no scheduler state; pass scheduler=None to skip it.")
        scheduler.load_state_dict(checkpoint["scheduler_state"])
    states = ("model_state", "optimizer_state", "scheduler_state")
    return {k: v for k, v in checkpoint.items() if k not in states}


def _load_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state_dict of tensors; save it with save_model(model, path).")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: saved {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if own[k].shape != state[k].shape
    ]
    if missing or unexpected or mismatched:
        details = "; ".join(
            f"{label} {items}"
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
            if items
        )
        raise ValueError(
            f"{path} was saved from a different architecture than {type(model).__name__} ({details}). "
            "Build the same model class that was saved, then load."
        )
    model.load_state_dict(state)
