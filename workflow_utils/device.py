"""Pick the device to compute on and make runs repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` forces one ("cpu", "cuda" or "mps") and raises if it is not available.
    Written by hand in 02_model, "Put the model and the data on the same device".
    """
    if prefer is not None:
        if isinstance(prefer, torch.device):
            raise TypeError(f"prefer takes a device type name, got the device {prefer}; pass prefer={prefer.type!r}.")
        if not isinstance(prefer, str) or prefer not in ("cpu", "cuda", "mps"):
            raise ValueError(f"prefer={prefer!r} is not a device type; use 'cpu', 'cuda', 'mps' or None.")
        if not _available(prefer):
            raise RuntimeError(f"{prefer!r} is not available on this machine; call get_device() to pick one that is.")
        return torch.device(prefer)
    for kind in ("cuda", "mps"):
        if _available(kind):
            return torch.device(kind)
    return torch.device("cpu")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return True


def set_seed(seed: int = 42) -> None:
    """Seed Python, NumPy and PyTorch (every device) and prefer exact float32 kernels on GPUs.

    Used in 00_start_here, "Setup"; why seeding matters is shown in 02_model, "Build the model by hand".
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}; try set_seed(42).")
    if seed >= 2**64:
        raise ValueError(f"seed must be below 2**64 (PyTorch's seed range), got {seed}; try set_seed(42).")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA and MPS device
    # TF32 speeds up GPU maths but rounds differently from the CPU; keep full float32
    # so a notebook prints the same numbers on CPU and GPU.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
