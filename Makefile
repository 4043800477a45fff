# Every target bootstraps what it needs: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   := $(CURDIR)/.demo

.PHONY: install servers lint test demo bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,spark]'
	touch $@

# redis-server for the Redis tests (each test run starts its own on a free port), a
# PostgreSQL server for the registry tests (each run creates and drops its own database) and a
# Java runtime for the Spark offline store's tests (local[2], one JVM per test process).
servers:
	@bash scripts/ensure-servers.sh

# ruff (likely bugs) and mypy (types) over the sources; settings in pyproject.toml.
lint: install
	$(VENV)/bin/ruff check featurectl tests bench scripts
	$(VENV)/bin/mypy

test: lint servers
	$(PY) -m pytest -q -n 2 --dist loadgroup

demo: install
	@command -v dot >/dev/null || bash scripts/ensure-servers.sh   # Graphviz for the catalog's drawings
	bash scripts/demo.sh $(VENV)/bin/featurectl example_repo $(DEMO)

bench: install
	$(PY) bench/run.py

docs: install
	$(VENV)/bin/featurectl rules --format markdown > docs/rules.md

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .hypothesis .ruff_cache .mypy_cache
