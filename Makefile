# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser tests drive the system's Chromium; Playwright never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run demo test lint types unit integration browser chromium openapi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## serve on NPS_HOST:NPS_PORT, on an embedded PostgreSQL unless NPS_DATABASE_URL is set
	$(BIN)/nps serve

demo: $(STAMP)  ## seed a fresh demo workspace, print its read key and serve the dashboard at /
	$(BIN)/nps demo

test: lint types chromium  ## ruff, mypy --strict and every test against real PostgreSQL and Chromium
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check app tests migrations bench docs
	$(BIN)/ruff format --check app tests migrations bench docs

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

browser: $(STAMP) chromium  ## the browser tests only, in headless Chromium
	$(BIN)/pytest tests/browser

chromium: $(STAMP)  ## which Chromium the browser tests use, or stop and say what to install
	@$(BIN)/python -m tests.support.browser >/dev/null

openapi: $(STAMP)  ## rewrite openapi/openapi.json from the app
	$(BIN)/python -m app.openapi

bench: $(STAMP)  ## load a seeded 1M-response workspace through the API and time it against the floor
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
