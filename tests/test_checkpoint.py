import os
import pickle
import re
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from workflow_utils.checkpoint import atomic_save, load_checkpoint, load_model, save_checkpoint, save_model
from workflow_utils.engine import History
from workflow_utils.models import LinearRegressionModel, LinearRegressionModelV2


def _model(seed=42):
    torch.manual_seed(seed)
    return LinearRegressionModel()


def test_save_and_load_model_round_trip(tmp_path):
    original = _model()
    save_model(original, tmp_path / "sub" / "m.pth")  # missing folders are created
    loaded = load_model(_model(seed=0), tmp_path / "sub" / "m.pth")
    assert torch.equal(loaded.weights, original.weights) and torch.equal(loaded.bias, original.bias)


def test_checkpoint_restores_optimizer_and_extras(tmp_path):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(3, 1)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.pth", model, opt, epoch=7, best_val_loss=0.5)

    fresh = _model(seed=1)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    info = load_checkpoint(tmp_path / "c.pth", fresh, fresh_opt)
    assert info == {"epoch": 7, "best_val_loss": 0.5}
    assert torch.equal(fresh.weights, model.weights)
    saved_buffers = [opt.state[p]["momentum_buffer"] for p in model.parameters()]
    loaded_buffers = [fresh_opt.state[p]["momentum_buffer"] for p in fresh.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(saved_buffers, loaded_buffers))


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.pth"
    save_model(_model(), path)
    good = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(1)}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]  # no temp file left behind


def test_truncated_file_gives_clear_error(tmp_path):
    path = tmp_path / "m.pth"
    save_model(_model(), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RuntimeError, match="truncated or corrupt"):
        load_model(_model(), path)


def test_missing_file_gives_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="save one first"):
        load_model(_model(), tmp_path / "nope.pth")


def test_other_architecture_lists_the_mismatch(tmp_path):
    save_model(_model(), tmp_path / "m.pth")
    with pytest.raises(ValueError) as info:
        load_model(LinearRegressionModelV2(), tmp_path / "m.pth")
    message = str(info.value)
    assert "missing keys ['linear_layer.bias', 'linear_layer.weight']" in message
    assert "unexpected keys ['bias', 'weights']" in message


def test_shape_mismatch_is_listed(tmp_path):
    atomic_save({"weights": torch.zeros(2), "bias": torch.zeros(1)}, tmp_path / "m.pth")
    with pytest.raises(ValueError, match=r"weights: saved \(2,\) vs model \(1,\)"):
        load_model(_model(), tmp_path / "m.pth")


class _Payload:
    ran = False

    def __reduce__(self):
        return (_mark_ran, ())


def _mark_ran():
    _Payload.ran = True
    return {}


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        torch.save(_Payload(), f)  # a file whose unpickling would call _mark_ran
    with pytest.raises(pickle.UnpicklingError, match="save model.state_dict"):
        load_model(_model(), path)
    assert _Payload.ran is False


def test_save_into_a_directory_path_is_explained(tmp_path):
    with pytest.raises(IsADirectoryError, match="pass a file path"):
        save_model(_model(), tmp_path)


def test_malicious_pickle_payload_is_real_but_never_runs_through_load_model(tmp_path):
    """A payload with a visible side effect (creating a folder) that plain unpickling does run."""
    import os
    import subprocess
    import sys

    marker = tmp_path / "payload_ran"

    class MakeFolder:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "evil.pth"
    torch.save({"weights": MakeFolder()}, path)

    for load in (lambda: load_model(_model(), path), lambda: load_checkpoint(path, _model())):
        with pytest.raises(pickle.UnpicklingError, match="save model.state_dict"):
            load()
    assert not marker.exists(), "the safe loaders ran the payload"

    # The same file loaded the unsafe way (in another process) does run it: the test above is not vacuous.
    unsafe = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", unsafe], check=True, capture_output=True, timeout=120)
    assert marker.is_dir()


