# The two commands a new user needs: `make run` and `make test`. Both set up everything.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export SAM_CLI_TELEMETRY := 0

.PHONY: run test check lint typecheck template security triggers bench build browser npm clean help

help:
	@echo "make run     start the local stack (no AWS account, no Docker) and print its URLs"
	@echo "make test    run the whole suite (unit, integration, end-to-end, browser)"
	@echo "make check   ruff, mypy, cfn-lint (with serverless rules), checkov, nudge validate"
	@echo "make bench   print the benchmarks side by side with their baselines"
	@echo "make build   sam build (needs the AWS SAM CLI; installs it in .venv-sam)"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Debian: apt-get install python3 python3-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

# Headless Chromium for the browser tests, from Debian's packages (playwright's own
# browser download cannot work offline, so it drives this one).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# The npm libraries the browser compatibility tests and the SDK size bench load
# (tests/e2e/npm: @segment/analytics-next, @rudderstack/analytics-js, terser); never shipped.
NPM_DEPS := tests/e2e/npm/node_modules/.package-lock.json
$(NPM_DEPS): tests/e2e/npm/package-lock.json
	@command -v npm >/dev/null || { echo "need Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix tests/e2e/npm --no-audit --no-fund --silent
	@touch $@

npm: $(NPM_DEPS)

# The demo's triggers: the shipped ones, with product_offer after 30 s of attention, not 120.
run: $(STAMP)
	NUDGE_TRIGGERS_DIR=$${NUDGE_TRIGGERS_DIR:-local/demo/triggers} $(BIN)/python -m local

test: $(STAMP) browser npm
	$(BIN)/python -m pytest

check: $(STAMP) lint typecheck template security triggers

# Invalid triggers never deploy: `make build` runs this first, and so does CI.
triggers: $(STAMP)
	$(BIN)/nudge validate --strict triggers

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# cfn-lint with the serverless rules (cfn-lint-serverless): failure destinations, access
# logs, tracing; a rule the template ignores says why in its Metadata.
template: $(STAMP)
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

# checkov's checks on the template; every check it skips has a one-line reason beside the
# resource. Its own venv: its pins would fight the project's.
security:
	@test -x .venv-checkov/bin/checkov || { $(PYTHON) -m venv .venv-checkov && .venv-checkov/bin/pip install --quiet checkov; }
	.venv-checkov/bin/checkov --quiet --compact --framework cloudformation -f template.yaml

bench: $(STAMP) npm
	$(BIN)/python -m bench

build: triggers
	@test -x .venv-sam/bin/sam || { $(PYTHON) -m venv .venv-sam && .venv-sam/bin/pip install --quiet aws-sam-cli; }
	PATH="$(CURDIR)/.venv-sam/bin:$$PATH" sam validate --lint
	# The layer's Makefile runs python3 -m pip: the SAM venv's python3 always has pip.
	PATH="$(CURDIR)/.venv-sam/bin:$$PATH" sam build

clean:
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .mypy_cache .ruff_cache .pytest_cache
