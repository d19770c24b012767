# The two commands of the README: `make up` (the whole local stack) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := .promptline/compiled

.PHONY: up down status test test-pure test-pages test-rest test-compiled wheel lint types unit bench browser screenshot clean

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e sdk/python
	touch $(STAMP)

up: $(STAMP)  ## start broker, ClickHouse, HTTP service and a worker; print a curl to try
	$(BIN)/promptline stack up

down:  ## stop everything `make up` started
	@test -x $(BIN)/promptline && $(BIN)/promptline stack down || echo "nothing to stop"

status: $(STAMP)
	$(BIN)/promptline stack status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

test: lint types  ## lint, types, the whole test suite and the hot path's on the compiled build
	@# Side by side: the three parts wait on real services far more than they compute (each
	@# starts its own). Each part's output is printed whole when it ends.
	$(MAKE) --no-print-directory -j3 --output-sync=target test-pages test-rest test-compiled

test-pure: $(STAMP) browser  ## the whole suite in one run (make test splits it in two)
	$(BIN)/pytest

# The whole suite in two halves of about the same length, run side by side by make test:
# the control plane, compare, the API document and the dashboard; then everything else.
PAGES_HALF := tests/controlplane tests/compare tests/cli tests/unit tests/contract tests/ui

test-pages: $(STAMP) browser
	$(BIN)/pytest -p no:cacheprovider $(PAGES_HALF)

test-rest: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider $(addprefix --ignore=,$(PAGES_HALF))

# The dashboard's browser tests drive Debian's Chromium through Debian's chromedriver
# (nothing downloads a browser at run time): installed here when missing, as root or with
# a sudo that asks no password; otherwise the command to run is printed and make fails.
APT_BROWSER := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	chromium chromium-driver

browser:  ## Debian's chromium and chromium-driver for the browser tests (installed as root)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then $(APT_BROWSER); \
	elif sudo -n true 2>/dev/null; then sudo -n sh -c '$(APT_BROWSER)'; \
	else echo "chromium and chromedriver are missing; run:"; \
		echo "sudo apt-get install chromium chromium-driver"; exit 1; fi

screenshot: $(STAMP) browser  ## docs/images/compare.png: the compare page of a seeded demo, in Chromium
	$(BIN)/python -m tests.ui.screenshot --out docs/images/compare.png

# The release build compiles resolve's hot path (mypyc); its tests run again on that build,
# in a compiled copy of the tree (promptline/devstack/compiled.py says why a copy).
test-compiled: $(STAMP)
	$(BIN)/python -m promptline.devstack.compiled $(COMPILED)
	cd "$(COMPILED)" && PROMPTLINE_EXPECT_COMPILED=1 "$(CURDIR)/$(BIN)/pytest" -p no:cacheprovider \
		tests/controlplane tests/ingest tests/unit

wheel: $(STAMP)  ## the release wheel (hot path compiled) in dist/, built in a copy of the tree
	$(BIN)/python -m promptline.devstack.compiled "$(COMPILED)" --wheel-to dist

bench: $(STAMP)  ## every benchmark under bench/ in sequence, then one table of their figures
	$(BIN)/python -m bench.report

unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean: down
	rm -rf .promptline .mypy_cache .ruff_cache .pytest_cache
