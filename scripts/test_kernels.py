"""The CPU-kernel matrix (`make test-kernels`): strict nbval over every notebook under several CPU kernels.

    python scripts/test_kernels.py [NAME ...] [--pytest-args "notebooks/05_evaluation.ipynb"]
    python scripts/test_kernels.py --also "MKL_CBWR=AVX ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=4"

PyTorch and MKL pick their math kernels for the CPU they run on: ATen's vectorised code for the widest
instruction set it has (`ATEN_CPU_CAPABILITY`: default, avx2, avx512) and MKL's code path for matrix products
(`MKL_CBWR`: AVX2, AVX512, ...). Different kernels add floating-point numbers in a different order, so the last
bits of a result differ between a student's laptop and CI. Forcing each kernel here shows, on one machine,
whether any stored output of any notebook depends on which one a machine picks. Each configuration runs in a
fresh process with every other kernel variable removed:

- mkl-avx2/aten-default: MKL's AVX2 path with ATen's plain (non-vectorised) kernels, one thread per notebook;
- mkl-avx2/aten-avx2:    what an AVX2-only laptop (most Intel and AMD machines) runs, one thread;
- mkl-avx512/aten-avx512: what an AVX-512 server runs, one thread (skipped, and said so, on a CPU without it);
- every-core:            no kernel variable and no OMP_NUM_THREADS: the machine's own kernels with one math
                         thread per core, as JupyterLab starts a kernel; notebooks run one at a time.

Each configuration also gets its own empty TorchInductor cache: Inductor keys its on-disk cache without the
kernel variables, and a model compiled under one configuration and loaded from the cache under another computes
garbage (seen here: NaN and 1e34 logits in 08's compile cell, torch 2.15). A student's machine keeps one set of
kernels, so only a matrix like this one meets that.

The first three run two notebooks at a time with one math thread each (as `make test` does). What this cannot
prove: Apple silicon (Accelerate and NEON kernels, no MKL) and GPUs (cuBLAS, cuDNN) use kernels that cannot be
forced here; see CONTRIBUTING.md, "The same numbers on every machine". `--also "VAR=VALUE ..."` adds a configuration of
your own (repeatable; two notebooks at a time when it sets OMP_NUM_THREADS=1, else one). Exit status 1 when any
configuration fails.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "kernels"
# Every variable that chooses a kernel or a thread count; each configuration starts from none of them.
KERNEL_VARS = (
    "MKL_CBWR",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MKL_ENABLE_INSTRUCTIONS",
)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# name -> (variables, notebooks run at once, the ATen capability it needs or None)
CONFIGS: dict[str, tuple[dict[str, str], int, str | None]] = {
    "mkl-avx2/aten-default": ({"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "default", **ONE_THREAD}, 2, None),
    "mkl-avx2/aten-avx2": ({"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", **ONE_THREAD}, 2, "AVX2"),
    "mkl-avx512/aten-avx512": ({"MKL_CBWR": "AVX512", "ATEN_CPU_CAPABILITY": "avx512", **ONE_THREAD}, 2, "AVX512"),
    "every-core": ({}, 1, None),
}
RANK = {"DEFAULT": 0, "AVX2": 1, "AVX512": 2}
PROBE = "import torch; print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())"


def environ(variables: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
    env.update(variables)
    return env


def probe(variables: dict[str, str]) -> tuple[str, int]:
    """The ATen capability and the thread count that torch reports under these variables."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ(variables), capture_output=True, text=True, check=True
    )
    capability, threads = done.stdout.split()
    return capability, int(threads)


def failures(report: Path) -> tuple[int, list[str]]:
    """(tests run, the ids of those that failed) from a JUnit report."""
    if not report.exists():
        return 0, ["(no report: pytest did not finish)"]
    root = ET.parse(report).getroot()
    cases = list(root.iter("testcase"))
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in cases
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return len(cases), failed


def run_config(name: str, pytest_args: list[str]) -> dict:
    variables, at_once, needs = CONFIGS[name]
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in name)
    native, _ = probe({})
    if needs and RANK[native] < RANK[needs]:
        return {"name": name, "status": f"skipped: this CPU's widest kernel is {native}, not {needs}"}
    capability, threads = probe(variables)
    cache = OUT / f"{safe}.inductor-cache"
    shutil.rmtree(cache, ignore_errors=True)
    report = OUT / f"{safe}.xml"
    report.unlink(missing_ok=True)
    parallel = ["-n", str(at_once), "--dist", "loadfile"] if at_once > 1 else []
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *(pytest_args or ["notebooks"]),
        *parallel,
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
    ]
    shown = " ".join(f"{k}={v}" for k, v in variables.items()) or "(no kernel or thread variable)"
    print(f"--- {name}: {shown}; torch reports {capability} kernels, {threads} thread(s)", flush=True)
    start = time.perf_counter()
    with open(OUT / f"{safe}.log", "w") as log:
        env = {**environ(variables), "TORCHINDUCTOR_CACHE_DIR": str(cache)}
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    shutil.rmtree(cache, ignore_errors=True)
    seconds = time.perf_counter() - start
    ran, failed = failures(report)
    status = "passed" if code == 0 and not failed else "FAILED"
    return {
        "name": name,
        "status": status,
        "capability": capability,
        "threads": threads,
        "ran": ran,
        "failed": failed,
        "seconds": seconds,
        "log": OUT / f"{safe}.log",
    }


def run_kernels(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"configurations to run (default: all of {', '.join(CONFIGS)})"
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="VARS",
        help='another configuration, e.g. "MKL_CBWR=AVX OMP_NUM_THREADS=4" (repeatable)',
    )
    parser.add_argument("--pytest-args", default="", help="what pytest collects instead of notebooks/")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    for text in args.also:
        pairs = [item.partition("=") for item in text.split()]
        if not pairs or any(not sep or key not in KERNEL_VARS for key, sep, _ in pairs):
            parser.error(f"--also takes VAR=VALUE pairs of {', '.join(KERNEL_VARS)}; got {text!r}")
        variables = {key: value for key, _, value in pairs}
        CONFIGS[text] = (variables, 2 if variables.get("OMP_NUM_THREADS") == "1" else 1, None)
    OUT.mkdir(parents=True, exist_ok=True)
    names = args.names or ([] if args.also else list(CONFIGS))
    rows = [run_config(name, shlex.split(args.pytest_args)) for name in [*names, *args.also]]
    print(f"\n{'configuration':<24} {'kernels':<8} {'threads':>7} {'cells':>6} {'minutes':>7}  result")
    for row in rows:
        if row["status"].startswith("skipped"):
            print(f"{row['name']:<24} {'':<8} {'':>7} {'':>6} {'':>7}  {row['status']}")
            continue
        print(
            f"{row['name']:<24} {row['capability']:<8} {row['threads']:>7} {row['ran']:>6} "
            f"{row['seconds'] / 60:>7.1f}  {row['status']}"
        )
        for test in row["failed"]:
            log = row["log"].relative_to(REPO) if row["log"].is_relative_to(REPO) else row["log"]
            print(f"    failed: {test}  (log: {log})")
    return 1 if any(row["status"] == "FAILED" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(run_kernels())
