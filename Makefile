# The two commands of the README: `make demo` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.jat-installed

.PHONY: setup demo test lint

setup: $(STAMP)

# torch first, pinned to the local CPU wheel: anything that pulls a newer torch would bring CUDA packages.
$(STAMP): pyproject.toml packages/*/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e packages/jat-core -e packages/jat-codecs -e "packages/jat-envs[all]" -e packages/jat-train -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/jat-plugins

test: setup
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check packages tests bench
