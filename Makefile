# The two quick-start commands, and a few more for development.
#   make up    converge the embedded default (inventory/layout.yaml) onto this machine
#   make test  install what is missing, then lint, unit and end-to-end tests
SHELL := /bin/bash
VENV := .venv/bin
LAYOUT ?= inventory/layout.yaml
PYTEST_ARGS ?=

.PHONY: bootstrap up status test test-fast lint bench mutants clean-local

bootstrap:
	@./scripts/bootstrap.sh

up: bootstrap
	BOTPOOL_LAYOUT=$(LAYOUT) $(VENV)/pyinfra inventory/local.py deploy.py -y
	$(VENV)/botpool status $(LAYOUT) --wait 120

status:
	$(VENV)/botpool status $(LAYOUT)

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check botpool tasks tests bench checks deploy.py inventory
	$(VENV)/mypy

test-fast: bootstrap lint
	$(VENV)/pytest -m "not e2e" $(PYTEST_ARGS)

test: bootstrap lint
	$(VENV)/pytest --durations=15 $(PYTEST_ARGS)

# break the lines that matter, one at a time: each must make a fast test fail
mutants: bootstrap
	$(VENV)/python scripts/mutants.py

bench: bootstrap
	$(VENV)/python bench/core.py
