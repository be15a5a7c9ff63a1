"""workflow_utils.train_digits from a shell: one process, two under torchrun with the network blocked, and make train-ddp."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from make_tool import need_make

from workflow_utils import train_digits
from workflow_utils.checkpoint import load_model, safe_load
from workflow_utils.data import load_digits_data
from workflow_utils.distributed import DistributedBatches
from workflow_utils.engine import History, digits_recipe, train_step
from workflow_utils.models import DigitsMLP

ROOT = Path(__file__).resolve().parents[1]
MODULE = ["-m", "workflow_utils.train_digits"]  # as `python -m` and `torchrun -m` take it
NETBLOCK = ROOT / "tests" / "robustness" / "netblock_sitecustomize.py"
TEST_LINE = re.compile(r"test accuracy: (0\.\d{4}|1\.0000) \((\d+)/270\)")


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory) -> Path:
    """The digits PNGs, written once for this module."""
    root = tmp_path_factory.mktemp("data") / "digits"
    load_digits_data(root)
    return root


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory) -> dict[str, str]:
    """This environment, one math thread, and every non-loopback connection refused (as in tests/robustness)."""
    site = tmp_path_factory.mktemp("netblock")
    shutil.copy(NETBLOCK, site / "sitecustomize.py")
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}


def run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run ``command``; return its stdout, failing with its stderr."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# --- in-process pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], r"--epochs must be a positive int, got 0; try --epochs 20\."),
        (["--batch-size", "-1"], r"--batch-size must be a positive int, got -1; try --batch-size 64\."),
        (["--lr", "0"], r"--lr must be a positive number, got 0.0; try --lr 2e-3\."),
        (["--out", "A_FILE"], r"--out .* is a file; pass a folder"),
    ],
)
def test_flags_that_cannot_train_are_refused_in_one_line(flags, message):
    flags = [train_digits.__file__ if f == "A_FILE" else f for f in flags]
    with pytest.raises(SystemExit, match=message):
        train_digits.check_args(train_digits.build_parser().parse_args(flags))


def test_defaults_are_notebook_07s_settings():
    args = train_digits.build_parser().parse_args([])
    assert (args.epochs, args.batch_size, args.lr, args.seed, args.model) == (20, 64, 2e-3, 42, "cnn")


def _feed(records, epochs_losses) -> None:
    history = History(metric_name="accuracy")
    for epoch, (loss, acc) in epochs_losses:
        history.epochs.append(epoch)
        history.train_loss.append(loss)
        history.train_metric.append(acc)
        history.val_loss.append(loss + 0.1)
        history.val_metric.append(acc - 0.05)
        records(history)


def test_epoch_records_write_a_row_the_best_and_the_last_checkpoint(tmp_path):
    model = DigitsMLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    records = train_digits.EpochRecords(tmp_path, model, optimizer, None)
    _feed(records, [(0, (2.0, 0.25)), (1, (1.5, 0.5)), (2, (1.7, 0.55))])
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert list(rows[0]) == list(train_digits.CSV_FIELDS)
    assert [(r["epoch"], r["train_loss"], r["val_accuracy"], r["lr"]) for r in rows] == [
        ("0", "2", "0.2", "0.5"),
        ("1", "1.5", "0.45", "0.5"),
        ("2", "1.7", "0.5", "0.5"),
    ]
    assert all(float(r["seconds"]) >= 0 for r in rows)
    last, best = safe_load(tmp_path / "last.pth"), safe_load(tmp_path / "best.pth")
    assert (last["epoch"], last["best_epoch"], best["epoch"]) == (3, 1, 2)  # epochs done; best by val loss
    assert last["best_val_loss"] == pytest.approx(1.6) and "optimizer_state" in last
    # Resumed after epoch 1 (say the job died while epoch 2 was saved): epoch 2's row goes, the best stays.
    resumed = {"epoch": 2, "best_val_loss": 1.6, "best_epoch": 1, "best_val_accuracy": 0.45}
    records = train_digits.EpochRecords(tmp_path, model, optimizer, None, resumed)
    assert [r["epoch"] for r in csv.DictReader((tmp_path / "metrics.csv").open())] == ["0", "1"]
    _feed(records, [(2, (1.8, 0.6))])
    assert [r["epoch"] for r in csv.DictReader((tmp_path / "metrics.csv").open())] == ["0", "1", "2"]
    assert (records.best_epoch, safe_load(tmp_path / "best.pth")["epoch"]) == (1, 2)  # 1.9 is no better than 1.6


def test_two_runs_never_share_an_out_folder(tmp_path):
    out = tmp_path / "run"
    first, _ = train_digits.claim_out_folder(out)  # a run writing into out holds its lock
    assert (out / ".lock").read_text() == ""  # the lock file holds nothing; .job names the writer
    assert (out / ".job").read_text().strip() == train_digits.this_job()
    with pytest.raises(SystemExit, match=r"^--out .*run is being written by another run right now; pass another"):
        train_digits.claim_out_folder(out)
    (out / "metrics.csv").write_text("epoch\n")
    train_digits.release_out_folder(first)  # that run ended; its files stay, its lock file goes
    assert sorted(p.name for p in out.iterdir()) == [".job", "metrics.csv"]
    with pytest.raises(SystemExit, match=r"^--out .*run already holds a run \(metrics.csv\); pass a new folder"):
        train_digits.claim_out_folder(out)
    assert sorted(p.name for p in out.iterdir()) == [".job", "metrics.csv"]  # the refusal left nothing behind
    lock, resume_from = train_digits.claim_out_folder(tmp_path / "empty")  # a new folder is fine
    assert resume_from is None and (tmp_path / "empty" / ".job").read_text().strip() == train_digits.this_job()
    train_digits.release_out_folder(lock)


def test_a_restarted_job_resumes_its_own_folder_and_no_other(tmp_path, monkeypatch):
    out = tmp_path / "run"
    lock, _ = train_digits.claim_out_folder(out)
    (out / "metrics.csv").write_text("epoch\n0\n")
    (out / "last.pth").write_bytes(b"")
    lock.release()  # the job's processes died (killed): the lock is gone, the lock file stays on Linux and macOS
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # torchrun started the job again
    lock, resume_from = train_digits.claim_out_folder(out)  # the same launch (.job names it): let in
    assert resume_from == out / "last.pth"
    with pytest.raises(SystemExit, match=r"being written by another run right now"):
        train_digits.claim_out_folder(out)  # while it writes, even a restart of it is kept out
    lock.release()
    (out / ".job").write_text("another-host:12345:\n")  # another launch wrote this folder
    with pytest.raises(SystemExit, match=r"already holds a run \(last.pth, metrics.csv\)"):
        train_digits.claim_out_folder(out)  # a restart of another job is refused like a new run
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    (out / ".job").write_text(train_digits.this_job() + "\n")
    with pytest.raises(SystemExit, match=r"already holds a run"):
        train_digits.claim_out_folder(out)  # the same launch's first attempt never resumes: it is a new run


# --- whole runs, as from a shell ---------------------------------------------------------------------


def test_one_process_prints_07s_lines_and_writes_its_files(digits_root, offline_env, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, *MODULE, "--epochs", "2", "--model", "mlp", "--print-every", "1"]
    printed = run([*command, "--data", str(digits_root), "--out", str(out)], offline_env, tmp_path).splitlines()
    assert printed[0] == "1 process: 1257 training images per epoch, batches of 64"
    assert printed[1].startswith("(train: mean over the epoch's batches, each before its step")  # fit's legend
    assert [line[:9] for line in printed[2:4]] == ["epoch   0", "epoch   1"]
    assert printed[4].startswith("best epoch 1: val accuracy 0.")
    assert TEST_LINE.fullmatch(printed[-1]), printed[-1]
    assert sorted(p.name for p in out.iterdir()) == [".job", "best.pth", "last.pth", "metrics.csv"]  # lock file gone
    assert [row["epoch"] for row in csv.DictReader((out / "metrics.csv").open())] == ["0", "1"]
    load_model(DigitsMLP(), out / "best.pth")  # the plain model's keys
    again = subprocess.run(command + ["--data", str(digits_root), "--out", str(out)], capture_output=True, text=True,
                           env=offline_env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip().splitlines()[-1] == (
        f"--out {out} already holds a run (best.pth, last.pth, metrics.csv); pass a new folder, or delete this one first."
    )


def _one_process_first_step(digits_root: Path, epochs: int) -> tuple[dict, dict]:
    """Weights and gradients after one step of the seed-42 MLP over both processes' first batches together."""
    dataset = load_digits_data(digits_root).train.dataset
    shares = [DistributedBatches(dataset, 32, shuffle=True, seed=42, num_replicas=2, rank=r) for r in (0, 1)]
    X, y = dataset[next(iter(shares[0])) + next(iter(shares[1]))]  # the global batch of 64
    torch.manual_seed(42)
    model = DigitsMLP()
    loss_fn, optimizer, _ = digits_recipe(model, epochs, steps_per_epoch=len(shares[0]))
    train_step(model, (X, y), loss_fn, optimizer)
    return model.state_dict(), {name: p.grad for name, p in model.named_parameters()}


