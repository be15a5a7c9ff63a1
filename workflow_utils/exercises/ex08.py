"""Exercises for 08_scaling_up."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workflow_utils.exercises import Exercise

# The training script, a module of the package: 08_scaling_up, "1. From notebook to script".
MODULE = "workflow_utils.train_digits"


def _parse(parser: Any, args: list[str]) -> Any:
    """``parser.parse_args(args)``, or None when argparse refuses them (its message silenced)."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return parser.parse_args(args)
        except SystemExit:
            return None


def _launcher_args(words: list[str]) -> list[str] | None:
    """The words after ``torchrun`` (or ``python -m torch.distributed.run``), or None for another launcher.

    Leading ``NAME=value`` settings (``OMP_NUM_THREADS=1 torchrun ...``, as the Makefile writes it) and a
    path to the program (``.venv/bin/torchrun``) are accepted, as a shell would.
    """
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
        words = words[1:]
    if words and Path(words[0]).name == "torchrun":
        return words[1:]
    if len(words) > 2 and words[1:3] == ["-m", "torch.distributed.run"]:
        return words[3:]
    return None


def _launched_script(launch: Any) -> str | None:
    """None when torchrun's parsed arguments start the training script; otherwise what to fix.

    The taught form is the module (``-m workflow_utils.train_digits``), which works wherever the package is
    installed; a path to the module's own file (``workflow_utils/train_digits.py``) runs it too.
    """
    target = launch.training_script
    if launch.module:
        if target == MODULE:
            return None
        return f"after -m comes the script's full module name: -m {MODULE} (you wrote -m {target})."
    path = Path(target)
    if path.name == "train_digits.py" and path.parent.name == "workflow_utils":
        return None
    if target == MODULE:
        return f"torchrun runs a module only with -m before its name: torchrun --nproc_per_node=4 -m {MODULE} ..."
    if path.name == "train_digits.py":
        return f"the script is a module of the package, so name it with -m: torchrun --nproc_per_node=4 -m {MODULE} ..."
    return f"after torchrun and its own flags comes the script: torchrun --nproc_per_node=4 -m {MODULE} ..."


def _torchrun_command(command: Any) -> str | None:
    if not isinstance(command, str):
        return f"write the command as one string, as you would type it in a shell, got {type(command).__name__}."
    try:
        words = shlex.split(command)
    except ValueError:  # shlex: "No closing quotation"
        return "a quote in your command is never closed; remove it or close it, as a shell would need."
    launcher_args = _launcher_args(words)
    if launcher_args is None:
        return "start the command with torchrun: it launches the processes and tells each its rank."
    from torch.distributed.run import get_args_parser

    launch = _parse(get_args_parser(), launcher_args)
    if launch is None:
        return f"after torchrun and its own flags comes the script: torchrun --nproc_per_node=4 -m {MODULE} ..."
    wrong_script = _launched_script(launch)
    if wrong_script is not None:
        return wrong_script
    if str(launch.nnodes) not in ("1", "1:1"):
        return (
            f"--nnodes={launch.nnodes} asks for several machines, each starting its own processes; on one machine "
            "leave --nnodes out."
        )
    if str(launch.nproc_per_node) != "4":
        if any(arg.startswith("--nproc") for arg in launch.training_script_args):
            return f"torchrun's own flags go before the script (-m {MODULE}); flags after it go to the script."
        return (
            f"that starts {launch.nproc_per_node} process(es) per machine; ask torchrun for 4 with --nproc_per_node=4."
        )
    from workflow_utils.train_digits import build_parser

    args = _parse(build_parser(), launch.training_script_args)
    if args is None:
        return "the script does not accept those flags; see its --help (--epochs, --batch-size, ...)."
    if args.model != "cnn":
        return (
            f"that trains the {args.model.upper()}; the task asks for the CNN, the script's default: leave --model out."
        )
    if args.epochs != 10:
        return f"that trains for {args.epochs} epochs; pass --epochs 10."
    if args.batch_size != 128:
        if args.batch_size * 4 == 128:
            return "--batch-size is the global batch, all processes together: pass 128 and each process takes 32."
        return f"that uses a global batch of {args.batch_size}; pass --batch-size 128."
    return None


