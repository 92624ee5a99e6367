# The two commands of the contract: `make run` and `make test`. Everything installs into .venv.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8888

.PHONY: install run test lint format bench clean deps-run deps-test

# uv, not pip, installs the packages: the same versions from PyPI in a quarter of the time on a
# new machine (about 50 s instead of 3.5 min: parallel downloads and bytecode compiling).
$(STAMP): pyproject.toml labextension/package.json $(wildcard labextension/src/*.ts labextension/src/*.tsx) labextension/style/index.css
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## System packages first (Java, Node.js, stunnel4; Chromium for the tests): only what is missing.
deps-run:
	scripts/system-deps run
deps-test:
	scripts/system-deps test

## JupyterLab on 127.0.0.1 on notebooks/quickstart.ipynb, with the project's Kafka broker when it
## can start; Ctrl-C stops both.
run: deps-run
	$(MAKE) --no-print-directory install
	$(VENV)/bin/hops-jupyter lab --port $(PORT) --notebook-dir notebooks

## Install, lint (Python and TypeScript), and run the whole suite.
test: deps-test
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd labextension && npm run --silent check

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
