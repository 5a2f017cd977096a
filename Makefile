# The two commands of the README's quick start:
#   make run   - install calobench and every plugin in plugins/ into .venv, run the quick leaderboard
#   make test  - install calobench (with test extras) and every plugin into .venv, lint, run the tests
#                (the test extra includes the distributed extra: the Dask sweep tests run too)
# Both install the tested versions pinned in constraints.txt (pyproject.toml keeps ranges for users).
#   make lock        - refresh constraints.txt with the newest versions the ranges allow
#   make test-latest - run the tests in .venv-latest against the newest versions the ranges allow
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
EDITABLE := -e . $(foreach p,$(PLUGIN_DIRS),-e $(p))
TORCH_PIN := torch==2.13.0
# The packages' build backend, installed once into .venv: the editable installs then build without an
# isolated build environment each (--no-build-isolation; 30 s less on 2 cores, for make run and CI)
BUILD_BACKEND := hatchling editables
CONSTRAINTS := constraints.txt
PYTEST_ARGS ?=
LATEST_VENV := .venv-latest
LOCK_VENV := .venv-lock

.PHONY: install install-test lint run test test-latest lock bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned only when it is not installed yet (a CPU wheel here, the CUDA build elsewhere).
install: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -c $(CONSTRAINTS) "$(TORCH_PIN)"
	$(PIP) install -c $(CONSTRAINTS) $(BUILD_BACKEND)
	$(PIP) install -c $(CONSTRAINTS) --no-build-isolation $(EDITABLE)

# The test fixture tests/example_plugin is never installed (the tests fake its entry point); an
# environment made by an older checkout that installed it is cleaned.
install-test: install
	@$(PIP) uninstall -y -q calobench-example-plugin 2>/dev/null || true
	$(PIP) install -c $(CONSTRAINTS) --no-build-isolation -e ".[test]"

lint: install-test
	$(VENV)/bin/ruff check calobench plugins tests
	$(VENV)/bin/ruff format --check calobench plugins tests
	$(VENV)/bin/mypy

run: install
	$(VENV)/bin/calobench run

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The same tests against the newest versions pyproject.toml allows (torch stays at its pin: a new
# torch is a multi-GB download chosen per machine), so that upstream drift is seen before it bites.
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip --disable-pip-version-check install -q "$(TORCH_PIN)"
	echo "$(TORCH_PIN)" > $(LATEST_VENV)/torch-pin.txt
	$(LATEST_VENV)/bin/python -m pip --disable-pip-version-check install -q --upgrade --upgrade-strategy eager \
		-c $(LATEST_VENV)/torch-pin.txt $(EDITABLE) -e ".[test]"
	$(LATEST_VENV)/bin/python -m pip --disable-pip-version-check freeze --exclude-editable | grep -v '^calobench'
	$(LATEST_VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip --disable-pip-version-check install -q "$(TORCH_PIN)"
	$(LOCK_VENV)/bin/python -m pip --disable-pip-version-check install -q $(BUILD_BACKEND) $(EDITABLE) -e ".[test]"
	{ sed -n '1,3p' $(CONSTRAINTS); $(LOCK_VENV)/bin/python -m pip --disable-pip-version-check freeze \
		--exclude-editable | grep -v '^calobench' | sed 's/+cpu$$//'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)
	@echo "constraints.txt refreshed: run 'make test' and commit it"

bench: install-test
	$(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-autosave $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(LATEST_VENV) $(LOCK_VENV) .pytest_cache .benchmarks .mypy_cache
