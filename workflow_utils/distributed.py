"""Step 4 on several processes: ``torch.distributed`` set up for ``torchrun``, and loaders that split each epoch.

``torchrun --nproc_per_node=2 script.py`` starts the script twice and tells each copy its place through
environment variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).
``setup`` reads them and joins the process group (gloo on CPUs, NCCL on GPUs); ``fit`` then works
unchanged on a ``DistributedDataParallel`` model: it averages its figures over the processes and
prints and writes checkpoints on rank 0 only. Used in 08_scaling_up, "3. Two processes".
Run as one plain process, every helper here falls back to world size 1 and rank 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from workflow_utils import _validate as check

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (its environment variables are set)."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is running in this process."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's number, 0 to world size - 1 (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """How many processes train together (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Whether this is rank 0, the process that prints and writes files."""
    return rank() == 0


def setup(backend: str | None = None) -> torch.device:
    """Join the process group ``torchrun`` describes; return this process's device (its own GPU, or the CPU).

    ``backend`` defaults to NCCL when every process of this machine has a GPU, else gloo on the CPU.
    The script that uses it: scripts/train_digits.py, run in 08_scaling_up, "3. Two processes".
    """
    if not launched_by_torchrun():
        missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
        raise RuntimeError(
            f"setup() needs the variables torchrun sets ({', '.join(missing)} missing); "
            "start the script with torchrun --nproc_per_node=2 script.py, or skip setup() for one process."
        )
    backend, device = backend_and_device(backend)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # one GPU per process
    if not is_distributed():
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return device


def backend_and_device(backend: str | None = None) -> tuple[str, torch.device]:
    """NCCL and this process's GPU when each process on this machine can have one, else gloo and the CPU."""
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    gpus = torch.cuda.device_count()
    if backend not in (None, "nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl', 'gloo' or None (chosen from the GPUs), got {backend!r}.")
    if backend == "nccl" and gpus < processes_here:
        raise RuntimeError(
            f"NCCL needs a GPU per process: {processes_here} processes on this machine but {gpus} GPU(s); "
            f"start at most {gpus} with torchrun --nproc_per_node, or use backend='gloo'."
        )
    backend = backend or ("nccl" if 0 < processes_here <= gpus else "gloo")
    if backend == "gloo":
        return backend, torch.device("cpu")
    return backend, torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def wait_for_all() -> None:
    """Block until every process gets here (a no-op outside torch.distributed)."""
    if is_distributed():
        dist.barrier()


def teardown() -> None:
    """Leave the process group, if this process joined one."""
    if is_distributed():
        dist.destroy_process_group()


class DistributedBatches(DistributedSampler):
    """torch's ``DistributedSampler``, yielding this process's share of each epoch as lists of indices, one per batch.

    Each of the ``world_size`` processes gets every ``world_size``-th index of the epoch's shuffled
    order (padded by repeating a few so all get the same number), so together they see the epoch once.
    The order depends on ``seed + epoch`` alone; ``fit`` calls ``set_epoch``. Made by hand for two ranks
    in 08_scaling_up, "3. Two processes".
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 42, **kwargs) -> None:
        check.positive_int("batch_size", batch_size, 32)
        super().__init__(dataset, shuffle=shuffle, seed=seed, **kwargs)
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = list(super().__iter__())
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)


def distributed_loader(
    dataset: Dataset, global_batch_size: int = 64, shuffle: bool = False, seed: int = 42
) -> DataLoader:
    """This process's loader over its share of ``dataset``; the processes' batches together make ``global_batch_size``.

    ``dataset`` must take a list of indices and return a whole batch (``TensorImageDataset``), as
    ``make_loader``'s fast path does. With 2 processes and ``global_batch_size=64`` each trains on 32
    images per step, so one step of both covers the same 64 images one process would see.
    """
    check.positive_int("global_batch_size", global_batch_size, 64)
    processes = world_size()
    if global_batch_size % processes:
        raise ValueError(
            f"global_batch_size {global_batch_size} does not split evenly over {processes} processes; "
            f"use a multiple of {processes}, e.g. {processes * 32}."
        )
    sampler = DistributedBatches(
        dataset, global_batch_size // processes, shuffle, seed, num_replicas=processes, rank=rank()
    )
    return DataLoader(dataset, sampler=sampler, batch_size=None)  # the sampler already yields whole batches


def gather_counts(count: int) -> list[int]:
    """``count`` from every process, in rank order (``[count]`` for one process)."""
    if not is_distributed():
        return [count]
    counts: list[int] = [0] * world_size()
    dist.all_gather_object(counts, count)
    return counts
