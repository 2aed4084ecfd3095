# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the whole suite).
# Each does its own set-up: Debian tools when missing, then a virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALESIM_STAMP := .venv-scalesim/.installed

.PHONY: setup demo test bench bench-scalesim bench-rtl bench-fpga lint clean

$(STAMP): pyproject.toml scripts/setup_system.sh
	bash scripts/setup_system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[all]'
	touch $(STAMP)

setup: $(STAMP)

# SCALE-Sim 3.0.0, the reference for `hwsim scalesim`, needs numpy<2.4: it gets an environment of its own.
$(SCALESIM_STAMP):
	$(PYTHON) -m venv .venv-scalesim && .venv-scalesim/bin/pip install -q scalesim==3.0.0 'numpy<2.4'
	touch $(SCALESIM_STAMP)

demo: setup
	$(BIN)/hwsim demo --out out/demo

test: setup $(SCALESIM_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: setup $(SCALESIM_STAMP)
	$(BIN)/python -m sims.bench.engine
	$(BIN)/python -m sims.bench.mapper --write-docs
	$(BIN)/python -m sims.bench.sweep --write docs/performance.md
	$(BIN)/python -m sims.bench.scaling

# SCALE-Sim mode against SCALE-Sim 3.0.0 on every ResNet-18 layer (SCALE-Sim itself takes about 25 minutes),
# then the same layers with and without the allocator setting of sims/allocator.py.
bench-scalesim: setup $(SCALESIM_STAMP)
	$(BIN)/python -m sims.bench.scalesim
	$(BIN)/python -m sims.bench.allocator

# The FPGA area sweep behind hwsim/area.py (about 15 minutes of Yosys and nextpnr runs).
bench-rtl: setup
	$(BIN)/python -m sims.experiments.rtl_area

# FPGA builds of the accelerator core behind docs/core_fpga.* (iCE40 and ECP5; the 16x16 ECP5 builds take the longest).
bench-fpga: setup
	$(BIN)/python -m sims.experiments.core_fpga

lint: setup
	$(BIN)/ruff check hwsim mapping rtl quant sims tests scripts
	$(BIN)/mypy hwsim mapping rtl quant

clean:
	rm -rf $(VENV) out build .pytest_cache
