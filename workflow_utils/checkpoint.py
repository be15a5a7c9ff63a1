"""Step 6, save and load: state_dicts and resumable checkpoints, written atomically.

Every write goes to a temporary file in the target folder and is renamed over the
target only once complete, so an interrupted save never destroys the previous good
file; temp files a killed run left behind are removed by the next save to that path.
Every read uses ``torch.load(..., weights_only=True)``, which refuses pickles that
would run code, and every write is checked to load that way before it is written.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import re
import secrets
import stat
import time
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from workflow_utils import _validate as check

_STATES = ("model_state", "optimizer_state", "scheduler_state")
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # the alphabet of tempfile's names, so older orphans match too
_ORPHAN_AGE_S = 120  # a save in progress keeps touching its temp file, so one left alone this long is an orphan


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` via a temp file and a rename; return the path.

    Nothing is renamed into place unless ``safe_load`` can read it back. Why a temp file and a
    rename: 06_save_and_load, "Graduate it to `workflow_utils.checkpoint`".
    """
    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write into {path.parent} (no write permission); choose a folder you own, e.g. models/."
        )
    _remove_orphans(path)
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            unpicklable = not _saves(obj, f)
            f.flush()
            os.fsync(f.fileno())
        if unpicklable or _refused(tmp):
            refused = _culprit(obj)
            raise TypeError(
                f"{path} would hold a {refused}, which safe_load refuses (weights_only loading); "
                "save plain numbers, strings, lists, dicts and tensors instead, e.g. model.state_dict()."
            )
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


RENAME_TRIES = 5  # waits of 0.1 + 0.2 + 0.3 + 0.4 s: a file held open on Windows is often let go within a second


