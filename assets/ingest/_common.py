"""Shared helpers of the ingestion assets: run the library, turn the report into metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import dagster as dg

from lakehouse.ingest.readers import IngestContext, SourceFile
from lakehouse.ingest.tagmap import load_tagmap
from lakehouse.ingest.writer import IngestReport, ingest_landing
from lakehouse.storage import Lake

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TAGMAP = "config/tagmaps/twin.yaml"
QUARANTINE_CHECK = "quarantine_not_growing"
GROUP = "bronze"


def bronze_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["bronze", table])


# the upstream of every ingestion asset: the landing zone (assets/landing: ["landing", "site"])
DEFAULT_LANDING_DEPS: tuple[tuple[str, ...], ...] = (("landing", "site"),)


def landing_deps(deps) -> list[dg.AssetKey]:
    return [dg.AssetKey(list(d)) for d in deps]


def resolve_path(p: str) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def make_context(tagmap: str | None = DEFAULT_TAGMAP) -> IngestContext:
    return IngestContext(tagmap=load_tagmap(resolve_path(tagmap) if tagmap else None))


def quarantine_check_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        QUARANTINE_CHECK,
        asset=bronze_key(table),
        blocking=False,
        description="WARN when this materialization set rows or files aside in bronze/_quarantine.",
    )


def run_ingest(
    context: dg.AssetExecutionContext,
    lake: Lake,
    systems: Sequence[str],
    ctx: IngestContext,
    predicate: Callable[[SourceFile], bool] | None = None,
) -> IngestReport:
    report = ingest_landing(lake, systems, run_id=context.run.run_id, ctx=ctx, predicate=predicate)
    context.log.info(
        "ingested %s: %d files new, %d unchanged, %d already committed, %d rejected; rows %s; quarantined %s",
        ",".join(systems),
        report.files_ingested,
        report.files_skipped_unchanged,
        report.files_already_committed,
        len(report.files_rejected),
        dict(report.rows_written),
        dict(report.rows_quarantined),
    )
    return report


def _reasons_md(report: IngestReport) -> str:
    if not report.reasons:
        return "nothing set aside"
    lines = ["| reason | rows |", "|---|---|"]
    for reason, n in report.reasons.most_common(20):
        lines.append(f"| {reason.replace('|', '/')} | {n} |")
    return "\n".join(lines)


def table_metadata(report: IngestReport, table: str, lake: Lake) -> dict:
    md = {
        "table_uri": dg.MetadataValue.path(lake.table_uri("bronze", table)),
        "rows_read": report.rows_read[table],
        "rows_valid": report.rows_valid[table],
        "rows_quarantined": report.rows_quarantined[table],
        "rows_appended": report.rows_written[table],
        "files_listed": report.files_listed,
        "files_ingested": report.files_ingested,
        "files_unchanged_skipped": report.files_skipped_unchanged,
        "files_already_committed": report.files_already_committed,
        "files_rejected": len(report.files_rejected),
        "quarantine_reasons": dg.MetadataValue.md(_reasons_md(report)),
        "seconds": round(report.seconds, 3),
    }
    if table in report.versions:
        md["delta_version"] = report.versions[table]
    if report.files_rejected:
        md["rejected_files"] = dg.MetadataValue.json(report.files_rejected[:50])
    if report.files_ignored:
        md["ignored_files"] = dg.MetadataValue.json(report.files_ignored[:50])
    return md


def results(report: IngestReport, tables: Iterable[str], lake: Lake, extra: dict | None = None):
    """MaterializeResult + WARN check result per table."""
    for t in tables:
        n_q = report.rows_quarantined[t]
        yield dg.MaterializeResult(
            asset_key=bronze_key(t),
            metadata={**table_metadata(report, t, lake), **(extra or {})},
            check_results=[
                dg.AssetCheckResult(
                    check_name=QUARANTINE_CHECK,
                    asset_key=bronze_key(t),
                    passed=n_q == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        "quarantined_rows": n_q,
                        "reasons": dg.MetadataValue.md(_reasons_md(report)) if n_q else "none",
                    },
                    description=None if n_q == 0 else f"{n_q} rows/files of {t} set aside in bronze/_quarantine",
                )
            ],
        )
