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
def _clean_dbt_run_targets(clean_dbt_run_targets):
    """Every transform test removes the dbt target folders its runs created."""
    yield
