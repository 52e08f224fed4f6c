"""The settings of the code location: which lake, which site, which engine.

:class:`Settings` is explicit configuration for :func:`orchestration.definitions.build_defs`.
:meth:`Settings.from_env` is the one place the code location reads the environment
(``orchestration/definitions.py`` calls it once for the workspace); ``lakehouse run`` passes
its command-line overrides to it instead of changing ``os.environ``. Secrets stay
``dg.EnvVar`` references, resolved by Dagster when a run starts, never values in config.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from assets.resources import LakeResource, LiveAlertsResource, SiteResource, SparkResource
from lakehouse.storage import MLFLOW_ENV, S3_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAKE_ROOT = PROJECT_ROOT / "data" / "lake"

# environment variable -> LakeResource field. Values are resolved by Dagster at run time
# (dg.EnvVar), so secrets never appear in run config or the UI. The S3 names come from
# lakehouse.storage.S3_ENV (the one list of them).
_LAKE_ENV = {
    "root_uri": "LAKEHOUSE_ROOT",
    "s3_endpoint_url": S3_ENV["endpoint_url"],
    "aws_access_key_id": S3_ENV["access_key_id"],
    "aws_secret_access_key": S3_ENV["secret_access_key"],
    "aws_region": S3_ENV["region"],
    "duckdb_path": "LAKEHOUSE_DUCKDB_PATH",
    "mlflow_tracking_uri": MLFLOW_ENV,
}

PLANT_ENV = "LAKEHOUSE_PLANT"  # a plant bundle folder (or name under config/plants/)

# Live alerts: the webhook URL (may hold a token: an EnvVar, never a value)
ALERT_WEBHOOK_ENV = "LAKEHOUSE_ALERT_WEBHOOK_URL"

# Site (data source) settings: plain configuration, not secrets.
_SITE_ENV = {
    "source": ("LAKEHOUSE_SOURCE", str),
    "start_date": ("LAKEHOUSE_START_DATE", str),
    "days": ("LAKEHOUSE_SITE_DAYS", int),
    "bioreactors": ("LAKEHOUSE_SITE_BIOREACTORS", int),
    "interval_s": ("LAKEHOUSE_SITE_INTERVAL_S", float),
    "full_resolution_days": ("LAKEHOUSE_SITE_FULL_RESOLUTION_DAYS", int),
    "history_interval_s": ("LAKEHOUSE_SITE_HISTORY_INTERVAL_S", float),
    "seed": ("LAKEHOUSE_SITE_SEED", int),
}

# Engine switch: "default" (DuckDB/pandas/XGBoost on one machine) or "spark".
_SPARK_ENV = {
    "engine": "LAKEHOUSE_ENGINE",
    "master": "SPARK_MASTER",
    "connect_url": "SPARK_CONNECT_URL",
    "driver_memory": "SPARK_DRIVER_MEMORY",
    "executor_memory": "SPARK_EXECUTOR_MEMORY",
}


@dataclass(frozen=True)
class Settings:
    """Resources of one code location: the lake, the site (data source) and the engine.

    Build it explicitly (tests, ``lakehouse run``) or with :meth:`from_env`.
    """

    lake: LakeResource = field(default_factory=lambda: LakeResource(root_uri=str(DEFAULT_LAKE_ROOT)))
    site: SiteResource = field(default_factory=SiteResource)
    spark: SparkResource = field(default_factory=SparkResource)
    alerts: LiveAlertsResource = field(default_factory=LiveAlertsResource)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        lake_root: str | None = None,
        plant: str | None = None,
        **site_overrides,
    ) -> Settings:
        """Settings from the environment (the embedded default: ``data/lake`` on local disk,
        the twin site, the default engine).

        ``lake_root``, ``plant`` (a plant bundle folder or name: ``$LAKEHOUSE_PLANT``) and
        ``site_overrides`` (``source``, ``start_date``, ``days``, ``bioreactors``, …; ``None`` =
        not given) win over the environment: the command line's options. With a plant the
        source defaults to ``external`` (its files, not the twin simulation).
        """
        env = os.environ if environ is None else environ
        if (plant or env.get(PLANT_ENV)) and not (site_overrides.get("source") or env.get("LAKEHOUSE_SOURCE")):
            # a plant's own data: never the twin simulated into its landing zone
            site_overrides = {**site_overrides, "source": "external"}
        return cls(
            lake=_lake_resource(env, lake_root, plant),
            site=_site_resource(env, site_overrides),
            spark=_spark_resource(env),
            alerts=LiveAlertsResource(webhook_url=dg.EnvVar(ALERT_WEBHOOK_ENV))
            if env.get(ALERT_WEBHOOK_ENV)
            else LiveAlertsResource(),
        )

    @property
    def plant(self) -> str | None:
        """The plant bundle the lake holds (``LakeResource.plant``; None: the default, the twin site)."""
        return self.lake.plant

    def partition_range(self) -> tuple[str, str]:
        """First and last daily partition key covered by the site's data."""
        return site_partition_range(self.site)

    def partition_end_exclusive(self) -> str | None:
        """The day after the simulated site's last day (its data ends there); ``None`` for an
        external plant, whose historian keeps exporting (partitions run to today)."""
        if self.site.source != "twin":
            return None
        last = dt.date.fromisoformat(self.partition_range()[1])
        return (last + dt.timedelta(days=1)).isoformat()


def _lake_resource(env: Mapping[str, str], lake_root: str | None = None, plant: str | None = None) -> LakeResource:
    kwargs: dict = {"root_uri": str(DEFAULT_LAKE_ROOT)}
    for name, var in _LAKE_ENV.items():
        if env.get(var):
            kwargs[name] = dg.EnvVar(var)
    if lake_root:
        kwargs["root_uri"] = lake_root
    # the plant shapes the code location (its model names): a plain value, read when the definitions are built
    if plant or env.get(PLANT_ENV):
        kwargs["plant"] = str(plant or env[PLANT_ENV])
    return LakeResource(**kwargs)


def _site_resource(env: Mapping[str, str], overrides: Mapping[str, object] | None = None) -> SiteResource:
    kwargs = {name: conv(env[var]) for name, (var, conv) in _SITE_ENV.items() if env.get(var)}
    unknown = set(overrides or {}) - set(_SITE_ENV)
    if unknown:
        raise TypeError(f"unknown site settings: {sorted(unknown)}")
    kwargs.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return SiteResource(**kwargs)


def _spark_resource(env: Mapping[str, str]) -> SparkResource:
    kwargs: dict = {name: dg.EnvVar(var) for name, var in _SPARK_ENV.items() if env.get(var)}
    if env.get("LAKEHOUSE_DELTA_SPARK_JARS"):
        kwargs["use_delta_spark_jars"] = env["LAKEHOUSE_DELTA_SPARK_JARS"].lower() in ("1", "true", "yes")
    return SparkResource(**kwargs)


def lake_resource() -> LakeResource:
    """LakeResource from the environment; the embedded default is ``data/lake`` on local disk."""
    return _lake_resource(os.environ)


def site_resource() -> SiteResource:
    """SiteResource from the environment (defaults: :class:`twin.site.SiteConfig`)."""
    return _site_resource(os.environ)


def spark_resource() -> SparkResource:
    """SparkResource (engine switch) from the environment."""
    return _spark_resource(os.environ)


def site_partition_range(site: SiteResource | None = None) -> tuple[str, str]:
    """First and last daily partition key covered by the site's data."""
    site = site or site_resource()
    start = dt.date.fromisoformat(site.start_date)
    end = start + dt.timedelta(days=max(site.days, 1) - 1)
    return start.isoformat(), end.isoformat()
