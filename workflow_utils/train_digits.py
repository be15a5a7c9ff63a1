"""Train the digits CNN from the shell: the 07_putting_it_all_together pipeline as a script.

A module of the package, so it runs wherever ``workflow_utils`` is installed (Colab included), from any folder:

    python -m workflow_utils.train_digits                              # one process, as in notebook 07
    python -m workflow_utils.train_digits --epochs 5 --out runs/quick  # any setting, from the command line
    torchrun --nproc_per_node=2 -m workflow_utils.train_digits         # two processes (DDP), same global batch
    torchrun --nproc_per_node=2 --max-restarts=1 -m workflow_utils.train_digits  # a lost worker restarts the job

Under torchrun each process trains on its share of every epoch (``DistributedSampler``) and
``DistributedDataParallel`` averages the gradients; only rank 0 prints and writes files.
Writes into ``--out``, which must be new or empty and is locked while the run writes it:
``metrics.csv`` (one row per epoch), ``best.pth`` (the epoch with the lowest validation loss),
``last.pth`` (the last completed epoch; a run that torchrun restarts resumes from it) and ``.job``
(which launch wrote the folder). On several machines, every machine prints which one writes the
files and where. The last line printed is the test accuracy of the best checkpoint.
Written as a notebook in 08_scaling_up, "1. From notebook to script".
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import signal
import socket
import time
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from workflow_utils import distributed
from workflow_utils.checkpoint import atomic_save, load_model, safe_load, save_checkpoint
from workflow_utils.data import DigitsData, load_digits_data
from workflow_utils.device import get_device, set_seed
from workflow_utils.engine import History, digits_recipe, fit
from workflow_utils.evaluation import accuracy, predict
from workflow_utils.models import DigitsCNN, DigitsMLP

MODELS = {"cnn": DigitsCNN, "mlp": DigitsMLP}
CSV_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")
LOCK_FILE = ".lock"  # held locked (filelock) while a run writes the folder; empty, removed when the run ends
JOB_FILE = ".job"  # names the launch that wrote the folder, so a restarted job finds its own folder


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags, with 07's settings as defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m workflow_utils.train_digits",
        usage="%(prog)s [options]",  # the options are listed below; one usage line keeps --help to a slide
        description="Train a digits classifier on one process or, under torchrun, several.",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=100),  # the same --help in any terminal
    )
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training images (default 20)")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="global batch: split over the processes (default 64)"
    )
    parser.add_argument(
        "--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule (default 2e-3)"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed for weights and data order (default 42)")
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn", help="cnn (default) or mlp (no BatchNorm)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("data/digits"),
        help="digits image folder, written if missing (default data/digits)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/digits"),
        help="a new or empty folder: metrics.csv, best.pth, last.pth (default runs/digits)",
    )
    parser.add_argument("--print-every", type=int, default=5, help="print a line every this many epochs (default 5)")
    parser.add_argument(
        "--amp", action="store_true", help="mixed precision: bfloat16 on CPUs, float16 with a GradScaler on GPUs"
    )
    parser.add_argument("--compile", action="store_true", help="train a torch.compile'd model (compiles first)")
    parser.add_argument(
        "--save-first-step",
        action="store_true",
        help="save weights and gradients after the first step (first_step.pth)",
    )
    parser.add_argument(
        "--simulate-failure",
        type=int,
        metavar="EPOCH",
        help="to try restarts: the last process kills itself (SIGKILL; on Windows, TerminateProcess) after this "
        "epoch, first attempt only",
    )
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Refuse settings that cannot train, with one line naming the fix."""
    for name, example in (("epochs", 20), ("batch_size", 64), ("print_every", 5)):
        if getattr(args, name) < 1:
            flag = f"--{name.replace('_', '-')}"
            raise SystemExit(f"{flag} must be a positive int, got {getattr(args, name)}; try {flag} {example}.")
    if not args.lr > 0:
        raise SystemExit(f"--lr must be a positive number, got {args.lr}; try --lr 2e-3.")
    processes = distributed.world_size()
    if args.batch_size % processes:
        raise SystemExit(
            f"--batch-size {args.batch_size} does not split over {processes} processes; use a multiple of {processes}."
        )
    if args.out.exists() and not args.out.is_dir():
        raise SystemExit(f"--out {args.out} is a file; pass a folder, e.g. --out runs/digits.")
    if args.simulate_failure is not None and not 0 <= args.simulate_failure < args.epochs - 1:
        raise SystemExit(
            f"--simulate-failure must be an epoch from 0 to {args.epochs - 2}, got {args.simulate_failure}."
        )


