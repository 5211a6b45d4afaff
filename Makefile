# adledger — the two commands you need: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
DB ?= sqlite:///./adledger.db
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test soak check lint typecheck verify clean bench bench-quick

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@# the browser tests drive Debian's Chromium; best effort, as root only (.ci/run insists)
	-test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
	rm -f $(VENV)/.installed-*
	touch $@

run: setup  ## migrate, seed the demo (first time), and serve on http://$(HOST):$(PORT)
	$(BIN)/adledger --database-url $(DB) demo
	$(BIN)/adledger --database-url $(DB) serve --host $(HOST) --port $(PORT)

test: setup  ## every test, on SQLite and PostgreSQL
	$(BIN)/pytest -q -n 2 --dist loadfile

soak: setup  ## the long versions of the trust tests: model, bank, crash (see docs/reliability.md)
	ADLEDGER_SOAK=1 $(BIN)/pytest -q -s tests/test_model.py tests/test_bank.py \
		tests/test_crash_safety.py

bench: setup  ## the benchmark suite, full sizes (needs PostgreSQL; see docs/performance.md)
	$(BIN)/python -m bench --profile full

bench-quick: setup  ## the benchmark suite at smaller sizes: a few minutes
	$(BIN)/python -m bench --profile quick

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

verify: setup
	$(BIN)/adledger --database-url $(DB) verify

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
