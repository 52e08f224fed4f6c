"""The Dagster resources the assets use: ``lake``, ``site`` and ``spark``.

They live here (not in ``orchestration/``) so that assets import them without pointing up;
``orchestration/settings.py`` builds them from the environment (secrets as ``dg.EnvVar``).
The wrapped library objects are plain Python: :class:`lakehouse.storage.Lake`,
:class:`twin.site.SiteConfig` (the site defaults) and :func:`lakehouse.spark.session.get_spark_session`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, field_validator

from lakehouse.spark.session import ENGINES, get_spark_session
from lakehouse.storage import Lake, S3Settings
from lakehouse.warehouse import duckdb_path
from twin.site.config import SiteConfig

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from lakehouse.plant import PlantBundle

_SITE = SiteConfig()  # the site defaults (one place: twin.site.SiteConfig)


class LakeResource(dg.ConfigurableResource):
    """The lake: one root URI (local folder or ``s3://bucket/prefix``) shared by every asset.

    S3 endpoint and credentials are set from environment variables in
    ``orchestration/settings.py`` (``dg.EnvVar``) — never hard-coded.
    """

    root_uri: str = Field(description="Local folder or s3://bucket/prefix of the lake.")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint (e.g. http://127.0.0.1:8333).")
    aws_access_key_id: str | None = Field(default=None)
    aws_secret_access_key: str | None = Field(default=None)
    aws_region: str = Field(default="us-east-1")
    duckdb_path: str | None = Field(
        default=None,
        description="DuckDB warehouse file the marts land in, for BI tools "
        "(local path; relative to the project root; default data/warehouse.duckdb).",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking + registry store (any server or database); default a SQLite file "
        "in the lake (ml/mlflow_store.py).",
    )
    plant: str | None = Field(
        default=None,
        description="The plant whose data the lake holds: a bundle name under config/plants/ or a bundle "
        "folder (default: cho-twin, the twin site). Its signal catalog, grid and phase signal shape the "
        "process data model.",
    )

    def get_plant(self) -> PlantBundle:
        """The plant bundle (:class:`lakehouse.plant.PlantBundle`) of this lake."""
        from lakehouse.plant import default_plant, load_plant

        return load_plant(self.plant) if self.plant else default_plant()

    def get_warehouse_path(self) -> Path:
        """The DuckDB warehouse file of this lake (absolute)."""
        return duckdb_path(self.duckdb_path)

    def get_lake(self) -> Lake:
        """The :class:`~lakehouse.storage.Lake` these settings describe (a lake on S3 without an
        MLflow server keeps its registry in a SQLite file next to the DuckDB warehouse)."""
        lake = Lake(
            self.root_uri,
            S3Settings(
                endpoint_url=self.s3_endpoint_url,
                access_key_id=self.aws_access_key_id,
                secret_access_key=self.aws_secret_access_key,
                region=self.aws_region,
            ),
            self.mlflow_tracking_uri,
        )
        if lake.is_s3 and not lake.mlflow_tracking_uri:
            from ml.mlflow_store import s3_lake_sqlite_uri

            lake = dataclasses.replace(
                lake, mlflow_tracking_uri=s3_lake_sqlite_uri(lake, self.get_warehouse_path().parent)
            )
        return lake


class SiteResource(dg.ConfigurableResource):
    """Where the landing zone's data comes from.

    ``source="twin"`` (embedded default): the `landing/site` asset simulates the twin site
    into the lake's landing zone (once per configuration). ``source="external"``: a plant's
    own exports are dropped into ``landing/`` (or imported with ``lakehouse import``); the
    asset only inventories them.
    """

    source: str = Field(default="twin", description="'twin' or 'external'")
    start_date: str = Field(default=_SITE.start, description="first UTC day of the site data")
    days: int = Field(default=_SITE.days, description="days of twin data to simulate")
    bioreactors: int = Field(default=_SITE.bioreactors, description="number of twin bioreactors")
    interval_s: float = Field(default=_SITE.interval_s, description="twin historian logging interval, seconds")
    full_resolution_days: int | None = Field(
        default=_SITE.full_resolution_days,
        description="the last days logged every interval_s; the days before every history_interval_s "
        "(null: every day at interval_s)",
    )
    history_interval_s: float = Field(
        default=_SITE.history_interval_s, description="twin historian interval before the full-resolution days"
    )
    seed: int = Field(default=_SITE.seed)

    def site_config(self) -> SiteConfig:
        """The twin's :class:`~twin.site.SiteConfig` for these settings."""
        return SiteConfig(
            start=self.start_date,
            days=self.days,
            bioreactors=self.bioreactors,
            interval_s=self.interval_s,
            full_resolution_days=self.full_resolution_days,
            history_interval_s=self.history_interval_s,
            seed=self.seed,
        )


class SparkResource(dg.ConfigurableResource):
    """Dagster resource ``spark``: engine switch for the heavy transforms + the SparkSession.

    ``engine="default"`` keeps everything on DuckDB/pandas/XGBoost on one machine and never
    starts a JVM; ``engine="spark"`` runs the heavy time-series transforms, Delta I/O of
    those and distributed XGBoost training on Spark.
    """

    engine: str = Field(default="default", description='"default" (DuckDB/pandas) or "spark".')
    master: str = Field(
        default="local[2]", description="Spark master: local[2], local[*], spark://host:7077, k8s://…, yarn."
    )
    connect_url: str | None = Field(default=None, description="Spark Connect URL (sc://host:15002); wins over master.")
    driver_memory: str = Field(default="2g")
    executor_memory: str | None = Field(default=None)
    shuffle_partitions: int = Field(default=4)
    use_delta_spark_jars: bool = Field(
        default=False,
        description="The cluster has delta-spark: read/write Delta with format('delta') instead of the delta-rs bridge.",
    )
    num_workers: int = Field(default=2, description="xgboost.spark workers (≤ executor cores).")
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark configuration.")

    @field_validator("engine", mode="before")
    @classmethod
    def _check_engine(cls, value: str) -> str:
        if isinstance(value, dg.EnvVar):  # resolved (and checked again) when the run starts
            return value
        if value not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {value!r}")
        return value

    @property
    def is_spark(self) -> bool:
        if self.engine not in ENGINES:  # an environment variable with a wrong value
            raise ValueError(f"spark resource: engine must be one of {ENGINES}, got {self.engine!r}")
        return self.engine == "spark"

    def get_session(self) -> SparkSession:
        """The shared SparkSession (started on first use)."""
        return get_spark_session(
            self.master,
            connect_url=self.connect_url,
            driver_memory=self.driver_memory,
            executor_memory=self.executor_memory,
            shuffle_partitions=self.shuffle_partitions,
            use_delta_spark_jars=self.use_delta_spark_jars,
            conf=dict(self.conf),
        )

    def session_or_none(self) -> SparkSession | None:
        """The session when ``engine == "spark"``, else None (never starts a JVM)."""
        return self.get_session() if self.is_spark else None


class LiveAlertsResource(dg.ConfigurableResource):
    """Where live alerts are notified besides the alerts table: an optional webhook URL.

    Set from ``$LAKEHOUSE_ALERT_WEBHOOK_URL`` by ``orchestration/settings.py`` as a ``dg.EnvVar``
    (the URL may carry a token: it never appears in run config, logs or metadata). Empty: no
    webhook.
    """

    webhook_url: str = ""
