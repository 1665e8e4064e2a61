# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format test-sqlite test-postgres bench clean

install: $(STAMP)

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/siyu compile_locale
	touch $(STAMP)

demo: install
	$(BIN)/siyu demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test-sqlite: install
	$(BIN)/siyu compile_locale
	env -u SIYU_DATABASE_URL $(BIN)/pytest -n 2

test-postgres: install
	SIYU_DATABASE_URL=$(SIYU_TEST_DATABASE_URL) $(BIN)/pytest -n 2

# ruff, then the whole suite on SQLite, then again on PostgreSQL if SIYU_TEST_DATABASE_URL is set.
test: lint test-sqlite
	@if [ -n "$(SIYU_TEST_DATABASE_URL)" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "SIYU_TEST_DATABASE_URL not set: PostgreSQL run skipped"; fi

bench: install
	$(BIN)/python bench/contacts.py

clean:
	rm -rf $(VENV) node_modules
