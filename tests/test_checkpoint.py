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
