"""Bronze table schemas — exactly the columns of ``docs/contracts.md`` (plus lineage).

Every bronze table is append-only and carries the lineage columns ``_source_file``,
``_source_hash``, ``_run_id`` and ``_ingested_at``. ``historian_readings`` is partitioned by
``date`` (UTC day of ``ts``).
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

LINEAGE_FIELDS = [
    pa.field("_source_file", pa.string()),
    pa.field("_source_hash", pa.string()),
    pa.field("_run_id", pa.string()),
    pa.field("_ingested_at", TS),
]
LINEAGE_COLUMNS = [f.name for f in LINEAGE_FIELDS]

SETPOINT_KEYS = [
    "temperature_c",
    "temp_shift_day",
    "temp_shift_c",
    "ph",
    "do_pct",
    "feed_rate_pct_per_day",
    "seed_density_e6_per_ml",
    "working_volume_l",
]


def _s(*fields: tuple[str, pa.DataType], lineage: bool = True) -> pa.Schema:
    out = [pa.field(n, t) for n, t in fields]
    return pa.schema(out + (LINEAGE_FIELDS if lineage else []))


STR, F64, I64, I32, I16 = pa.string(), pa.float64(), pa.int64(), pa.int32(), pa.int16()

BRONZE_SCHEMAS: dict[str, pa.Schema] = {
    "historian_readings": _s(
        ("ts", TS),
        ("unit_id", STR),
        ("tag", STR),
        ("parameter", STR),
        ("value", F64),
        ("eng_unit", STR),
        ("quality", I16),
        ("date", pa.date32()),
    ),
    "lims_results": _s(
        ("sample_id", STR),
        ("batch_id", STR),
        ("sample_time", TS),
        ("result_time", TS),
        ("analyte", STR),
        ("value", F64),
        ("unit", STR),
        ("method", STR),
    ),
    "mes_batches": _s(
        ("batch_id", STR),
        ("record_type", STR),
        ("product", STR),
        ("unit_id", STR),
        ("recipe_id", STR),
        ("status", STR),
        ("start_ts", TS),
        ("end_ts", TS),
        ("output_lot", STR),
        ("setpoints_json", STR),
        *[(k, F64) for k in SETPOINT_KEYS],
    ),
    "mes_phases": _s(
        ("batch_id", STR),
        ("unit_procedure", STR),
        ("operation", STR),
        ("phase", STR),
        ("phase_seq", I32),
        ("start_ts", TS),
        ("end_ts", TS),
    ),
    "mes_materials": _s(
        ("batch_id", STR),
        ("lot_id", STR),
        ("material", STR),
        ("role", STR),
        ("quantity", F64),
        ("unit", STR),
    ),
    "mes_genealogy": _s(
        ("batch_id", STR),
        ("input_lot", STR),
        ("output_lot", STR),
        ("record_type", STR),
    ),
    # deviations QA recorded against a batch (a plant's deviation list, lakehouse import)
    "mes_deviations": _s(
        ("deviation_id", STR),
        ("batch_id", STR),
        ("onset_ts", TS),
        ("category", STR),
        ("description", STR),
        ("opened_ts", TS),
    ),
    "chrom_runs": _s(
        ("run_id", STR),
        ("skid_id", STR),
        ("column_id", STR),
        ("column_cycle", I64),
        ("batch_id", STR),
        ("input_lot", STR),
        ("output_lot", STR),
        ("start", TS),
        ("end", TS),
        ("load_volume_l", F64),
        ("load_titer_g_l", F64),
        ("column_volume_l", F64),
        ("pool_volume_l", F64),
        ("pool_concentration_g_l", F64),
        ("step_yield_pct", F64),
        ("max_pressure_bar", F64),
        ("result", STR),
    ),
    "chrom_curves": _s(
        ("run_id", STR),
        ("skid_id", STR),
        ("volume_ml", F64),
        ("time_s", F64),
        ("uv280_mau", F64),
        ("conductivity_ms_cm", F64),
        ("ph", F64),
        ("pressure_bar", F64),
        ("phase", STR),
    ),
    "filtration_runs": _s(
        ("run_id", STR),
        ("skid_id", STR),
        ("membrane_id", STR),
        ("membrane_use", I64),
        ("input_lot", STR),
        ("output_lot", STR),
        ("start", TS),
        ("end", TS),
        ("diavolumes", F64),
        ("final_concentration_g_l", F64),
        ("step_yield_pct", F64),
        ("mean_flux_lmh", F64),
        ("result", STR),
    ),
    "filtration_curves": _s(
        ("run_id", STR),
        ("skid_id", STR),
        ("time_s", F64),
        ("feed_pressure_bar", F64),
        ("retentate_pressure_bar", F64),
        ("permeate_pressure_bar", F64),
        ("tmp_bar", F64),
        ("permeate_flux_lmh", F64),
        ("conductivity_ms_cm", F64),
        ("retentate_volume_l", F64),
        ("phase", STR),
    ),
    "cmms_work_orders": _s(
        ("work_order_id", STR),
        ("equipment_id", STR),
        ("equipment_type", STR),
        ("work_type", STR),
        ("failure_mode", STR),
        ("priority", STR),
        ("opened_at", TS),
        ("closed_at", TS),
        ("description", STR),
    ),
}

QUARANTINE_TABLE = "_quarantine"
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("table", STR),
        pa.field("source_file", STR),
        pa.field("source_hash", STR),
        pa.field("row_number", I64),
        pa.field("reason", STR),
        pa.field("raw_record", STR),
        pa.field("_run_id", STR),
        pa.field("_ingested_at", TS),
    ]
)

# Bookkeeping (not part of the data contract's entity list; documented in docs/ingestion.md):
# one row per ingested source-file version. It is a *cache* for cheap "what is new?" checks
# (sensor, assets); exactly-once itself rests on the Delta app transactions committed with
# the rows, so a crash before this log is written loses nothing and duplicates nothing.
INGEST_LOG_TABLE = "_ingest_log"
INGEST_LOG_SCHEMA = pa.schema(
    [
        pa.field("system", STR),
        pa.field("source_file", STR),
        pa.field("rel_path", STR),
        pa.field("source_hash", STR),
        pa.field("size", I64),
        pa.field("fingerprint", STR),
        pa.field("tables", STR),
        pa.field("rows_read", I64),
        pa.field("rows_bronze", I64),
        pa.field("rows_quarantined", I64),
        pa.field("file_rejected", pa.bool_()),
        pa.field("_run_id", STR),
        pa.field("_ingested_at", TS),
    ]
)

PARTITION_BY: dict[str, list[str]] = {"historian_readings": ["date"]}

# Integrity of the raw layer, enforced by the Delta protocol rather than by convention:
# * append-only: delete, update and overwrite commits are refused (compaction is allowed: it
#   rewrites files without changing data);
# * removed files stay for at least RETENTION_FLOOR_HOURS (vacuum below it is refused), so
#   every version of the last week stays readable;
# * the commit log is never cleaned up automatically: the history of what was ingested when,
#   with which config, is the audit trail (maintenance may clean it only when told to).
# And one for speed: a checkpoint every 10 commits (Delta's own default; delta-rs uses 100).
# Every commit of an ingestion opens the table and looks its file ids up
# (``transaction_version``), and each of those replays every JSON commit since the last
# checkpoint — one object-store GET each. With 100, a busy table costs up to 2 × 100 GETs per
# commit; with 10, at most 2 × 10 (bench/bench_integrity.py, docs/ingestion.md "Performance").
RETENTION_FLOOR_HOURS = 168
CHECKPOINT_INTERVAL = 10
BRONZE_TABLE_PROPERTIES: dict[str, str] = {
    "delta.appendOnly": "true",
    "delta.deletedFileRetentionDuration": f"interval {RETENTION_FLOOR_HOURS} hours",
    "delta.logRetentionDuration": "interval 36500 days",
    "delta.enableExpiredLogCleanup": "false",
    "delta.checkpointInterval": str(CHECKPOINT_INTERVAL),
}

ALL_TABLES = [*BRONZE_SCHEMAS, QUARANTINE_TABLE, INGEST_LOG_TABLE]


def schema_of(table: str) -> pa.Schema:
    """Arrow schema of a bronze table, the quarantine or the ingest log."""
    if table == QUARANTINE_TABLE:
        return QUARANTINE_SCHEMA
    if table == INGEST_LOG_TABLE:
        return INGEST_LOG_SCHEMA
    return BRONZE_SCHEMAS[table]


def data_columns(table: str) -> list[str]:
    """Columns of a bronze table without the lineage columns."""
    return [n for n in BRONZE_SCHEMAS[table].names if n not in LINEAGE_COLUMNS]
