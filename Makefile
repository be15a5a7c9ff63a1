# Two commands set everything up: `make lab` to learn, `make test` to check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb notebooks/solutions/*.ipynb))
# JupyterLab refuses to run as root unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

.PHONY: install lock lab lint test test-kernels test-matrix test-robust test-ui test-wheel bench notebooks slides book book-pdf badges clean

install: $(STAMP)

# requirements.txt is the lock: the exact versions, with hashes, that CI tests (`make lock` refreshes it).
# The package itself goes in afterwards without dependencies, because pip checks hashes for every
# requirement in a file that has any, and a source folder has none.
# `make install TORCH=cpu` takes PyTorch's CPU-only build (about 200 MB instead of several GB of CUDA
# libraries) from PyTorch's own index, at the versions the lock pins; everything else comes from the lock.
TORCH ?= default
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# A Python outside 3.11-3.13 (the lock needs 3.11) is refused in one line before anything is downloaded, a .venv
# made by one is removed, and a failed install removes the .venv it started, so the next `make install` starts clean.
LOCK_FILE ?= requirements.txt
CLEAN_ON_FAIL = || { rm -rf $(VENV); echo "make install failed (see above): removed $(VENV), so the next run starts clean"; exit 1; }
$(STAMP): $(LOCK_FILE) pyproject.toml
	@$(PYTHON) scripts/check_python.py
	@test ! -x $(BIN)/python || $(BIN)/python scripts/check_python.py --venv || { rm -rf $(VENV); echo "removed $(VENV)"; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) $(CLEAN_ON_FAIL)
ifeq ($(TORCH),cpu)
	$(PYTHON) scripts/lock_tools.py without-cuda $(LOCK_FILE) > $(VENV)/requirements-cpu.txt
	$(BIN)/python -m pip install -r $(VENV)/requirements-cpu.txt $(CLEAN_ON_FAIL)
	$(BIN)/python -m pip install --no-deps --index-url $(TORCH_CPU_INDEX) $$($(PYTHON) scripts/lock_tools.py pins $(LOCK_FILE) torch torchvision) $(CLEAN_ON_FAIL)
else ifeq ($(TORCH),default)
	$(BIN)/python -m pip install -r $(LOCK_FILE) $(CLEAN_ON_FAIL)
else
	@echo "TORCH must be 'default' (PyPI's build: CUDA on Linux) or 'cpu', not '$(TORCH)'"; exit 2
endif
	$(BIN)/python -m pip install --no-deps -e . $(CLEAN_ON_FAIL)
	$(BIN)/python -m pip check $(CLEAN_ON_FAIL)
	$(BIN)/python slides/build_slides.py --fetch-only || echo "note: reveal.js not installed yet; make slides will try again"
	touch $@

# Refresh the lock to today's releases for the course's Python (3.11) on every platform, with hashes; the package
# carries its pins (workflow_utils/locked.txt) for env_check.
lock: $(STAMP)
	$(BIN)/python -m uv pip compile pyproject.toml --extra lab --extra test --extra ui --extra book --universal \
		--python-version 3.11 --generate-hashes --upgrade --custom-compile-command "make lock" -o requirements.txt
	$(BIN)/python scripts/lock_tools.py pinned requirements.txt > workflow_utils/locked.txt

# Throwaway environments (build/matrix/): the lock, the newest releases pyproject.toml allows on the newest
# Python (used as a hosted runtime is: see scripts/test_matrix.py), every floor on the lowest Python, and the
# newest releases on Python 3.12; unit tests and strict nbval in each, then one table. MATRIX="lock newest"
# runs a subset (CI runs newest).
MATRIX ?= lock newest floors py312
test-matrix: $(STAMP)
	$(BIN)/python scripts/test_matrix.py $(MATRIX) $(if $(PYTEST_ARGS),--pytest-args "$(PYTEST_ARGS)",)

# `make lab LAB_ARGS="--ip=0.0.0.0"` serves a classroom: an --ip or --notebook-dir in LAB_ARGS
# replaces the default (JupyterLab refuses two values for one option).
LAB_IP ?= 127.0.0.1
LAB_DIR ?= notebooks
LAB_DEFAULTS = $(if $(filter --ip --ip=% --ServerApp.ip=%,$(LAB_ARGS)),,--ip=$(LAB_IP)) \
	$(if $(filter --notebook-dir --notebook-dir=% --ServerApp.root_dir=%,$(LAB_ARGS)),,--notebook-dir=$(LAB_DIR))
# Settings for class (no "Jupyter news?" popup), where this environment's JupyterLab reads them.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

