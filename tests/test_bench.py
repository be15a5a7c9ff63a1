"""The benchmark script on tiny settings: record structure, verdicts, and notebooks left untouched."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from workflow_utils.data import DigitsData, TensorImageDataset, make_loader

BENCH_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
_spec = importlib.util.spec_from_file_location("bench", BENCH_PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench"] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)


def tiny_digits() -> DigitsData:
    """Random 8x8 'digits' in memory: the loaders' shapes without writing PNGs."""
    g = torch.Generator().manual_seed(0)

    def loader(n: int, shuffle: bool):
        ds = TensorImageDataset(torch.randn(n, 1, 8, 8, generator=g), torch.arange(n) % 10)
        return make_loader(ds, batch_size=32, shuffle=shuffle)

    return DigitsData(train=loader(96, True), val=loader(40, False), test=loader(40, False), mean=0.0, std=1.0)


@pytest.mark.parametrize(
    ("value", "op", "limit", "expected"),
    [
        (0.9, "<=", 1.0, "PASS"),
        (1.0, "<=", 1.0, "PASS"),  # the target itself passes
        (1.1, "<=", 1.0, "MISS"),
        (0.995, ">=", 0.99, "PASS"),
        (0.99, ">=", 0.99, "PASS"),
        (0.985, ">=", 0.99, "MISS"),
        (5.0, None, None, "-"),  # context only
        (None, "<=", 1.0, "MISS"),  # nothing measured (e.g. a failed notebook)
        (float("nan"), "<=", 1.0, "MISS"),
    ],
)
def test_verdict(value, op, limit, expected):
    assert bench.verdict(value, op, limit) == expected


def test_verdict_rejects_unknown_op():
    with pytest.raises(ValueError, match="op must be"):
        bench.verdict(1.0, "<", 2.0)


def test_row_texts():
    r = bench.row("notebook x", 21.04, "s", ("<=", 20.0), "{:.1f}")
    assert (r.value_text(), r.target_text(), r.verdict) == ("21.0 s", "<= 20 s", "MISS")
    pair = bench.row("|Δw| / |Δb|", [0.12164, 0.0513], fmt="{:.4f}")
    assert (pair.value_text(), pair.target_text(), pair.verdict) == ("0.1216 / 0.0513", "-", "-")


def test_run_benchmarks_tiny_settings(monkeypatch):
    # A stand-in for the import timing snippet: a fresh process importing torch costs seconds.
    monkeypatch.setattr(bench, "IMPORT_SNIPPET", "print(0.25, 0.02)")
    old_figures = ("fit-overhead", "data-path", "straight-line", "digits-CNN", "import-time")  # 08's: tests below
    settings = bench.Settings(
        reps=1, overhead_epochs=1, data_epochs=1, cnn_epochs=1, import_reps=1, notebooks=False, only=old_figures
    )
    report = bench.run_benchmarks(settings, data=tiny_digits())
    report = json.loads(json.dumps(report))  # JSON-ready as written
    assert {"device", "torch", "torch_threads", "settings", "rows", "misses"} <= set(report)
    assert report["device"] in ("cpu", "cuda", "mps")
    figures = [r["figure"] for r in report["rows"]]
    for expected in (
        "device",
        "fit / bare loop",
        "series loader / manual slicing",
        "per-sample DataLoader",
        "line reference",
        "CNN test accuracy",
        "CNN training time",
        "SVC",
        "import workflow_utils",
    ):
        assert any(f.startswith(expected) for f in figures), expected
    assert not any(f.startswith("notebook") for f in figures)
    for r in report["rows"]:
        assert {"figure", "value", "value_text", "target_text", "verdict"} <= set(r)
        judged = r["per_ref"] if r["on_ref"] else r["value"]
        assert r["verdict"] == bench.verdict(judged, r["op"], r["limit"])
    unit = report["reference"]["unit"]
    assert unit > 0 and report["rows"][1]["value"] == unit
    cnn = next(r for r in report["rows"] if r["figure"].startswith("CNN training time"))
    assert cnn["on_ref"] and cnn["per_ref"] == pytest.approx(cnn["value"] / unit)
    assert cnn["target_text"] == f"<= {bench.CNN_TRAINING_REF:g} ref" and cnn["value_text"].endswith(" ref")
    assert report["misses"] == sum(r["verdict"] == "MISS" for r in report["rows"])
    reference = next(r for r in report["rows"] if r["figure"].startswith("line reference"))
    assert [round(v, 4) for v in reference["value"]] == [0.5784, 0.3513]  # the series' reference run
    imports = next(r for r in report["rows"] if r["figure"].startswith("import workflow_utils"))
    assert imports["value"] == 0.25 and imports["per_ref"] == pytest.approx(0.25 / unit)
    table = bench.format_table(report)
    assert table.splitlines()[0].split() == ["figure", "value", "target", "verdict"]


