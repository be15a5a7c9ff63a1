"""Step 1, data: make it, split it, and serve it in batches."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, Subset, TensorDataset

from workflow_utils import _validate as check


def make_line_data(
    weight: float = 0.7, bias: float = 0.3, start: float = 0.0, end: float = 1.0, step: float = 0.02
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on the line ``y = weight * x + bias`` as column tensors of shape (N, 1).

    Written by hand in 01_data, "Make data from known parameters".
    """
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
    X: torch.Tensor,
    y: torch.Tensor,
    train_fraction: float = 0.8,
    shuffle: bool = False,
    stratify: bool = False,
    seed: int = 42,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split rows into ``X_train, y_train, X_test, y_test``: in order by default, else shuffled or stratified.

    In order, the first ``train_fraction`` of the rows train and the rest test, so the test
    points are the right-hand end of the line, as in the notebooks' plots (written by hand in
    01_data, "Split into training and test sets"). Rows sorted by class need ``shuffle=True``
    (a random order from ``seed``) or ``stratify=True`` (shuffled, and each class split
    ``train_fraction`` / rest); kept in order, labels that look sorted give a warning.
    """
    check.tensor("X", X)
    check.tensor("y", y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError("X and y must have one row per sample, got a 0-d tensor; reshape it with X.reshape(-1, 1).")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must pair up one to one.")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be between 0 and 1 (exclusive), got {train_fraction}; try 0.8.")
    for name, flag in (("shuffle", shuffle), ("stratify", stratify)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}; try {name}=True.")
    check.non_negative_int("seed", seed, 42)
    if stratify:
        train_idx, test_idx = _stratified_indices(y, train_fraction, seed)
    else:
        n_train = int(train_fraction * len(X))
        order = (
            torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(len(X))
        )
        train_idx, test_idx = order[:n_train], order[n_train:]
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise ValueError(
            f"train_fraction={train_fraction} leaves one split empty for {len(X)} rows; use more rows or a fraction nearer 0.5."
        )
    if shuffle or stratify:
        return X[train_idx], y[train_idx], X[test_idx], y[test_idx]
    _warn_if_sorted(y, n_train)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]  # views, as the lesson's slicing


def _class_labels(y: torch.Tensor) -> torch.Tensor | None:
    """``y`` as a 1-D CPU tensor when it looks like class labels (integers, or a few whole-number floats), else None."""
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or y.is_complex():
        return None
    labels = y.detach().reshape(-1).cpu()
    if not labels.is_floating_point():
        return labels
    values = labels.unique()
    few_whole_numbers = bool(torch.isfinite(values).all() and (values == values.round()).all())
    return labels if few_whole_numbers and len(values) <= 20 and 2 * len(values) <= len(labels) else None


def _warn_if_sorted(y: torch.Tensor, n_train: int) -> None:
    """Warn when an in-order split of class labels gives a test split unlike the training split.

    Labels sorted by class (with more than one class) always end up here: either the test
    split holds a class training never sees, or it holds a single class.
    """
    labels = _class_labels(y)
    if labels is None:
        return
    train, test = set(labels[:n_train].tolist()), set(labels[n_train:].tolist())
    only_in_test = sorted(test - train)
    if only_in_test:
        reason = f"class {only_in_test[0]} is only in the test split"
    elif len(test) == 1 and len(train) > 1:
        reason = f"the test split holds only class {next(iter(test))}"
    else:
        return
    warnings.warn(
        f"split_data keeps the row order, and {reason}: the rows look sorted by class; "
        "pass shuffle=True or stratify=True to mix them.",
        stacklevel=3,
    )


def _stratified_indices(y: torch.Tensor, train_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled train and test row indices holding about ``train_fraction`` of every class each."""
    labels = _class_labels(y)
    if labels is None:
        raise ValueError(
            f"stratify=True needs class labels (one integer per row), got y of {y.dtype} and shape {tuple(y.shape)}; "
            "use shuffle=True for a regression target."
        )
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    shuffled = labels[order]
    in_train = torch.zeros(len(order), dtype=torch.bool)
    left_out = []
    for cls in shuffled.unique():
        rows = (shuffled == cls).nonzero().flatten()
        n_train = int(train_fraction * len(rows) + 0.5)
        in_train[rows[:n_train]] = True
        if n_train in (0, len(rows)):
            left_out.append((cls.item(), len(rows), "test" if n_train else "training"))
    if left_out:
        cls, n, split = left_out[0]
        more = f" (and {len(left_out) - 1} more classes)" if len(left_out) > 1 else ""
        warnings.warn(
            f"split_data(stratify=True): class {cls} has only {n} row{'s' * (n != 1)}, so the {split} split holds none "
            f"of it{more}; collect more samples of it, or drop or merge that class.",
            stacklevel=3,
        )
    return order[in_train], order[~in_train]


