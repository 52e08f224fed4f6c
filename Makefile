# Bioprocess lakehouse — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export DAGSTER_DISABLE_TELEMETRY := 1
export PYTHONUNBUFFERED := 1

.PHONY: venv run test lint ui bench sql clean-data

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install -q uv
	$(VENV)/bin/uv pip install --python $(PY) -q -e '.[test]'
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: orchestration/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp orchestration/dagster.yaml $@

venv: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

## Simulate the default site and materialize the whole asset graph, then print a summary.
run: venv
	$(VENV)/bin/lakehouse run

## Run the test suite (what CI runs).
test: venv
	$(PY) -m pytest

## Lint: ruff (lint + format check) on the Python, sqlfluff (dbt templater) on the dbt project.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DBT_TARGET_PATH=target/sqlfluff $(VENV)/bin/sqlfluff lint dbt_project/models

## Dagster UI on http://127.0.0.1:3000
ui: venv
	$(PY) -m orchestration.ui --host 127.0.0.1 --port 3000

## The DuckDB command-line client on the warehouse, read-only, Delta/S3 extensions loaded offline
sql: venv
	$(PY) -m lakehouse.bi

## Benchmarks: one JSON object of figures in bench/results.json
bench: venv
	$(PY) -m bench

clean-data:
	rm -rf data .dagster_home