def test_time_notebook_runs_in_its_folder_and_leaves_the_file_alone(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("open('ran_here.txt', 'w').write('ok')")])
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    rows = bench.bench_notebooks([path])
    assert (tmp_path / "ran_here.txt").read_text() == "ok"  # cwd = the notebook's folder
    assert path.read_bytes() == before  # outputs are not written back
    assert [r.verdict for r in rows] == ["MISS", "MISS"]  # judged only once the run's reference is known
    bench.apply_reference(rows, unit=1.0)
    assert [r.verdict for r in rows] == ["PASS", "PASS"] and rows[-1].figure.startswith("series total")


def test_solution_notebooks_get_their_own_total(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    (tmp_path / "solutions").mkdir()
    paths = [tmp_path / "01_x.ipynb", tmp_path / "solutions" / "01_x_solutions.ipynb"]
    for path in paths:
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
    rows = bench.bench_notebooks(paths)
    assert [r.figure.split(" (")[0] for r in rows] == [
        "notebook 01_x.ipynb",
        "series total",
        "notebook 01_x_solutions.ipynb",
        "solution notebooks total",
    ]
    assert rows[1].limit == bench.SERIES_REF and rows[1].on_ref and rows[3].limit is None and rows[3].value > 0


def test_only_runs_the_figures_named(monkeypatch):
    monkeypatch.setattr(bench, "IMPORT_SNIPPET", "print(0.25, 0.02)")
    report = bench.run_benchmarks(
        bench.Settings(import_reps=1, notebooks=False, only=("import-time",)), data=tiny_digits()
    )
    assert [r["figure"].split(" (")[0].split(",")[0] for r in report["rows"]] == [
        "device",
        "reference unit: import torch + matrix loop",
        "  at the start / at the end of the run",
        "  import torch",
        "import workflow_utils beyond torch",
        "  matplotlib.pyplot",
    ]
    assert "--only" in bench.__doc__


def test_ddp_figure_compares_time_per_epoch_and_accuracy(monkeypatch, tmp_path):
    calls = []

    def fake_run(flags, processes, out, env):
        calls.append((processes, flags, (env.get("CUDA_VISIBLE_DEVICES"), env.get("OMP_NUM_THREADS"))))
        return (0.9963, [3.0, 1.0, 1.2, 1.1]) if processes == 1 else (0.9926, [5.0, 1.5, 1.8, 1.65])

    monkeypatch.setattr(bench, "run_train_script", fake_run)
    monkeypatch.setattr(bench.torch.cuda, "device_count", lambda: 0)
    rows = bench.bench_ddp(tmp_path, epochs=4)
    assert [c[0] for c in calls] == [1, 2] and calls[0][1][:2] == ["--epochs", "4"] and calls[0][2] == ("", "1")
    assert rows[0].figure == "DDP 2 processes / 1 process: time per epoch (CPU, gloo, 1 thread per process, 4 ep)"
    assert rows[0].value == pytest.approx(1.65 / 1.1)  # medians after the warm-up epoch
    assert [r.value for r in rows[1:3]] == [1.1, 1.65]
    assert [(r.figure, r.verdict) for r in rows[3:]] == [
        ("  1 process test accuracy (269/270)", "-"),  # reported: the target is on validation (07)
        ("  2 processes test accuracy (268/270)", "-"),
    ]


def test_run_train_script_reads_the_last_line_and_the_csv(monkeypatch, tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,seconds\n0,2.5\n1,0.5\n")
    printed = "1 process: ...\nbest epoch 1: val accuracy 0.99\ntest accuracy: 0.9963 (269/270)\n"

    def fake_subprocess_run(command, **kwargs):
        assert command[:4] == [bench.sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
        assert command[4:6] == ["-m", "workflow_utils.train_digits"]  # the script, a module of the package
        assert command[-2:] == ["--out", str(tmp_path)]
        return bench.subprocess.CompletedProcess(command, 0, stdout=printed, stderr="")

    monkeypatch.setattr(bench.subprocess, "run", fake_subprocess_run)
    assert bench.run_train_script(["--epochs", "2"], 2, tmp_path, {}) == (0.9963, [2.5, 0.5])


def test_amp_and_compile_figure_on_tiny_data(monkeypatch):
    monkeypatch.setattr(bench.torch, "compile", lambda model: model)  # the real first compile takes a minute on a CPU
    rows = bench.bench_amp_and_compile(tiny_digits(), torch.device("cpu"), epochs=2)
    figures = [r.figure for r in rows]
    assert figures[0] == "mixed precision (bfloat16) / float32: training time (2 ep)"
    assert figures[1:3] == [
        "torch.compile / eager: time per epoch after the first",
        "  first compiled epoch (it compiles)",
    ]
    assert [f.split(" test")[0] for f in figures[3:6]] == ["  float32", "  mixed precision", "  compiled"]
    accuracies = [r.value for r in rows[3:6]]
    assert accuracies[0] == accuracies[2]  # the same training, compiled or not (here: not, compile is stubbed)
    assert all(r.verdict == bench.verdict(r.value, r.op, r.limit) for r in rows)
    assert rows[-1].figure == "  largest |compiled - eager| output" and (rows[-1].value, rows[-1].verdict) == (
        0.0,
        "PASS",
    )


def test_recipe_epochs_trains_the_same_batches_in_bfloat16():
    data = tiny_digits()
    weights = []
    for amp_dtype in (None, torch.bfloat16):
        torch.manual_seed(0)
        model = bench.DigitsCNN()
        before = [p.detach().clone() for p in model.parameters()]
        seconds = bench.recipe_epochs(model, data, 2, torch.device("cpu"), amp_dtype)
        assert len(seconds) == 2 and all(s > 0 for s in seconds)
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=0.05)  # bfloat16 follows float32 closely, not exactly
    assert not torch.equal(weights[0], weights[1])


def test_time_targets_are_judged_in_reference_units():
    fast = bench.row("notebook a", 10.0, "s", fmt="{:.1f}", ref_target=("<=", 12.5))
    slow = bench.row("notebook b", 30.0, "s", fmt="{:.1f}", ref_target=("<=", 12.5))
    ratio = bench.row("fit / bare loop", 1.01, "x", ("<=", 1.05))
    assert fast.verdict == "MISS"  # not judged before the reference is known
    bench.apply_reference([fast, slow, ratio], unit=2.0)
    assert (fast.per_ref, fast.verdict, slow.per_ref, slow.verdict) == (5.0, "PASS", 15.0, "MISS")
    assert (fast.value_text(), fast.target_text()) == ("10.0 s = 5.00 ref", "<= 12.5 ref")
    assert ratio.per_ref is None and ratio.verdict == "PASS"  # a same-run ratio needs no reference
    bench.apply_reference([fast], unit=4.0)  # the same seconds on a day twice as fast would miss
    assert (fast.per_ref, fast.verdict) == (2.5, "PASS")


def test_reference_workload_is_timed():
    ref = bench.reference_seconds(reps=1)
    assert ref["import_torch"] > 0 and ref["matmul"] > 0
    assert ref["unit"] == pytest.approx(ref["import_torch"] + ref["matmul"])


def test_notebook_08_is_held_to_its_floor(monkeypatch):
    monkeypatch.setattr(bench, "usable_cores", lambda: 2)
    usage = {"children_cpu": 56.0, "own_cpu": 8.0, "waiting": 30.0}
    rows = bench.notebook_floor_rows("08_scaling_up.ipynb", 40.0, usage)
    ratio = rows[1]  # waits 30 s for 56 CPU-s on 2 cores: within 1.25 x 28 s
    assert ratio.value == pytest.approx(40.0 / (1.25 * 56.0 / 2 + (40.0 - 30.0))) and ratio.verdict == "PASS"
    slow = bench.notebook_floor_rows("08_scaling_up.ipynb", 50.0, {**usage, "waiting": 40.0})
    assert slow[1].verdict == "MISS"  # waiting 40 s for processes worth 28 s of both cores
    assert bench.notebook_floor_rows("08_scaling_up.ipynb", 45.0, None)[0].verdict == "-"  # Windows: reported
    assert "08_scaling_up.ipynb" in bench.PROCESS_NOTEBOOKS


def test_time_notebook_counts_the_cpu_of_the_processes_it_starts(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("resource")
    start = "import subprocess, sys\njob = subprocess.Popen([sys.executable, '-c', 'sum(range(20_000_000))'])"
    wait = "def finish(job):\n    job.wait()\n\n\nfinish(job)"  # a cell that waits holds bench.WAIT_MARKER
    path = tmp_path / "starts.ipynb"
    cells = [nbformat.v4.new_code_cell(start), nbformat.v4.new_code_cell(wait)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    seconds, usage = bench.time_notebook(path, usage=True)
    assert usage["children_cpu"] > 0.2 and usage["own_cpu"] > 0 and seconds > usage["children_cpu"] / 2
    assert 0 < usage["waiting"] < seconds  # the second cell's time, spent waiting for the process