def _as_if_saved_on_cuda(src, dst):
    """Copy a torch.save file, retagging every storage's location from 'cpu' to 'cuda:0'.

    A file saved from a CUDA model differs from a CPU one only in these tags (the bytes of each
    storage are the same), so this is that file, built without a GPU. The pickle is protocol 2,
    where the tag is the BINUNICODE string 'cpu' inside each storage's persistent id.
    """
    reader = torch._C.PyTorchFileReader(str(src))
    records = {name: reader.get_record(name) for name in reader.get_all_records()}
    pkl = records["data.pkl"]
    assert pkl.count(b"X\x03\x00\x00\x00cpu") == 1  # memoized: one tag, referenced by every storage
    records["data.pkl"] = pkl.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    writer = torch._C.PyTorchFileWriter(str(dst))  # keeps torch's record alignment
    for name, data in records.items():
        if name not in ("version", ".data/serialization_id"):  # the writer adds these itself
            writer.write_record(name, data, len(data))
    writer.write_end_of_file()
    del writer


def test_checkpoint_saved_from_a_cuda_model_loads_on_cpu(tmp_path):
    original = _model()
    save_model(original, tmp_path / "cpu.pth")
    gpu_file = tmp_path / "cuda.pth"
    _as_if_saved_on_cuda(tmp_path / "cpu.pth", gpu_file)

    locations = []
    torch.load(gpu_file, weights_only=True, map_location=lambda storage, loc: locations.append(loc) or storage)
    assert locations == ["cuda:0", "cuda:0"]  # the file really says its tensors live on a GPU

    loaded = load_model(_model(seed=0), gpu_file, map_location="cpu")
    assert loaded.weights.device.type == "cpu"
    assert torch.equal(loaded.weights, original.weights) and torch.equal(loaded.bias, original.bias)

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):  # torch's own wording is not ours to test
            torch.load(gpu_file, weights_only=True)  # what a learner hits without map_location
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            load_model(_model(), gpu_file, map_location=None)


# --- off the happy path: what a checkpoint may hold, where it goes, who may read it --------------


def test_numpy_values_and_paths_are_stored_as_plain_values(tmp_path):
    extras = {
        "loss": np.float64(0.25),
        "step": np.int64(3),
        "curve": np.array([1.0, 2.0]),
        "run_dir": Path("runs") / "a",
        "nested": {"lrs": [np.float32(0.5), (np.int32(2), "x")]},
    }
    save_checkpoint(tmp_path / "c.pth", _model(), epoch=1, **extras)
    info = load_checkpoint(tmp_path / "c.pth", _model())
    assert info["loss"] == 0.25 and type(info["loss"]) is float
    assert info["step"] == 3 and type(info["step"]) is int
    assert torch.equal(info["curve"], torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert info["run_dir"] == str(Path("runs") / "a")
    assert info["nested"] == {"lrs": [0.5, (2, "x")]} and type(info["nested"]["lrs"][1][0]) is int
    assert type(extras["loss"]) is np.float64  # the caller's values are left as they were


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        (History(epochs=[0], train_loss=[0.5]), r"extra=extra\.to_dict\(\)"),
        (LinearRegressionModel(), r"extra=extra\.state_dict\(\)"),
        (np.array(["cat", "dog"]), r"extra=extra\.tolist\(\)"),
        ({"window": slice(0, 5)}, r"holds a slice, which.*pass plain numbers, strings, lists, dicts or tensors\.$"),
    ],
    ids=["History", "a model", "numpy strings", "a slice inside a dict"],
)
def test_an_extra_that_would_not_load_back_is_refused_at_save_time(tmp_path, value, fix):
    path = tmp_path / "c.pth"
    with pytest.raises(TypeError, match=fix):
        save_checkpoint(path, _model(), epoch=1, extra=value)
    assert list(tmp_path.iterdir()) == []  # nothing written that load_checkpoint would refuse


def test_the_advice_for_a_history_works_and_leaves_the_weights_out(tmp_path):
    from torch import nn

    from workflow_utils.engine import fit

    model = nn.Linear(1, 1)
    data = (torch.zeros(4, 1), torch.ones(4, 1))
    history = fit(model, data, nn.L1Loss(), torch.optim.SGD(model.parameters(), lr=0.1), 2, val_data=data)
    assert history.best_state is not None and "best_state" not in history.to_dict()
    save_checkpoint(tmp_path / "c.pth", model, epoch=2, history=history.to_dict())
    extras = load_checkpoint(tmp_path / "c.pth", nn.Linear(1, 1))
    assert extras["history"]["train_loss"] == history.train_loss
    assert history == History(**history.to_dict())  # the weights copy is not compared


