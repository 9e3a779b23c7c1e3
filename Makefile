# The two commands a newcomer needs: `make serve` and `make test`.
# Every environment is installed from uv.lock and never resolved anew (CONTRIBUTING.md).
PYTHON ?= python3
VENV ?= .venv
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
BIN := $(VENV)/bin
JS := tests/compat/js
ARGS ?=

export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

.PHONY: serve test lint typecheck pytest install install-serve js bench lock lowest dist clean

# uv itself, pinned, in a venv of its own (the project's venv is synced exactly).
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

## install: the development environment (runtime, every extra, test, lint and bench tools)
install: $(UV)
	$(UV) sync --locked --all-extras

## install-serve: the runtime and the serving extras only
install-serve: $(UV)
	$(UV) sync --locked --inexact --no-default-groups --extra all

$(JS)/node_modules/.installed: $(JS)/package-lock.json
	npm ci --prefix $(JS) --no-audit --no-fund --loglevel=error
	touch $@

js: $(JS)/node_modules/.installed

## serve: install, then run `parsec serve` on the embedded default (127.0.0.1:8000);
## flags go in ARGS, e.g. make serve ARGS="--api-key secret"
serve: install-serve
	$(BIN)/parsec serve $(ARGS)

## test: install, then lint, type-check and run the whole test suite
test: install js lint typecheck pytest

lint:
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest

## lowest: the test suite on the lowest versions pyproject.toml declares (requirements/lowest.txt)
lowest: $(UV)
	scripts/lowest

## dist: build the sdist and wheel, install the wheel without extras in a fresh venv, smoke it
dist: $(UV)
	scripts/dist-smoke

## lock: refresh uv.lock and requirements/lowest.txt on purpose
lock: $(UV)
	scripts/lock

## bench: every workload against Parsec and its peers (~6 min on 2 cores);
## results in bench/results/<timestamp>/ (JSON, Markdown, PNG)
bench: $(UV)
	$(UV) sync --locked --inexact --no-default-groups --extra all --group bench
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) $(TOOLS) .venv-* dist $(JS)/node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
