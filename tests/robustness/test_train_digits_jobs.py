"""workflow_utils.train_digits as real jobs: a worker killed and restarted by torchrun, and two launches as two nodes.

Each compares with an uninterrupted two-process run on one machine: the same final weights, the same
metrics.csv epochs and the same test accuracy. About a minute each on a 2-core laptop, so they run
under `make test-robust`, not `make test`.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workflow_utils.checkpoint import safe_load
from workflow_utils.data import load_digits_data

MODULE = ["-m", "workflow_utils.train_digits"]  # as `python -m` and `torchrun -m` take it
FLAGS = ["--epochs", "4", "--model", "mlp", "--print-every", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*flags: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *flags]


def finished(job: subprocess.Popen | subprocess.CompletedProcess) -> str:
    """What the job printed; fails with its error output when it did not exit 0."""
    if isinstance(job, subprocess.Popen):
        stdout, stderr = job.communicate(timeout=600)
        returncode = job.returncode
    else:
        stdout, stderr, returncode = job.stdout, job.stderr, job.returncode
    assert returncode == 0, stderr[-3000:]
    return stdout


def epochs_logged(out: Path) -> list[str]:
    with (out / "metrics.csv").open(newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def same_weights(a: Path, b: Path) -> bool:
    first, second = safe_load(a)["model_state"], safe_load(b)["model_state"]
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "digits"
    load_digits_data(root)
    return root


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_root) -> tuple[Path, list[str]]:
    """Two processes on this machine, four epochs, nothing killed: the reference."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    command = [*torchrun("--nproc_per_node=2"), *MODULE, *FLAGS, "--data", str(data_root), "--out", str(out)]
    printed = finished(subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600))
    return out, printed.splitlines()


def test_a_worker_killed_after_epoch_2_restarts_and_ends_with_the_same_weights(uninterrupted, data_root, tmp_path):
    reference, reference_lines = uninterrupted
    out = tmp_path / "run"
    launch = torchrun("--nproc_per_node=2", "--max-restarts=1")
    command = [*launch, *MODULE, *FLAGS, "--data", str(data_root), "--out", str(out), "--simulate-failure", "2"]
    printed = finished(subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)).splitlines()
    assert "simulated failure: process 1 killed after epoch 2" in printed  # killed, then restarted by torchrun
    assert "restart 1: resuming at epoch 3 from last.pth" in printed
    assert epochs_logged(out) == epochs_logged(reference) == ["0", "1", "2", "3"]  # none twice, none missing
    assert same_weights(out / "last.pth", reference / "last.pth")
    assert same_weights(out / "best.pth", reference / "best.pth")
    assert printed[-1] == reference_lines[-1] and printed[-1].startswith("test accuracy: ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_launches_as_two_nodes_match_one_machine_and_say_who_writes(uninterrupted, data_root, tmp_path):
    _, reference_lines = uninterrupted
    rendezvous = [
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
        "--rdzv-id=test-two-nodes",
    ]
    folders = [tmp_path / "node-a", tmp_path / "node-b"]  # each launch in its own working folder
    jobs = []
    for folder in folders:
        folder.mkdir()
        command = [*torchrun(*rendezvous), *MODULE, *FLAGS, "--data", str(data_root), "--out", "run"]
        jobs.append(
            subprocess.Popen(command, cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    printed = [finished(job).splitlines() for job in jobs]
    writer = next(i for i, lines in enumerate(printed) if lines[0].startswith("node 0 of 2 (this one, rank 0)"))
    other = 1 - writer
    written_to = folders[writer].resolve() / "run"
    assert printed[writer][0] == f"node 0 of 2 (this one, rank 0) writes the results into {written_to}"
    assert printed[other] == [
        f"node 1 of 2: writes nothing; node 0 (host {socket.gethostname()}) writes the results into {written_to} there"
    ]
    assert sorted(p.name for p in written_to.iterdir()) == [".job", "best.pth", "last.pth", "metrics.csv"]
    assert not (folders[other] / "run").exists()
    assert printed[writer][1:] == reference_lines  # bit for bit the one-machine run, line for line


def test_amp_and_compile_train_and_save_the_plain_models_weights(data_root, tmp_path):
    """--amp (bfloat16 autocast on the CPU) and --compile (torch.compile, slow to start) each train and test."""
    from workflow_utils.checkpoint import load_model
    from workflow_utils.models import DigitsMLP

    for flag in ("--amp", "--compile"):
        out = tmp_path / flag.strip("-")
        command = [sys.executable, *MODULE, "--epochs", "2", "--model", "mlp", flag]
        command += ["--data", str(data_root), "--out", str(out)]
        printed = finished(subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600))
        accuracy = float(printed.splitlines()[-1].split()[2])
        assert accuracy > 0.75, (flag, printed)  # 2 epochs of the MLP: 0.86 in float32
        load_model(DigitsMLP(), out / "best.pth")  # the plain class's keys, not torch.compile's _orig_mod.
