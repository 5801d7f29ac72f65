# Two entry points for a fresh machine (see README.md):
#   make demo   - set up .venv and run the main example
#   make test   - set up .venv and run the test suite
# The CPU build of PyTorch is installed first so that no CUDA build gets pulled in;
# override TORCH_SPEC for another build (e.g. TORCH_SPEC="torch==2.13.0" from a CUDA index).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.meshgraph-installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,body,viz]" ruff build
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/coarsen_and_convolve.py

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-json=benchmarks/results/latest.json
	$(PY) -m benchmarks.report_core

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .benchmarks outputs
