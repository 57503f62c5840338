# The README's two commands: `make run` and `make test`. Both set up what is missing
# first: Debian packages, the .venv, the project in editable mode.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup system-packages run test bench clean

setup: system-packages $(STAMP)

system-packages:
	@scripts/ensure-system-packages
	@scripts/ensure-npm-packages
	@scripts/ensure-browser-user

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: setup
	$(BIN)/browserfarm up

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
