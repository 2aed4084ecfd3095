# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the whole suite).
# Each does its own set-up: Debian tools when missing, then a virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench lint clean

$(STAMP): pyproject.toml scripts/setup_system.sh
	bash scripts/setup_system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[all]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/hwsim demo --out out/demo

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python sims/bench_engine.py

lint: setup
	$(BIN)/ruff check hwsim mapping rtl quant sims tests

clean:
	rm -rf $(VENV) out build .pytest_cache
