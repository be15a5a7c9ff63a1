# Two commands set everything up: `make lab` to learn, `make test` to check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb notebooks/solutions/*.ipynb))
# JupyterLab refuses to run as root unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

.PHONY: install lab test notebooks clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt -e .
	touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(ROOT_FLAG) $(LAB_ARGS)

# Unit tests plus strict nbval over every notebook, two at a time (a notebook's cells stay on one worker).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The one sanctioned way to refresh stored outputs: each notebook re-executed in a fresh kernel.
notebooks: $(STAMP)
	printf '%s\n' $(NOTEBOOKS) | xargs -P 2 -I{} $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False {}

clean:
	rm -rf build notebooks/models notebooks/data .pytest_cache