def test_atomic_save_refuses_what_safe_load_would_refuse(tmp_path):
    with pytest.raises(TypeError, match=r"would hold a LinearRegressionModel, which.*model\.state_dict\(\)"):
        atomic_save(_model(), tmp_path / "whole_model.pth")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["model_state", "optimizer_state", "scheduler_state"])
def test_an_extra_named_like_a_state_is_refused(tmp_path, key):
    model = _model()
    with pytest.raises(TypeError, match=rf"{key}=.*another name"):
        save_checkpoint(tmp_path / "c.pth", model, torch.optim.SGD(model.parameters(), lr=0.1), epoch=1, **{key: {}})
    assert list(tmp_path.iterdir()) == []


def test_home_folder_is_expanded_on_save_and_load(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))  # what expanduser reads on Windows
    monkeypatch.chdir(cwd)
    original = _model()
    assert save_model(original, "~/models/m.pth") == home / "models" / "m.pth"
    save_checkpoint("~/models/c.pth", original, epoch=4)
    assert sorted(p.name for p in (home / "models").iterdir()) == ["c.pth", "m.pth"]
    assert list(cwd.iterdir()) == []  # no folder literally named '~'
    assert torch.equal(load_model(_model(seed=0), "~/models/m.pth").weights, original.weights)
    assert load_checkpoint("~/models/c.pth", _model(seed=0)) == {"epoch": 4}


@pytest.mark.parametrize("suffix", ["/", "/.", os.sep], ids=["slash", "slash-dot", "os.sep"])
def test_a_path_naming_a_folder_to_be_is_refused(tmp_path, suffix):
    with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path / "newfolder" / "model.pth"))):
        save_model(_model(), str(tmp_path / "newfolder") + suffix)
    assert list(tmp_path.iterdir()) == []  # neither a file nor a folder named newfolder


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=["022", "002", "077"])
def test_saved_files_get_the_permissions_torch_save_gives(tmp_path, umask, mask):
    umask(mask)
    torch.save({"x": torch.zeros(1)}, tmp_path / "plain.pth")
    save_model(_model(), tmp_path / "m.pth")
    save_checkpoint(tmp_path / "c.pth", _model(), epoch=0)
    expected = 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "plain.pth").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "m.pth").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "c.pth").stat().st_mode) == expected


def _leave(path, age_s):
    path.write_bytes(b"half a checkpoint")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_orphan_temp_files_of_a_killed_run_are_removed_on_the_next_save(tmp_path):
    orphan = _leave(tmp_path / ".c.pth.k3x_9aqz.tmp", age_s=3600)  # what a killed save leaves behind
    fresh = _leave(tmp_path / ".c.pth.b7qe2m1w.tmp", age_s=0)  # may be another process writing right now
    keep = [
        _leave(tmp_path / name, age_s=3600)
        for name in (
            ".d.pth.k3x_9aqz.tmp",
            "c.pth.k3x_9aqz.tmp",
            ".c.pth.notes.tmp",
            ".c.pth.k3x_9aqz.tmp.bak",
            "c.pth.tmp",
        )
    ]
    (tmp_path / ".c.pth.dir00000.tmp").mkdir()
    (tmp_path / ".c.pth.link0000.tmp").symlink_to(keep[0])
    os.utime(tmp_path / ".c.pth.link0000.tmp", (0, 0), follow_symlinks=False)
    save_checkpoint(tmp_path / "c.pth", _model(), epoch=1)
    assert not orphan.exists()
    assert fresh.read_bytes() == b"half a checkpoint"
    assert all(p.read_bytes() == b"half a checkpoint" for p in keep)
    assert (tmp_path / ".c.pth.dir00000.tmp").is_dir() and (tmp_path / ".c.pth.link0000.tmp").is_symlink()
    assert load_checkpoint(tmp_path / "c.pth", _model()) == {"epoch": 1}


def test_a_failed_write_after_the_temp_file_exists_leaves_no_trace(tmp_path, monkeypatch):
    path = tmp_path / "m.pth"
    save_model(_model(), path)
    good = path.read_bytes()

    def full_disk(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="disk full"):
        save_model(_model(seed=1), path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]


