"""Fixtures of the transform tests: a private DuckDB warehouse per test. Helpers (bronze
fixture plant, in-process materialization) live in ``transform_helpers.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def warehouse(tmp_path) -> Path:
    """A private DuckDB warehouse file for the test (the lake resource's ``duckdb_path``)."""
    return tmp_path / "warehouse.duckdb"



@pytest.fixture(autouse=True)
def _clean_dbt_run_targets():
    """Remove the dbt target folders the test's runs created (dbt_project/target/runs/<id>)."""
    import shutil

    from assets.transform.warehouse import DBT_PROJECT_DIR

    runs = DBT_PROJECT_DIR / "target" / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    yield
    for path in (set(runs.iterdir()) if runs.exists() else set()) - before:
        shutil.rmtree(path, ignore_errors=True)
