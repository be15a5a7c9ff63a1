"""Measure the series' speed and quality against its targets: ``make bench``.

Prints one table (figure, value, target, verdict) and writes the same figures as JSON
(default ``benchmarks/results/latest.json``). It measures and never gates: the exit status
is 0 whether every figure is a PASS or some are a MISS.

Steady across days: the same machine type runs 1x to 2x slower from one day to the next, so a
figure in seconds compares days, not code. Every run therefore first times a fixed reference
workload (``import torch`` in a fresh Python, plus a fixed float32 matrix-product loop) and times it
again at the end; their mean is the run's *reference unit* ("ref"). Every time figure is printed in
seconds and in refs, and time targets are set in refs. Speed ratios measured side by side
(``fit`` vs a bare loop, say) need no reference: both sides ran in the same minute.

Threads: nothing here calls ``torch.set_num_threads``; every figure runs with the process's
default (``OMP_NUM_THREADS`` when set), and the notebook kernels inherit the same environment
(08 starts its own training jobs with one thread per process).
Both sides of every ratio run in this one process, interleaved, so they share the setting.
On CUDA every timer is read after ``torch.cuda.synchronize()``.

    python benchmarks/bench.py                   # everything (a few minutes on a laptop CPU)
    python benchmarks/bench.py --quick           # tiny settings, only 00_start_here timed
    python benchmarks/bench.py --skip-notebooks --json /tmp/bench.json
    python benchmarks/bench.py --skip-notebooks --only two-processes,amp-and-compile   # 08's figures
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere, installed or not

from workflow_utils.checkpoint import load_model  # noqa: E402
from workflow_utils.data import DigitsData, load_digits_data, make_line_data, split_data  # noqa: E402
from workflow_utils.device import get_device, set_seed  # noqa: E402
from workflow_utils.engine import digits_recipe, fit, train_step  # noqa: E402
from workflow_utils.evaluation import accuracy, predict  # noqa: E402
from workflow_utils.models import DigitsCNN, LinearRegressionModel  # noqa: E402

NOTEBOOKS = REPO / "notebooks"
DEFAULT_JSON = REPO / "benchmarks" / "results" / "latest.json"
DIGITS_ROOT = NOTEBOOKS / "data" / "digits"  # the notebooks' copy; built there if missing
TRUE_W, TRUE_B = 0.7, 0.3
LINE_TOL = 0.002  # |Δw| and |Δb| a good straight-line fit reaches
Batch = tuple[torch.Tensor, torch.Tensor]


# --- records and verdicts ---------------------------------------------------------------------


@dataclass
class Row:
    """One figure: its value, the target it is held to (if any) and the verdict."""

    figure: str
    value: float | int | str | list[float] | None
    unit: str = ""
    op: str | None = None  # "<=" or ">="; None for figures reported for context only
    limit: float | None = None
    verdict: str = "-"
    fmt: str = "{:.3f}"
    samples: list[float] | None = None  # per-repetition measurements behind a median, for the JSON
    on_ref: bool = False  # the target is in reference units (a time figure's limit), not in ``unit``
    per_ref: float | None = None  # a time figure divided by the run's reference unit (``apply_reference``)

    def value_text(self) -> str:
        """The value as printed in the table."""
        if self.value is None:
            return "n/a"
        if isinstance(self.value, str):
            return self.value
        values = self.value if isinstance(self.value, list) else [self.value]
        text = " / ".join(self.fmt.format(v) for v in values) + (f" {self.unit}" if self.unit else "")
        return text + (f" = {self.per_ref:.2f} ref" if self.per_ref is not None else "")

    def target_text(self) -> str:
        """The target as printed in the table, or '-' for context-only figures."""
        if self.op is None:
            return "-"
        return f"{self.op} {self.limit:g}" + (" ref" if self.on_ref else f" {self.unit}" if self.unit else "")


def verdict(value: float | None, op: str | None, limit: float | None) -> str:
    """'PASS' or 'MISS' for ``value op limit``; '-' without a target (or without a value: 'MISS')."""
    if op is None:
        return "-"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "MISS"
    if op == "<=":
        return "PASS" if value <= limit else "MISS"
    if op == ">=":
        return "PASS" if value >= limit else "MISS"
    raise ValueError(f"op must be '<=' or '>=', got {op!r}.")


def row(
    figure: str,
    value,
    unit: str = "",
    target: tuple[str, float] | None = None,
    fmt: str = "{:.3f}",
    samples: list[float] | None = None,
    ref_target: tuple[str, float] | None = None,
) -> Row:
    """A ``Row`` with its verdict filled in; ``target`` is ``(op, limit)`` or None.

    ``ref_target`` sets a time figure's target in reference units instead: its verdict waits for
    ``apply_reference`` (until then it is a MISS, so a figure never passes unmeasured).
    """
    if ref_target is not None:
        op, limit = ref_target
        return Row(figure, value, unit, op, limit, "MISS", fmt, samples, on_ref=True)
    op, limit = target if target is not None else (None, None)
    return Row(figure, value, unit, op, limit, verdict(value, op, limit), fmt, samples)


def median_row(
    figure: str,
    samples: list[float],
    unit: str = "",
    target: tuple[str, float] | None = None,
    ref_target: tuple[str, float] | None = None,
) -> Row:
    """A ``Row`` holding the median of ``samples`` (kept in the JSON)."""
    return row(figure, statistics.median(samples), unit, target, samples=samples, ref_target=ref_target)


# --- timing helpers ---------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so a timer read afterwards covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """Seconds ``fn()`` took (device work included) and what it returned."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def interleaved_ratios(
    numerator: Callable[[], object], denominator: Callable[[], object], reps: int, device: torch.device
) -> list[float]:
    """Per-repetition time ratios numerator/denominator after one untimed run of each, the order alternating."""
    numerator(), denominator()  # warm-up: first-call allocations, lazy imports, kernel selection
    ratios = []
    for i in range(reps):
        if i % 2 == 0:
            t_num, _ = timed(numerator, device)
            t_den, _ = timed(denominator, device)
        else:
            t_den, _ = timed(denominator, device)
            t_num, _ = timed(numerator, device)
        ratios.append(t_num / t_den)
    return ratios


