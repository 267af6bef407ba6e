# Entry points of the catalog. `make test` and `make demo` work on a fresh clone: they
# create the virtualenv (.venv) and install the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export RUNTIME__DLTHUB_TELEMETRY := false

.PHONY: install test test-lowest test-dango test-connector lint format record-connector demo bench new-connector

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

test: install  ## the whole test suite, offline
	$(BIN)/python -m pytest -q

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
	$(LOWEST_BIN)/python -m pytest -q

# Not part of `make test`: minutes long, and pip installs getdango into a throwaway
# virtualenv (tests/dango/test_dango_sync.py).
test-dango: install  ## sync every connector twice with Dango (getdango 1.0.13)
	$(BIN)/python -m pytest -q -m dango tests/dango

# A connector's test files: test_NAME.py, and test_NAME_loopback.py and
# test_NAME_fast_path.py where they exist (connectors/scaffold.py's TEST_SUFFIXES).
# Named one by one, not test_NAME_*.py, which would also run a connector named NAME_copy.
CONNECTOR_TESTS = $(wildcard $(addprefix tests/connectors/test_$(NAME),.py _loopback.py _fast_path.py))

test-connector: install  ## one connector's tests: make test-connector NAME=crm
	@test -n "$(NAME)" || { echo "usage: make test-connector NAME=<connector>"; exit 2; }
	@test -f tests/connectors/test_$(NAME).py || { echo "no tests for connector '$(NAME)' (tests/connectors/test_$(NAME).py)"; exit 2; }
	$(BIN)/python -m pytest -q $(CONNECTOR_TESTS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

record-connector: install  ## re-record cassettes from the fake (LIVE=1: the real API)
	@test -n "$(NAME)" || { echo "usage: make record-connector NAME=<connector> [LIVE=1]"; exit 2; }
	$(BIN)/python -m tests.record $(NAME)

demo: install  ## sync every connector from its cassettes into demo.duckdb
	$(BIN)/python -m connectors demo

bench: install  ## throughput, fan-out and memory against baselines; writes BENCHMARKS.md (~5 min)
	$(BIN)/python -m bench

new-connector: install  ## start a connector: make new-connector NAME=my_shop [FROM=crm]
	@test -n "$(NAME)" || { echo "usage: make new-connector NAME=<name> [FROM=<connector>]"; exit 2; }
	$(BIN)/python -m connectors new $(NAME) $(if $(FROM),--from $(FROM))
