import pickle

import pytest
import torch

from workflow_utils.checkpoint import atomic_save, load_checkpoint, load_model, save_checkpoint, save_model
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
    assert fresh_opt.state_dict()["state"][0]["momentum_buffer"] is not None


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
    with pytest.raises(pickle.UnpicklingError, match="Save model.state_dict"):
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
        with pytest.raises(pickle.UnpicklingError, match="Save model.state_dict"):
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
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(gpu_file, weights_only=True)  # what a learner hits without map_location
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            load_model(_model(), gpu_file, map_location=None)
