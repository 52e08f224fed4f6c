"""Report assets (group ``reports``): documents people take to a batch review.

* ``["reports", "batch"]`` → ``reports/batch/<batch_id>.html`` and ``.pdf`` in the lake, one per
  batch of ``gold/dim_batches``, read from the gold, golden and score tables (library:
  :mod:`lakehouse.reports.batch`); the asset's metadata links every file. Its check
  ``every_batch_reported`` re-reads the files and fails when a batch has no report or a PDF is
  empty. By hand: ``lakehouse report batch BATCH_ID``.
"""

import dagster as dg

from assets.resources import LakeResource

GROUP = "reports"
BATCH_REPORTS = dg.AssetKey(["reports", "batch"])
# every table the batch report reads, by the asset that writes it
UPSTREAM = [
    dg.AssetKey(k)
    for k in (
        ["gold", "dim_batches"],
        ["gold", "fct_lot_genealogy"],
        ["gold", "fct_chromatography_runs"],
        ["gold", "fct_filtration_runs"],
        ["gold", "fct_process_readings"],
        ["gold", "fct_equipment_health_daily"],
        ["gold", "fct_work_orders"],
        ["golden", "batch_qualification"],
        ["golden", "profile"],
        ["golden", "deviation_scores"],
        ["golden", "alarms"],
        ["scores", "titer"],
        ["scores", "harvest_cqa"],
    )
]
# PdM is optional: a plant with too few failures skips it (features/equipment_health, models/pdm and
# scores/pdm are then not materialized, and Dagster would skip every asset that depends on them).
# The report reads scores/pdm when it exists and says why when it does not; it does not depend on it
# but runs last among the ready steps (low priority), so within one in-process run it sees this
# run's PdM scores.
LAST = {"dagster/priority": "-10"}


def _file_link(uri: str) -> str:
    from lakehouse.reports.render import file_url

    url = file_url(uri)
    return f"[{uri.rsplit('/', 1)[-1]}]({url})"


@dg.asset(
    key=BATCH_REPORTS,
    deps=UPSTREAM,
    op_tags=LAST,
    group_name=GROUP,
    kinds={"html", "pdf"},
    description="Batch report per batch (HTML + PDF): identity, recipe and genealogy; trajectories against the "
    "golden envelope; soft sensor vs lab; T²/SPE, alarms and signals to blame; equipment health; CQAs vs "
    "specs; deviations and work orders.",
)
def batch_reports(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    from lakehouse.reports.batch import REPORT_DIR, SECTIONS, write_batch_reports

    the_lake = lake.get_lake()

    def progress(i: int, n: int, batch_id: str) -> None:
        if i == n or i % 5 == 0:
            context.log.info(f"batch reports: {i}/{n} written (last {batch_id})")

    files = write_batch_reports(the_lake, progress=progress, units=lake.get_plant().catalog.units())
    index = ["| batch | HTML | PDF |", "|---|---|---|"] + [
        f"| {b} | {_file_link(f.html_uri)} | {_file_link(f.pdf_uri)} |" for b, f in files.items()
    ]
    folder = the_lake.uri(*REPORT_DIR)
    return dg.MaterializeResult(
        metadata={
            "n_reports": len(files),
            "report_folder": dg.MetadataValue.path(folder),
            "reports": dg.MetadataValue.md("\n".join(index)),
            "sections": dg.MetadataValue.json(list(SECTIONS)),
            "pdf_kib_total": round(sum(f.pdf_bytes for f in files.values()) / 1024, 1),
        }
    )


@dg.asset_check(asset=BATCH_REPORTS, description="Every batch of gold/dim_batches has a non-empty HTML and PDF report.")
def every_batch_reported(lake: LakeResource) -> dg.AssetCheckResult:
    from lakehouse.reports.batch import REPORT_DIR
    from lakehouse.tables import read_table

    the_lake = lake.get_lake()
    fs = the_lake.filesystem()
    batches = read_table(the_lake, "gold", "dim_batches", columns=["batch_id"]).df["batch_id"].to_list()
    missing = []
    for b in batches:
        for ext in ("html", "pdf"):
            path = the_lake.fs_path(the_lake.uri(*REPORT_DIR, f"{b}.{ext}"))
            if not fs.exists(path) or fs.size(path) == 0:
                missing.append(f"{b}.{ext}")
    return dg.AssetCheckResult(
        passed=bool(batches) and not missing,
        metadata={"batches": len(batches), "missing_or_empty": dg.MetadataValue.json(missing[:50])},
    )


defs = dg.Definitions(assets=[batch_reports], asset_checks=[every_batch_reported])
