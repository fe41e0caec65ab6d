# Two commands set everything up (see README's Quickstart):
#   make demo   - create .venv (CPU torch where the machine has no GPU build cached), install, run the demo
#   make test   - run the test suite (what .ci/run runs)
# TORCH picks the torch requirement; TORCH_INDEX_URL an extra wheel index, e.g. for a CPU-only
# machine elsewhere: make demo TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX_URL ?=
# extra pytest arguments, e.g. make test PYTEST_ARGS='-m "not slow"'
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS_STAMP := $(VENV)/.installed-extras

.PHONY: demo test lint format benchmark clean

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "uqbench needs Python >= 3.10 (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL),)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# The tests also cover the Ray executor and the Optuna algorithm of the search, optional extras.
$(EXTRAS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[ray,optuna]"
	@touch $(EXTRAS_STAMP)

demo: $(STAMP)
	$(BIN)/uqbench demo

test: $(STAMP) $(EXTRAS_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

benchmark: $(STAMP)
	$(BIN)/python benchmarks/uci.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
