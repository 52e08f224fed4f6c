"""Where the project keeps its local state, and how the lake resource is configured."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from orchestration.resources import LakeResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAKE_ROOT = PROJECT_ROOT / "data" / "lake"
DEFAULT_DUCKDB_PATH = PROJECT_ROOT / "data" / "warehouse.duckdb"

# environment variable -> LakeResource field. Values are resolved by Dagster at run time
# (dg.EnvVar), so secrets never appear in run config or the UI.
_LAKE_ENV = {
    "root_uri": "LAKEHOUSE_ROOT",
    "s3_endpoint_url": "AWS_ENDPOINT_URL",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_region": "AWS_REGION",
}


def lake_resource() -> LakeResource:
    """LakeResource from the environment; the embedded default is ``data/lake`` on local disk."""
    kwargs: dict = {"root_uri": str(DEFAULT_LAKE_ROOT)}
    for field, var in _LAKE_ENV.items():
        if os.environ.get(var):
            kwargs[field] = dg.EnvVar(var)
    return LakeResource(**kwargs)