# --- Handwritten digits: real images on disk -------------------------------------------------

DIGITS_SPLITS = ("train", "val", "test")
DIGITS_CLASSES = tuple(str(d) for d in range(10))
_MANIFEST = "manifest.json"


def digits_split_indices(seed: int = 42) -> dict[str, np.ndarray]:
    """Stratified 70/15/15 split of scikit-learn's 1797 digits: index arrays per split.

    Used by hand in 01_data, "Images on disk, one folder per class".
    """
    check.non_negative_int("seed", seed, 42)
    from sklearn.model_selection import train_test_split

    labels = _sklearn_digits().target
    indices = np.arange(len(labels))
    train_idx, rest_idx = train_test_split(indices, test_size=0.30, stratify=labels, random_state=seed)
    val_idx, test_idx = train_test_split(rest_idx, test_size=0.50, stratify=labels[rest_idx], random_state=seed)
    return {"train": train_idx, "val": val_idx, "test": test_idx}


def write_digits_image_folder(root: str | Path = "data/digits", seed: int = 42) -> Path:
    """Write the digits as 8x8 greyscale PNGs in ``root/{train,val,test}/{0..9}/``; return ``root``.

    Built on first use and reused afterwards (written by hand in 01_data, "Images on disk, one
    folder per class"). The tree is written to a temporary folder beside ``root`` and renamed
    into place when complete, so an interrupted run never leaves a half-written data set, and
    two notebooks building it at once do not collide. Only a folder that is missing, empty, or
    a tree this function wrote (its ``manifest.json``) is ever replaced.
    """
    root = _digits_root(root)
    check.non_negative_int("seed", seed, 42)
    folder = _follow_link(root)
    _remove_stale_temp_folders(folder)
    if _is_complete_tree(_read_manifest(folder), seed):
        return root  # reused without loading scikit-learn (about 1.4 s per process)
    expected = _expected_manifest(seed)
    _check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # not mkdtemp: the data keeps the user's usual permissions
    try:
        _write_tree(tmp, seed, expected)
        _move_into_place(tmp, folder, expected)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


_WRITER = "workflow_utils.data.write_digits_image_folder"
_STALE_AFTER_S = 600  # a temp folder untouched this long belongs to a killed run (writing takes seconds)
_OS_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _digits_root(root: str | Path) -> Path:
    """``root`` as a Path naming a data folder of its own (not '.', '..' or the current folder)."""
    root = check.path("root", root).expanduser()
    check.parent_is_folder(root)
    if root.name in ("", ".", "..") or (root.exists() and root.resolve() == Path.cwd().resolve()):
        raise ValueError(f"root must name a folder for the data itself, got {str(root)!r}; try root='data/digits'.")
    return root


def _follow_link(root: Path) -> Path:
    """The folder a symbolic link ``root`` points to (``root`` itself when it is no link)."""
    if not root.is_symlink():
        return root
    try:
        return root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise FileNotFoundError(
            f"{root} is a link to {os.readlink(root)}, which does not exist; create that folder or pass another root such as 'data/digits'."
        ) from None