# --- the output folder: one run at a time, resumed when torchrun restarts it ----------------------------


def this_job() -> str:
    """Names this launch and stays the same when torchrun restarts its workers: the launcher's process and host."""
    launcher = os.getppid() if distributed.launched_by_torchrun() else os.getpid()
    return f"{socket.gethostname()}:{launcher}:{os.environ.get('TORCHELASTIC_RUN_ID', '')}"


def claim_out_folder(out: Path) -> tuple[FileLock, Path | None]:
    """Lock ``out`` for this run (rank 0); return the lock and ``last.pth`` when this job is resuming, else None.

    A folder that another run is writing, or that holds an earlier run's files, is refused in one line,
    so two runs never write into one folder. A folder this same torchrun job wrote (the job was
    restarted after a worker failed: its ``.job`` names this launch) is resumed from its ``last.pth``.
    The lock (``filelock``: ``flock`` on Linux and macOS, ``LockFileEx`` on Windows) is released
    when this process ends, however it ends.
    """
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / LOCK_FILE, timeout=0)  # timeout=0: one try, no waiting
    try:
        lock.acquire()
    except Timeout:
        raise SystemExit(f"--out {out} is being written by another run right now; pass another folder.") from None
    job, last = out / JOB_FILE, out / "last.pth"
    writer = job.read_text(encoding="utf-8").strip() if job.is_file() else ""
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0 and writer == this_job():
        return lock, last if last.is_file() else None  # torchrun restarted this job: go on where it stopped
    earlier = sorted(p.name for p in out.iterdir() if p.name not in (LOCK_FILE, JOB_FILE))
    if earlier:
        release_out_folder(lock)
        raise SystemExit(
            f"--out {out} already holds a run ({', '.join(earlier[:4])}); pass a new folder, or delete this one first."
        )
    job.write_text(this_job() + "\n", encoding="utf-8")
    return lock, None


def release_out_folder(lock: FileLock) -> None:
    """Unlock the folder and remove the empty lock file, so a finished run leaves the same files on every system.

    (filelock removes it itself on Windows only.) A run that opened the old lock file meanwhile sees it
    removed: filelock tries again and, unable to lock it at once, that run stops, saying another run is
    writing there; a run that starts later finds this run's files and stops. Removing it never lets two runs
    in. A killed run leaves the empty file behind; the system released its lock, so the next run takes it.
    """
    lock.release()
    Path(lock.lock_file).unlink(missing_ok=True)


def shared_from_rank_0(value):
    """Rank 0's ``value`` in every process (``value`` itself for one process)."""
    if not distributed.is_distributed():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def announce_writer(out: Path) -> None:
    """On several machines, print on each which machine writes the results, and where."""
    if os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE")) == os.environ.get("WORLD_SIZE"):
        return  # one machine: nothing to say
    node = int(os.environ.get("GROUP_RANK", "0"))
    writer = shared_from_rank_0((node, socket.gethostname(), str(out.resolve())))
    if os.environ.get("LOCAL_RANK") != "0":
        return
    nodes = int(os.environ.get("WORLD_SIZE")) // int(os.environ.get("LOCAL_WORLD_SIZE"))
    if distributed.is_main_process():
        print(f"node {node} of {nodes} (this one, rank 0) writes the results into {writer[2]}", flush=True)
    else:
        print(
            f"node {node} of {nodes}: writes nothing; node {writer[0]} (host {writer[1]}) writes the results "
            f"into {writer[2]} there",
            flush=True,
        )


# --- one epoch's records: the CSV row, the best and the last checkpoint ----------------------------------


