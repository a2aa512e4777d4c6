# The two commands a new user needs are `make dev` and `make test`; both create the
# virtualenv and install everything on first use.
SHELL := /bin/sh
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: dev test lint bench build install clean mutate

$(STAMP): pyproject.toml
	@test -x $(PY) || "$$(infra/local/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/gatewayz dev

# JavaScript packages, installed when npm exists; without them the tests that need them
# are skipped. tests/browser: the openai JS SDK the real-browser test loads
# (tests/e2e/test_browser.py). tests/clients: the openai SDK and the Vercel AI SDK of the
# client suite (tests/e2e/test_js_clients.py).
BROWSER_JS := tests/browser/node_modules/.package-lock.json
CLIENTS_JS := tests/clients/node_modules/.package-lock.json

tests/%/node_modules/.package-lock.json: tests/%/package.json tests/%/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/$* --silent --no-audit --no-fund && touch $@ \
			|| echo "npm ci failed: the tests that use tests/$* will be skipped"; \
	else echo "npm not found: the tests that use tests/$* will be skipped"; fi

test: $(STAMP) $(BROWSER_JS) $(CLIENTS_JS)
	$(VENV)/bin/pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Mutation testing of the money and policy modules (docs/testing.md); uses
# TEST_DATABASE_URL / TEST_REDIS_URL like `make test`. MUTATE_JOBS sets the workers.
mutate: $(STAMP)
	$(PY) infra/local/mutate.py $(ARGS)

bench: $(STAMP)
	$(PY) bench/coldstart.py
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) .venv-sam .aws-sam .gatewayz mutants

# cfn-lint, `sam validate --lint` and `sam build` in their own virtualenv (.venv-sam).
.PHONY: template-check
template-check: $(STAMP)
	infra/local/sam-check
