# The README's two set-up commands are `make demo` and `make test`. Each creates or refreshes
# the local virtual environment (.venv) from pyproject.toml first, so a fresh clone needs nothing
# but python3 (3.11+) and access to PyPI.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= test,dask,dataflow

.PHONY: demo test lint schema bench bench-large clean bytecode venv

# --compile-bytecode: machines that set PYTHONDONTWRITEBYTECODE would otherwise recompile every
# imported module in every process (Beam, xarray, dask workers): seconds per process.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[$(EXTRAS)]'
	touch $(STAMP)

# The project's own modules, compiled in place (ignored by git) for the same reason.
bytecode: $(STAMP)
	@$(PY) -m compileall -q recipes_core bench > /dev/null

venv: $(STAMP)

demo: $(STAMP) bytecode
	$(PY) -m recipes_core.demo

test: $(STAMP) bytecode
	$(VENV)/bin/ruff check recipes_core tests bench
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check recipes_core tests bench
	$(VENV)/bin/arco lint recipes/examples/*.yaml

schema: $(STAMP)
	$(PY) -m recipes_core.json_schema

# The benchmark (bench/README.md): not part of `make test`. SIZE=quick|default|large, and
# BENCH_ARGS for anything else, e.g. `make bench BENCH_ARGS="--codecs zstd-0 --repeat 3"`.
SIZE ?= default
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[$(EXTRAS),bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) bytecode
	$(PY) -m bench.run --size $(SIZE) $(BENCH_ARGS)

bench-large: $(BENCH_STAMP) bytecode
	$(PY) -m bench.run --size large $(BENCH_ARGS)

clean:
	rm -rf _demo .pytest_cache .ruff_cache .hypothesis
