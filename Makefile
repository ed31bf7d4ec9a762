# The two quick-start commands, and a few more for development.
#   make up    converge the embedded default (inventory/layout.yaml) onto this machine
#   make test  install what is missing, then lint, unit tests, and end-to-end tests (each
#              step only once the one before passed)
SHELL := /bin/bash
# Python writes each module's bytecode into .venv (and __pycache__/) as it first imports it, as
# it does by default: with PYTHONDONTWRITEBYTECODE set (this machine sets it), every process
# of the tests compiled what it imported anew (40 s more of tests); compiling every file at
# install instead compiled 8,900 files for the 2,600 ever imported (scripts/bootstrap.sh:
# 13 s more of a fresh `make up`)
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv/bin
LAYOUT ?= inventory/layout.yaml
PYTEST_ARGS ?=
# unit tests run on this many workers at once: on 2 cores, 3 (some tests wait on a clock or a
# child: 3 took 75.9 s against 83.0 on 2, 7 % more CPU; 4 no faster than 3; farm-bench medians)
WORKERS ?= 3
# end-to-end modules run this many at once, each whole on one worker: their time is partly
# waiting (bots starting, candles closing, a minute of stagnation), so more than the cores
# (measured on 2 cores: 15 min on 3 workers, 13 on 4, the machine about 80 % busy; later,
# 5 workers 11 min 33 s against 11 min 13 s on 4: the VPS story, slowed to 11.3 min, ended last)
E2E_WORKERS ?= 4

.PHONY: bootstrap up status test test-fast test-e2e lint bench mutants clean-local

bootstrap:
	@./scripts/bootstrap.sh

up: bootstrap
	BOTPOOL_LAYOUT=$(LAYOUT) $(VENV)/pyinfra inventory/local.py deploy.py -y
	$(VENV)/botpool status $(LAYOUT) --wait 120

status:
	$(VENV)/botpool status $(LAYOUT)

lint:
	@command -v shellcheck >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends shellcheck >/dev/null; }
	shellcheck -s sh botpool/payloads/*.sh scripts/vendor-uplot.sh
	$(VENV)/ruff check .
	$(VENV)/ruff format --check botpool tasks tests bench checks deploy.py inventory
	$(VENV)/mypy

test-fast: bootstrap lint
	$(VENV)/pytest -m "not e2e" -n $(WORKERS) $(PYTEST_ARGS)

test: test-fast
	$(MAKE) --no-print-directory test-e2e

# the slowest modules start first (tests/conftest.py), each whole on one worker
test-e2e: bootstrap
	@# the dashboard's browser test drives Debian's chromium (Playwright's own download cannot work here)
	@command -v chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
	$(VENV)/pytest -m e2e -n $(E2E_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=15 $(PYTEST_ARGS)

# break the lines that matter, one at a time: each must make a fast test fail
mutants: bootstrap
	$(VENV)/python scripts/mutants.py

bench: bootstrap
	$(VENV)/python bench/core.py