# The project's notebooks open trusted (JupyterLab keeps their signatures in the Jupyter data folder): no "not
# trusted" mark, and HTML outputs shown whole; signed again on each run, as a `git pull` changes them.
lab: $(STAMP) $(LAB_SETTINGS)
	@$(BIN)/jupyter trust $(wildcard $(LAB_DIR)/*.ipynb $(LAB_DIR)/solutions/*.ipynb) >/dev/null
	$(BIN)/jupyter lab $(LAB_DEFAULTS) $(ROOT_FLAG) $(LAB_ARGS)

$(LAB_SETTINGS): lab-settings/overrides.json $(STAMP)
	$(BIN)/python scripts/install_lab_settings.py --prefix $(VENV)

# Parallel runs give each process one math thread: two processes with several spinning
# OpenMP threads each on a 2-core machine slow every training step down tenfold or more.
PARALLEL_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# Unit tests plus strict nbval over every notebook, two at a time (a notebook's cells stay on one worker).
test: $(STAMP)
	$(PARALLEL_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile --ignore=tests/robustness $(PYTEST_ARGS)

# Strict nbval over every notebook under each CPU-kernel configuration (MKL_CBWR, ATEN_CPU_CAPABILITY, one thread
# or every core), each in a fresh process with its own Inductor cache: scripts/test_kernels.py lists them.
# KERNELS="every-core" runs a subset; KERNELS_ARGS='--also "MKL_CBWR=AVX OMP_NUM_THREADS=4"' adds your own.
KERNELS ?=
test-kernels: $(STAMP)
	$(BIN)/python scripts/test_kernels.py $(KERNELS) $(KERNELS_ARGS)

# ruff: the rule set and formatter settings live in pyproject.toml (notebooks are linted, not reflowed).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Notebooks under real use: fresh copy, reverse order, twice in a row, two at a time, no network.
test-robust: $(STAMP)
	$(PARALLEL_ENV) $(BIN)/python -m pytest tests/robustness -p no:cacheprovider $(PYTEST_ARGS)

# The wheel alone (make test runs it too): its files and Requires-Dist, then imported from a fresh venv.
test-wheel: $(STAMP)
	$(BIN)/python -m pytest tests/test_packaging.py -m wheel -p no:cacheprovider $(PYTEST_ARGS)

# JupyterLab (started by `make lab`) and the slide decks in headless Chromium: Debian's chromium and
# chromium-driver, driven by Selenium (the ui extra). Screenshots of every check go to build/ui/.
# Without a browser the tests skip with the reason, or fail when CI=true.
test-ui: $(STAMP) slides book-pdf
	$(BIN)/python -c "import selenium" 2>/dev/null || $(BIN)/python -m pip install -e ".[ui]"
	$(PARALLEL_ENV) $(BIN)/python -m pytest tests/ui -p no:cacheprovider $(PYTEST_ARGS)

# Measures speed and quality against the targets; prints a table, writes benchmarks/results/latest.json.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# The digits CNN trained by two processes (torch.distributed: gloo on CPUs, NCCL on GPUs), as in 08_scaling_up;
# the last line printed is the test accuracy. Each run gets its own folder, build/train-ddp/<date-time> (the script
# refuses a folder that holds a run); TRAIN_ARGS="--epochs 5" changes settings.
RUN_STAMP := $(shell date +%Y%m%d-%H%M%S)
.PHONY: train-ddp
train-ddp: $(STAMP)
	@echo "results go to build/train-ddp/$(RUN_STAMP)"
	$(PARALLEL_ENV) $(BIN)/torchrun --nproc_per_node=2 -m workflow_utils.train_digits --data notebooks/data/digits --out build/train-ddp/$(RUN_STAMP) $(TRAIN_ARGS)

# Two torchrun launches on this machine stand in for two machines (--nnodes=2, one process each, meeting at a
# c10d rendezvous on 127.0.0.1:$(RDZV_PORT)), each in its own working folder, build/train-multinode/<date-time>/
# node-a and node-b. The rendezvous numbers the nodes itself (not by start order): node 0 writes the results into its
# folder, and each launch prints which node that is.
# Same result as train-ddp. On real machines: the same command on each, with --rdzv-endpoint=FIRST_MACHINE:PORT.
RDZV_PORT ?= 29400
.PHONY: train-multinode
train-multinode: $(STAMP)
	@dir=build/train-multinode/$(RUN_STAMP); mkdir -p $$dir/node-a $$dir/node-b; \
	for node in node-a node-b; do \
		(cd $$dir/$$node && $(PARALLEL_ENV) $(CURDIR)/$(BIN)/torchrun --nnodes=2 --nproc_per_node=1 \
			--rdzv-backend=c10d --rdzv-endpoint=127.0.0.1:$(RDZV_PORT) --rdzv-id=digits-$(RUN_STAMP) \
			-m workflow_utils.train_digits --data $(CURDIR)/notebooks/data/digits --out run $(TRAIN_ARGS) \
			> stdout.txt 2> stderr.txt; echo $$? > exit-status) & \
	done; wait; status=0; \
	for node in node-a node-b; do \
		echo "--- $$node, working in $$dir/$$node:"; cat $$dir/$$node/stdout.txt; \
		if [ "$$(cat $$dir/$$node/exit-status)" != 0 ]; then tail -n 5 $$dir/$$node/stderr.txt; status=1; fi; \
	done; exit $$status

# The one sanctioned way to refresh stored outputs: each notebook re-executed in a fresh kernel, then stored as a
# reader sees it (scripts/store_outputs.py): each widget as its picture or table, with no widget models, and a print
# the kernel sent in two pieces as one output, as JupyterLab shows it.
notebooks: $(STAMP)
	printf '%s\n' $(NOTEBOOKS) | $(PARALLEL_ENV) xargs -P 2 -I{} $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False {}
	$(BIN)/python scripts/store_outputs.py $(NOTEBOOKS)

# A reveal.js deck per notebook in build/slides/ (open index.html); no network needed to show them.
slides: $(STAMP)
	$(BIN)/python slides/build_slides.py --out build/slides

# The series as a website in build/book/ (open index.html, or serve the folder from any static host), built
# from the notebooks as stored, with no re-execution: strict nbval already proves their outputs. No network.
book: $(STAMP)
	$(BIN)/python book/build_book.py --out build/book

# The website and the whole book as one PDF, build/book/pytorch-workflow.pdf, printed by headless Chromium.
book-pdf: $(STAMP)
	$(BIN)/python book/build_book.py --out build/book --pdf

# The "Open in Colab / Kaggle / Studio Lab" links and the install cell of every lesson, and README's table of the
# links, from pyproject.toml's [project.urls] Source (scripts/badges.py; tests/test_badges.py fails on drift).
badges: $(STAMP)
	$(BIN)/python scripts/badges.py

clean:
	rm -rf build notebooks/models notebooks/data .pytest_cache