# --- shared pieces of the digits figures ------------------------------------------------------


def fresh_cnn(device: torch.device, seed: int = 42) -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
    """A DigitsCNN on ``device`` after ``set_seed`` (as the notebooks do), with cross-entropy and Adam (lr 1e-3)."""
    set_seed(seed)  # also the same cuDNN flags that fit's per-epoch set_seed leaves behind
    model = DigitsCNN().to(device)
    return model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)


def bare_loop(
    model: nn.Module,
    batches: Callable[[], Iterable[Batch]],
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    device: torch.device,
) -> None:
    """The loop a student writes: per batch forward, loss, zero_grad, backward, step."""
    model.train()
    for _ in range(epochs):
        for X, y in batches():
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def sliced_batches(X: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> Callable[[], Iterator[Batch]]:
    """Manual slicing: each call is one epoch of ``X[idx], y[idx]`` over a fresh random permutation."""
    g = torch.Generator().manual_seed(seed)

    def epoch() -> Iterator[Batch]:
        perm = torch.randperm(len(X), generator=g)
        for start in range(0, len(X), batch_size):
            idx = perm[start : start + batch_size]
            yield X[idx], y[idx]

    return epoch


# --- 0. the reference workload ----------------------------------------------------------------

REFERENCE_MATMUL = (512, 400)  # a size x size float32 product, repeated this many times


def reference_seconds(reps: int = 3) -> dict[str, float]:
    """The fixed reference workload, timed now: ``import torch`` in a fresh Python and a matrix-product loop.

    Medians of ``reps``; the matrix loop uses this process's thread count, as every figure here does.
    Returns ``{"import_torch": s, "matmul": s, "unit": import_torch + matmul}``.
    """
    command = [sys.executable, "-c", "import torch"]
    imports = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        imports.append(time.perf_counter() - start)
    size, repeat = REFERENCE_MATMUL
    a = torch.randn(size, size, generator=torch.Generator().manual_seed(0))
    a @ a  # warm-up: the first product picks its kernel
    products = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(repeat):
            a @ a
        products.append(time.perf_counter() - start)
    import_s, matmul_s = statistics.median(imports), statistics.median(products)
    return {"import_torch": import_s, "matmul": matmul_s, "unit": import_s + matmul_s}


def apply_reference(rows: list[Row], unit: float) -> None:
    """Give every time figure (unit "s") its value in reference units, and judge ``ref_target``s on it."""
    for r in rows:
        if r.unit == "s" and isinstance(r.value, (int, float)) and not isinstance(r.value, bool):
            r.per_ref = r.value / unit if math.isfinite(r.value) else None
        if r.on_ref:
            r.verdict = verdict(r.per_ref, r.op, r.limit)


# --- 1. notebooks -----------------------------------------------------------------------------


def notebook_paths(quick: bool = False) -> list[Path]:
    """The series in order (solutions too, if present); only 00_start_here in quick mode."""
    paths = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
    return [p for p in paths if p.stem.startswith("00")] if quick else paths


def time_notebook(path: Path, timeout: int = 600, usage: bool = False):
    """Seconds to run ``path`` in a fresh kernel (start to shutdown), cwd = its folder; the file is not written.

    With ``usage``, also the CPU seconds the kernel spent itself and in the processes it started and waited
    for (read inside the kernel with ``resource.getrusage`` by one extra cell, after the notebook's last), and
    the seconds spent in the cells that wait for those processes (their source holds ``WAIT_MARKER``):
    returns ``(seconds, {"own_cpu": s, "children_cpu": s, "waiting": s})``, or ``(seconds, None)`` where
    ``resource`` does not exist (Windows).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if usage:
        nb.cells.append(nbformat.v4.new_code_cell(USAGE_CELL))
    cwd = {"metadata": {"path": str(path.parent)}}  # relative paths resolve as they do for students
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources=cwd, record_timing=usage)
    start = time.perf_counter()
    client.execute()  # starts the kernel, runs every cell, shuts the kernel down; raises on an error
    seconds = time.perf_counter() - start
    if not usage:
        return seconds
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    if not printed.startswith("{"):
        return seconds, None
    waiting = sum(cell_seconds(c) for c in nb.cells if c.cell_type == "code" and WAIT_MARKER in c.source)
    return seconds, {**json.loads(printed), "waiting": waiting}


WAIT_MARKER = "finish("  # 08's cells that wait for the processes it started call its finish(job, name)


def cell_seconds(cell) -> float:
    """A cell's run time, from the timestamps nbclient records (record_timing=True)."""
    from datetime import datetime

    stamps = cell.metadata.get("execution", {})
    began, ended = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
    if not began or not ended:
        return 0.0
    return (
        datetime.fromisoformat(ended.replace("Z", "+00:00")) - datetime.fromisoformat(began.replace("Z", "+00:00"))
    ).total_seconds()


USAGE_CELL = """
try:
    import json as _json, resource as _resource
    _own, _kids = (_resource.getrusage(w) for w in (_resource.RUSAGE_SELF, _resource.RUSAGE_CHILDREN))
    print(_json.dumps({"own_cpu": _own.ru_utime + _own.ru_stime, "children_cpu": _kids.ru_utime + _kids.ru_stime}))
except ImportError:
    pass
"""


def bench_notebooks(paths: list[Path]) -> list[Row]:
    """Figure 1: each notebook's time in a fresh kernel and the series total, against targets in refs.

    08 is held to its floor instead (``notebook_floor_rows``).

    The series is the lesson notebooks a class works through; the solution notebooks (answer keys)
    get their own total, reported for context.
    """
    lessons = [p for p in paths if p.parent.name != "solutions"]
    solutions = [p for p in paths if p.parent.name == "solutions"]
    rows = _time_notebooks(lessons, f"series total ({len(lessons)} lesson notebooks)", SERIES_REF)
    if solutions:
        rows += _time_notebooks(solutions, f"solution notebooks total ({len(solutions)})", None)
    return rows


# Time targets in reference units (see the module docstring), set on 2026-12-07, a quiet day (the CNN trained in
# 2.2 s, as in the earlier quiet run), from the seconds targets the series had and that day's reference unit of
# about 2.3 s: 20 s per notebook, 120 s for the lessons one after another, 10 s for the CNN, 1 s for the line,
# 0.3 s for the import.
NOTEBOOK_REF = 8.5
SERIES_REF = 52.0
CNN_TRAINING_REF = 4.3
LINE_REF = 0.43
IMPORT_REF = 0.13
# 08 starts ten more Python processes and compiles a model: its script; a two-process torchrun job whose worker
# is killed and restarted (torchrun, two workers, two restarted workers); and two one-worker torchrun launches
# as two machines (two torchruns, two workers). Their CPU time is its floor, so 08 is held to that instead:
# wall <= FLOOR_SLACK x (CPU seconds of the processes it starts / cores it may use) + its own cells' time, where its
# own cells' time is everything but the cells that wait for those processes. Put the other way round: 08 waits
# for its processes no longer than 1.25 x their CPU seconds spread over the cores.
PROCESS_NOTEBOOKS = {"08_scaling_up.ipynb"}
FLOOR_SLACK = 1.25


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def notebook_floor_rows(name: str, seconds: float, usage: dict[str, float] | None) -> list[Row]:
    """08's target against its floor, and the figures behind it."""
    if usage is None:  # no resource module (Windows): the floor cannot be measured
        return [row(f"notebook {name} (its floor is not measurable here)", seconds, "s", fmt="{:.1f}")]
    cores = usable_cores()
    own = seconds - usage["waiting"]
    floor = FLOOR_SLACK * usage["children_cpu"] / cores + own
    return [
        row(f"notebook {name}", seconds, "s", fmt="{:.1f}"),
        row(
            f"  wall / its floor ({FLOOR_SLACK} x processes' CPU / {cores} cores + own cells)",
            seconds / floor,
            "x",
            ("<=", 1.0),
            "{:.2f}",
        ),
        row("  CPU seconds of the processes it started", usage["children_cpu"], "s", fmt="{:.1f}"),
        row("  waiting for them (the cells that call finish)", usage["waiting"], "s", fmt="{:.1f}"),
        row("  own cells: the rest of the run", own, "s", fmt="{:.1f}"),
        row("  CPU seconds of its own kernel", usage["own_cpu"], "s", fmt="{:.1f}"),
    ]


def _time_notebooks(paths: list[Path], total_name: str, target: float | None) -> list[Row]:
    rows, total = [], 0.0
    for path in paths:
        name = path.relative_to(NOTEBOOKS) if path.is_relative_to(NOTEBOOKS) else path.name
        floor = path.name in PROCESS_NOTEBOOKS
        try:
            seconds, usage = time_notebook(path, usage=True) if floor else (time_notebook(path), None)
        except Exception as exc:  # a failing notebook is a MISS, not a crash of the benchmark
            print(f"{path.name} failed: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
            rows.append(row(f"notebook {name} (failed)", None, "s", ("<=", 0.0)))
            total = math.nan
            continue
        total += seconds
        if floor:
            rows += notebook_floor_rows(str(name), seconds, usage)
        else:
            rows.append(row(f"notebook {name}", seconds, "s", fmt="{:.1f}", ref_target=("<=", NOTEBOOK_REF)))
    if paths:
        rows.append(row(total_name, total, "s", fmt="{:.1f}", ref_target=("<=", target) if target else None))
    return rows


# --- 2. fit overhead --------------------------------------------------------------------------


def bench_fit_overhead(data: DigitsData, device: torch.device, reps: int = 11, epochs: int = 2) -> list[Row]:
    """Figure 2: median time ratio fit / bare loop, same model, data, seed, optimizer and steps."""
    loader = data.train

    def with_fit() -> None:
        model, loss_fn, optimizer = fresh_cnn(device)
        fit(model, loader, loss_fn, optimizer, epochs, seed=42)  # no val_data: the bare loop has none

    def with_bare_loop() -> None:
        model, loss_fn, optimizer = fresh_cnn(device)
        loader.sampler.set_epoch(0)  # the same batches fit sees (it calls set_epoch itself)
        bare_loop(model, lambda: loader, loss_fn, optimizer, epochs, device)

    ratios = interleaved_ratios(with_fit, with_bare_loop, reps, device)
    return [median_row(f"fit / bare loop time ({reps} reps x {epochs} ep)", ratios, "x", ("<=", 1.05))]


# --- 3. data path -----------------------------------------------------------------------------


def bench_data_path(data: DigitsData, device: torch.device, reps: int = 11, epochs: int = 2) -> list[Row]:
    """Figure 3: per-epoch training time of the series' loader and a per-sample DataLoader vs manual slicing."""
    X, y = data.train.dataset.images, data.train.dataset.labels  # normalised, on the CPU like the loader's
    batch_size = data.train.sampler.batch_size
    per_sample = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)

    def train_with(batches: Callable[[], Iterable[Batch]]) -> Callable[[], None]:
        def run() -> None:
            model, loss_fn, optimizer = fresh_cnn(device)
            bare_loop(model, batches, loss_fn, optimizer, epochs, device)

        return run

    manual = train_with(sliced_batches(X, y, batch_size, seed=42))
    series = train_with(lambda: data.train)
    plain = train_with(lambda: per_sample)
    series_ratios = interleaved_ratios(series, manual, reps, device)
    plain_ratios = interleaved_ratios(plain, manual, reps, device)
    return [
        median_row(f"series loader / manual slicing ({reps} reps x {epochs} ep)", series_ratios, "x", ("<=", 1.2)),
        median_row("per-sample DataLoader / manual slicing (context)", plain_ratios, "x"),
    ]


# --- 4. straight line -------------------------------------------------------------------------


def lstsq_line(X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Least-squares weight and bias of ``y ≈ w·X + b`` (float64)."""
    A = torch.cat([X, torch.ones_like(X)], dim=1).double()
    w, b = torch.linalg.lstsq(A, y.double()).solution.flatten().tolist()
    return w, b


def fit_line_until(
    loss_fn: nn.Module, make_opt: Callable, max_epochs: int, device: torch.device, stop_tol: float | None = None
) -> tuple[float, float, int]:
    """Train a seed-42 line full-batch; stop once |Δw|, |Δb| <= ``stop_tol`` (if given). Return w, b, epochs."""
    X, y = make_line_data(TRUE_W, TRUE_B)
    X_train, y_train, _, _ = split_data(X, y)
    X_train, y_train = X_train.to(device), y_train.to(device)
    torch.manual_seed(42)
    model = LinearRegressionModel().to(device)
    optimizer = make_opt(model.parameters())
    for epoch in range(1, max_epochs + 1):  # noqa: B007 - the epoch reached is returned
        train_step(model, (X_train, y_train), loss_fn, optimizer)
        w, b = model.weights.item(), model.bias.item()
        if stop_tol is not None and max(abs(w - TRUE_W), abs(b - TRUE_B)) <= stop_tol:
            break
    return w, b, epoch


LINE_METHODS: dict[str, tuple[Callable[[], nn.Module], Callable]] = {
    "L1 + Adam lr 0.01": (nn.L1Loss, lambda p: torch.optim.Adam(p, lr=0.01)),
    "MSE + SGD lr 0.5": (nn.MSELoss, lambda p: torch.optim.SGD(p, lr=0.5)),
}


def bench_line(device: torch.device, max_epochs: int = 2000) -> list[Row]:
    """Figure 4: the reference line fit and fits reaching |Δ| <= 0.002, against the truth and lstsq."""
    X, y = make_line_data(TRUE_W, TRUE_B)
    X_train, y_train, _, _ = split_data(X, y)
    ls_w, ls_b = lstsq_line(X_train, y_train)
    w, b, _ = fit_line_until(nn.L1Loss(), lambda p: torch.optim.SGD(p, lr=0.01), 100, device)
    rows = [
        row("line reference L1 + SGD lr 0.01, 100 ep: w / b", [w, b], fmt="{:.4f}"),
        row("  |Δw| / |Δb| vs truth (0.7, 0.3)", [abs(w - TRUE_W), abs(b - TRUE_B)], fmt="{:.4f}"),
        row("  |Δw| / |Δb| vs lstsq on train", [abs(w - ls_w), abs(b - ls_b)], fmt="{:.4f}"),
    ]
    for name, (make_loss, make_opt) in LINE_METHODS.items():
        seconds, (w, b, epochs) = timed(
            lambda make_loss=make_loss, make_opt=make_opt: fit_line_until(
                make_loss(), make_opt, max_epochs, device, LINE_TOL
            ),
            device,
        )
        reached = max(abs(w - TRUE_W), abs(b - TRUE_B)) <= LINE_TOL
        rows += [
            row(f"line {name}: epochs to |Δ| <= {LINE_TOL}", epochs if reached else f"> {max_epochs}", fmt="{:d}"),
            row(f"  time to |Δ| <= {LINE_TOL}", seconds if reached else None, "s", ref_target=("<=", LINE_REF)),
            row("  |Δw| / |Δb| vs truth", [abs(w - TRUE_W), abs(b - TRUE_B)], fmt="{:.4f}"),
            row("  |Δw| / |Δb| vs lstsq on train", [abs(w - ls_w), abs(b - ls_b)], fmt="{:.4f}"),
        ]
    return rows


# --- 5. digits CNN vs SVC ---------------------------------------------------------------------


def bench_cnn(data: DigitsData, device: torch.device, epochs: int = 20) -> list[Row]:
    """Figure 5: the series' CNN recipe (best checkpoint, test accuracy, training time) next to an SVC."""
    from sklearn.svm import SVC

    torch.manual_seed(42)
    model = DigitsCNN().to(device)
    loss_fn, optimizer, scheduler = digits_recipe(model, epochs, len(data.train))
    with tempfile.TemporaryDirectory() as tmp:
        best_path = Path(tmp) / "best.pth"
        train_s, _ = timed(
            lambda: fit(
                model,
                data.train,
                loss_fn,
                optimizer,
                epochs,
                val_data=data.val,
                metric="accuracy",
                scheduler=scheduler,
                seed=42,
                checkpoint_path=best_path,
            ),
            device,
        )
        best = load_model(DigitsCNN(), best_path).to(device)
    logits, labels = predict(best, data.test)
    cnn_acc = accuracy(logits.argmax(dim=1), labels)

    def pixels(loader: DataLoader) -> tuple:
        """Flattened images back in [0, 1], and labels, as NumPy arrays."""
        ds = loader.dataset
        return (ds.images.flatten(1) * data.std + data.mean).numpy(), ds.labels.numpy()

    (X_train, y_train), (X_test, y_test) = pixels(data.train), pixels(data.test)
    svc_s, svc = timed(lambda: SVC(C=10, gamma=0.2).fit(X_train, y_train), torch.device("cpu"))
    svc_acc = float(svc.score(X_test, y_test))
    n = len(labels)
    return [
        row(f"CNN test accuracy ({epochs} ep, best ckpt; {round(cnn_acc * n)}/{n})", cnn_acc, "", None, "{:.4f}"),
        row(
            "CNN training time (fit incl. val + ckpt)", train_s, "s", fmt="{:.2f}", ref_target=("<=", CNN_TRAINING_REF)
        ),
        row(f"SVC(C=10, gamma=0.2) test accuracy ({round(svc_acc * n)}/{n})", svc_acc, fmt="{:.4f}"),
        row("SVC training time", svc_s, "s", fmt="{:.2f}"),
    ]


# --- 6. import time ---------------------------------------------------------------------------

IMPORT_SNIPPET = """
import time
import torch
start = time.perf_counter()
import workflow_utils
import workflow_utils.device, workflow_utils.data, workflow_utils.models, workflow_utils.engine
import workflow_utils.evaluation, workflow_utils.plotting, workflow_utils.checkpoint
end = time.perf_counter()
import matplotlib.pyplot  # loaded by the first plot, not by the import; timed for context
print(end - start, time.perf_counter() - end)
"""


def bench_import(reps: int = 5) -> list[Row]:
    """Figure 6: median seconds that importing ``workflow_utils`` adds to ``import torch``, in fresh processes."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", IMPORT_SNIPPET]
    runs = [
        subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout.split() for _ in range(reps)
    ]
    beyond_torch, pyplot = ([float(run[i]) for run in runs] for i in (0, 1))
    return [
        median_row(
            f"import workflow_utils beyond torch (median of {reps})", beyond_torch, "s", ref_target=("<=", IMPORT_REF)
        ),
        median_row("  matplotlib.pyplot, loaded at the first plot (context)", pyplot, "s"),
    ]


# --- 7. two processes (DDP) ----------------------------------------------------------------------

TRAIN_MODULE = ["-m", "workflow_utils.train_digits"]  # the script, a module of the package


def run_train_script(flags: list[str], processes: int, out: Path, env: dict[str, str]) -> tuple[float, list[float]]:
    """Run workflow_utils.train_digits (under torchrun for several processes); return its test accuracy and seconds per epoch."""
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    command = [*launcher, *TRAIN_MODULE, *flags, "--out", str(out)]
    pythonpath = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # installed or not, as above
    done = subprocess.run(command, capture_output=True, text=True, env={**env, "PYTHONPATH": pythonpath})
    if done.returncode != 0:
        raise RuntimeError(f"workflow_utils.train_digits failed: {done.stderr[-2000:]}")
    test_accuracy = float(done.stdout.splitlines()[-1].split()[2])  # "test accuracy: 0.9963 (269/270)"
    with (out / "metrics.csv").open(newline="") as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    return test_accuracy, seconds


def bench_ddp(data_root: Path, epochs: int = 20) -> list[Row]:
    """Figure 7: the script on 2 processes (DDP) vs 1, same global batch of 64: time per epoch and test accuracy.

    With fewer than 2 GPUs both runs use the CPU (gloo) with one math thread per process, as torchrun
    sets by default: the question is what a second worker adds. Each epoch's time comes from the
    script's metrics.csv (training, validation and checkpoint).
    """
    env = dict(os.environ)
    gpus = torch.cuda.device_count()
    if gpus < 2:
        env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")  # one process per GPU, or all on the CPU
    where = "2 GPUs, NCCL" if gpus >= 2 else "CPU, gloo, 1 thread per process"
    flags = ["--epochs", str(epochs), "--print-every", str(epochs), "--data", str(data_root)]
    with tempfile.TemporaryDirectory() as tmp:
        one_acc, one_s = run_train_script(flags, 1, Path(tmp) / "one", env)
        two_acc, two_s = run_train_script(flags, 2, Path(tmp) / "two", env)
    one_epoch, two_epoch = (statistics.median(s[1:] or s) for s in (one_s, two_s))  # epoch 0 warms up
    return [
        row(f"DDP 2 processes / 1 process: time per epoch ({where}, {epochs} ep)", two_epoch / one_epoch, "x"),
        row("  1 process: seconds per epoch (median after the first)", one_epoch, "s", fmt="{:.3f}"),
        row("  2 processes: seconds per epoch (median after the first)", two_epoch, "s", fmt="{:.3f}"),
        row(f"  1 process test accuracy ({round(one_acc * 270)}/270)", one_acc, "", None, "{:.4f}"),
        row(f"  2 processes test accuracy ({round(two_acc * 270)}/270)", two_acc, "", None, "{:.4f}"),
    ]


# --- 8. mixed precision and torch.compile ----------------------------------------------------------


def recipe_epochs(model: nn.Module, data: DigitsData, epochs: int, device: torch.device, amp_dtype=None) -> list[float]:
    """Train ``model`` with the series' recipe by hand, under autocast when ``amp_dtype``; return seconds per epoch.

    float16 goes with a GradScaler; bfloat16 needs none. Every run sees the same batches (epoch 0, 1, ...).
    """
    loss_fn, optimizer, scheduler = digits_recipe(model, epochs, len(data.train))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    model.train()
    data.train.sampler.set_epoch(0)  # each pass over the loader moves on one epoch
    seconds = []
    for _ in range(epochs):
        sync(device)
        start = time.perf_counter()
        for X, y in data.train:
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
            with autocast:
                loss = loss_fn(model(X), y)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def digits_test_accuracy(model: nn.Module, data: DigitsData) -> float:
    """Accuracy of ``model`` on the test split (float32, eval mode)."""
    logits, labels = predict(model, data.test)
    return accuracy(logits.argmax(dim=1), labels)


def bench_amp_and_compile(data: DigitsData, device: torch.device, epochs: int = 20) -> list[Row]:
    """Figure 8: mixed precision and torch.compile vs plain float32 eager training, same seed and batches.

    Training time, test accuracy of the last epoch, and for the compiled model the first epoch
    (which compiles) apart from the others; then prediction over the test split, eager vs compiled.
    """
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    runs = {}
    for name in ("float32", "mixed precision", "compiled"):
        model, _, _ = fresh_cnn(device)
        trained = torch.compile(model) if name == "compiled" else model
        seconds = recipe_epochs(trained, data, epochs, device, amp_dtype if name == "mixed precision" else None)
        runs[name] = (seconds, digits_test_accuracy(model, data), model)
    steady = {name: statistics.median(s[1:] or s) for name, (s, _, _) in runs.items()}
    n = len(data.test.dataset)
    rows = [
        row(
            f"mixed precision ({str(amp_dtype).split('.')[-1]}) / float32: training time ({epochs} ep)",
            sum(runs["mixed precision"][0]) / sum(runs["float32"][0]),
            "x",
        ),
        row("torch.compile / eager: time per epoch after the first", steady["compiled"] / steady["float32"], "x"),
        row("  first compiled epoch (it compiles)", runs["compiled"][0][0], "s", fmt="{:.1f}"),
    ]
    for name, (_, acc, _) in runs.items():
        rows.append(row(f"  {name} test accuracy ({round(acc * n)}/{n})", acc, "", None, "{:.4f}"))
    return rows + bench_compiled_prediction(runs["float32"][2], data, device)


def bench_compiled_prediction(model: nn.Module, data: DigitsData, device: torch.device, reps: int = 21) -> list[Row]:
    """Median time of one prediction over the test images, compiled / eager, and the largest output difference."""
    X = data.test.dataset.images.to(device)
    model.eval()
    compiled = torch.compile(model)
    with torch.inference_mode():
        first_s, compiled_out = timed(lambda: compiled(X), device)
        eager_out = model(X)
        ratios = interleaved_ratios(lambda: compiled(X), lambda: model(X), reps, device)
    return [
        median_row(f"compiled / eager prediction of {len(X)} images ({reps} reps)", ratios, "x"),
        row("  first compiled prediction (it compiles)", first_s, "s", fmt="{:.1f}"),
        row(
            "  largest |compiled - eager| output",
            (compiled_out - eager_out).abs().max().item(),
            "",
            ("<=", 1e-4),
            "{:.1e}",
        ),
    ]


# --- running, printing, saving ----------------------------------------------------------------


def _quiet(*_args, **_kwargs) -> None:
    """Print nothing: the grader's progress lines would interleave with the bench's table."""


def bench_grading(students: int) -> list[Row]:
    """Figure 9: the grader (``python -m workflow_utils.grade``) on a class of ``students`` who each hand in 00's
    exercises answered (the solutions notebook under the lesson's name), two at a time, each in its sandbox.

    Its reference, run in this minute: the same notebook run once plainly in a fresh kernel. Per notebook, grading
    adds the sandbox and the judging cell: the target is at most 1.5 plain runs. Per class, two at a time on two
    cores should take at most 0.75 of running them one after another."""
    from workflow_utils.grade import _sandbox_works, grade_class

    solutions = NOTEBOOKS / "solutions" / "00_tensors_and_autograd_solutions.ipynb"
    plain = time_notebook(solutions)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        submissions, out = Path(folder) / "submissions", Path(folder) / "out" / "grades.csv"
        for i in range(students):
            (submissions / f"student{i:02d}").mkdir(parents=True)
            (submissions / f"student{i:02d}" / "00_tensors_and_autograd.ipynb").write_bytes(solutions.read_bytes())
        # sandboxed where it can be (root on Linux), as an instructor grades; elsewhere the reference answers run as you
        sandbox = _sandbox_works([submissions, out.parent]) is None
        start = time.perf_counter()
        graded = grade_class(submissions, out, ["00_tensors_and_autograd"], sandbox=sandbox, echo=_quiet)
        seconds = time.perf_counter() - start
    right = sum(outcome == "correct" for g in graded for outcome, _ in g.questions.values())
    each = statistics.median(g.seconds for g in graded)
    return [
        row(
            f"grading a class of {students} (00b's 4 exercises, 2 at a time, {'' if sandbox else 'not '}sandboxed): "
            "seconds",
            seconds,
            "s",
            fmt="{:.1f}",
        ),
        row(f"  questions judged correct, of {4 * students} answered right", right, "", (">=", 4 * students), "{:.0f}"),
        row("  seconds per notebook graded (median, from start to verdicts)", each, "s", fmt="{:.1f}"),
        row("  that / one plain run of the notebook", each / plain, "x", ("<=", 1.5), fmt="{:.2f}"),
        row(
            "  the class / one plain run per student, one after another",
            seconds / (plain * students),
            "x",
            ("<=", 0.75),
            fmt="{:.2f}",
        ),
    ]


@dataclass
class Settings:
    """How much to measure: repetitions, epochs and which notebooks."""

    reps: int = 11
    overhead_epochs: int = 2
    data_epochs: int = 2
    cnn_epochs: int = 20
    import_reps: int = 5
    ddp_epochs: int = 20
    speed_epochs: int = 20
    grading_students: int = 30
    notebooks: bool = True
    quick: bool = False
    only: tuple[str, ...] = ()  # figure names with '-' for ' ' (e.g. 'two-processes'); empty: every figure
    reference_reps: int = 3

    @classmethod
    def quick_mode(cls, notebooks: bool = True) -> Settings:
        """Tiny settings: seconds, not minutes; only 00_start_here is timed."""
        return cls(
            reps=2,
            overhead_epochs=1,
            data_epochs=1,
            cnn_epochs=2,
            import_reps=1,
            ddp_epochs=2,
            speed_epochs=2,
            grading_students=2,
            notebooks=notebooks,
            quick=True,
            reference_reps=1,
        )


def run_benchmarks(settings: Settings, data: DigitsData | None = None, data_root: str | Path = DIGITS_ROOT) -> dict:
    """Every figure as a JSON-ready report: environment, settings and rows."""
    device = get_device()
    if data is None:
        data = load_digits_data(data_root, batch_size=64, seed=42, pin_memory=device.type == "cuda")
    before = reference_seconds(settings.reference_reps)
    rows = [row("device", device.type)]
    if device.type == "cuda":
        rows.append(row("GPU", torch.cuda.get_device_name(device)))
    figures: list[tuple[str, Callable[[], list[Row]]]] = [
        ("notebooks", lambda: bench_notebooks(notebook_paths(settings.quick)) if settings.notebooks else []),
        ("fit overhead", lambda: bench_fit_overhead(data, device, settings.reps, settings.overhead_epochs)),
        ("data path", lambda: bench_data_path(data, device, settings.reps, settings.data_epochs)),
        ("straight line", lambda: bench_line(device)),
        ("digits CNN", lambda: bench_cnn(data, device, settings.cnn_epochs)),
        ("import time", lambda: bench_import(settings.import_reps)),
        ("two processes", lambda: bench_ddp(Path(data_root), settings.ddp_epochs)),
        ("amp and compile", lambda: bench_amp_and_compile(data, device, settings.speed_epochs)),
        ("grading", lambda: bench_grading(settings.grading_students)),
    ]
    for name, measure in figures:
        if settings.only and name.replace(" ", "-") not in settings.only:
            continue
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows += measure()
    after = reference_seconds(settings.reference_reps)
    unit = (before["unit"] + after["unit"]) / 2
    apply_reference(rows, unit)
    rows[1:1] = [
        row("reference unit: import torch + matrix loop, mean of start and end", unit, "s"),
        row("  at the start / at the end of the run", [before["unit"], after["unit"]], "s", fmt="{:.2f}"),
        row(
            "  import torch (fresh Python) / matrix loop, at the start",
            [before["import_torch"], before["matmul"]],
            "s",
            fmt="{:.2f}",
        ),
    ]
    return {
        "device": device.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "settings": asdict(settings),
        "reference": {"unit": unit, "start": before, "end": after},
        "rows": [asdict(r) | {"value_text": r.value_text(), "target_text": r.target_text()} for r in rows],
        "misses": sum(r.verdict == "MISS" for r in rows),
    }


def format_table(report: dict) -> str:
    """The report's rows as an aligned text table: figure, value, target, verdict."""
    header = ("figure", "value", "target", "verdict")
    lines = [(r["figure"], r["value_text"], r["target_text"], r["verdict"]) for r in report["rows"]]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    rule = "-" * (sum(widths) + 6)
    out = [fmt.format(*header), rule, *(fmt.format(*line) for line in lines), rule]
    out.append(
        f"torch {report['torch']}, {report['torch_threads']} torch threads, {report['cpu_count']} CPUs; "
        f"{report['misses']} MISS (figures are measured, not gated); 1 ref = {report['reference']['unit']:.2f} s "
        "in this run, and time targets are in refs"
    )
    return "\n".join(line.rstrip() for line in out)


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, print the table, write the JSON; always 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings; time only 00_start_here")
    parser.add_argument("--skip-notebooks", action="store_true", help="do not time the notebooks")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the figures as JSON")
    parser.add_argument("--data-root", type=Path, default=DIGITS_ROOT, help="digits image folder (built if missing)")
    parser.add_argument("--only", default="", help="comma-separated figures, e.g. two-processes,amp-and-compile")
    args = parser.parse_args(argv)
    settings = Settings.quick_mode() if args.quick else Settings()
    settings.notebooks = not args.skip_notebooks
    settings.only = tuple(name for name in args.only.split(",") if name)
    report = run_benchmarks(settings, data_root=args.data_root)
    print(format_table(report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
