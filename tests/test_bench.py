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
    settings = bench.Settings(reps=1, overhead_epochs=1, data_epochs=1, cnn_epochs=1, import_reps=1, notebooks=False)
    report = bench.run_benchmarks(settings, data=tiny_digits())
    report = json.loads(json.dumps(report))  # JSON-ready as written
    assert {"device", "torch", "torch_threads", "settings", "rows", "misses"} <= set(report)
    assert report["device"] in ("cpu", "cuda", "mps")
    figures = [r["figure"] for r in report["rows"]]
    for expected in ("device", "fit / bare loop", "series loader / manual slicing", "per-sample DataLoader",
                     "line reference", "CNN test accuracy", "CNN training time", "SVC", "import workflow_utils"):
        assert any(f.startswith(expected) for f in figures), expected
    assert not any(f.startswith("notebook") for f in figures)
    for r in report["rows"]:
        assert {"figure", "value", "value_text", "target_text", "verdict"} <= set(r)
        assert r["verdict"] == bench.verdict(r["value"], r["op"], r["limit"])
    assert report["misses"] == sum(r["verdict"] == "MISS" for r in report["rows"])
    reference = next(r for r in report["rows"] if r["figure"].startswith("line reference"))
    assert [round(v, 4) for v in reference["value"]] == [0.5784, 0.3513]  # the series' reference run
    imports = next(r for r in report["rows"] if r["figure"].startswith("import workflow_utils"))
    assert (imports["value"], imports["verdict"]) == (0.25, "PASS")
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
        "notebook 01_x.ipynb", "series total", "notebook 01_x_solutions.ipynb", "solution notebooks total"
    ]
    assert rows[1].limit == 120.0 and rows[3].limit is None and rows[3].value > 0
