# Two commands set up everything on a fresh machine:
#   make demo   - create .venv, install lgdist, run the seed flow on two real
#                 workers (embedded broker and stores: no servers needed)
#   make test   - create .venv, install the dev extras, start Postgres/Redis if
#                 they are down, run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed
DEV := $(VENV)/.installed-dev

.PHONY: demo demo-local test services bench bench-quick chaos fault-results clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(BASE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $(BASE)

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BASE) $(DEV)

demo: $(BASE)
	$(BIN)/python -m lgdist.demo

demo-local: $(BASE)
	$(BIN)/python -m lgdist.demo --local

services:
	bash .ci/services

test: $(DEV) services
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Run the fault suite and rewrite tests/faults/RESULTS.md with its measurements
fault-results: $(DEV) services
	LGDIST_WRITE_FAULT_RESULTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/faults

# A long seeded chaos schedule on real workers: make chaos SEED=7 DURATION=300
SEED ?= 20261130
DURATION ?= 120
chaos: $(DEV) services
	LGDIST_CHAOS_SEED=$(SEED) LGDIST_CHAOS_DURATION=$(DURATION) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/faults/test_chaos.py

bench-quick: $(DEV) services
	$(BIN)/python -m bench --quick

bench: $(DEV) services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .lgdist
