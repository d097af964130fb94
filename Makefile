# Set-up and the two everyday commands. See README.md.
#   make study   install into .venv, then run the default study (demo data)
#   make test    install into .venv with test tools, then run the test suite
PYTHON ?= python3
VENV ?= .venv
# The PyTorch build to install first. The default is the CPU build; GPU users
# pass their CUDA build, e.g.  make study TORCH="torch --index-url <PyTorch's CUDA index>"
TORCH ?= torch==2.13.0
CORES ?= all
# The workflow tests spend much of their time starting processes and waiting on
# them: one test worker per core (at most 4; each builds its own tiny study).
# The SLURM tests share one controller and stay on one worker (xdist_group).
PYTEST_PARALLEL ?= --numprocesses auto --maxprocesses 4 --dist loadgroup
BIN := $(VENV)/bin

.PHONY: study test install install-test lint

study: $(VENV)/.installed
	$(BIN)/snakemake --profile cpu --cores $(CORES)

test: $(VENV)/.installed-test
	bash scripts/install_browser.sh
	$(BIN)/pytest $(PYTEST_PARALLEL)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/ruff format --check src tests workflow benchmarks
	$(BIN)/snakefmt --check workflow/Snakefile workflow/rules
	$(BIN)/snakemake --lint

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test,slurm]"
	touch $@
