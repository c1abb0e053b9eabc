# govmail: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
DATA ?= data
BIN = $(VENV)/bin

.PHONY: install dev run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

## install: the virtual environment with govmail (no dev tools)
install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

## run: initialise a demo province in ./data if absent, then serve everything
run: install
	@test -f $(DATA)/govmail.toml || $(BIN)/govmail init --demo --data $(DATA)
	$(BIN)/govmail serve --data $(DATA)

## test: lint, type-check and run the whole suite (SQLite and PostgreSQL)
test: dev lint
	$(BIN)/pytest

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## bench: the issue figures (see bench/README.md)
bench: install
	$(BIN)/python bench/directory_import.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
