# guildkit: `make run` starts the whole system, `make test` runs every test from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := $(wildcard src tests bench chaos abuse)

.PHONY: run test lint format bench chaos services install browser clean htmx

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

HTMX := build/npm/node_modules/htmx.org/dist/htmx.min.js

install: $(STAMP) $(HTMX)

# The dashboard serves htmx from here (never committed); its pages also work without it.
$(HTMX):
	npm install --no-save --no-audit --no-fund --prefix build/npm htmx.org@2 \
		|| echo "warning: could not install htmx; the dashboard works without it, less smoothly"

htmx: $(HTMX)

services:
	@scripts/ensure-services.sh

browser:
	@scripts/ensure-browser.sh

run: install
	$(BIN)/guildkit run

test: install services browser
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy $(CODE)
	$(BIN)/pytest -q -ra

lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy $(CODE)

format: install
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

bench: install services
	$(BIN)/python -m bench

# The fault-under-load campaign (10 minutes; writes chaos/report.md). MINUTES=1 for a quick one.
MINUTES ?= 10
chaos: install
	$(BIN)/python -m chaos --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