class EpochRecords:
    """An ``on_epoch_end`` callback (rank 0): the CSV row, then ``best.pth`` if improved, then ``last.pth``.

    In this order a run killed at any moment resumes consistently: ``last.pth`` is written last, so the
    epochs it counts as done always have their CSV rows and their best checkpoint; rows of epochs
    after it are dropped on resume and written again. (``fit``'s own ``last_checkpoint_path`` is
    saved before the callback runs, and its best checkpoint would forget the best epoch before a
    restart, so the script keeps both here.)
    """

    def __init__(self, out: Path, model: nn.Module, optimizer, scheduler, resumed: dict | None = None) -> None:
        self.out, self.model, self.optimizer, self.scheduler = out, model, optimizer, scheduler
        self.best_val_loss = resumed["best_val_loss"] if resumed else None
        self.best_epoch = resumed["best_epoch"] if resumed else None
        self.best_val_accuracy = resumed["best_val_accuracy"] if resumed else None
        done = resumed["epoch"] if resumed else 0
        rows = []
        if resumed and (out / "metrics.csv").is_file():
            with (out / "metrics.csv").open(newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["epoch"]) < done]
        with (out / "metrics.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self.epoch_start = time.perf_counter()

    def __call__(self, history: History) -> None:
        seconds = time.perf_counter() - self.epoch_start  # training, validation and checkpoint of this epoch
        epoch, val_loss = history.epochs[-1], history.val_loss[-1]
        values = (
            history.train_loss[-1],
            history.train_metric[-1],
            val_loss,
            history.val_metric[-1],
            self.optimizer.param_groups[0]["lr"],
            seconds,
        )
        with (self.out / "metrics.csv").open("a", newline="") as f:
            csv.writer(f).writerow([epoch, *(f"{v:.6g}" for v in values)])
        model = unwrapped(self.model)
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch, self.best_val_accuracy = val_loss, epoch, history.val_metric[-1]
            save_checkpoint(self.out / "best.pth", model, epoch=epoch + 1, best_val_loss=val_loss)
        save_checkpoint(
            self.out / "last.pth",
            model,
            self.optimizer,
            epoch=epoch + 1,  # epochs done: the epoch to resume at
            scheduler=self.scheduler,
            best_val_loss=self.best_val_loss,
            best_epoch=self.best_epoch,
            best_val_accuracy=self.best_val_accuracy,
        )
        self.epoch_start = time.perf_counter()


def fail_after(epoch: int):
    """An ``on_epoch_end`` step for ``--simulate-failure``: after ``epoch``, the last process kills itself."""

    def maybe_fail(history: History) -> None:
        if history.epochs[-1] != epoch or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0:
            return
        distributed.wait_for_all()  # rank 0 has saved this epoch: the failure comes at a known point
        if distributed.rank() == distributed.world_size() - 1:
            print(f"simulated failure: process {distributed.rank()} killed after epoch {epoch}", flush=True)
            # SIGKILL cannot be caught (Linux, macOS); Windows has none, and its SIGTERM ends a process at once
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    return maybe_fail


# --- data, model, training ---------------------------------------------------------------------------


def make_loaders(digits: DigitsData, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders: 07's for one process; under torchrun, this process's share of each.

    The validation shares are not padded, so every validation image is counted exactly once.
    """
    if not distributed.is_distributed():
        return digits.train, digits.val
    train = distributed.distributed_loader(digits.train.dataset, batch_size, shuffle=True, seed=seed)
    val = distributed.distributed_loader(digits.val.dataset, batch_size, shuffle=False, seed=seed, pad=False)
    return train, val


def build_model(name: str, seed: int, device: torch.device, state: dict | None = None) -> nn.Module:
    """The model with seed-``seed`` weights (or ``state``) on ``device``, wrapped in DDP under torchrun."""
    torch.manual_seed(seed)  # the same starting weights in every process (DDP also copies rank 0's to the others)
    model = MODELS[name]()
    if state is not None:
        model.load_state_dict(state)
    model = model.to(device)
    if distributed.is_distributed():
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def unwrapped(model: nn.Module) -> nn.Module:
    """The plain model inside ``torch.compile`` and ``DistributedDataParallel`` wrappers (or the model itself)."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule
    return model.module if isinstance(model, DistributedDataParallel) else model


def save_after_first_step(model: nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Save weights and gradients once, right after the first optimizer step (rank 0): to compare DDP with one process."""

    def after_step(*_) -> None:
        handle.remove()
        if distributed.is_main_process():
            plain = unwrapped(model)
            grads = {name: p.grad.detach().cpu() for name, p in plain.named_parameters()}
            atomic_save({"weights": plain.state_dict(), "grads": grads}, path)

    handle = optimizer.register_step_post_hook(after_step)


def describe_shares(train: DataLoader) -> str:
    """How the training images are split: the images and batch size of every process."""
    sampler = train.sampler
    counts = distributed.gather_counts(getattr(sampler, "num_samples", len(train.dataset)))
    batch = getattr(sampler, "batch_size", None) or train.batch_size
    n = len(counts)
    shares = " + ".join(str(c) for c in counts)
    padded = (
        f" ({len(train.dataset)} images, {sum(counts) - len(train.dataset)} repeated to split evenly)"
        if sum(counts) > len(train.dataset)
        else ""
    )
    batches = " + ".join([str(batch)] * n)
    return f"{n} process{'es' if n > 1 else ''}: {shares} training images per epoch{padded}, batches of {batches}"


def report_test_accuracy(model_name: str, best_path: Path, digits: DigitsData, device: torch.device) -> float:
    """Load the best checkpoint into a fresh model, print its test accuracy as 07 does, and return it."""
    best = load_model(MODELS[model_name](), best_path).to(device)
    logits, labels = predict(best, digits.test)
    test_accuracy = accuracy(logits.argmax(dim=1), labels)
    print(f"test accuracy: {test_accuracy:.4f} ({round(test_accuracy * len(labels))}/{len(labels)})")
    return test_accuracy


def run_training(argv: list[str] | None = None) -> float | None:
    """Parse the flags, train, and return the test accuracy (on rank 0; None on the other ranks)."""
    args = build_parser().parse_args(argv)
    device = distributed.setup() if distributed.launched_by_torchrun() else get_device()
    try:
        return train_and_report(args, device)
    finally:
        gc.collect()  # the DDP model and its pending gloo work are gone before the group is left
        distributed.teardown()


def start_or_resume(args: argparse.Namespace) -> tuple[FileLock | None, dict | None]:
    """Rank 0 claims ``--out``; every process gets its verdict: a refusal, a fresh start, or the checkpoint to resume."""
    lock, verdict = None, None
    if distributed.is_main_process():
        try:
            lock, last = claim_out_folder(args.out)
            verdict = safe_load(last) if last is not None else {}
        except SystemExit as refusal:
            verdict = str(refusal)
    verdict = shared_from_rank_0(verdict)
    if isinstance(verdict, str):
        raise SystemExit(verdict if distributed.is_main_process() else 1)  # rank 0 says why, once
    return lock, verdict or None


def train_and_report(args: argparse.Namespace, device: torch.device) -> float | None:
    """Train with the parsed flags on ``device``; the test accuracy on rank 0, None on the others."""
    check_args(args)
    lock, resumed = start_or_resume(args)
    announce_writer(args.out)
    set_seed(args.seed)
    digits = load_digits_data(args.data, batch_size=args.batch_size, seed=args.seed, pin_memory=device.type == "cuda")
    train, val = make_loaders(digits, args.batch_size, args.seed)
    model = build_model(args.model, args.seed, device, resumed["model_state"] if resumed else None)
    loss_fn, optimizer, scheduler = digits_recipe(model, args.epochs, steps_per_epoch=len(train), lr=args.lr)
    start_epoch = 0
    if resumed:
        optimizer.load_state_dict(resumed["optimizer_state"])
        scheduler.load_state_dict(resumed["scheduler_state"])
        start_epoch = resumed["epoch"]
    if args.compile:
        model = torch.compile(model)
    shares, main = describe_shares(train), distributed.is_main_process()  # every process joins the count
    if main:
        print(shares, flush=True)
        if resumed:
            restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
            print(f"restart {restart}: resuming at epoch {start_epoch} from last.pth", flush=True)
    if args.save_first_step and not resumed:
        save_after_first_step(model, optimizer, args.out / "first_step.pth")
    records = EpochRecords(args.out, model, optimizer, scheduler, resumed) if main else None
    failure = fail_after(args.simulate_failure) if args.simulate_failure is not None else None

    def on_epoch_end(history: History) -> None:
        if records is not None:
            records(history)
        if failure is not None:
            failure(history)

    if start_epoch < args.epochs:  # a job killed after its last epoch only tests again
        fit(
            model,
            train,
            loss_fn,
            optimizer,
            args.epochs - start_epoch,
            val_data=val,
            metric="accuracy",
            scheduler=scheduler,
            start_epoch=start_epoch,
            seed=args.seed,
            print_every=args.print_every,
            decimals=2,
            on_epoch_end=on_epoch_end,
            amp=args.amp,
        )
    test_accuracy = None
    if main:
        print(f"best epoch {records.best_epoch}: val accuracy {records.best_val_accuracy:.2f}")
        test_accuracy = report_test_accuracy(args.model, args.out / "best.pth", digits, device)
    # The others wait for rank 0's test report: leaving the group while it still runs aborts gloo.
    distributed.wait_for_all()
    if lock is not None:
        release_out_folder(lock)
    return test_accuracy


if __name__ == "__main__":
    run_training()
