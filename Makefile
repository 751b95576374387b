# tradeflow developer commands. `make run` and `make test` install what is missing first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install run test lint bench clean chromium dashboard

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts node_modules shared/tradeflow/dashboard/static/vendor
