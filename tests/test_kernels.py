"""scripts/test_kernels.py, the CPU-kernel matrix: each configuration is what it says, and a difference fails it."""

import importlib.util
from pathlib import Path

import nbformat
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("test_kernels_script", REPO / "scripts" / "test_kernels.py")
kernels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kernels)


def test_each_configuration_starts_from_no_inherited_kernel_variable(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = kernels.environ({"ATEN_CPU_CAPABILITY": "avx2"})
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert "MKL_CBWR" not in env and "OMP_NUM_THREADS" not in env
    assert kernels.environ({})["PATH"]  # everything else is kept


def test_the_matrix_holds_the_configurations_contributing_names():
    assert list(kernels.CONFIGS) == [
        "mkl-avx2/aten-default",
        "mkl-avx2/aten-avx2",
        "mkl-avx512/aten-avx512",
        "every-core",
    ]
    variables, at_once, _ = kernels.CONFIGS["every-core"]
    assert variables == {} and at_once == 1  # every core: one notebook at a time, nothing forced
    for name in list(kernels.CONFIGS)[:3]:
        assert kernels.CONFIGS[name][0]["OMP_NUM_THREADS"] == "1"
    contributing = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")  # "The same numbers on every machine"
    assert "make test-kernels" in contributing and "ATEN_CPU_CAPABILITY=avx512" in contributing


def test_forced_kernels_are_the_ones_torch_reports():
    """The probe reads back what torch picked: forcing 'default' gives the plain kernels on any x86 CPU."""
    capability, threads = kernels.probe({"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"})
    assert (capability, threads) == ("DEFAULT", 1)
    assert kernels.probe({})[0] == torch.backends.cpu.get_cpu_capability()


def test_an_unknown_variable_in_also_is_refused(capsys):
    with pytest.raises(SystemExit):
        kernels.run_kernels(["--also", "MKL_CBRW=AVX2"])
    assert "--also takes VAR=VALUE pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        kernels.run_kernels(["no-such-configuration"])


def test_a_stored_output_that_depends_on_the_thread_count_fails_the_matrix(tmp_path, monkeypatch, capsys):
    """The matrix can fail: a notebook that stored '1 thread' passes with one thread and fails with two."""
    monkeypatch.setattr(kernels, "OUT", tmp_path / "out")
    cell = nbformat.v4.new_code_cell("import torch\nprint(torch.get_num_threads(), 'thread')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1 thread\n")]
    cell.execution_count = 1
    notebook = tmp_path / "threads.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), notebook)
    args = ["--pytest-args", f"--nbval {notebook}", "--also", "OMP_NUM_THREADS=1"]
    assert kernels.run_kernels([*args, "--also", "OMP_NUM_THREADS=2"]) == 1
    table = capsys.readouterr().out
    assert "OMP_NUM_THREADS=1" in table and "passed" in table
    assert "FAILED" in table and "threads.ipynb::Cell 0" in table
    assert not list((tmp_path / "out").glob("*.inductor-cache"))  # each configuration's cache is removed


def test_a_configuration_the_cpu_lacks_is_skipped_and_said(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(kernels, "OUT", tmp_path)
    monkeypatch.setattr(kernels, "probe", lambda variables: ("AVX2", 1))
    row = kernels.run_config("mkl-avx512/aten-avx512", [])
    assert row["status"] == "skipped: this CPU's widest kernel is AVX2, not AVX512"


def test_ci_runs_the_matrix():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test-kernels" in ci and "TORCHINDUCTOR_CACHE_DIR" in ci