def _shares(shares: Any) -> str | None:
    if not callable(shares):
        return "pass your function itself: ex08.q2.check(shares)."
    from torch.utils.data import DistributedSampler

    for n_images, processes in ((1257, 2), (1257, 4), (270, 2), (10, 3), (5, 8)):
        sampler = DistributedSampler(range(n_images), num_replicas=processes, rank=0)
        expected = (sampler.num_samples, sampler.total_size - n_images)
        got = shares(n_images, processes)
        if isinstance(got, (str, bytes, dict, set)) or not hasattr(got, "__len__") or len(got) != 2:
            return "return two numbers: (images per process, images repeated)."
        got = tuple(v.item() if hasattr(v, "item") else v for v in got)  # NumPy or torch numbers too
        if got != expected:
            hint = " Every process gets the same number, so round up." if got[0] == n_images // processes else ""
            return f"for {n_images} images on {processes} processes you return {got}, DistributedSampler gives {expected}.{hint}"
    return None


def _shard_data() -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """A seed-0 DigitsMLP, cross-entropy, and a batch of 12 random 8x8 images with labels."""
    from workflow_utils.models import DigitsMLP

    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = DigitsMLP()
    return model, nn.CrossEntropyLoss(), torch.randn(12, 1, 8, 8, generator=g), torch.randint(0, 10, (12,), generator=g)


def _full_batch_gradients(
    model: nn.Module, loss_fn: nn.Module, X: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss_fn(model(X), y).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    return grads


def _averaged_gradients(average_gradients: Any) -> str | None:
    if not callable(average_gradients):
        return "pass your function itself: ex08.q3.check(average_gradients)."
    model, loss_fn, X, y = _shard_data()
    expected = _full_batch_gradients(model, loss_fn, X, y)
    for processes in (2, 3):
        got = average_gradients(model, loss_fn, X, y, processes)
        if not isinstance(got, dict) or set(got) != set(expected):
            return "return a dict {parameter name: gradient}, as model.named_parameters() names them."
        if all(torch.allclose(got[k], processes * expected[k], atol=1e-6) for k in expected):
            return f"with {processes} processes your gradients are {processes}x too large: DDP averages them, it does not sum."
        if not all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected):
            return (
                f"with {processes} processes your gradients differ from one process's gradient over the whole batch; "
                "split X and y into equal consecutive shards and average the shards' gradients."
            )
    return None


q1 = Exercise(
    "ex08.q1",
    _torchrun_command,
    "torchrun --nproc_per_node=N -m workflow_utils.train_digits, then the script's own flags; "
    "--batch-size is the global batch.",
    'command = ("torchrun --nproc_per_node=4 -m workflow_utils.train_digits "\n'
    '           "--epochs 10 --batch-size 128")\nex08.q1.check(command)',
    answers=("command",),
)
q2 = Exercise(
    "ex08.q2",
    _shares,
    "every process gets math.ceil(n_images / processes) images; the sampler repeats a few to make up the total.",
    "def shares(n_images, processes):\n    per_process = math.ceil(n_images / processes)\n"
    "    return per_process, per_process * processes - n_images\n\n\nex08.q2.check(shares)",
    answers=("shares",),
)
q3 = Exercise(
    "ex08.q3",
    _averaged_gradients,
    "for each shard: model.zero_grad(), loss_fn(model(X_shard), y_shard).backward(), keep p.grad.clone(); then average.",
    "def average_gradients(model, loss_fn, X, y, processes):\n"
    "    sums = {name: torch.zeros_like(p) for name, p in model.named_parameters()}\n"
    "    for X_shard, y_shard in zip(X.chunk(processes), y.chunk(processes)):\n"
    "        model.zero_grad()\n"
    "        loss_fn(model(X_shard), y_shard).backward()  # one process's pass\n"
    "        for name, p in model.named_parameters():\n"
    "            sums[name] += p.grad\n"
    "    # the average: what DDP's all-reduce hands back to every process\n"
    "    return {name: total / processes for name, total in sums.items()}\n\n\n"
    "ex08.q3.check(average_gradients)",
    answers=("average_gradients",),
)