def _expected_manifest(seed: int) -> dict:
    """What ``manifest.json`` of a complete tree for ``seed`` holds: its writer, seed, image size and counts per class."""
    target = _sklearn_digits().target
    counts = {
        split: {cls: int((target[idx] == int(cls)).sum()) for cls in DIGITS_CLASSES}
        for split, idx in digits_split_indices(seed).items()
    }
    return {"written_by": _WRITER, "seed": seed, "image_size": [8, 8], "counts": counts}


def _is_complete_tree(manifest: dict | None, seed: int) -> bool:
    """Whether ``manifest`` is one this function wrote, last of all, for ``seed`` (its counts are checked on reading)."""
    return (
        isinstance(manifest, dict)
        and manifest.get("written_by") == _WRITER
        and manifest.get("seed") == seed
        and manifest.get("image_size") == [8, 8]
        and isinstance(manifest.get("counts"), dict)
        and set(manifest["counts"]) == set(DIGITS_SPLITS)
    )


@functools.lru_cache(maxsize=1)
def _sklearn_digits():
    """scikit-learn's digits, loaded once per process (read only)."""
    from sklearn.datasets import load_digits

    return load_digits()


def _read_manifest(root: Path) -> dict | None:
    """The manifest of a tree this package wrote (also the older ``{seed, counts}`` form), else None."""
    try:
        manifest = json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    return manifest if manifest.get("written_by") == _WRITER or set(manifest) == {"seed", "counts"} else None


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is missing, empty, or holds only files this package writes."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{folder} is a file, not a folder, so the digits cannot go there; pass a new folder such as 'data/digits'."
        )
    if not any(folder.iterdir()):
        return
    if _read_manifest(folder) is None:
        raise FileExistsError(
            f"{folder} already holds files that write_digits_image_folder did not write (no digits manifest.json); "
            "pass an empty or new folder such as 'data/digits'."
        )
    foreign = _first_foreign_entry(folder)
    if foreign is not None:
        raise FileExistsError(
            f"{folder} holds {foreign.relative_to(folder).as_posix()}, which write_digits_image_folder did not write, "
            "so it will not replace the folder; move that out, or pass a new folder such as 'data/digits'."
        )


def _first_foreign_entry(folder: Path) -> Path | None:
    """The first file or folder under ``folder`` that a digits tree does not have (None when there is none)."""
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if path.is_symlink():
            return path
        if path.name in _OS_CLUTTER and path.is_file():
            continue
        if len(parts) == 1 and (
            parts[0] == _MANIFEST and path.is_file() or parts[0] in DIGITS_SPLITS and path.is_dir()
        ):
            continue
        if len(parts) == 2 and parts[0] in DIGITS_SPLITS and parts[1] in DIGITS_CLASSES and path.is_dir():
            continue
        if len(parts) == 3 and re.fullmatch(r"\d{4}\.png", parts[2]) and path.is_file():
            continue
        return path
    return None


def _remove_stale_temp_folders(folder: Path) -> None:
    """Delete ``.{name}.*`` folders beside ``folder`` left by a killed run: untouched for minutes, holding only digits files."""
    pattern = re.compile(
        rf"\.{re.escape(folder.name)}\.[a-z0-9_]{{8}}(-old)?"
    )  # ours, and older versions' mkdtemp names
    if not folder.parent.is_dir():
        return
    for tmp in folder.parent.iterdir():
        if not pattern.fullmatch(tmp.name) or tmp.is_symlink() or not tmp.is_dir():
            continue
        try:
            if time.time() - tmp.stat().st_mtime > _STALE_AFTER_S and _first_foreign_entry(tmp) is None:
                shutil.rmtree(tmp)
        except OSError:  # another process removed it first
            continue


