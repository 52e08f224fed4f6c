"""Unpartitioned, file-driven source systems: LIMS, MES, chromatography, filtration, CMMS.

Each run ingests every landing file of the system that is new or changed (exactly once per
file version; the ingest log makes unchanged files free)."""

import dagster as dg

from assets.ingest._common import (
    DEFAULT_LANDING_DEPS,
    GROUP,
    bronze_key,
    landing_deps,
    make_context,
    quarantine_check_spec,
    results,
    run_ingest,
)
from assets.resources import LakeResource
from lakehouse.ingest.readers import SYSTEM_TABLES

DESCRIPTIONS = {
    "lims": "LIMS released results (landing/lims/<day>.csv) → bronze/lims_results.",
    "mes": "MES electronic batch records (landing/mes/<batch>.json) → batches, ISA-88 phases, "
    "materials and lot genealogy.",
    "chromatography": "Protein A capture runs (run.json + curves.csv per run) → chrom_runs, chrom_curves.",
    "filtration": "UF/DF TFF runs (run.json + curves.csv per run) → filtration_runs, filtration_curves.",
    "cmms": "CMMS work orders (landing/cmms/<day>.csv) → bronze/cmms_work_orders.",
}


def build_system_asset(system: str, deps=DEFAULT_LANDING_DEPS) -> dg.AssetsDefinition:
    tables = SYSTEM_TABLES[system]

    @dg.multi_asset(
        name=f"ingest_{system}",
        specs=[
            dg.AssetSpec(
                bronze_key(t),
                group_name=GROUP,
                deps=landing_deps(deps),
                kinds={"delta", "python"},
                description=DESCRIPTIONS[system],
            )
            for t in tables
        ],
        check_specs=[quarantine_check_spec(t) for t in tables],
        can_subset=False,
    )
    def _ingest(context: dg.AssetExecutionContext, lake: LakeResource):
        the_lake = lake.get_lake()
        report = run_ingest(context, the_lake, [system], make_context(None))
        yield from results(report, tables, the_lake)

    return _ingest


UNPARTITIONED_SYSTEMS = ["lims", "mes", "chromatography", "filtration", "cmms"]
