# Two commands do everything on a fresh machine: `make demo` (the pipeline on the bundled penguins data)
# and `make test`. Both first build .venv from the lock with uv and install the project into it (editable).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
# TFX 1.16 needs Python 3.10; prefer pyenv's interpreter, else whatever python3.10 is on PATH.
PYTHON310 ?= $(or $(lastword $(sort $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.10.*/bin/python3.10))),python3.10)
# uv from PATH, or installed into .tools/ on first use (pip from the registry; no other download).
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# Test workers: the end-to-end modules run in parallel, each module's shared runs in one worker.
TEST_WORKERS ?= 2

export PYTHONWARNINGS := ignore::FutureWarning

.PHONY: demo test test-fast lint lock venv audit clean

venv: $(VENV)/.installed

.tools/bin/uv:
	python3 -m pip install --quiet --target .tools "uv==$(UV_VERSION)"

$(VENV)/.installed: requirements.lock pyproject.toml | $(filter .tools/bin/uv,$(UV))
	$(UV) venv --allow-existing --python "$(PYTHON310)" $(VENV)
	$(UV) pip sync --python $(PY) requirements.lock
	$(UV) pip install --python $(PY) --no-deps --editable .
	touch $@

lock: | $(filter .tools/bin/uv,$(UV))
	$(UV) pip compile --python "$(PYTHON310)" --python-version 3.10 --extra dev pyproject.toml -o requirements.lock

demo: venv
	$(VENV)/bin/multihead run --data data/penguins/penguins.csv --heads schemas/penguins/heads.yaml --workdir runs/penguins

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: venv
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup tests

test-fast: venv
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup tests -m "not slow"

audit: | $(filter .tools/bin/uv,$(UV))
	PATH="$(dir $(UV)):$$PATH" .ci/audit requirements.lock

clean:
	rm -rf runs .pytest_cache .tools
