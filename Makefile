# Two commands matter: `make run` and `make test`. Each sets up what it needs by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test fuzz lint bench widget system-deps clean

run: $(STAMP) widget
	$(BIN)/bridge serve

test: $(STAMP) system-deps widget
	$(BIN)/pytest -q

# The property-based test of every route (tests/test_fuzz.py) with many more examples than `make test`.
FUZZ_EXAMPLES ?= 20000
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:logging tests/test_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check bridge adapters fakes tests bench
	$(BIN)/ruff format --check bridge adapters fakes tests bench
	$(BIN)/mypy bridge adapters

bench: $(STAMP)
	$(BIN)/python -m bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ echo "Cannot create a virtual environment: install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The official widget's files from the npm registry (the demo page falls back to the CDN without them).
widget:
	@bash scripts/install-widget.sh

# PostgreSQL, Chromium and Node.js for the tests (apt-get as root; otherwise says what to install).
system-deps:
	@bash scripts/system-deps.sh

clean:
	rm -rf $(VENV) bridge.db bridge.db-wal bridge.db-shm data build dist *.egg-info
