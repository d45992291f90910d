# Set-up and test commands. Every target builds its own virtualenv in .venv,
# so a fresh clone needs nothing but Python 3.10+ and make.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
BENCH_ARGS ?=

.PHONY: venv install test demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python

# Install the package in editable mode with the test and benchmark extras
# (the benchmark smoke test runs in the suite).
install: venv
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'

# Run the whole suite. PostgreSQL and MariaDB run when
# PORTAL_SESSION_TEST_POSTGRES_URL and PORTAL_SESSION_TEST_MARIADB_URL are set.
test: install
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# Serve the example portal on http://127.0.0.1:$(PORT) with the embedded SQLite store.
demo: venv
	$(BIN)/python -m pip install --quiet -e .
	PORT=$(PORT) $(BIN)/python examples/portal/setup_demo.py
	$(BIN)/flask --app examples/portal/app.py run --host 127.0.0.1 --port $(PORT)

# Print the benchmark table (see docs/benchmarks.md). Pass options with
# BENCH_ARGS, for example: make bench BENCH_ARGS="--quick --skip-http".
bench: venv
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
