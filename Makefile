# mepipe: `make demo` runs the whole pipeline on an embedded synthetic set, `make test` runs the suite.
# Both create/refresh .venv at the repo root first (torch first, CPU build, then the project editable).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mepipe-installed
DEMO_OUT ?= demo-out

.PHONY: venv demo lint test test-fast bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,dask]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mepipe demo --out $(DEMO_OUT)

# ruff (lint + format check) and mypy on the public API (pyproject.toml), before every test run
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

# the quick loop: everything but the end-to-end, subprocess and multi-process tests (under a minute)
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(VENV)/bin/mepipe bench flow --out benchmarks/results
	$(VENV)/bin/mepipe bench pipeline --out benchmarks/results

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
