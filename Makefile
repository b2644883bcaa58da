# Two commands set up everything on a fresh machine:
#   make demo   - create .venv, install, run the seed flow (no servers needed)
#   make test   - create .venv, install with dev extras, run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo demo-local test services bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lgdist.demo

demo-local: $(STAMP)
	$(BIN)/python -m lgdist.demo --local

services:
	bash .ci/services

test: $(STAMP) services
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench-quick: $(STAMP) services
	$(BIN)/python -m bench --quick

bench: $(STAMP) services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .lgdist