def _replace(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)``, tried again for about 1 s while the rename is refused (on Windows, often
    because another program holds ``path`` open)."""
    for attempt in range(RENAME_TRIES):
        try:
            os.replace(tmp, path)
            return
        except PermissionError as exc:
            if attempt == RENAME_TRIES - 1:
                raise PermissionError(
                    f"could not replace {path} ({exc.strerror}); perhaps another program keeps it open (OneDrive, "
                    f"an editor or antivirus), or the folder is read-only: close it, or save under another name, "
                    f"e.g. {path.with_stem(path.stem + '_new')}."
                ) from exc
            time.sleep(0.1 * (attempt + 1))


def _path(value: Any) -> Path:
    """``value`` as a Path with ``~`` expanded."""
    return check.path("path", value).expanduser()


def _target(value: Any) -> Path:
    """The file path a save writes to; a path that names a folder (existing or to be) is refused."""
    path = _path(value)
    text = os.fspath(value)
    if os.path.basename(text) in ("", ".", ".."):  # 'newfolder/' or 'runs/.': pathlib would drop the clue
        raise IsADirectoryError(
            f"{text} names a folder, not a file; pass a file path inside it, e.g. {path / 'model.pth'}."
        )
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; pass a file path such as {path / 'model.pth'}.")
    check.parent_is_folder(path)
    return path


def _refused(source: Path | io.BytesIO) -> bool:
    """True when weights_only loading refuses ``source`` (written by torch.save)."""
    try:  # a file is memory-mapped, so checking a large one reads little of it
        torch.load(source, map_location="cpu", weights_only=True, mmap=isinstance(source, Path))
    except pickle.UnpicklingError:
        return True
    return False


def _saves(value: Any, f: Any) -> bool:
    """``torch.save(value, f)``; False when pickle cannot write it at all (a lambda, a class defined in a function)."""
    try:
        torch.save(value, f)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _refused_value(value: Any) -> bool:
    """``_refused`` for ``value`` saved to memory (True also when it cannot be saved at all)."""
    buffer = io.BytesIO()
    if not _saves(value, buffer):
        return True
    buffer.seek(0)
    return _refused(buffer)


def _culprit(value: Any) -> str:
    """The type name (``type(x).__name__``, our wording, not torch's) of the first part of ``value`` that
    weights_only loading refuses, looking inside plain lists, tuples and dicts; ``value`` must be refused."""
    if type(value) in (list, tuple, dict):
        parts = list(value.values()) + list(value.keys()) if type(value) is dict else list(value)
        for part in parts:
            if _refused_value(part):
                return _culprit(part)
    return type(value).__name__


def _open_temp(path: Path) -> tuple[int, Path]:
    """Create ``.{name}.XXXXXXXX.tmp`` next to ``path`` with torch.save's permissions (0o666 less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{''.join(secrets.choice(_TEMP_CHARS) for _ in range(8))}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temp file next to {path}; remove the .{path.name}.*.tmp files there.")


def _remove_orphans(path: Path) -> None:
    """Delete this package's temp files for ``path`` that a killed save left behind (regular files, old enough)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[{_TEMP_CHARS}]{{8}}\.tmp")
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if not pattern.fullmatch(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > _ORPHAN_AGE_S:
                    os.unlink(entry.path)
            except OSError:
                pass  # gone already or not ours to remove: the save goes on


def safe_load(path: str | Path, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True`` and one clear error for a missing or broken file.

    Why ``weights_only``: 06_save_and_load, "Mistake: pickling the whole model".
    """
    path = _path(path)
    _check_map_location(map_location)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a folder, not a checkpoint file; pass the file inside it, e.g. {path / 'model.pth'}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; save one first or check the path.")
    _check_torch_file(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the refused class, when torch names it
        what = f" ({found.group(1)})" if found else ""
        raise pickle.UnpicklingError(
            f"{path} holds objects other than tensors and plain containers{what}, e.g. numpy arrays, an "
            "argparse.Namespace or a whole model, so weights_only loading refused it: unpickling them can run "
            "code. If you wrote the file, save model.state_dict() instead. If someone else did and you trust its "
            "source, allow just those classes with torch.serialization.safe_globals([...]), or load it with "
            "torch.load(path, weights_only=False); then pass the weights (a whole model's .state_dict()) to "
            "model.load_state_dict(...)."
        ) from exc
    except (RuntimeError, EOFError) as exc:
        if map_location != "cpu" and _reads_on_cpu(path):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(
                f"{path} is sound, but map_location={map_location!r} could not be used here ({first}); load it "
                "with map_location='cpu', or map_location=get_device()."
            ) from exc
        if _saved_on_a_gpu(path):  # decided from the file itself, not from torch's wording
            raise RuntimeError(
                f"{path} was saved from a model on a GPU this machine does not have; load it with map_location='cpu'."
            ) from exc
        raise RuntimeError(f"{path} is not a readable PyTorch file (truncated or corrupt?); save it again.") from exc


def _reads_on_cpu(path: Path) -> bool:
    """Whether ``path`` loads with map_location='cpu' (so a failure came from the map_location asked for)."""
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 (any failure here means the file itself is the problem)
        return False
    return True


def _check_map_location(map_location: Any) -> None:
    """A device name, a torch.device, a dict or a function; a scheduler or optimizer passed by position is named."""
    if isinstance(map_location, (str, torch.device)):
        try:
            device = torch.device(map_location)
        except RuntimeError as exc:
            raise ValueError(f"map_location={map_location!r} is not a device name; try map_location='cpu'.") from exc
        has = {
            "cuda": torch.cuda.is_available(),
            "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        }
        count = {"cuda": torch.cuda.device_count() if has["cuda"] else 0, "mps": 1 if has["mps"] else 0}
        if device.type in count and device.index is not None and device.index >= count[device.type] > 0:
            raise ValueError(
                f"map_location={map_location!r} asks for GPU number {device.index}, but this machine has "
                f"{count[device.type]} ({device.type}:0 to {device.type}:{count[device.type] - 1}); use "
                f"map_location='{device.type}', or 'cpu'."
            )
        if not has.get(device.type, True):
            gpu = "an NVIDIA GPU (CUDA)" if device.type == "cuda" else "Apple's GPU (mps)"
            raise ValueError(
                f"map_location={map_location!r} asks for {gpu}, which this machine does not have; use "
                "map_location='cpu', or map_location=get_device() to pick what this machine has."
            )
        return
    if map_location is None or isinstance(map_location, dict):
        return
    if isinstance(map_location, (LRScheduler, ReduceLROnPlateau, torch.optim.Optimizer)):
        role = "optimizer" if isinstance(map_location, torch.optim.Optimizer) else "scheduler"
        raise TypeError(
            f"map_location got a {type(map_location).__name__}; pass the {role} by name: {role}={role} "
            "(the fourth positional argument is map_location)."
        )
    if not callable(map_location):
        raise TypeError(
            f"map_location must be a device such as 'cpu' or None, got {type(map_location).__name__}; try map_location='cpu'."
        )


def _check_torch_file(path: Path) -> None:
    """Refuse a file that torch.save did not write (JSON, CSV, text) before torch.load calls it unsafe."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK" or head[:1] == b"\x80":  # torch.save's zip format, or its older plain pickle
        return
    looks = (
        "text such as JSON or CSV" if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "another format"
    )
    raise ValueError(
        f"{path} is not a file written by torch.save (it holds {looks}); pass the .pth file that save_model or "
        "save_checkpoint wrote."
    )


_WRAPPERS = {"_orig_mod.": "torch.compile", "module.": "DistributedDataParallel or DataParallel"}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside ``torch.compile(model)``, ``DistributedDataParallel(model)`` or ``DataParallel(model)``.

    Their ``state_dict`` keys carry an ``_orig_mod.`` or ``module.`` prefix that a fresh ``DigitsCNN()`` does
    not have, so every save in this package stores the unwrapped model's state. 08_scaling_up, "`torch.compile`",
    compiles a model; its section on torch.distributed wraps one in DDP.
    """
    while True:
        inner = getattr(model, "_orig_mod", None)  # what torch.compile returns keeps the model here
        if isinstance(inner, nn.Module):
            model = inner
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model


def _strip_wrapper_prefix(state: dict, own: dict) -> dict:
    """``state`` without a prefix that every key shares and that a wrapper adds (``_orig_mod.``, ``module.``)."""
    while state and all(isinstance(k, str) for k in state):
        prefix = next((p for p in _WRAPPERS if all(k.startswith(p) for k in state)), None)
        if prefix is None or any(k.startswith(prefix) for k in own):
            return state
        state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _saved_on_a_gpu(path: Path) -> bool:
    """Whether the file's tensors were saved on a CUDA or MPS device (read with every tensor mapped to the CPU)."""
    locations: list[str] = []
    try:
        torch.load(path, weights_only=True, map_location=lambda storage, loc: locations.append(str(loc)) or storage)
    except Exception:  # noqa: BLE001 - a file that cannot be read at all is reported as corrupt by the caller
        return False
    return any(loc.startswith(("cuda", "mps")) for loc in locations)


def save_model(model: nn.Module, path: str | Path) -> Path:
    """Save the model's ``state_dict()`` (the learned tensors, not the class) to ``path``.

    A ``torch.compile``d or ``DistributedDataParallel`` model saves the plain model inside it (``unwrap_model``),
    so ``load_model(DigitsCNN(), path)`` works. Written by hand in 06_save_and_load, "Save the `state_dict`".
    """
    check.module("model", model)
    return atomic_save(unwrap_model(model).state_dict(), path)


def load_model(model: nn.Module, path: str | Path, map_location: str | torch.device | None = "cpu") -> nn.Module:
    """Load a saved state_dict into ``model`` (a fresh instance of the same class); return it.

    The model keeps its mode: a fresh one is in train mode, so call ``model.eval()`` before predicting
    (``predict`` does). Besides a bare state_dict it reads a checkpoint dict that keeps the weights under
    ``model_state`` (``save_checkpoint``) or ``model_state_dict``, ``state_dict`` or ``model`` (other tools). Keys saved from a ``torch.compile``d or DDP model (a uniform ``_orig_mod.`` or
    ``module.`` prefix) load too. Raises ``ValueError`` naming the missing, unexpected or mismatched keys when
    the file holds another architecture. Written by hand in 06_save_and_load, "Load it into a new instance".
    """
    check.module("model", model)
    state = safe_load(path, map_location)
    key = _weights_key(state)
    _load_state_dict(model, state[key] if key else state, path)
    return model


# where checkpoints keep the model's weights: ours, then what other tools and tutorials save
WEIGHTS_KEYS = ("model_state", "model_state_dict", "state_dict", "model")


def _weights_key(checkpoint: Any) -> str | None:
    """The key under which a checkpoint dict holds the model's state_dict, or None for a bare state_dict."""
    if not isinstance(checkpoint, dict):
        return None
    return next((k for k in WEIGHTS_KEYS if isinstance(checkpoint.get(k), dict)), None)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int,
    scheduler: LRScheduler | None = None,
    **extra: Any,
) -> Path:
    """Save model, optimizer (and scheduler) state, ``epoch`` (epochs done) and ``extra`` plain values.

    numpy numbers and arrays in ``extra`` become Python numbers and tensors, paths become str;
    anything ``load_checkpoint`` could not read back is refused here, before a file is written.
    Written by hand in 06_save_and_load, "Checkpoints: resume training exactly".
    """
    check.module("model", model)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}; pass the optimizer object."
        )
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise TypeError(
            f"epoch must be an int (the number of epochs done), got {epoch!r}; pass epoch=len(history.epochs)."
        )
    checkpoint = {"model_state": unwrap_model(model).state_dict(), "epoch": epoch, **_plain_extras(extra)}
    if optimizer is not None:
        checkpoint["optimizer_state"] = optimizer.state_dict()
    if scheduler is not None:
        checkpoint["scheduler_state"] = scheduler.state_dict()
    return atomic_save(checkpoint, path)


