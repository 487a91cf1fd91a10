# Reseller Console. Quick start: `make run` (app on http://localhost:8501) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
EVENTS ?= 10000000
SESSIONS ?= 20
DURATION ?= 180
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test test-db test-browser bench loadtest setup install lint docs clean-data

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

setup: install
	$(BIN)/python -m seeds.setup

run: setup
	$(BIN)/python -m streamlit run Home.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

# The whole suite against TEST_DATABASE_URL if set, otherwise a throw-away embedded PostgreSQL.
test: install
	RC_PASSWORD_PROFILE=fast $(BIN)/python -m pytest -q tests

# Only the tests that need a database, no browser (CI runs these again on the PostgreSQL 15 service).
test-db: install
	RC_PASSWORD_PROFILE=fast $(BIN)/python -m pytest -q -m "not browser" tests

test-browser: install
	RC_PASSWORD_PROFILE=fast $(BIN)/python -m pytest -q -m browser tests

bench: setup
	$(BIN)/python -m bench.run --events $(EVENTS)

# Concurrent users over Streamlit's protocol against the demo database; figures in bench/results-load.json.
loadtest: setup
	$(BIN)/python -m bench.loadtest --sessions $(SESSIONS) --duration $(DURATION)

lint: install
	$(BIN)/ruff check .

docs: install
	$(BIN)/python -m core.docs

clean-data:
	rm -rf .data
