# Entry points of the catalog. `make test` and `make demo` work on a fresh clone: they
# create the virtualenv (.venv) and install the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo` needs only the runtime (`pip install -e .`), not the dev tools
RUNTIME_STAMP := $(VENV)/.installed-runtime
# `make bench` writes here (untracked); `make bench-publish` rewrites BENCHMARKS.md
BENCH_OUTPUT ?= bench/results/BENCHMARKS.md
export RUNTIME__DLTHUB_TELEMETRY := false

.PHONY: install test test-slow test-lowest test-dango test-orchestrators test-wheel test-connector lint format record-connector demo bench bench-publish new-connector readme

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP) $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $(RUNTIME_STAMP)

install: $(STAMP)

# Workers for pytest-xdist: the loopback tests mostly wait (sockets, backoffs, pacing).
TEST_WORKERS ?= 4

test: install  ## the test suite, offline (the slow and end-to-end suites have their own targets)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-slow: install  ## the slow tests: real processes, 20,000-record syncs, generated connectors
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m slow

# The lowest versions we support (dlt 1.28, duckdb 1.5: Dango's), pinned by pip's
# --constraint file, in a virtualenv of their own.
LOWEST_VENV ?= .venv-lowest
LOWEST_BIN := $(LOWEST_VENV)/bin
LOWEST_CONSTRAINTS := tests/constraints-lowest.txt

$(LOWEST_VENV)/.installed: pyproject.toml $(LOWEST_CONSTRAINTS)
	@test -x $(LOWEST_BIN)/python || $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_BIN)/python -m pip install -q --upgrade pip
	$(LOWEST_BIN)/python -m pip install -q --constraint $(LOWEST_CONSTRAINTS) -e ".[dev]"
	@touch $@

test-lowest: $(LOWEST_VENV)/.installed  ## the whole test suite on the lowest supported versions
	@$(LOWEST_BIN)/python -c "import dlt, duckdb; print(f'dlt {dlt.__version__}, duckdb {duckdb.__version__}')"
	$(LOWEST_BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not dango and not orchestrators and not wheel"

# Not part of `make test`: minutes long, and pip installs getdango into a throwaway
# virtualenv (tests/dango/test_dango_sync.py).
test-dango: install  ## sync every connector twice with Dango (getdango 1.0.13)
	$(BIN)/python -m pytest -q -m dango tests/dango

# The wheel a user installs (`pip install <wheel>`: Dango's way, an Airflow image's):
# built from this checkout (setup.py copies catalog.yml, cassettes/ and templates/ into
# it), installed with pytest into a fresh virtualenv under build/, and its commands run
# from an empty folder by tests/test_wheel.py with that virtualenv's Python. pip reaches
# the package registries only (setuptools to build; the wheel's dependencies).
WHEEL_BUILD := build/test-wheel
WHEEL_VENV := $(WHEEL_BUILD)/venv

test-wheel:  ## build the wheel, install it in a fresh virtualenv, run its commands from an empty folder
	rm -rf $(WHEEL_BUILD) build/lib build/bdist.*
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q --upgrade pip
	$(WHEEL_VENV)/bin/python -m pip wheel -q --no-deps --wheel-dir $(WHEEL_BUILD)/dist .
	$(WHEEL_VENV)/bin/python -m pip install -q $(WHEEL_BUILD)/dist/*.whl "pytest>=8"
	CATALOG_WHEEL="$$(ls $(WHEEL_BUILD)/dist/*.whl)" $(WHEEL_VENV)/bin/python -m pytest -q -p no:cacheprovider -m wheel tests/test_wheel.py

# A connector's test files: test_NAME.py, and test_NAME_loopback.py,
# test_NAME_fast_path.py and test_NAME_deletions.py where they exist
# (connectors/cli/connector_names.py's TEST_SUFFIXES).
# Named one by one, not test_NAME_*.py, which would also run a connector named NAME_copy.
CONNECTOR_TESTS = $(wildcard $(addprefix tests/connectors/test_$(NAME),.py _loopback.py _fast_path.py _deletions.py))

test-connector: install  ## one connector's tests: make test-connector NAME=crm
	@test -n "$(NAME)" || { echo "usage: make test-connector NAME=<connector>"; exit 2; }
	@test -f tests/connectors/test_$(NAME).py || { echo "no tests for connector '$(NAME)' (tests/connectors/test_$(NAME).py)"; exit 2; }
	$(BIN)/python -m pytest -q $(CONNECTOR_TESTS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared bench

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

record-connector: install  ## re-record cassettes from the fake (LIVE=1: the real API)
	@test -n "$(NAME)" || { echo "usage: make record-connector NAME=<connector> [LIVE=1]"; exit 2; }
	$(BIN)/python -m tests.record $(NAME)

demo: $(RUNTIME_STAMP)  ## sync every connector from its cassettes into demo.duckdb (runtime only)
	$(BIN)/python -m connectors demo

# Time: the five 1,000,000-row default-path runs dominate (8 of the 13 minutes that
# `make bench-publish` took on an idle 2-core machine on 2026-11-30, BENCHMARKS.md).
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## every connector's default path vs a raw loop, memory, paced sync, fan-out into $(BENCH_OUTPUT) and its figures (PNG, beside it) (~13 min on 2 cores)
	$(BIN)/python -m bench --output $(BENCH_OUTPUT)

bench-publish: BENCH_OUTPUT = BENCHMARKS.md
bench-publish: bench  ## `make bench`, rewriting the tracked BENCHMARKS.md (~13 min on 2 cores)

new-connector: install  ## start a connector: make new-connector NAME=my_shop [FROM=crm | AUTH=basic PAGING=offset]
	@test -n "$(NAME)" || { echo "usage: make new-connector NAME=<name> [FROM=<connector> | AUTH=<kind> PAGING=<style>]"; exit 2; }
	$(BIN)/python -m connectors new $(NAME) $(if $(FROM),--from $(FROM)) $(if $(AUTH),--auth $(AUTH)) $(if $(PAGING),--paging $(PAGING))

# tests/test_readme.py fails while a generated part of a README is out of date
readme: install  ## regenerate README.md's connector table and each connector README's API, parameter and table sections
	$(BIN)/python -m connectors readme

# Dagster, Airflow and multi-process pacing (Redis, SQLite): heavy extras, so their own
# virtualenv; the tests install and start a redis-server on loopback when it is missing.
ORCH_VENV := .venv-orchestrators
ORCH_STAMP := $(ORCH_VENV)/.installed

$(ORCH_STAMP): pyproject.toml
	@test -x $(ORCH_VENV)/bin/python || $(PYTHON) -m venv $(ORCH_VENV)
	$(ORCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(ORCH_VENV)/bin/python -m pip install -q -e ".[dev,dagster,airflow]"
	@touch $(ORCH_STAMP)

test-orchestrators: $(ORCH_STAMP)  ## Dagster assets, Airflow DAGs, pacing across processes
	$(ORCH_VENV)/bin/python -m pytest -q -m orchestrators tests/orchestration
