# Reseller Console. Quick start: `make run` (app on http://localhost:8501, API on :8000, worker) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APP_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
PORT ?= 8501
API_PORT ?= 8000
EVENTS ?= 10000000
SESSIONS ?= 20
DURATION ?= 180
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-tour test-db test-browser bench loadtest setup install install-test lint docs clean-data

$(BIN)/python:
	$(PY) -m venv $(VENV)

# The app's own dependencies only (make run); the test tools (pytest, playwright, ruff, mypy...) on top for the
# targets that need them.
$(APP_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing the app's dependencies into $(VENV) (first run: about a minute)..."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(APP_STAMP)

$(TEST_STAMP): $(APP_STAMP)
	@echo "Installing the test tools..."
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(APP_STAMP)

install-test: $(TEST_STAMP)

setup: install
	$(BIN)/python -m seeds.setup

# The app, the HTTP API (OpenAPI page at /docs) and the worker; Ctrl-C stops all three.
run: setup
	$(BIN)/python -m seeds.run --port $(PORT) --api-port $(API_PORT)

# The whole suite against TEST_DATABASE_URL if set, otherwise a throw-away embedded PostgreSQL, but for the long
# browser tour of every page as every demo role, which has its own target (CI runs both).
test: install-test
	RC_PASSWORD_PROFILE=fast $(BIN)/python -m pytest -q -m "not tour" tests

test-tour: install-test
	RC_PASSWORD_PROFILE=fast $(BIN)/python -m pytest -q -m tour tests

# Only the tests that need a database, no browser (CI runs these again on the PostgreSQL 15 service).
test-db: install-test
	RC_PASSWORD_PROFILE=fast $(BIN)/python -m pytest -q -m "not browser" tests

test-browser: install-test
	RC_PASSWORD_PROFILE=fast $(BIN)/python -m pytest -q -m browser tests

bench: setup install-test
	$(BIN)/python -m bench.run --events $(EVENTS)

# Concurrent users over Streamlit's protocol against the demo database; figures in bench/results-load.json.
loadtest: setup install-test
	$(BIN)/python -m bench.loadtest --sessions $(SESSIONS) --duration $(DURATION)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy core/pricing

docs: install
	$(BIN)/python -m core.docs

clean-data:
	rm -rf .data
