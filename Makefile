# Two commands a newcomer needs: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
JS := tests/compat/js

.PHONY: serve test lint typecheck pytest install js bench clean

$(BIN)/parsec: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/parsec

$(JS)/node_modules/.installed: $(JS)/package-lock.json
	npm ci --prefix $(JS) --no-audit --no-fund --loglevel=error
	touch $@

js: $(JS)/node_modules/.installed

## serve: install, then run `parsec serve` on the embedded default (127.0.0.1:8000)
serve: install
	$(BIN)/parsec serve

## test: install, then lint, type-check and run the whole test suite
test: install js lint typecheck pytest

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest

## bench: every workload against Parsec and its peers (~6 min on 2 cores);
## results in bench/results/<timestamp>/ (JSON, Markdown, PNG)
bench: install
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) $(JS)/node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
