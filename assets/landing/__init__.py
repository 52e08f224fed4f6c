"""The landing zone: the twin site's exports (embedded default) or a plant's own files."""

import json
from collections import Counter

import dagster as dg

from assets.resources import LakeResource, SiteResource

SYSTEMS = ("historian", "lims", "mes", "chromatography", "filtration", "cmms")
MANIFEST = "landing/_truth/site.json"


def _inventory(fs, root: str) -> Counter:
    counts: Counter = Counter()
    for system in SYSTEMS:
        base = f"{root}/landing/{system}"
        if fs.exists(base):
            counts[system] = sum(1 for p in fs.find(base) if not p.rsplit("/", 1)[-1].startswith("."))
    return counts


@dg.asset(
    key=["landing", "site"],
    group_name="landing",
    kinds={"python", "csv"},
    description="Source-system exports in the landing zone. With the twin as source, simulates "
    "the default biologics site (bioreactors, Protein A, UF/DF, LIMS, MES, CMMS) once per "
    "configuration; with an external source, inventories the plant's files.",
)
def landing_site(context: dg.AssetExecutionContext, lake: LakeResource, site: SiteResource) -> dg.MaterializeResult:
    lk = lake.get_lake()
    lk.ensure_bucket()
    fs = lk.filesystem()
    root = lk.fs_path(lk.root)
    wanted = {
        "start": site.start_date,
        "days": site.days,
        "bioreactors": site.bioreactors,
        "interval_s": site.interval_s,
        "full_resolution_days": site.full_resolution_days,
        "history_interval_s": site.history_interval_s,
        "seed": site.seed,
    }
    meta: dict = {"source": site.source}
    if site.source == "twin":
        manifest_path = f"{root}/{MANIFEST}"
        existing = json.loads(fs.cat(manifest_path)) if fs.exists(manifest_path) else None
        if existing == wanted:
            context.log.info("landing zone already holds this twin site: not simulated again")
            meta["simulated"] = False
        else:
            from twin.site import simulate_site

            cfg = site.site_config()

            def progress(done: int, total: int) -> None:
                if done == total or done % 50 == 0:
                    context.log.info(f"simulating site: {done}/{total} files")

            summary = simulate_site(
                lk.root, cfg, storage_options=lk.fsspec_storage_options() or None, progress=progress
            )
            fs.pipe(manifest_path, json.dumps(wanted).encode())
            meta.update(
                {
                    "simulated": True,
                    "batches": summary.batches,
                    "deviations": summary.deviations,
                    "failures": summary.failures,
                    "historian_readings": summary.historian_readings,
                    "sim_seconds": round(summary.seconds, 2),
                    "sim_readings_per_s": round(summary.readings_per_s),
                }
            )
    elif site.source != "external":
        raise dg.Failure(f"unknown site source {site.source!r}: use 'twin' or 'external'")
    counts = _inventory(fs, root)
    meta.update({f"files/{k}": v for k, v in sorted(counts.items())})
    meta["files_total"] = sum(counts.values())
    return dg.MaterializeResult(metadata=meta)


defs = dg.Definitions(assets=[landing_site])
