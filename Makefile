# Two commands set everything up: `make lab` to learn, `make test` to check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb notebooks/solutions/*.ipynb))
# JupyterLab refuses to run as root unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

.PHONY: install lab test test-robust test-wheel bench notebooks slides clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt  # the package, editable, with its lab and test extras
	$(BIN)/python slides/build_slides.py --fetch-only || echo "note: reveal.js not installed yet; make slides will try again"
	touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(ROOT_FLAG) $(LAB_ARGS)

# Parallel runs give each process one math thread: two processes with several spinning
# OpenMP threads each on a 2-core machine slow every training step down tenfold or more.
PARALLEL_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# Unit tests plus strict nbval over every notebook, two at a time (a notebook's cells stay on one worker).
test: $(STAMP)
	$(PARALLEL_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile --ignore=tests/robustness $(PYTEST_ARGS)

# Notebooks under real use: fresh copy, reverse order, twice in a row, two at a time, no network.
test-robust: $(STAMP)
	$(PARALLEL_ENV) $(BIN)/python -m pytest tests/robustness -p no:cacheprovider $(PYTEST_ARGS)

# The wheel alone (make test runs it too): its files and Requires-Dist, then imported from a fresh venv.
test-wheel: $(STAMP)
	$(BIN)/python -m pytest tests/test_packaging.py -m wheel -p no:cacheprovider $(PYTEST_ARGS)

# Measures speed and quality against the targets; prints a table, writes benchmarks/results/latest.json.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# The digits CNN trained by two processes (torch.distributed: gloo on CPUs, NCCL on GPUs), as in 08_scaling_up;
# the last line printed is the test accuracy. Files go to build/train-ddp; TRAIN_ARGS="--epochs 5" changes settings.
.PHONY: train-ddp
train-ddp: $(STAMP)
	$(PARALLEL_ENV) $(BIN)/torchrun --nproc_per_node=2 scripts/train_digits.py --data notebooks/data/digits --out build/train-ddp $(TRAIN_ARGS)

# The one sanctioned way to refresh stored outputs: each notebook re-executed in a fresh kernel.
notebooks: $(STAMP)
	printf '%s\n' $(NOTEBOOKS) | $(PARALLEL_ENV) xargs -P 2 -I{} $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False {}

# A reveal.js deck per notebook in build/slides/ (open index.html); no network needed to show them.
slides: $(STAMP)
	$(BIN)/python slides/build_slides.py --out build/slides

clean:
	rm -rf build notebooks/models notebooks/data .pytest_cache