# --- wrapped models (torch.compile, DDP) and files that are not checkpoints ----------------------


def test_the_refused_type_is_named_by_us_not_by_torch(tmp_path):
    class Window:  # a local class: torch would name it by its full dotted path
        pass

    with pytest.raises(TypeError, match=r"it holds a Window, which"):
        save_checkpoint(tmp_path / "c.pth", _model(), epoch=1, extra={"a": [1, (2, Window())]})
    with pytest.raises(TypeError, match=r"would hold a range, which"):
        atomic_save({"ok": torch.ones(1), "bad": [range(3)]}, tmp_path / "x.pth")
    with pytest.raises(TypeError, match=r"would hold a function, which"):
        atomic_save({"fn": lambda x: x}, tmp_path / "x.pth")  # pickle cannot even write it
    assert list(tmp_path.iterdir()) == []


class _Wrapper(torch.nn.Module):
    """Stands in for a wrapper that keeps the model as .module (what DDP and DataParallel do)."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_a_ddp_style_or_compiled_state_loads_into_the_plain_model(tmp_path):
    original = _model()
    for prefix in ("module.", "_orig_mod.", "_orig_mod.module."):
        path = tmp_path / "wrapped.pth"
        torch.save({prefix + k: v for k, v in original.state_dict().items()}, path)
        loaded = load_model(_model(seed=0), path)
        assert torch.equal(loaded.weights, original.weights), prefix
    dp = torch.nn.DataParallel(_model(seed=3))
    save_model(dp, tmp_path / "dp.pth")
    assert set(torch.load(tmp_path / "dp.pth", weights_only=True)) == {"weights", "bias"}  # no module. prefix
    load_model(dp, tmp_path / "wrapped.pth")  # loading into the wrapper works too
    assert torch.equal(dp.module.weights, original.weights)


def test_a_model_whose_own_keys_start_with_module_is_not_stripped(tmp_path):
    model = _Wrapper(torch.nn.Linear(1, 1))  # its own keys are module.weight, module.bias
    save_model(model, tmp_path / "m.pth")
    fresh = _Wrapper(torch.nn.Linear(1, 1))
    load_model(fresh, tmp_path / "m.pth")
    assert torch.equal(fresh.module.weight, model.module.weight)


def test_a_compiled_model_trained_with_fit_round_trips_through_its_checkpoint(tmp_path):
    from torch import nn

    from workflow_utils.engine import fit

    torch.manual_seed(0)
    X = torch.randn(32, 3)
    y = X @ torch.tensor([[0.5], [-1.0], [2.0]])
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    compiled = torch.compile(plain, backend="aot_eager")  # traces forward and backward like inductor, no C++ build
    assert any(k.startswith("_orig_mod.") for k in compiled.state_dict())  # what used to be saved
    optimizer = torch.optim.SGD(compiled.parameters(), lr=0.05)
    best, last = tmp_path / "best.pth", tmp_path / "last.pth"
    history = fit(
        compiled, (X, y), nn.MSELoss(), optimizer, 5, val_data=(X, y), checkpoint_path=best, last_checkpoint_path=last
    )
    assert history.train_loss[-1] < history.train_loss[0]
    save_model(compiled, tmp_path / "model.pth")
    for path in (best, last, tmp_path / "model.pth"):
        fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        load_model(fresh, path)
        if path != best or history.best_epoch == 4:
            assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), plain.state_dict().values()))
        with torch.no_grad():
            assert torch.equal(fresh(X), plain(X)) or path == best
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.05)
    assert load_checkpoint(last, fresh, fresh_opt)["epoch"] == 5


def test_a_json_file_is_not_called_code(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{"weights": [0.7], "bias": [0.3]}')
    with pytest.raises(ValueError, match=r"not a file written by torch\.save \(it holds text such as JSON or CSV\)"):
        load_model(_model(), path)


# --- advice that is true: each message names the real cause and a fix that works -------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_map_location_cuda_without_a_gpu_names_the_device_not_a_corrupt_file(tmp_path):
    path = save_model(LinearRegressionModel(), tmp_path / "line.pth")
    with pytest.raises(
        ValueError, match=r"asks for an NVIDIA GPU \(CUDA\), which this machine does not have; use map_location='cpu'"
    ):
        load_model(LinearRegressionModel(), path, map_location="cuda")
    with pytest.raises(ValueError, match="not a device name"):
        load_model(LinearRegressionModel(), path, map_location="gpu0")
    assert load_model(LinearRegressionModel(), path, map_location="cpu")  # the named fix works


@pytest.mark.parametrize("key", ["model_state_dict", "state_dict", "model"])
def test_other_tools_checkpoint_layouts_load_and_load_checkpoint_says_where(tmp_path, key):
    """Weights under model_state_dict / state_dict / model (what tutorials and other tools save) load with
    load_model; load_checkpoint names the key and sends the caller there, without pointing back at itself."""
    torch.manual_seed(0)
    source = LinearRegressionModel()
    optimizer = torch.optim.SGD(source.parameters(), lr=0.1)
    path = tmp_path / "theirs.pth"
    torch.save({key: source.state_dict(), "optimizer_state_dict": optimizer.state_dict(), "epoch": 3}, path)
    loaded = load_model(LinearRegressionModel(), path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), source.state_dict().values()))
    with pytest.raises(
        ValueError, match=rf"keeps the weights under '{key}'.*load_model\(model, path\) reads them"
    ) as info:
        load_checkpoint(path, LinearRegressionModel())
    assert "'optimizer_state_dict'" in str(info.value)


def test_a_bare_state_dict_given_to_load_checkpoint_is_sent_to_load_model(tmp_path):
    path = save_model(LinearRegressionModel(), tmp_path / "bare.pth")
    with pytest.raises(ValueError, match=r"bare state_dict .* load_model\(model, path\)"):
        load_checkpoint(path, LinearRegressionModel())


@pytest.mark.parametrize(
    "extra", [np.arange(3), __import__("argparse").Namespace(lr=0.1)], ids=["numpy array", "argparse.Namespace"]
)
def test_someone_elses_file_with_numpy_or_namespace_gets_advice_that_works(tmp_path, extra):
    """The advice for a file someone else wrote: weights_only=False for a trusted file, then load_state_dict;
    following it loads the weights."""
    source = LinearRegressionModel()
    path = tmp_path / "public.pth"
    torch.save({"state_dict": source.state_dict(), "args": extra}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"trust its source.*weights_only=False.*load_state_dict") as info:
        load_model(LinearRegressionModel(), path)
    assert "save model.state_dict() instead" in str(info.value)  # the advice for one's own file stays
    followed = LinearRegressionModel()
    followed.load_state_dict(torch.load(path, weights_only=False)["state_dict"])
    assert torch.equal(followed.weights, source.weights)


def _refuse_renames(monkeypatch, times):
    """os.replace refuses ``times`` times (a file held open on Windows), then works."""
    import workflow_utils.checkpoint as ckpt

    real, calls = os.replace, []

    def held_open(src, dst):
        calls.append(dst)
        if len(calls) <= times:
            raise PermissionError(13, "The process cannot access the file because it is being used", str(dst))
        return real(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", held_open)
    monkeypatch.setattr(ckpt.time, "sleep", lambda s: None)
    return calls


def test_a_rename_refused_for_a_moment_is_tried_again(tmp_path, monkeypatch):
    calls = _refuse_renames(monkeypatch, times=2)
    path = save_model(LinearRegressionModel(), tmp_path / "m.pth")
    assert len(calls) == 3 and load_model(LinearRegressionModel(), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]  # no temp file left behind


def test_a_rename_refused_for_good_is_one_clear_line_and_fit_keeps_its_history(tmp_path, monkeypatch):
    from torch import nn

    from workflow_utils.engine import fit

    _refuse_renames(monkeypatch, times=10**6)
    with pytest.raises(
        PermissionError, match=r"perhaps another program keeps it open .*save under another name, e\.g\. .*m_new\.pth"
    ):
        save_model(LinearRegressionModel(), tmp_path / "m.pth")
    model = nn.Linear(1, 1)
    data = (torch.zeros(4, 1), torch.ones(4, 1))
    history = fit(
        model,
        data,
        nn.L1Loss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        5,
        val_data=data,
        checkpoint_path=tmp_path / "best.pth",
    )
    assert history.epochs == [0] and history.stop_reason.startswith("stopped after epoch 0: could not replace")
    assert "history so far is returned" in history.stop_reason
