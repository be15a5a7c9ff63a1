"""Step 4 on several processes: ``torch.distributed`` set up for ``torchrun``, and loaders that split each epoch.

``torchrun --nproc_per_node=2 script.py`` starts the script twice and tells each copy its place through
environment variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).
``setup`` reads them and joins the process group (gloo on CPUs, NCCL on GPUs); ``fit`` then works
unchanged on a ``DistributedDataParallel`` model: it adds up each process's loss and metric sums and
image counts (so unequal validation shares weigh right) and prints and writes checkpoints on rank 0 only. Used in 08_scaling_up, "3. Two processes".
Run as one plain process, every helper here falls back to world size 1 and rank 0.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import re
import sys
from collections.abc import Iterator
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from workflow_utils import _validate as check
from workflow_utils.data import _takes_whole_batches

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


def setup(backend: str | None = None, join_timeout_s: float = 30.0) -> torch.device:
    """Join the process group ``torchrun`` describes; return this process's device (its own GPU, or the CPU).

    ``backend`` defaults to NCCL when every process of this machine has a GPU, else gloo on the CPU.
    Raises RuntimeError in one line when the other processes have not all arrived within
    ``join_timeout_s`` seconds, or when ``MASTER_PORT`` is taken by another program.
    The script that uses it: workflow_utils.train_digits, run in 08_scaling_up, "3. Two processes".
    """
    if not launched_by_torchrun():
        missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
        raise RuntimeError(
            f"setup() needs the variables torchrun sets ({', '.join(missing)} missing); "
            "start the script with torchrun --nproc_per_node=2 script.py, or skip setup() for one process."
        )
    check.positive_number("join_timeout_s", join_timeout_s, 30.0)
    backend, device = backend_and_device(backend)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # one GPU per process
    if not is_distributed():
        # DistributedDataParallel imports torch._dynamo on first use. Imported after the group exists,
        # torch._dynamo keeps references to it that Python's gc cannot see, so destroy_process_group()
        # frees nothing: gloo's threads run on and the process may abort as it exits ("terminate called
        # without an active exception"). Imported first, it never sees the group. Tested in
        # tests/test_distributed.py::test_teardown_leaves_no_gloo_thread.
        importlib.import_module("torch._dynamo")

        store = _join(join_timeout_s)
        with _stdout_to_stderr():
            dist.init_process_group(
                backend,
                store=store,
                rank=int(os.environ["RANK"]),
                world_size=int(os.environ["WORLD_SIZE"]),
                device_id=device if device.type == "cuda" else None,
            )
    return device


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what C++ code prints on standard output to standard error, for the duration of the block.

    gloo in PyTorch 2.8 prints "[Gloo] Rank 0 is connected to 1 peer ranks ..." on stdout while the group
    connects, from each process at once (lines cut into each other). A script's stdout carries its results,
    which 08_scaling_up compares line by line, so that chatter goes to stderr instead.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptors 1 and 2 (a GUI process on Windows): nothing to send anywhere
        yield
        return
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _join(timeout_s: float) -> dist.Store:
    """The key-value store the processes meet at (``MASTER_ADDR:MASTER_PORT``), once all have arrived.

    As ``init_process_group``'s ``env://`` does it, but with a short wait and errors that say what to do.
    """
    address, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    my_rank, processes = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if not 0 <= my_rank < processes:
        raise RuntimeError(f"RANK {my_rank} is outside 0 to WORLD_SIZE - 1 = {processes - 1}; let torchrun set them.")
    agent_serves = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"  # torchrun hosts it
    hosts = my_rank == 0 and not agent_serves
    try:
        store = dist.TCPStore(
            address, port, processes, is_master=hosts, timeout=timedelta(seconds=timeout_s), multi_tenant=True
        )
    except (RuntimeError, dist.DistError) as error:  # torch's own wording varies between releases
        if hosts and "EADDRINUSE" in str(error):
            raise RuntimeError(
                f"MASTER_PORT {port} is already in use by another program; pick another port "
                f"(e.g. MASTER_PORT={port + 1}) or let torchrun choose one with --standalone."
            ) from None
        waited = f"waited {timeout_s:g} s for"
        if hosts:
            missing = _clients_missing(str(error), processes - 1)
            raise RuntimeError(
                f"{waited} {missing} more process{'es' if missing != 1 else ''}; "
                f"start with torchrun --nproc_per_node={processes}."
            ) from None
        raise RuntimeError(
            f"{waited} rank 0 at {address}:{port}; start rank 0 too, e.g. with torchrun --nproc_per_node={processes}."
        ) from None
    store.set_timeout(dist.default_pg_timeout)  # the join was short; the collectives keep torch's default
    # torchrun keeps one store across the restarts of a job (--max-restarts): each attempt gets its own keys,
    # or the new processes would read the dead ones' addresses and wait for them.
    return dist.PrefixStore(f"attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def _clients_missing(message: str, others: int) -> int:
    """How many of the ``others`` never reached rank 0's store, read from TCPStore's timeout message."""
    found = re.search(r"(\d+)/(\d+) clients joined", message)
    return int(found.group(2)) - int(found.group(1)) if found else others


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
    order, so together they see the epoch once. For training (``pad=True``, torch's behaviour) a few
    indices are repeated so every process gets the same number of batches, which
    ``DistributedDataParallel`` needs; for validation and test (``pad=False``) nothing is repeated,
    so every image is counted exactly once and the shares may differ by one image.
    The order depends on ``seed + epoch`` alone; ``fit`` calls ``set_epoch``. Made by hand for two ranks
    in 08_scaling_up, "3. Two processes".
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 42, pad: bool = True, **kwargs
    ) -> None:
        check.positive_int("batch_size", batch_size, 32)
        if not isinstance(pad, bool):
            raise TypeError(f"pad must be True (training) or False (evaluation), got {pad!r}.")
        super().__init__(dataset, shuffle=shuffle, seed=seed, **kwargs)
        self.batch_size, self.pad = batch_size, pad
        if not pad:  # this rank's indices of range(len(dataset)): rank, rank + world size, ...
            self.num_samples = len(range(self.rank, len(self.dataset), self.num_replicas))

    def __iter__(self) -> Iterator[list[int]]:
        if self.pad:
            order = list(super().__iter__())
        else:
            everything = torch.randperm(
                len(self.dataset), generator=torch.Generator().manual_seed(self.seed + self.epoch)
            )
            order = (everything if self.shuffle else torch.arange(len(self.dataset)))[self.rank :: self.num_replicas]
            order = order.tolist()
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)


def distributed_loader(
    dataset: Dataset, global_batch_size: int = 64, shuffle: bool = False, seed: int = 42, pad: bool = True
) -> DataLoader:
    """This process's loader over its share of ``dataset``; the processes' batches together make ``global_batch_size``.

    With 2 processes and ``global_batch_size=64`` each trains on 32 images per step, so one step of
    both covers the same 64 images one process would see. ``pad=True`` (training) repeats a few images
    so the shares are equal; pass ``pad=False`` for validation and test loaders so each image counts
    exactly once. A tensor-backed dataset (``TensorImageDataset``) is indexed once per batch, as
    ``make_loader``'s fast path does; any other Dataset one image at a time.
    """
    if isinstance(dataset, IterableDataset) or not isinstance(dataset, Dataset) or not hasattr(dataset, "__len__"):
        raise TypeError(
            f"dataset must be a Dataset with a length and int indices, such as TensorImageDataset(images, labels), "
            f"got {type(dataset).__name__}."
        )
    check.positive_int("global_batch_size", global_batch_size, 64)
    processes = world_size()
    if global_batch_size % processes:
        raise ValueError(
            f"global_batch_size {global_batch_size} does not split evenly over {processes} processes; "
            f"use a multiple of {processes}, e.g. {processes * 32}."
        )
    if len(dataset) < processes:
        raise ValueError(f"the dataset has {len(dataset)} item(s) for {processes} processes; give each at least one.")
    sampler = DistributedBatches(
        dataset, global_batch_size // processes, shuffle, seed, pad, num_replicas=processes, rank=rank()
    )
    if _takes_whole_batches(dataset):
        return DataLoader(dataset, sampler=sampler, batch_size=None)  # the sampler already yields whole batches
    return DataLoader(dataset, batch_sampler=sampler)  # one item at a time, collated into batches


def gather_counts(count: int) -> list[int]:
    """``count`` from every process, in rank order (``[count]`` for one process)."""
    if not is_distributed():
        return [count]
    counts: list[int] = [0] * world_size()
    dist.all_gather_object(counts, count)
    return counts
