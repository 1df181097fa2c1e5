# etl_assets — everything a fresh machine needs is installed from pyproject.toml into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# the one local Dagster instance the demo, the CLI and `make dev` share (etl_assets/local/instance.py)
DAGSTER_HOME ?= $(or $(ETL_ASSETS_HOME),$(CURDIR)/.etl_assets)/dagster_home

.PHONY: install demo test test-model test-fuzz test-redshift dev dev-prod bench lint up down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)

demo: install          ## stack up, sample data, materialize everything, report
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/etl-assets demo

test: install          ## the test suite against a real PostgreSQL and S3 (own stack)
	$(BIN)/python -m pytest

MODEL_SEEDS ?= 200
test-model: install    ## the landing zone's model-based test over MODEL_SEEDS seeds (about 7 s a seed)
	ETL_MODEL_SEEDS=$(MODEL_SEEDS) $(BIN)/python -m pytest -q etl_assets_tests/defs/landing/test_model.py

FUZZ_CASES ?= 500
test-fuzz: install     ## the seeded hostile-file tests, FUZZ_CASES per format (the suite runs 20-30)
	ETL_FUZZ_CASES=$(FUZZ_CASES) ETL_FUZZ_RUNS=20 $(BIN)/python -m pytest -q \
	  etl_assets_tests/loading/test_fuzz_files.py etl_assets_tests/defs/darties -k "fuzzed or hostile_files"

test-redshift: install  ## the warehouse suite on your Redshift cluster/workgroup and bucket
	@if [ -z "$$ETL_TEST_REDSHIFT_HOST" ]; then \
	  echo "test-redshift: skipped (set ETL_TEST_REDSHIFT_HOST, _USER, _PASSWORD, _IAM_ROLE, _BUCKET; see README)"; \
	else \
	  ETL_TEST_WAREHOUSE=redshift $(BIN)/python -m pytest -rs etl_assets_tests/on_warehouse; \
	fi

dev: install           ## the Dagster UI on the local stack
	$(BIN)/etl-assets up
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp etl_assets/local/dagster.yaml $(DAGSTER_HOME)/
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml

dev-prod: install      ## the UI + daemon on the production instance (PostgreSQL storage, run queue)
	$(BIN)/etl-assets dev-prod

bench: install         ## load speed and memory, ratios against a baseline in the same run
	$(BIN)/python -m etl_assets_tests.bench
	$(BIN)/python -m etl_assets_tests.bench_flights
	$(BIN)/python -m etl_assets_tests.bench_landing
	$(BIN)/python -m etl_assets_tests.bench_darties

lint: install
	$(BIN)/ruff check etl_assets etl_assets_tests
	$(BIN)/ruff format --check etl_assets etl_assets_tests

up: install
	$(BIN)/etl-assets up

down: install
	$(BIN)/etl-assets down

clean: down
	rm -rf .etl_assets
