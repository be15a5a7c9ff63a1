"""Step 1, data: make it, split it, and serve it in batches."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from workflow_utils import _validate as check


def make_line_data(
    weight: float = 0.7, bias: float = 0.3, start: float = 0.0, end: float = 1.0, step: float = 0.02
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on the line ``y = weight * x + bias`` as column tensors of shape (N, 1)."""
    for name, value in (("weight", weight), ("bias", bias), ("start", start), ("end", end), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}; pass a plain float such as {name}=0.5.")
    if not step > 0:
        raise ValueError(f"step must be positive, got {step}; try step=0.02.")
    if not end > start:
        raise ValueError(f"end ({end}) must be greater than start ({start}); swap them or pick a larger end.")
    X = torch.arange(start, end, step).unsqueeze(dim=1)
    y = weight * X + bias
    return X, y


def split_data(
    X: torch.Tensor, y: torch.Tensor, train_fraction: float = 0.8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split in order: the first ``train_fraction`` of the rows train, the rest test.

    Returns ``X_train, y_train, X_test, y_test``. No shuffling, so the test points
    are the right-hand end of the line, as in the notebooks' plots.
    """
    check.tensor("X", X)
    check.tensor("y", y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError("X and y must have one row per sample, got a 0-d tensor; reshape it with X.reshape(-1, 1).")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must pair up one to one.")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be between 0 and 1 (exclusive), got {train_fraction}; try 0.8.")
    n_train = int(train_fraction * len(X))
    if n_train == 0 or n_train == len(X):
        raise ValueError(
            f"train_fraction={train_fraction} leaves one split empty for {len(X)} rows; use more rows or a fraction nearer 0.5."
        )
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


# --- Handwritten digits: real images on disk -------------------------------------------------

DIGITS_SPLITS = ("train", "val", "test")
DIGITS_CLASSES = tuple(str(d) for d in range(10))
_MANIFEST = "manifest.json"


def digits_split_indices(seed: int = 42) -> dict[str, np.ndarray]:
    """Stratified 70/15/15 split of scikit-learn's 1797 digits: index arrays per split."""
    check.non_negative_int("seed", seed, 42)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    indices = np.arange(len(labels))
    train_idx, rest_idx = train_test_split(indices, test_size=0.30, stratify=labels, random_state=seed)
    val_idx, test_idx = train_test_split(rest_idx, test_size=0.50, stratify=labels[rest_idx], random_state=seed)
    return {"train": train_idx, "val": val_idx, "test": test_idx}


def write_digits_image_folder(root: str | Path = "data/digits", seed: int = 42) -> Path:
    """Write the digits as 8x8 greyscale PNGs in ``root/{train,val,test}/{0..9}/``; return ``root``.

    Built on first use and reused afterwards. The tree is written to a temporary folder
    beside ``root`` and renamed into place when complete, so an interrupted run never
    leaves a half-written data set, and two notebooks building it at once do not collide.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    root = check.path("root", root)
    check.non_negative_int("seed", seed, 42)
    _check_parent_is_folder(root)
    expected = {"seed": seed, "counts": {s: len(i) for s, i in digits_split_indices(seed).items()}}
    if _manifest_matches(root, expected):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    pixels = (digits.images * 255 / 16).round().astype(np.uint8)  # 0..16 grey levels -> 0..255
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        for split, idx in digits_split_indices(seed).items():
            for cls in DIGITS_CLASSES:
                (tmp / split / cls).mkdir(parents=True)
            for i in idx:
                Image.fromarray(pixels[i], mode="L").save(tmp / split / str(digits.target[i]) / f"{i:04d}.png")
        (tmp / _MANIFEST).write_text(json.dumps(expected))
        _move_into_place(tmp, root, expected)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def _check_parent_is_folder(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent} is a file, not a folder, so {path} cannot be created there; choose another path.")
            return


def _manifest_matches(root: Path, expected: dict) -> bool:
    try:
        return json.loads((root / _MANIFEST).read_text()) == expected
    except (OSError, ValueError):
        return False


def _move_into_place(tmp: Path, root: Path, expected: dict) -> None:
    if root.exists() and not _manifest_matches(root, expected):
        shutil.rmtree(root)  # an old or damaged tree: replace it
    try:
        os.rename(tmp, root)
    except OSError:
        if not _manifest_matches(root, expected):  # someone else finished first, or it is truly broken
            raise


def read_image_folder(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read every PNG of ``root/split`` into ``images`` (N, 1, H, W) float in [0, 1] and ``labels`` (N,)."""
    from PIL import Image

    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a folder name such as 'train', got {split!r}; try split='train'.")
    folder = check.path("root", root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}; create the data with write_digits_image_folder({str(root)!r}).")
    files = sorted(folder.glob("*/*.png"))
    if not files:
        raise ValueError(f"{folder} holds no PNG files; delete it and call write_digits_image_folder again.")
    images = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    labels = [int(f.parent.name) for f in files]
    return torch.from_numpy(images).float().div(255).unsqueeze(1), torch.tensor(labels)


class TensorImageDataset(Dataset):
    """Images and labels held in memory, indexable by one index or a whole batch of them.

    ``dataset[i]`` gives one ``(image, label)``; ``dataset[[i, j, k]]`` gives a stacked batch in
    one tensor operation, which is what makes ``make_loader`` fast. ``transform`` (applied to
    a batch of shape (B, C, H, W)) is where augmentation goes.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        check.tensor("images", images)
        check.tensor("labels", labels)
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}; add a channel with unsqueeze(1).")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels; they must pair up one to one.")
        if len(images) == 0:
            raise ValueError("the dataset is empty; check the folder or split you loaded.")
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape (N,), one class index per image, got {tuple(labels.shape)}; flatten them with labels.reshape(-1).")
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer class indices, got {labels.dtype}; convert them with labels.long().")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable (it gets a batch (B, C, H, W)), got {type(transform).__name__}; pass a function or None.")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        single = isinstance(index, int)
        batch = self.images[[index] if single else index]
        if self.transform is not None:
            batch = self.transform(batch)
        labels = self.labels[index]
        return (batch[0], labels) if single else (batch, labels)


class ShuffledBatches(Sampler):
    """Yields lists of indices, one list per batch; shuffles with ``seed + epoch`` when ``shuffle``.

    Each epoch's order depends only on the seed and the epoch number, so a resumed run sees
    the same batches as an uninterrupted one. ``fit`` calls ``set_epoch``; used on its own,
    each new pass over the loader moves to the next epoch.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 42) -> None:
        check.non_negative_int("n", n, 100)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}; try 64.")
        check.non_negative_int("seed", seed, 42)
        self.n, self.batch_size, self.shuffle, self.seed, self.epoch = n, batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the order of ``epoch``."""
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.n)
        self.epoch += 1
        for start in range(0, self.n, self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)


def make_loader(
    dataset: Dataset, batch_size: int = 64, shuffle: bool = False, seed: int = 42, pin_memory: bool = False
) -> DataLoader:
    """A ``DataLoader`` that fetches whole batches at once from a ``TensorImageDataset``.

    Shuffle the training loader only. ``pin_memory`` helps only when copying to a CUDA GPU.
    """
    if not isinstance(dataset, Dataset) or not hasattr(dataset, "__len__"):
        raise TypeError(
            f"dataset must be a Dataset with a length, such as TensorImageDataset(images, labels), got {type(dataset).__name__}; wrap your tensors in one."
        )
    if len(dataset) == 0:
        raise ValueError("the dataset is empty; check the folder or split you loaded.")
    sampler = ShuffledBatches(len(dataset), batch_size, shuffle, seed)
    # batch_size=None: the sampler already yields whole batches, so no per-sample collation.
    return DataLoader(dataset, sampler=sampler, batch_size=None, pin_memory=pin_memory)


def normalization_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of all pixels: compute them on the training split only."""
    check.tensor("images", images)
    if images.numel() < 2 or not images.is_floating_point():
        raise ValueError(
            f"need at least two float pixels to compute statistics, got {images.numel()} of {images.dtype}; pass the float training images."
        )
    return images.mean().item(), images.std().item()


@dataclass
class DigitsData:
    """Loaders for the three digits splits, normalised with the training split's statistics."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    mean: float
    std: float

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Scale new images in [0, 1] exactly as the training images were scaled."""
        return (images - self.mean) / self.std


def load_digits_data(root: str | Path = "data/digits", batch_size: int = 64, seed: int = 42, pin_memory: bool = False) -> DigitsData:
    """Write the digits PNGs if needed, read them into memory and wrap each split in a fast loader.

    Only the training loader shuffles. Mean and std come from the training split alone, so no
    information from validation or test images leaks into training.
    """
    root = write_digits_image_folder(root, seed)
    splits = {split: read_image_folder(root, split) for split in DIGITS_SPLITS}
    mean, std = normalization_stats(splits["train"][0])
    loaders = {
        split: make_loader(TensorImageDataset((X - mean) / std, y), batch_size, split == "train", seed, pin_memory)
        for split, (X, y) in splits.items()
    }
    return DigitsData(**loaders, mean=mean, std=std)
