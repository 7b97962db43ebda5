# mepipe: `make demo` runs the whole pipeline on an embedded synthetic set, `make test` runs the suite.
# Both create/refresh .venv at the repo root first (torch first, CPU build, then the project editable).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mepipe-installed
DEMO_OUT ?= demo-out

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,dask]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mepipe demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/mepipe bench flow --out benchmarks/results
	$(VENV)/bin/mepipe bench pipeline --out benchmarks/results

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
