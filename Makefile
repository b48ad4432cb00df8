# The two commands a new user needs: `make demo` and `make test`.
# Everything else (the virtual environment, the installs) happens here.
PYTHON ?= python3
VENV := .venv
PORT ?= 8080
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml protocol/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./protocol -e ".[dev,redis]"
	touch $(STAMP)

# The npm packages of the JavaScript tests (the AsyncAPI parser, playwright-core; no browser
# download): installed when npm is here. Without npm, or offline, those tests are skipped
# with the reason.
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/js --ignore-scripts --no-audit --no-fund --loglevel=error && touch $(JS_STAMP) \
	    || echo "npm ci failed: the JavaScript tests that need npm packages will be skipped"; \
	else echo "npm is not installed: the JavaScript tests that need npm packages will be skipped"; fi

# `make demo PORT=9000` serves on another port.
demo: $(STAMP)
	$(BIN)/python -m examples.users --port $(PORT)

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check protocol trio_rest tests benchmarks examples
	$(BIN)/ruff format --check protocol trio_rest tests benchmarks examples

# Both packages are held to --strict (pyproject's [tool.mypy] says so too).
typecheck: $(STAMP)
	$(BIN)/mypy --strict protocol/trio_rest_protocol trio_rest

unit: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m benchmarks run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis tests/js/node_modules tests/js/artifacts
