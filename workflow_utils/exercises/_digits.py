"""The digits splits in memory, exactly as the PNG files hold them, so checks never write to disk."""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=1)
def digits_splits(seed: int = 42) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{split: (images (N, 1, 8, 8) in [0, 1], labels)}`` in the order ``read_image_folder`` reads them."""
    from sklearn.datasets import load_digits

    from workflow_utils.data import digits_split_indices

    digits = load_digits()
    levels = torch.from_numpy((digits.images * 255 / 16).round()).to(torch.uint8)  # the PNGs' 0..255 grey levels
    pixels = levels.float().div(255)  # as read_image_folder scales them
    labels = torch.from_numpy(digits.target)
    splits = {}
    for split, idx in digits_split_indices(seed).items():
        order = sorted(idx.tolist(), key=lambda i: (int(labels[i]), i))  # files sort by class folder, then index
        splits[split] = (pixels[order].unsqueeze(1), labels[order])
    return splits
