"""Dagster resources. Configuration comes from the environment through ``dg.EnvVar``."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from lakehouse.storage import Lake, S3Settings


class LakeResource(dg.ConfigurableResource):
    """The lake: one root URI (local folder or ``s3://bucket/prefix``) shared by every asset.

    S3 endpoint and credentials are set from environment variables in
    ``orchestration/definitions.py`` (``dg.EnvVar``) — never hard-coded.
    """

    root_uri: str = Field(description="Local folder or s3://bucket/prefix of the lake.")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint (e.g. http://127.0.0.1:8333).")
    aws_access_key_id: str | None = Field(default=None)
    aws_secret_access_key: str | None = Field(default=None)
    aws_region: str = Field(default="us-east-1")
    duckdb_path: str | None = Field(
        default=None, description="DuckDB warehouse file the marts land in, for BI tools "
        "(local path; relative to the project root; default data/warehouse.duckdb).")
    plant: str | None = Field(
        default=None, description="The plant whose data the lake holds: a bundle name under "
        "config/plants/ or a bundle folder (default: cho-twin, the twin site). Its signal catalog, "
        "grid and phase signal shape the process data model.")

    def get_plant(self):
        """The plant bundle (:class:`lakehouse.plant.PlantBundle`) of this lake."""
        from lakehouse.plant import default_plant, load_plant

        return load_plant(self.plant) if self.plant else default_plant()

    def get_warehouse_path(self) -> Path:
        """The DuckDB warehouse file of this lake (absolute)."""
        from assets.transform.warehouse import duckdb_path

        return duckdb_path(self.duckdb_path)

    def get_lake(self) -> Lake:
        return Lake(
            self.root_uri,
            S3Settings(
                endpoint_url=self.s3_endpoint_url,
                access_key_id=self.aws_access_key_id,
                secret_access_key=self.aws_secret_access_key,
                region=self.aws_region,
            ),
        )


class SiteResource(dg.ConfigurableResource):
    """Where the landing zone's data comes from.

    ``source="twin"`` (embedded default): the `landing/site` asset simulates the twin site
    into the lake's landing zone (once per configuration). ``source="external"``: a plant's
    own exports are dropped into ``landing/`` (or imported with ``lakehouse import``); the
    asset only inventories them.
    """

    source: str = Field(default="twin", description="'twin' or 'external'")
    start_date: str = Field(default="2026-01-01", description="first UTC day of the site data")
    days: int = Field(default=90, description="days of twin data to simulate")
    bioreactors: int = Field(default=4, description="number of twin bioreactors")
    interval_s: float = Field(default=60.0, description="twin historian logging interval, seconds")
    seed: int = Field(default=7)
