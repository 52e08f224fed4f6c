"""The Dagster code location: wiring only (assets, checks, jobs, sensors, resources)."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import lake_resource

defs = dg.Definitions(
    resources={"lake": lake_resource()},
)
