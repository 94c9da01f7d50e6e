# The README's two set-up commands are `make demo` and `make test`. Each creates or refreshes
# the local virtual environment (.venv) from pyproject.toml first, so a fresh clone needs nothing
# but python3 (3.11+) and access to PyPI.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= test,dask,dataflow

.PHONY: demo test lint schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[$(EXTRAS)]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m recipes_core.demo

test: $(STAMP)
	$(VENV)/bin/ruff check recipes_core tests
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check recipes_core tests
	$(VENV)/bin/arco lint recipes/examples/*.yaml

schema: $(STAMP)
	$(PY) -m recipes_core.json_schema

clean:
	rm -rf _demo .pytest_cache .ruff_cache .hypothesis