def _write_tree(tmp: Path, seed: int, manifest: dict) -> None:
    """Write every split's PNGs into ``tmp``, then the manifest (last, so only a complete tree has one)."""
    from PIL import Image

    digits = _sklearn_digits()
    pixels = (digits.images * 255 / 16).round().astype(np.uint8)  # 0..16 grey levels -> 0..255
    for split, idx in digits_split_indices(seed).items():
        for cls in DIGITS_CLASSES:
            (tmp / split / cls).mkdir(parents=True)
        for i in idx:
            Image.fromarray(pixels[i], mode="L").save(tmp / split / str(digits.target[i]) / f"{i:04d}.png")
    (tmp / _MANIFEST).write_text(json.dumps(manifest))


def _move_into_place(tmp: Path, folder: Path, expected: dict) -> None:
    """Rename ``tmp`` to ``folder``; an older tree of ours is renamed aside first and deleted after."""
    if _read_manifest(folder) == expected:
        return  # another process finished first
    aside = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}-old"
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        elif folder.exists():
            os.rename(folder, aside)
    except FileNotFoundError:  # another process moved it a moment ago
        pass
    try:
        os.rename(tmp, folder)
    except OSError:
        if _read_manifest(folder) != expected:  # not another process's finished tree: truly broken
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def read_image_folder(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read every PNG of ``root/split/<class>/`` into ``images`` (N, 1, H, W) float in [0, 1] and ``labels`` (N,).

    Written by hand in 01_data, "A `Dataset` written by hand". Files are decoded as PNG only
    and must all have one size; class folders are named 0, 1, 2, ... When ``root`` holds the
    manifest of ``write_digits_image_folder``, each class folder must hold the files it wrote.
    """
    if not isinstance(split, str) or not split or split in (".", "..") or any(c in split for c in "/\\"):
        raise ValueError(
            f"split must be one folder name inside root such as 'train', got {split!r}; try split='train'."
        )
    root = check.path("root", root).expanduser()
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}; create the data with write_digits_image_folder({str(root)!r}).")
    files = sorted(folder.glob("*/*.png"))
    if not files:
        raise ValueError(
            f"{folder} holds no PNG files in class folders ({folder}/<class>/*.png); check root and split, or write "
            "the digits there with write_digits_image_folder(root)."
        )
    labels = [_class_index(f) for f in files]
    manifest = _read_manifest(root)
    size = None
    if manifest is not None and "written_by" in manifest:
        _check_counts(root, split, labels, manifest["counts"].get(split, {}))
        size = tuple(manifest["image_size"])
    images = []
    for f in files:
        images.append(_read_png(f, size))
        size = size or images[0].shape[::-1]
    return torch.from_numpy(np.stack(images)).float().div(255).unsqueeze(1), torch.tensor(labels)


def _class_index(file: Path) -> int:
    """The class number a file's folder names."""
    name = file.parent.name
    if not (name.isascii() and name.isdigit()):
        raise ValueError(
            f"class folder {file.parent} is not named by a class number; name class folders 0, 1, 2, ... "
            "(torchvision.datasets.ImageFolder maps named classes to numbers)."
        )
    return int(name)


def _check_counts(root: Path, split: str, labels: list[int], counts: dict[str, int]) -> None:
    """Each class folder of ``split`` holds as many PNGs as the manifest says were written."""
    found = {cls: 0 for cls in counts} | {str(k): labels.count(k) for k in set(labels)}
    for cls, got in sorted(found.items()):
        wrote = counts.get(cls, 0)
        if got != wrote:
            change = "is missing" if got < wrote else "was added"
            raise ValueError(
                f"{root / split / cls} holds {got} PNG files but write_digits_image_folder wrote {wrote} (a file {change}); "
                f"delete {root} and call write_digits_image_folder({str(root)!r}) again."
            )


def _read_png(file: Path, size: tuple[int, int] | None) -> np.ndarray:
    """One PNG file as a greyscale (H, W) uint8 array; other formats, damaged files and other sizes are refused."""
    from PIL import Image

    try:
        with Image.open(file, formats=["PNG"]) as image:
            found = image.size
            pixels = np.asarray(image.convert("L")) if size in (None, found) else None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise ValueError(
            f"{file} is not a valid PNG image (another format, truncated or corrupt); replace it with a PNG or remove it."
        ) from None
    if pixels is None:
        raise ValueError(
            f"{file} is {found[0]}x{found[1]} pixels but the other images are {size[0]}x{size[1]}; resize it or remove it."
        )
    return pixels


class TensorImageDataset(Dataset):
    """Images and labels held in memory, indexable by one index or a whole batch of them.

    ``dataset[i]`` gives one ``(image, label)``; ``dataset[[i, j, k]]`` gives a stacked batch in
    one tensor operation, which is what makes ``make_loader`` fast. ``transform`` (applied to
    a batch of shape (B, C, H, W)) is where augmentation goes. The per-sample version is written
    by hand in 01_data, "A `Dataset` written by hand". Rows of features (N, F) are not images:
    use ``torch.utils.data.TensorDataset`` for them.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        check.tensor("images", images)
        check.tensor("labels", labels)
        if images.ndim == 2:
            raise ValueError(
                f"images must have shape (N, C, H, W), got {tuple(images.shape)}: rows of features, not images; "
                "for tabular data use torch.utils.data.TensorDataset(X, y), which make_loader also takes."
            )
        if images.ndim == 3:
            raise ValueError(
                f"images must have shape (N, C, H, W), got {tuple(images.shape)}; add a channel with unsqueeze(1)."
            )
        if images.ndim != 4:
            raise ValueError(
                f"images must have shape (N, C, H, W), got {tuple(images.shape)}; reshape them to one (C, H, W) image per row."
            )
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels; they must pair up one to one.")
        if len(images) == 0:
            raise ValueError("the dataset is empty; check the folder or split you loaded.")
        if labels.ndim != 1:
            raise ValueError(
                f"labels must have shape (N,), one class index per image, got {tuple(labels.shape)}; flatten them with labels.reshape(-1)."
            )
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(
                f"labels must be integer class indices, got {labels.dtype}; convert them with labels.long()."
            )
        if transform is not None and not callable(transform):
            raise TypeError(
                f"transform must be callable (it gets a batch (B, C, H, W)), got {type(transform).__name__}; pass a function or None."
            )
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


class ShuffledOrder(Sampler):
    """Yields the indices 0..n-1 one at a time; shuffles with ``seed + epoch`` when ``shuffle``.

    Each epoch's order depends only on the seed and the epoch number, so a resumed run sees
    the same data order as an uninterrupted one. ``fit`` calls ``set_epoch``; used on its own,
    each new pass over the loader moves to the next epoch. Written by hand (as a seeded
    generator) in 01_data, "`DataLoader`: batches, shuffling, workers".
    """

    def __init__(self, n: int, shuffle: bool, seed: int = 42) -> None:
        check.non_negative_int("n", n, 100)
        check.non_negative_int("seed", seed, 42)
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the order of ``epoch``."""
        self.epoch = epoch

    def _next_order(self) -> torch.Tensor:
        """This epoch's order of the indices; moves on to the next epoch."""
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.n)
        self.epoch += 1
        return order

    def __iter__(self):
        yield from self._next_order().tolist()

    def __len__(self) -> int:
        return self.n


