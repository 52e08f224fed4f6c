"""Bronze ingestion assets: one module per source system family; ``defs`` for the code location.

Asset keys ``["bronze", <table>]`` (group ``bronze``); every ingestion asset depends on the
landing zone asset ``["landing", "site"]`` (assets/landing). ``build_ingest_defs(start_date,
landing_deps)`` builds them for a historian partition start (default: the site's start date,
:class:`twin.site.SiteConfig`) and upstream keys (e.g. ``[("landing", s) for s in
LANDING_SYSTEMS]`` for per-system landing assets).
"""

from __future__ import annotations

import dagster as dg

from assets.ingest._common import DEFAULT_LANDING_DEPS, GROUP, bronze_key
from assets.ingest.historian import build_historian_asset, historian_partitions
from assets.ingest.quarantine import (
    bronze_maintenance,
    maintenance_job,
    maintenance_schedule,
    quarantine_summary,
)
from assets.ingest.sensors import build_landing_sensor
from assets.ingest.systems import UNPARTITIONED_SYSTEMS, build_system_asset

LANDING_SYSTEMS = ["historian", "lims", "mes", "chromatography", "filtration", "cmms"]

# Bronze tables only a plant's own import writes (``lakehouse import``, lakehouse/ingest/foreign.py),
# never the landing zone: declared here (external, not materialized by an asset) so that the dbt
# sources reading them have a bronze upstream in the graph.
IMPORT_ONLY_TABLES = {"mes_deviations": "Deviations QA recorded against batches (a plant's deviation list)."}


def build_ingest_defs(
    historian_start_date: str | None = None,
    landing_deps=DEFAULT_LANDING_DEPS,
    historian_end_date: str | None = None,
) -> dg.Definitions:
    """Assets, checks, jobs, schedule and sensor of bronze ingestion (no resources); the
    historian's daily partitions end at ``historian_end_date`` (exclusive; default: today)."""
    partitions = historian_partitions(historian_start_date, historian_end_date)
    historian = build_historian_asset(partitions, landing_deps)
    systems = [build_system_asset(s, landing_deps) for s in UNPARTITIONED_SYSTEMS]
    ingest_assets = [historian, *systems]
    ingest_job = dg.define_asset_job("bronze_ingest_unpartitioned_job", selection=systems)
    imported = [
        dg.AssetSpec(
            bronze_key(t), group_name=GROUP, kinds={"delta"}, description=f"{d} Written by `lakehouse import`."
        )
        for t, d in IMPORT_ONLY_TABLES.items()
    ]
    return dg.Definitions(
        assets=[*ingest_assets, *imported, quarantine_summary, bronze_maintenance],
        jobs=[maintenance_job, ingest_job],
        schedules=[maintenance_schedule],
        sensors=[build_landing_sensor(partitions, ingest_assets)],
    )


__all__ = ["LANDING_SYSTEMS", "build_ingest_defs", "historian_partitions"]
