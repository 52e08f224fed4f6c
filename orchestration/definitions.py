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

site = site_resource()

defs = dg.Definitions.merge(
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
        jobs=[full_pipeline],
        resources={
            "lake": lake_resource(),
            "site": site,
            "dbt": dbt_cli_resource(),
        },
    ),
)