def _plain_extras(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` with numpy values and paths made plain; a reserved name or a value load_checkpoint could not read raises."""
    for key in _STATES:
        if key in extra:
            raise TypeError(
                f"save_checkpoint writes {key}= itself from model, optimizer and scheduler; "
                f"pass your value under another name, e.g. my_{key}=..."
            )
    plain = {key: _plain(value) for key, value in extra.items()}
    if _refused_value(plain):  # find the culprit only when there is one
        for key, value in plain.items():
            if _refused_value(value):
                raise TypeError(
                    f"save_checkpoint cannot store {key}= (it holds a {_culprit(value)}, which load_checkpoint would refuse); "
                    f"pass plain numbers, strings, lists, dicts or tensors{_fix(key, extra[key])}."
                )
    return plain


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, numpy arrays as tensors and paths as str, inside lists, tuples and dicts too."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        return torch.tensor(value)
    if isinstance(value, PurePath):
        return str(value)
    if type(value) in (list, tuple):
        return type(value)(_plain(v) for v in value)
    if type(value) is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _fix(key: str, value: Any) -> str:
    """An example conversion for a dataclass, model or numpy array passed as ``key``, else ''."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return f", e.g. {key}={key}.to_dict()"
        return f", e.g. {key}=dataclasses.asdict({key})"
    if isinstance(value, nn.Module):
        return f", e.g. {key}={key}.state_dict()"
    if isinstance(value, np.ndarray):
        return f", e.g. {key}={key}.tolist()"
    return ""


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device | None = "cpu",
    scheduler: LRScheduler | None = None,
) -> dict[str, Any]:
    """Restore ``model`` (and ``optimizer``, ``scheduler``) from ``path``; return the other entries.

    Written by hand in 06_save_and_load, "Checkpoints: resume training exactly".
    """
    check.module("model", model)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}; pass the optimizer object."
        )
    checkpoint = safe_load(path, map_location)
    if not isinstance(checkpoint, dict) or "model_state" not in checkpoint:
        key = _weights_key(checkpoint)
        if key is None and isinstance(checkpoint, dict):
            raise ValueError(
                f"{path} holds a bare state_dict (weights only), not a checkpoint from save_checkpoint; "
                "load it with load_model(model, path)."
            )
        if key is None:
            raise ValueError(
                f"{path} holds a {type(checkpoint).__name__}, not a checkpoint from save_checkpoint; pass the file "
                "that save_checkpoint wrote."
            )
        others = ", ".join(repr(k) for k in checkpoint if k != key) or "nothing else"
        opt_key = next((k for k in checkpoint if "optim" in str(k)), None)
        optimizer_line = (
            f"; its optimizer state loads with optimizer.load_state_dict(safe_load(path)[{opt_key!r}])"
            if opt_key
            else ""
        )
        raise ValueError(
            f"{path} is not a checkpoint from save_checkpoint: it keeps the weights under {key!r} (and holds "
            f"{others}); load_model(model, path) reads them{optimizer_line}."
        )
    _load_state_dict(model, checkpoint["model_state"], path)
    if optimizer is not None:
        if "optimizer_state" not in checkpoint:
            raise ValueError(f"{path} has no optimizer state; pass optimizer=None to load the model only.")
        _check_same_optimizer(optimizer, checkpoint["optimizer_state"], path)
        optimizer.load_state_dict(checkpoint["optimizer_state"])
    if scheduler is not None:
        if "scheduler_state" not in checkpoint:
            raise ValueError(f"{path} has no scheduler state; pass scheduler=None to skip it.")
        scheduler.load_state_dict(checkpoint["scheduler_state"])
    states = ("model_state", "optimizer_state", "scheduler_state")
    return {k: v for k, v in checkpoint.items() if k not in states}


def _check_same_optimizer(optimizer: torch.optim.Optimizer, state: Any, path: str | Path) -> None:
    """Refuse the state of another optimizer class (Adam's into SGD loads without a word and trains wrongly).

    Options another torch version added or a scheduler set (initial_lr) differ on one side only; options
    missing on both sides mean another class.
    """
    if not isinstance(state, dict) or not state.get("param_groups"):
        raise ValueError(f"{path} holds no optimizer state in the form torch saves; pass optimizer=None.")
    saved = set(state["param_groups"][0]) - {"params", "initial_lr"}
    own = set(optimizer.param_groups[0]) - {"params", "initial_lr"}
    if saved - own and own - saved:
        raise ValueError(
            f"{path} holds the state of another optimizer (with {', '.join(sorted(saved - own))}), not of this "
            f"{type(optimizer).__name__} (with {', '.join(sorted(own - saved))}); build the optimizer class that was "
            "saved, then load."
        )
    if len(state["param_groups"]) != len(optimizer.param_groups):
        raise ValueError(
            f"{path} holds an optimizer with {len(state['param_groups'])} parameter groups, this one has "
            f"{len(optimizer.param_groups)}; build it the way the saved one was built."
        )
    sizes = [len(g["params"]) for g in state["param_groups"]], [len(g["params"]) for g in optimizer.param_groups]
    if sizes[0] != sizes[1]:
        raise ValueError(
            f"{path} holds an optimizer over {sum(sizes[0])} parameter tensors, this one holds {sum(sizes[1])}; "
            "build it from the same model: torch.optim.SGD(model.parameters(), ...)."
        )


def _load_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state_dict of tensors; save it with save_model(model, path).")
    model = unwrap_model(model)
    own = model.state_dict()
    state = _strip_wrapper_prefix(state, own)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: saved {_shape(state[k])} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if own[k].shape != getattr(state[k], "shape", None)
    ]
    if missing or unexpected or mismatched:
        details = "; ".join(
            f"{label} {items}"
            for label, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if items
        )
        raise ValueError(
            f"{path} was saved from a different architecture than {type(model).__name__} ({details}). "
            "Build the same model class that was saved, then load."
        )
    model.load_state_dict(state)


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
