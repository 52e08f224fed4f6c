"""The Dagster code location: wiring only (assets, checks, jobs, sensors, resources)."""

from __future__ import annotations

import dagster as dg

from assets import landing
from orchestration.settings import lake_resource, site_resource

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Landing → bronze → dbt model → features → models → scores, in one run "
    "(daily partitions handed over as one range).",
)

defs = dg.Definitions.merge(
    landing.defs,
    dg.Definitions(
        jobs=[full_pipeline],
        resources={"lake": lake_resource(), "site": site_resource()},
    ),
)
