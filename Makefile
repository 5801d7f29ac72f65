# Two entry points for a fresh machine (see README.md):
#   make demo   - set up .venv and run the main example (a photo -> body and hand meshes)
#   make test   - set up .venv and run the test suite
#   make docs   - build the Sphinx documentation into docs/_build/html (warnings are errors)
# The CPU build of PyTorch is installed first so that no CUDA build gets pulled in;
# override TORCH_SPEC for another build (e.g. TORCH_SPEC="torch==2.13.0" from a CUDA index).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.meshgraph-installed

.PHONY: demo test bench lint docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,body,smpl,viz]" ruff build
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pip install --quiet -e ".[detect]" || echo "note: the detect extra (mediapipe) did not install: the demo uses stored keypoints"
	$(PY) examples/photo_to_mesh.py

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-json=benchmarks/results/suite-cpu.json
	$(PY) -m benchmarks.report benchmarks/results/suite-cpu.json
	$(PY) -m benchmarks.report_core

docs: $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	$(VENV)/bin/sphinx-build -W -q -b html docs docs/_build/html
	$(VENV)/bin/sphinx-build -W -q -b doctest docs docs/_build/doctest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .benchmarks outputs docs/_build docs/_generated docs/_autosummary
