"""The Dagster code location: wiring only (assets, checks, jobs, sensors, resources)."""

from __future__ import annotations

import dagster as dg

from assets import features, golden, ingest, landing, models, scoring, transform
from assets import twin as twin_assets
from assets.transform.dbt_models import dbt_cli_resource
from lakehouse.spark.resource import SparkResource
from orchestration.resources import LakeResource, SiteResource
from orchestration.settings import lake_resource, site_resource, spark_resource

FULL_JOB = "full_pipeline"
PLANT_JOB = "plant_pipeline"
# Groups trained on the twin's defaults (targets, CQA specs, equipment fleet). A plant's own
# data goes through landing → bronze → dbt → gold → features, then `lakehouse train` with the
# plant's config: its target and signals are the plant's.
TWIN_TRAINED_GROUPS = ("models", "scoring", "golden_batch", "twin")


def build_defs(lake: LakeResource, site: SiteResource, spark: SparkResource | None = None) -> dg.Definitions:
    """The whole code location for one lake and one site configuration."""
    full_pipeline = dg.define_asset_job(
        FULL_JOB,
        selection=dg.AssetSelection.all(),
        description="Landing → bronze → dbt model → gold → features → models → scores, golden "
        "batch and twin experiments, in one run (daily partitions handed over as one range).",
    )
    plant_pipeline = dg.define_asset_job(
        PLANT_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups(*TWIN_TRAINED_GROUPS),
        description="A plant's own data: landing → bronze → dbt model → gold → features "
        "(models are trained with the plant's config: `lakehouse train`).",
    )
    return dg.Definitions.merge(
        landing.defs,
        # the historian's daily partitions start where the site's data starts
        ingest.build_ingest_defs(historian_start_date=site.start_date),
        transform.defs,
        features.defs,
        models.defs,
        scoring.defs,
        golden.defs,
        twin_assets.defs,
        dg.Definitions(
            jobs=[full_pipeline, plant_pipeline],
            resources={"lake": lake, "site": site, "dbt": dbt_cli_resource(),
                       "spark": spark or SparkResource()},
        ),
    )


defs = build_defs(lake_resource(), site_resource(), spark_resource())
