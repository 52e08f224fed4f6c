"""Where the project keeps its local state, and how the lake resource is configured."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from lakehouse.spark.resource import SparkResource
from orchestration.resources import LakeResource, SiteResource

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
    "duckdb_path": "LAKEHOUSE_DUCKDB_PATH",
}


def lake_resource() -> LakeResource:
    """LakeResource from the environment; the embedded default is ``data/lake`` on local disk."""
    kwargs: dict = {"root_uri": str(DEFAULT_LAKE_ROOT)}
    for field, var in _LAKE_ENV.items():
        if os.environ.get(var):
            kwargs[field] = dg.EnvVar(var)
    return LakeResource(**kwargs)


# Site (data source) settings: plain configuration, not secrets.
_SITE_ENV = {
    "source": ("LAKEHOUSE_SOURCE", str),
    "start_date": ("LAKEHOUSE_START_DATE", str),
    "days": ("LAKEHOUSE_SITE_DAYS", int),
    "bioreactors": ("LAKEHOUSE_SITE_BIOREACTORS", int),
    "interval_s": ("LAKEHOUSE_SITE_INTERVAL_S", float),
    "seed": ("LAKEHOUSE_SITE_SEED", int),
}


def site_resource() -> SiteResource:
    kwargs = {f: conv(os.environ[var]) for f, (var, conv) in _SITE_ENV.items() if os.environ.get(var)}
    return SiteResource(**kwargs)


def site_partition_range(site: SiteResource | None = None) -> tuple[str, str]:
    """First and last daily partition key covered by the site's data."""
    site = site or site_resource()
    start = dt.date.fromisoformat(site.start_date)
    end = start + dt.timedelta(days=max(site.days, 1) - 1)
    return start.isoformat(), end.isoformat()


# Engine switch: "default" (DuckDB/pandas/XGBoost on one machine) or "spark".
_SPARK_ENV = {
    "engine": "LAKEHOUSE_ENGINE",
    "master": "SPARK_MASTER",
    "connect_url": "SPARK_CONNECT_URL",
    "driver_memory": "SPARK_DRIVER_MEMORY",
    "executor_memory": "SPARK_EXECUTOR_MEMORY",
}


def spark_resource() -> SparkResource:
    kwargs: dict = {f: dg.EnvVar(var) for f, var in _SPARK_ENV.items() if os.environ.get(var)}
    if os.environ.get("LAKEHOUSE_DELTA_SPARK_JARS"):
        kwargs["use_delta_spark_jars"] = os.environ["LAKEHOUSE_DELTA_SPARK_JARS"].lower() in ("1", "true", "yes")
    return SparkResource(**kwargs)
