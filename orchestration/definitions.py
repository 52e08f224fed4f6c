"""The Dagster code location: wiring only (assets, checks, jobs, sensors, resources)."""

from __future__ import annotations

import dagster as dg

from assets import features, golden, ingest, landing, models, scoring, transform
from assets import twin as twin_assets
from assets.transform.dbt_models import dbt_cli_resource
from orchestration.settings import lake_resource, site_resource

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Landing → bronze → dbt model → gold → features → models → scores, golden "
    "batch and twin experiments, in one run (daily partitions handed over as one range).",
)

defs = dg.Definitions.merge(
    landing.defs,
    ingest.defs,
    transform.defs,
    features.defs,
    models.defs,
    scoring.defs,
    golden.defs,
    twin_assets.defs,
    dg.Definitions(
        jobs=[full_pipeline],
        resources={
            "lake": lake_resource(),
            "site": site_resource(),
            "dbt": dbt_cli_resource(),
        },
    ),
)