def test_two_processes_under_torchrun_offline_match_one_process(digits_root, offline_env, tmp_path):
    out = tmp_path / "ddp"
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", *MODULE]
    flags = ["--epochs", "1", "--model", "mlp", "--save-first-step", "--data", str(digits_root), "--out", str(out)]
    printed = run([*launch, *flags], offline_env, tmp_path).splitlines()
    assert (
        printed[0]
        == "2 processes: 629 + 629 training images per epoch (1257 images, 1 repeated to split evenly), batches of 32 + 32"
    )
    assert sum(line.startswith("epoch") for line in printed) == 1  # rank 0 alone prints
    assert TEST_LINE.fullmatch(printed[-1]) and sum(bool(TEST_LINE.match(line)) for line in printed) == 1
    assert sorted(p.name for p in out.iterdir()) == [".job", "best.pth", "first_step.pth", "last.pth", "metrics.csv"]
    ddp = safe_load(out / "first_step.pth")
    weights, grads = _one_process_first_step(digits_root, epochs=1)
    for name, grad in grads.items():  # averaged over the two halves, not summed
        assert torch.allclose(ddp["grads"][name], grad, rtol=1e-4, atol=1e-7), name
    for name, weight in weights.items():
        assert torch.allclose(ddp["weights"][name], weight, atol=1e-7), name


def test_make_train_ddp_runs_two_processes_with_torchrun():
    dry_run = subprocess.run(
        [need_make(), "--no-print-directory", "-n", "train-ddp"], capture_output=True, text=True, cwd=ROOT
    )
    assert dry_run.returncode == 0, dry_run.stderr
    command = dry_run.stdout.strip().splitlines()[-1]
    assert "OMP_NUM_THREADS=1" in command and "torchrun --nproc_per_node=2 -m workflow_utils.train_digits" in command


def test_make_train_multinode_runs_two_launches_as_two_nodes():
    dry_run = subprocess.run(
        [need_make(), "--no-print-directory", "-n", "-o", ".venv/.installed", "train-multinode"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    recipe = dry_run.stdout
    assert "for node in node-a node-b" in recipe and "cd $dir/$node" in recipe  # each in its own folder
    assert "torchrun --nnodes=2 --nproc_per_node=1" in recipe and "--rdzv-backend=c10d" in recipe
    assert "--rdzv-endpoint=127.0.0.1:" in recipe and "-m workflow_utils.train_digits" in recipe
