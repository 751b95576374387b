# tradeflow developer commands. `make run` and `make test` install what is missing first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install run test lint bench clean chromium dashboard layers lock-layers synth deploy diff destroy package-report

# Infrastructure (CDK, infra/). `make synth` needs no AWS credentials; deploy/diff/destroy use the CDK CLI
# (pinned, fetched by npx) with your AWS credentials. STAGE=dev|prod selects the stage (CDK context).
STAGE ?= dev
CDK   := npx --yes aws-cdk@3.0.0
CDK_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

# The dashboard's chart library (TradingView lightweight-charts, pinned in package.json/package-lock.json):
# `npm ci`, then its standalone ES module copied next to the dashboard's files. Rebuilt only when missing or
# when package-lock.json is newer; nothing is fetched from a CDN when the page runs.
CHART_SOURCE := node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs
CHART_ASSET  := shared/tradeflow/dashboard/static/vendor/lightweight-charts.standalone.production.mjs

# The virtualenv is (re)built when missing or when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(CHART_ASSET): package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to build the dashboard's chart library: apt-get install -y npm (or Node.js >= 18)"; exit 1; }
	npm ci --no-audit --no-fund
	@mkdir -p $(dir $@)
	cp $(CHART_SOURCE) $@

dashboard: $(CHART_ASSET)

install: $(STAMP) $(CHART_ASSET)

run: $(STAMP) $(CHART_ASSET)
	$(BIN)/tradeflow local up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) $(CHART_ASSET) lint chromium
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The HTML report's browser test (tests/integration/test_report_chromium.py) renders in Debian's chromium:
# installed here when missing (apt-get, through sudo unless already root).
chromium:
	@command -v chromium >/dev/null || { sudo=$$(test "$$(id -u)" -eq 0 || echo sudo); \
	  $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

bench: $(STAMP)
	$(BIN)/python -m tradeflow.bench $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts node_modules shared/tradeflow/dashboard/static/vendor build cdk.out

# Lambda layers, built by pip for the Lambda platform (manylinux, Python 3.12) into build/layers: no Docker.
PKG_ENV := PYTHONPATH=infra $(CDK_ENV)

layers: $(STAMP) $(CHART_ASSET)
	$(PKG_ENV) $(BIN)/python -m tradeflow_infra.packaging build

# Re-resolve layers/constraints.txt (every layer's dependencies, locked together) after editing a layer.
lock-layers: $(STAMP)
	$(PKG_ENV) $(BIN)/python -m tradeflow_infra.packaging lock

synth: layers
	$(CDK_ENV) $(BIN)/python infra/app.py -c stage=$(STAGE)

package-report: layers
	$(BIN)/python infra/package_report.py

deploy: layers
	$(CDK_ENV) $(CDK) deploy --app "$(BIN)/python infra/app.py" -c stage=$(STAGE) --require-approval broadening

diff: layers
	$(CDK_ENV) $(CDK) diff --app "$(BIN)/python infra/app.py" -c stage=$(STAGE)

destroy: $(STAMP)
	$(CDK_ENV) $(CDK) destroy --app "$(BIN)/python infra/app.py" -c stage=$(STAGE) -c layers=placeholder
