# sciml_seq developer commands.  Every target that runs Python first makes sure
# the virtual environment in .venv exists and is up to date with pyproject.toml.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Installed before the package so that pip keeps this build (a CPU wheel is
# available locally) instead of resolving an unpinned torch with CUDA libraries.
TORCH_SPEC ?= torch==2.13.0

.DEFAULT_GOAL := help

.PHONY: help venv .venv demo test test-all bench lint

help:
	@echo "make demo      compare depth schemes (stacks, rk4, dopri5 +/- R_E, ACT) on the oscillator (~1 min)"
	@echo "make test      run the test suite without slow tests"
	@echo "make test-all  run every test, slow ones included"
	@echo "make bench     run benchmarks/solvers.py"
	@echo "make lint      ruff check ."
	@echo "make venv      create .venv and install the package with its dev extra"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	touch $@

venv .venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sciml-seq compare --quick

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/solvers.py

lint: $(STAMP)
	$(BIN)/ruff check .
