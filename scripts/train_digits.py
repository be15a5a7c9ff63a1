"""Train the digits CNN from the shell: the 07_putting_it_all_together pipeline as a script.

    python scripts/train_digits.py                              # one process, as in notebook 07
    python scripts/train_digits.py --epochs 5 --out runs/quick  # any setting, from the command line
    torchrun --nproc_per_node=2 scripts/train_digits.py         # two processes (DDP), same global batch

Under torchrun each process trains on its share of every epoch (``DistributedSampler``) and
``DistributedDataParallel`` averages the gradients; only rank 0 prints and writes files.
Writes into ``--out``: ``metrics.csv`` (one row per epoch) and ``best.pth`` (the epoch with the
lowest validation loss). The last line printed is the test accuracy of that checkpoint.
Written as a notebook in 08_scaling_up, "1. From notebook to script".
"""

from __future__ import annotations

import argparse
import csv
import gc
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, installed or not

from workflow_utils import distributed  # noqa: E402
from workflow_utils.checkpoint import atomic_save, load_model  # noqa: E402
from workflow_utils.data import DigitsData, load_digits_data  # noqa: E402
from workflow_utils.device import get_device, set_seed  # noqa: E402
from workflow_utils.engine import History, digits_recipe, fit  # noqa: E402
from workflow_utils.evaluation import accuracy, predict  # noqa: E402
from workflow_utils.models import DigitsCNN, DigitsMLP  # noqa: E402

MODELS = {"cnn": DigitsCNN, "mlp": DigitsMLP}
CSV_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags, with 07's settings as defaults."""
    parser = argparse.ArgumentParser(
        prog="train_digits.py",
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
        "--data", type=Path, default=Path("data/digits"), help="digits image folder, written if missing"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/digits"), help="folder for metrics.csv and best.pth")
    parser.add_argument("--print-every", type=int, default=5, help="print a line every this many epochs (default 5)")
    parser.add_argument(
        "--save-first-step",
        action="store_true",
        help="save weights and gradients after the first step (first_step.pth)",
    )
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Refuse settings that cannot train, with one line naming the fix."""
    for name, example in (("epochs", 20), ("batch_size", 64), ("print_every", 5)):
        if getattr(args, name) < 1:
            raise SystemExit(
                f"--{name.replace('_', '-')} must be a positive int, got {getattr(args, name)}; try --{name.replace('_', '-')} {example}."
            )
    if not args.lr > 0:
        raise SystemExit(f"--lr must be a positive number, got {args.lr}; try --lr 2e-3.")
    if args.batch_size % distributed.world_size():
        raise SystemExit(
            f"--batch-size {args.batch_size} does not split over {distributed.world_size()} processes; use a multiple of {distributed.world_size()}."
        )
    if args.out.exists() and not args.out.is_dir():
        raise SystemExit(f"--out {args.out} is a file; pass a folder, e.g. --out runs/digits.")


class CsvLog:
    """An ``on_epoch_end`` callback: one CSV row per epoch, flushed at once so a running job can be watched."""

    def __init__(self, path: Path, optimizer: torch.optim.Optimizer) -> None:
        self.path, self.optimizer = path, optimizer
        with path.open("w", newline="") as f:
            csv.writer(f).writerow(CSV_FIELDS)
        self.epoch_start = time.perf_counter()

    def __call__(self, history: History) -> None:
        seconds = time.perf_counter() - self.epoch_start  # training, validation and checkpoint of this epoch
        values = (
            history.train_loss[-1],
            history.train_metric[-1],
            history.val_loss[-1],
            history.val_metric[-1],
            self.optimizer.param_groups[0]["lr"],
            seconds,
        )
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([history.epochs[-1], *(f"{v:.6g}" for v in values)])
        self.epoch_start = time.perf_counter()


def make_loaders(digits: DigitsData, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders: 07's for one process; under torchrun, this process's share of each."""
    if not distributed.is_distributed():
        return digits.train, digits.val
    train = distributed.distributed_loader(digits.train.dataset, batch_size, shuffle=True, seed=seed)
    val = distributed.distributed_loader(digits.val.dataset, batch_size, shuffle=False, seed=seed)
    return train, val


def build_model(name: str, seed: int, device: torch.device) -> nn.Module:
    """The model with seed-``seed`` weights on ``device``, wrapped in ``DistributedDataParallel`` under torchrun."""
    torch.manual_seed(seed)  # the same starting weights in every process (DDP also copies rank 0's to the others)
    model = MODELS[name]().to(device)
    if distributed.is_distributed():
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def unwrapped(model: nn.Module) -> nn.Module:
    """The plain model inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
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
    return f"{n} process{'es' if n > 1 else ''}: {shares} training images per epoch{padded}, batches of {' + '.join([str(batch)] * n)}"


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


def train_and_report(args: argparse.Namespace, device: torch.device) -> float | None:
    """Train with the parsed flags on ``device``; the test accuracy on rank 0, None on the others."""
    check_args(args)
    set_seed(args.seed)
    digits = load_digits_data(args.data, batch_size=args.batch_size, seed=args.seed, pin_memory=device.type == "cuda")
    train, val = make_loaders(digits, args.batch_size, args.seed)
    model = build_model(args.model, args.seed, device)
    loss_fn, optimizer, scheduler = digits_recipe(model, args.epochs, steps_per_epoch=len(train), lr=args.lr)
    shares, main = describe_shares(train), distributed.is_main_process()  # every process joins the count
    if main:
        args.out.mkdir(parents=True, exist_ok=True)
        print(shares, flush=True)
    if args.save_first_step:
        save_after_first_step(model, optimizer, args.out / "first_step.pth")
    history = fit(
        model,
        train,
        loss_fn,
        optimizer,
        args.epochs,
        val_data=val,
        metric="accuracy",
        scheduler=scheduler,
        seed=args.seed,
        print_every=args.print_every,
        decimals=2,
        checkpoint_path=args.out / "best.pth",
        on_epoch_end=CsvLog(args.out / "metrics.csv", optimizer) if main else None,
    )
    test_accuracy = None
    if main:
        best = history.val_metric[history.best_epoch - history.epochs[0]]
        print(f"best epoch {history.best_epoch}: val accuracy {best:.2f}")
        test_accuracy = report_test_accuracy(args.model, args.out / "best.pth", digits, device)
    # The others wait for rank 0's test report: leaving the group while it still runs aborts gloo.
    distributed.wait_for_all()
    return test_accuracy


if __name__ == "__main__":
    run_training()
