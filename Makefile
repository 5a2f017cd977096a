# The two commands of the README's quick start:
#   make run   - install calobench and every plugin in plugins/ into .venv, run the quick leaderboard
#   make test  - install calobench (with test extras) and every plugin into .venv, run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install install-test run test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned only when it is not installed yet (a CPU wheel here, the CUDA build elsewhere).
install: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_PIN)"
	$(PIP) install -e . $(foreach p,$(PLUGIN_DIRS),-e $(p))

install-test: install
	$(PIP) install -e ".[test]" -e tests/example_plugin

run: install
	$(VENV)/bin/calobench run

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-test
	$(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-autosave $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
