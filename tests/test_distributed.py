"""workflow_utils.distributed and fit under torch.distributed: two real gloo processes on this CPU; ex08's checks."""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from workflow_utils import distributed
from workflow_utils.checkpoint import load_model
from workflow_utils.data import TensorImageDataset, make_loader
from workflow_utils.engine import _summed_over_processes, fit
from workflow_utils.exercises import ex08
from workflow_utils.models import DigitsCNN, DigitsMLP


def tiny_dataset(n: int = 96) -> TensorImageDataset:
    """``n`` random 8x8 'digits' with labels 0-9, the same on every call."""
    g = torch.Generator().manual_seed(0)
    return TensorImageDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))


# --- the sampler and the loader -----------------------------------------------------------------


def test_each_process_gets_its_share_of_every_epoch():
    dataset = tiny_dataset(1257)
    shares = [
        distributed.DistributedBatches(dataset, 32, shuffle=True, seed=42, num_replicas=2, rank=r) for r in (0, 1)
    ]
    for epoch in (0, 1):
        for sampler in shares:
            sampler.set_epoch(epoch)
        seen = [[i for batch in sampler for i in batch] for sampler in shares]
        assert [len(s) for s in seen] == [629, 629]  # 1257 split in two, one image repeated
        assert sorted(set(seen[0]) | set(seen[1])) == list(range(1257))
        assert len(set(seen[0]) & set(seen[1])) == 1
        if epoch == 0:
            first_order = seen[0]
    assert seen[0] != first_order  # set_epoch reshuffles
    assert [len(b) for b in shares[0]] == [32] * 19 + [21] and len(shares[0]) == 20


def test_batches_follow_torch_distributed_sampler_order():
    dataset = tiny_dataset(100)
    ours = distributed.DistributedBatches(dataset, 8, shuffle=True, seed=3, num_replicas=3, rank=1)
    torchs = DistributedSampler(dataset, num_replicas=3, rank=1, shuffle=True, seed=3)
    ours.set_epoch(5)
    torchs.set_epoch(5)
    assert [i for batch in ours for i in batch] == list(torchs)


def test_one_process_sees_the_global_batches_of_make_loader():
    dataset = tiny_dataset(96)
    loader = distributed.distributed_loader(dataset, global_batch_size=32, shuffle=True, seed=0)
    plain = make_loader(dataset, batch_size=32, shuffle=True, seed=0)
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        plain.sampler.set_epoch(epoch)
        assert all(torch.equal(a[1], b[1]) for a, b in zip(loader, plain))
    assert len(loader) == len(plain) == 3


def test_a_global_batch_that_does_not_split_evenly_is_refused(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(
        ValueError, match=r"global_batch_size 64 does not split evenly over 3 processes; use a multiple of 3"
    ):
        distributed.distributed_loader(tiny_dataset(), global_batch_size=64)


def test_helpers_without_a_process_group(monkeypatch):
    for name in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert (distributed.is_distributed(), distributed.rank(), distributed.world_size()) == (False, 0, 1)
    assert distributed.is_main_process() and not distributed.launched_by_torchrun()
    assert distributed.gather_counts(7) == [7]
    distributed.teardown()  # nothing to leave: no error
    with pytest.raises(RuntimeError, match=r"torchrun --nproc_per_node=2"):
        distributed.setup()


@pytest.mark.parametrize(
    ("gpus", "processes_here", "backend", "expected"),
    [
        (0, 2, None, ("gloo", "cpu")),  # a CPU machine
        (1, 2, None, ("gloo", "cpu")),  # one GPU cannot serve two NCCL processes: all on the CPU
        (2, 2, None, ("nccl", "cuda:1")),  # one GPU each; LOCAL_RANK 1 takes the second
        (4, 2, "gloo", ("gloo", "cpu")),  # asked for
    ],
)
def test_backend_follows_the_gpus_of_this_machine(monkeypatch, gpus, processes_here, backend, expected):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(processes_here))
    monkeypatch.setenv("LOCAL_RANK", "1")
    name, device = distributed.backend_and_device(backend)
    assert (name, str(device)) == expected


def test_nccl_without_a_gpu_per_process_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"NCCL needs a GPU per process: 2 processes on this machine but 1 GPU"):
        distributed.backend_and_device("nccl")
    with pytest.raises(ValueError, match=r"backend must be 'nccl', 'gloo' or None"):
        distributed.backend_and_device("mpi")


