"""bronze/_quarantine summary and bronze maintenance (compaction, checkpoints, vacuum)."""

import dagster as dg
import polars as pl

from assets.ingest._common import GROUP, bronze_key
from assets.resources import LakeResource
from lakehouse.ingest.maintenance import maintain
from lakehouse.ingest.schemas import ALL_TABLES, BRONZE_SCHEMAS, QUARANTINE_TABLE, RETENTION_FLOOR_HOURS
from lakehouse.ingest.writer import table_uri

QUARANTINE_KEY = bronze_key(QUARANTINE_TABLE)
GROWTH_CHECK = "quarantine_growth"


@dg.asset(
    key=QUARANTINE_KEY,
    group_name=GROUP,
    deps=[bronze_key(t) for t in BRONZE_SCHEMAS],
    check_specs=[
        dg.AssetCheckSpec(
            GROWTH_CHECK,
            asset=QUARANTINE_KEY,
            blocking=False,
            description="WARN when bronze/_quarantine grew since the last summary.",
        )
    ],
    kinds={"delta"},
    description="Rows and whole files set aside by ingestion (reason + original values). "
    "Written by every ingestion asset; this asset summarises it.",
)
def quarantine_summary(context: dg.AssetExecutionContext, lake: LakeResource):
    the_lake = lake.get_lake()
    uri = table_uri(the_lake, QUARANTINE_TABLE)
    if the_lake.delta_exists(uri):
        q = pl.from_arrow(the_lake.read_delta(uri, columns=["table", "reason", "row_number"]))
    else:
        q = pl.DataFrame(schema={"table": pl.Utf8, "reason": pl.Utf8, "row_number": pl.Int64})
    total = q.height
    by_table = q.group_by("table").len().sort("len", descending=True)
    files = q.filter(pl.col("row_number").is_null()).height
    reasons = (
        q.with_columns(pl.col("reason").str.replace(r" \(.*$", ""))
        .group_by("table", "reason")
        .len()
        .sort("len", descending=True)
        .head(30)
    )
    md = ["| table | reason | rows |", "|---|---|---|"] + [
        f"| {t} | {r.replace('|', '/')} | {n} |" for t, r, n in reasons.iter_rows()
    ]
    prev = context.instance.get_latest_materialization_event(QUARANTINE_KEY)
    prev_total = None
    if prev is not None and prev.asset_materialization is not None:
        v = prev.asset_materialization.metadata.get("total_rows")
        prev_total = int(v.value) if v is not None else None
    grew = prev_total is not None and total > prev_total
    yield dg.MaterializeResult(
        metadata={
            "total_rows": total,
            "whole_files": files,
            "by_table": dg.MetadataValue.json(dict(by_table.iter_rows())),
            "top_reasons": dg.MetadataValue.md("\n".join(md)),
            "table_uri": dg.MetadataValue.path(uri),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GROWTH_CHECK,
                passed=not grew,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "total_rows": total,
                    "previous_total_rows": prev_total if prev_total is not None else -1,
                    "new_rows": total - (prev_total or 0) if prev_total is not None else total,
                },
            )
        ],
    )


class MaintenanceConfig(dg.Config):
    compact: bool = True
    checkpoint: bool = True
    vacuum: bool = True
    # vacuum keeps files removed less than this long ago (time travel, readers); >= 168
    retention_hours: int = RETENTION_FLOOR_HOURS
    # clean commit-log entries older than this; None (default): keep the history for the audit
    log_retention_days: int | None = None


@dg.asset(
    key=bronze_key("_maintenance"),
    group_name=GROUP,
    kinds={"delta"},
    deps=[bronze_key(t) for t in ALL_TABLES if t != "_ingest_log"],
    description="Compacts small files of every bronze table, writes checkpoints and vacuums "
    "(file counts before/after in metadata). Scheduled daily.",
)
def bronze_maintenance(context: dg.AssetExecutionContext, lake: LakeResource, config: MaintenanceConfig):
    if config.retention_hours < RETENTION_FLOOR_HOURS:
        raise dg.Failure(
            f"retention_hours={config.retention_hours} is below the floor of "
            f"{RETENTION_FLOOR_HOURS} h: versions of the last week must stay readable"
        )
    out = maintain(
        lake.get_lake(),
        compact=config.compact,
        checkpoint=config.checkpoint,
        vacuum=config.vacuum,
        retention_hours=config.retention_hours,
        log_retention_days=config.log_retention_days,
    )
    before = sum(r["files_before"] for r in out)
    after = sum(r["files_after"] for r in out)
    context.log.info("bronze maintenance: %d -> %d data files", before, after)
    return dg.MaterializeResult(
        metadata={
            "files_before": before,
            "files_after": after,
            "tables": dg.MetadataValue.json({r["table"]: {k: v for k, v in r.items() if k != "table"} for r in out}),
        }
    )


maintenance_job = dg.define_asset_job("bronze_maintenance_job", selection=[bronze_key("_maintenance")])
maintenance_schedule = dg.ScheduleDefinition(
    name="bronze_maintenance_daily",
    job=maintenance_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
