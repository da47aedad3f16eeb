# Two commands take a fresh machine (Python 3.11 and the package registries) to
# a working setup: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install demo test test-fast conformance lint docs bench bench-quick bench-targets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/iterable-dask demo

# pytest exit code 5 (no tests collected) is a failure, not a pass.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The quick subset: every test not marked slow (the long end-to-end runs), in under a minute on 2 cores.
test-fast: install
	@$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# Every entry point against iterabledata on the whole real-data corpus (tests/realdata.py, about 170
# files); `make test` checks its sample. Not part of `make test`.
conformance: install
	ITERABLE_DASK_CONFORMANCE=full $(BIN)/python -m pytest tests/test_conformance.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check iterable_dask tests benchmarks docs/conf.py docs/_ext conftest.py
	$(BIN)/ruff format --check iterable_dask tests benchmarks docs/conf.py docs/_ext conftest.py

# The documentation site (Sphinx) into docs/_build/html: warnings are errors, references checked (-n).
# Offline: intersphinx reads inventories written from the installed packages (docs/_ext/offline_inventories.py).
docs: install
	$(BIN)/python -m sphinx -b html -E -W --keep-going -n -q docs docs/_build/html

# The benchmark suite against iterabledata and the peers; writes benchmarks/results/ (about 15 minutes).
bench: install
	$(BIN)/python -m benchmarks.suite --full

bench-quick: install
	$(BIN)/python -m benchmarks.suite --quick --out /tmp/iterable-dask-bench

# The suite's per-issue target checks (about 10 minutes): PASS/FAIL per target, exits 1 if one is missed.
bench-targets: install
	$(BIN)/python -m benchmarks.suite --targets

clean:
	rm -rf $(VENV) demo-data build dist *.egg-info docs/_build docs/generated