def test_an_evaluation_split_counts_every_image_once():
    dataset = tiny_dataset(41)
    shares = [distributed.DistributedBatches(dataset, 8, False, pad=False, num_replicas=2, rank=r) for r in (0, 1)]
    seen = [[i for batch in sampler for i in batch] for sampler in shares]
    assert [len(s) for s in seen] == [21, 20] and sorted(seen[0] + seen[1]) == list(range(41))
    assert [len(sampler) for sampler in shares] == [3, 3]  # 8 + 8 + 5 and 8 + 8 + 4
    loader = distributed.distributed_loader(dataset, 16, pad=False)  # one process: all 41, in order
    assert torch.equal(torch.cat([y for _, y in loader]), dataset.labels)


class IntIndexOnly(Dataset):
    """A Dataset like most users write: one int index in, one (image, label) out."""

    def __init__(self, n: int) -> None:
        self.inner = tiny_dataset(n)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int):
        if not isinstance(index, int):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        return self.inner.images[index], self.inner.labels[index]


def test_a_dataset_of_int_indices_is_read_one_item_at_a_time():
    plain = distributed.distributed_loader(IntIndexOnly(50), 16, shuffle=True, seed=1)
    fast = distributed.distributed_loader(tiny_dataset(50), 16, shuffle=True, seed=1)
    batches = list(plain)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, fast))
    with pytest.raises(TypeError, match=r"dataset must be a Dataset with a length and int indices"):
        distributed.distributed_loader([1, 2, 3], 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_env(monkeypatch, rank: int, port: int) -> None:
    """The variables torchrun would set for ``rank`` of 2 processes on this machine."""
    variables = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 2, "LOCAL_WORLD_SIZE": 2, "MASTER_PORT": port}
    for name, value in {**variables, "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)


def test_rank_0_alone_stops_waiting_in_seconds_with_one_line(monkeypatch):
    _torchrun_env(monkeypatch, 0, _free_port())
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as error:
        distributed.setup("gloo", join_timeout_s=1)
    assert str(error.value) == "waited 1 s for 1 more process; start with torchrun --nproc_per_node=2."
    assert time.perf_counter() - start < 20 and not distributed.is_distributed()


def test_a_busy_master_port_gets_one_line(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _torchrun_env(monkeypatch, 0, port)
        with pytest.raises(RuntimeError, match=rf"^MASTER_PORT {port} is already in use by another program; pick"):
            distributed.setup("gloo", join_timeout_s=5)
    assert not distributed.is_distributed()


def test_sums_pass_through_a_group_of_one():
    loss_sum, metric_sum = torch.tensor(6.0), torch.tensor(3.0, dtype=torch.float64)
    assert _summed_over_processes(loss_sum, metric_sum, 4) == (6.0, 3.0, 4)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert _summed_over_processes(loss_sum, metric_sum, 4) == (6.0, 3.0, 4)
    finally:
        dist.destroy_process_group()


# --- fit under DistributedDataParallel, two processes ---------------------------------------------


def _train(model: nn.Module, train, val, **kwargs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return fit(model, train, nn.CrossEntropyLoss(), optimizer, 3, val_data=val, metric="accuracy", seed=0, **kwargs)


VAL_IMAGES = 41  # odd, so a padded split would count one image twice


def _ddp_worker(rank: int, folder: str) -> None:
    """One of two processes: fit a DDP MLP on its share; save what it printed, its history and its weights."""
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(DigitsMLP(hidden=16))
        train = distributed.distributed_loader(tiny_dataset(96), 32, shuffle=True, seed=0)
        val = distributed.distributed_loader(tiny_dataset(VAL_IMAGES), 32, pad=False)  # odd: 21 + 20 images
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            history = _train(model, train, val, print_every=1, checkpoint_path=f"{folder}/best_{rank}.pth")
        torch.save(
            {
                "printed": out.getvalue(),
                "train_loss": history.train_loss,
                "val_loss": history.val_loss,
                "val_metric": history.val_metric,
                "weights": model.module.state_dict(),
            },
            f"{folder}/result_{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_ddp_worker, args=(str(folder),), nprocs=2, start_method="spawn")
    return folder, [torch.load(folder / f"result_{r}.pt", weights_only=True) for r in (0, 1)]


def test_two_processes_train_exactly_like_one_with_the_same_global_batch(ddp_results):
    _, (rank0, rank1) = ddp_results
    torch.manual_seed(0)
    model = DigitsMLP(hidden=16)
    val = make_loader(tiny_dataset(VAL_IMAGES), 32)
    history = _train(model, make_loader(tiny_dataset(96), 32, shuffle=True, seed=0), val)
    # Figures summed over both shares, then divided once; every validation image counted once, none twice.
    for key in ("train_loss", "val_loss", "val_metric"):
        assert rank0[key] == rank1[key] == pytest.approx(getattr(history, key), abs=1e-6), key
    for name, weight in model.state_dict().items():  # averaged gradients: the same steps as one process
        assert torch.allclose(rank0["weights"][name], weight, atol=1e-6) and torch.equal(
            rank0["weights"][name], rank1["weights"][name]
        )


def test_only_rank_0_prints_and_writes_the_checkpoint(ddp_results):
    folder, (rank0, rank1) = ddp_results
    legend, *lines = rank0["printed"].splitlines()
    assert legend.startswith("(train: mean over the epoch's batches") and len(lines) == 3
    assert lines[0].startswith("epoch   0 | train loss")
    assert rank1["printed"] == ""
    assert (folder / "best_0.pth").is_file() and not (folder / "best_1.pth").exists()
    best = load_model(DigitsMLP(hidden=16), folder / "best_0.pth")  # the plain model's keys, not DDP's 'module.'
    assert all(torch.isfinite(p).all() for p in best.parameters())


# --- leaving the group: nothing of gloo is left running ---------------------------------------------


def _gloo_threads() -> list[str]:
    """The names of this process's threads that belong to gloo (gloo_tcp_loop, pt_gloo_runloop)."""
    names = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            names.append((task / "comm").read_text().strip())
    return sorted(name for name in names if "gloo" in name)


def _teardown_worker(rank: int, folder: str, port: int) -> None:
    """One of two processes: join as under torchrun, one DDP step of the script's CNN, tear down; record gloo threads."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dynamo_was_imported = "torch._dynamo" in sys.modules  # must be False, or the test proves nothing
    device = distributed.setup("gloo")
    running = _gloo_threads()
    torch.manual_seed(42)
    model = nn.parallel.DistributedDataParallel(DigitsCNN().to(device))  # as workflow_utils.train_digits builds it
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = tiny_dataset(8)[list(range(4 * rank, 4 * rank + 4))]
    nn.functional.cross_entropy(model(X), y).backward()  # the all-reduce of the gradients
    optimizer.step()
    del model, optimizer
    gc.collect()
    distributed.teardown()
    gc.collect()
    deadline = time.monotonic() + 5
    while _gloo_threads() and time.monotonic() < deadline:  # give stopping threads a moment
        time.sleep(0.1)
    result = {"dynamo_was_imported": dynamo_was_imported, "running": running, "left": _gloo_threads()}
    torch.save(result, f"{folder}/threads_{rank}.pt")


def test_teardown_leaves_no_gloo_thread(tmp_path):
    mp.start_processes(_teardown_worker, args=(str(tmp_path), _free_port()), nprocs=2, start_method="spawn")
    for rank in (0, 1):
        result = torch.load(tmp_path / f"threads_{rank}.pt", weights_only=True)
        assert not result["dynamo_was_imported"]
        if not result["running"]:  # PyTorch 2.8 (the floor) does not name gloo's threads yet: nothing to count
            pytest.skip(f"this PyTorch ({torch.__version__}) does not name gloo's threads, so none can be counted")
        assert "gloo_tcp_loop" in result["running"]  # the group did run gloo's threads
        assert result["left"] == [], f"rank {rank}: gloo threads still running after teardown: {result['left']}"


# --- ex08: each check accepts its solution and rejects typical mistakes --------------------------


def _verdict(exercise, *answer) -> tuple[bool, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exercise.check(*answer)
    ok = out.getvalue().strip().endswith("correct!")
    assert ok == exercise.passes(*answer)
    return ok, out.getvalue()


def test_ex08_q1_torchrun_command():
    good = "torchrun --nproc_per_node=4 -m workflow_utils.train_digits --epochs 10 --batch-size 128"
    assert _verdict(ex08.q1, good)[0]
    assert _verdict(
        ex08.q1,
        "python -m torch.distributed.run --nproc_per_node 4 -m workflow_utils.train_digits --epochs 10 --batch-size 128",
    )[0]
    assert _verdict(ex08.q1, good.replace(" -m ", " --module "))[0]  # torchrun's long spelling of -m
    # the module's own file runs it too (from the repository's root)
    assert _verdict(ex08.q1, good.replace("-m workflow_utils.train_digits", "workflow_utils/train_digits.py"))[0]
    assert "not attempted" in _verdict(ex08.q1, None)[1]
    flags_last = "torchrun -m workflow_utils.train_digits --nproc_per_node=4 --epochs 10 --batch-size 128"
    assert "flags go before the script" in _verdict(ex08.q1, flags_last)[1]
    assert "global batch" in _verdict(ex08.q1, good.replace("128", "32"))[1]
    assert (
        "start the command with torchrun"
        in _verdict(ex08.q1, "python -m workflow_utils.train_digits --epochs 10 --batch-size 128")[1]
    )
    assert "--epochs 10" in _verdict(ex08.q1, good.replace("10", "20"))[1]
    assert "does not accept" in _verdict(ex08.q1, good + " --workers 2")[1]
    assert "one string" in _verdict(ex08.q1, good.split())[1]
    # the MLP is not the task's model, and 2 machines of 4 processes are 8 processes
    assert "leave --model out" in _verdict(ex08.q1, good + " --model mlp")[1]
    assert _verdict(ex08.q1, good + " --model cnn")[0]  # the default, spelled out
    assert "leave --nnodes out" in _verdict(ex08.q1, good.replace("torchrun ", "torchrun --nnodes=2 "))[1]
    assert _verdict(ex08.q1, good.replace("torchrun ", "torchrun --nnodes=1 --standalone "))[0]


def test_ex08_q1_names_the_module_when_the_script_is_named_otherwise():
    moved = "torchrun --nproc_per_node=4 scripts/train_digits.py --epochs 10 --batch-size 128"  # where it was before
    ok, out = _verdict(ex08.q1, moved)
    assert not ok and "a module of the package, so name it with -m" in out
    ok, out = _verdict(ex08.q1, moved.replace("scripts/train_digits.py", "workflow_utils.train_digits"))
    assert not ok and "runs a module only with -m before its name" in out
    ok, out = _verdict(ex08.q1, moved.replace("scripts/train_digits.py", "-m train_digits"))
    assert not ok and "-m workflow_utils.train_digits (you wrote -m train_digits)" in out
    ok, out = _verdict(ex08.q1, moved.replace("scripts/train_digits.py", "train.py"))
    assert not ok and "comes the script: torchrun --nproc_per_node=4 -m workflow_utils.train_digits" in out


def test_ex08_q2_shares():
    def shares(n_images, processes):
        per_process = math.ceil(n_images / processes)
        return per_process, per_process * processes - n_images

    assert _verdict(ex08.q2, shares)[0]
    ok, out = _verdict(ex08.q2, lambda n, p: (n // p, 0))
    assert not ok and "(628, 0)" in out and "round up" in out
    assert "two numbers" in _verdict(ex08.q2, lambda n, p: math.ceil(n / p))[1]


def _average_gradients(model, loss_fn, X, y, processes):
    sums = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for X_shard, y_shard in zip(X.chunk(processes), y.chunk(processes)):
        model.zero_grad()
        loss_fn(model(X_shard), y_shard).backward()
        for name, p in model.named_parameters():
            sums[name] += p.grad
    return {name: total / processes for name, total in sums.items()}


def test_ex08_q3_averaged_gradients():
    assert _verdict(ex08.q3, _average_gradients)[0]

    def summed(model, loss_fn, X, y, processes):
        return {k: v * processes for k, v in _average_gradients(model, loss_fn, X, y, processes).items()}

    def first_shard_only(model, loss_fn, X, y, processes):
        return _average_gradients(model, loss_fn, X[: len(X) // processes], y[: len(y) // processes], 1)

    assert "does not sum" in _verdict(ex08.q3, summed)[1]
    assert "equal consecutive shards" in _verdict(ex08.q3, first_shard_only)[1]
    assert "dict" in _verdict(ex08.q3, lambda *args: [1, 2])[1]


def test_what_c_code_prints_while_connecting_goes_to_stderr(capfd):
    """gloo in PyTorch 2.8 prints '[Gloo] Rank 0 is connected ...' on stdout; setup() sends it to stderr."""
    with distributed._stdout_to_stderr():
        os.write(1, b"[Gloo] Rank 0 is connected to 1 peer ranks.\n")
    os.write(1, b"a result line\n")
    out, err = capfd.readouterr()
    assert out == "a result line\n" and err == "[Gloo] Rank 0 is connected to 1 peer ranks.\n"