class ShuffledBatches(ShuffledOrder):
    """Yields lists of indices, one list per batch, in the order of ``ShuffledOrder``.

    Per-sample shuffling is written by hand in 01_data, "`DataLoader`: batches, shuffling, workers".
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 42) -> None:
        check.non_negative_int("n", n, 100)
        check.positive_int("batch_size", batch_size, 64)
        super().__init__(n, shuffle, seed)
        self.batch_size = batch_size

    def __iter__(self):
        order = self._next_order()
        for start in range(0, self.n, self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)


def make_loader(
    dataset: Dataset, batch_size: int = 64, shuffle: bool = False, seed: int = 42, pin_memory: bool = False
) -> DataLoader:
    """A ``DataLoader`` that fetches whole batches at once from in-memory tensors, one sample at a time otherwise.

    A ``TensorImageDataset`` or ``TensorDataset`` (or a ``Subset`` of one) is indexed once per
    batch, which is what makes the digits loaders fast; any other Dataset (say one whose
    ``__getitem__`` opens a file) gets the usual per-sample loader, as written by hand in
    01_data, "`DataLoader`: batches, shuffling, workers". Both shuffle with ``seed + epoch``.
    Shuffle the training loader only. ``pin_memory`` helps only when copying to a CUDA GPU.
    """
    if isinstance(dataset, IterableDataset):
        raise TypeError(
            f"make_loader needs a Dataset with indices, got the IterableDataset {type(dataset).__name__}; use DataLoader(dataset, batch_size=...) for it."
        )
    if not isinstance(dataset, Dataset) or not hasattr(dataset, "__len__"):
        raise TypeError(
            f"dataset must be a Dataset with a length, such as TensorImageDataset(images, labels), got {type(dataset).__name__}; wrap your tensors in one."
        )
    if len(dataset) == 0:
        raise ValueError("the dataset is empty; check the folder or split you loaded.")
    check.positive_int("batch_size", batch_size, 64)
    for name, flag in (("shuffle", shuffle), ("pin_memory", pin_memory)):
        if not isinstance(flag, bool):  # shuffle='no' is a truthy string: it would shuffle
            raise TypeError(f"{name} must be True or False, got {flag!r}; try {name}={not flag}.")
    if _takes_whole_batches(dataset):
        sampler = ShuffledBatches(len(dataset), batch_size, shuffle, seed)
        # batch_size=None: the sampler already yields whole batches, so no per-sample collation.
        return DataLoader(dataset, sampler=sampler, batch_size=None, pin_memory=pin_memory)
    return DataLoader(
        dataset, sampler=ShuffledOrder(len(dataset), shuffle, seed), batch_size=batch_size, pin_memory=pin_memory
    )


def _takes_whole_batches(dataset: Dataset) -> bool:
    """Whether ``dataset[list_of_indices]`` gives a whole batch (tensor-backed datasets of this package and torch)."""
    if isinstance(dataset, Subset):
        return _takes_whole_batches(dataset.dataset)
    return isinstance(dataset, (TensorImageDataset, TensorDataset))


def normalization_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of all pixels: compute them on the training split only.

    Written by hand in 01_data, "Transforms: from a PIL image to a normalised tensor".
    """
    check.tensor("images", images)
    if images.numel() < 2 or not images.is_floating_point():
        raise ValueError(
            f"need at least two float pixels to compute statistics, got {images.numel()} of {images.dtype}; pass the float training images."
        )
    return images.mean().item(), images.std().item()


@dataclass
class DigitsData:
    """Loaders for the three digits splits, normalised with the training split's statistics.

    Built by hand in 01_data, "`DataLoader`: batches, shuffling, workers".
    """

    train: DataLoader
    val: DataLoader
    test: DataLoader
    mean: float
    std: float

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Scale new images in [0, 1] exactly as the training images were scaled."""
        return (images - self.mean) / self.std


def load_digits_data(
    root: str | Path = "data/digits", batch_size: int = 64, seed: int = 42, pin_memory: bool = False
) -> DigitsData:
    """Write the digits PNGs if needed, read them into memory and wrap each split in a fast loader.

    Only the training loader shuffles. Mean and std come from the training split alone, so no
    information from validation or test images leaks into training. Built by hand in 01_data,
    "`DataLoader`: batches, shuffling, workers".
    """
    root = write_digits_image_folder(root, seed)
    splits = {split: read_image_folder(root, split) for split in DIGITS_SPLITS}
    mean, std = normalization_stats(splits["train"][0])
    loaders = {
        split: make_loader(TensorImageDataset((X - mean) / std, y), batch_size, split == "train", seed, pin_memory)
        for split, (X, y) in splits.items()
    }
    return DigitsData(**loaders, mean=mean, std=std)
