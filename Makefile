# Two commands matter: `make run` and `make test`. Each sets up what it needs by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test fuzz lint bench widget system-deps lock clean clean-data

run: $(STAMP) widget
	$(BIN)/chatbridge serve

test: $(STAMP) system-deps widget
	@if command -v promtool >/dev/null; then promtool check rules deploy/prometheus/alerts.yml; fi
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

# requirements.lock: the image's Python dependencies at exact versions, from pyproject.toml's.
lock:
	@PYTHON=$(PYTHON) bash scripts/lock.sh

# PostgreSQL, Chromium, Node.js and promtool for the tests (apt-get as root; otherwise says what to install).
system-deps:
	@bash scripts/system-deps.sh

# What `make run` and `make test` built; never the data (see clean-data).
clean:
	rm -rf $(VENV) build dist *.egg-info

# The data `make run` kept: the SQLite database ./bridge.db and ./data (widget uploads). Gone for good.
clean-data:
	rm -rf bridge.db bridge.db-wal bridge.db-shm data
