"""The aligned process readings computed on Spark, kept incrementally in ``silver/process_readings_aligned``.

With the Spark engine, the grid alignment of the historian (the heavy step of the process data
model) runs here instead of in DuckDB; dbt's ``int_process_readings__aligned`` then reads this
Delta table (``LAKEHOUSE_ALIGNMENT_ENGINE=spark``) and everything downstream — the as-of assay
join, ``fct_process_readings``, the gold publication, the features — is unchanged.

The table holds exactly the rows and columns of ``int_process_readings__aligned`` (same
semantics, values within float rounding), ``_source_ingested_at`` included, so dbt's
incremental models see the same watermarks with either engine:

* ``_source_ingested_at`` of a batch = the newest ingestion among its inputs: its MES batch
  record and phases, and every historian reading (``parameter`` not null) of its unit on every
  UTC day its grid window touches — the definition of the dbt model.
* A refresh rebuilds only the batches whose ``_source_ingested_at`` is newer than the
  watermark stored in the table's last commit (that is: a new or re-exported MES record, or
  new readings on a day the window touches), and replaces exactly their partitions (the table
  is partitioned by ``batch_id``) in one Delta commit. A change of grid, parameters or unit
  conversions (the ``spec`` in the commit metadata) rebuilds everything.
* Readings are staged like ``stg_historian__readings``: rows without ``parameter`` dropped, the
  same reading (unit, tag, ts) ingested twice counts once (latest ``_ingested_at``, then
  ``_source_file``), values converted to canonical units (``unit_conversions``, the dbt var of
  the same name), then only good readings (quality 192) enter the grid.

Plain Python + PySpark; the Dagster wiring is in ``assets/transform/dbt_models.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakehouse.transforms.alignment import GOOD_QUALITY, PARAMETERS

SILVER_LAYER = "silver"
ALIGNED_TABLE = "process_readings_aligned"
WATERMARK_KEY = "lakehouse.watermark"
SPEC_KEY = "lakehouse.alignment_spec"


@dataclass
class AlignedRefresh:
    """What one refresh did."""

    uri: str
    mode: str  # full | incremental | unchanged
    batches_total: int  # batches with an alignment window
    batches_rebuilt: list[str] = field(default_factory=list)
    rows_written: int = 0
    version: int | None = None
    watermark: str | None = None


def alignment_spec(grid_minutes: int, parameters: Sequence[str], unit_conversions: Mapping[str, Any]) -> str:
    """Fingerprint of everything that shapes the aligned rows (a change rebuilds every batch)."""
    blob = json.dumps({"grid_minutes": int(grid_minutes), "parameters": list(parameters),
                       "unit_conversions": {k: list(v) for k, v in sorted(unit_conversions.items())}},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def canonical_value_sql(unit_conversions: Mapping[str, Sequence[str]], value: str = "value",
                        unit: str = "eng_unit") -> str:
    """The ``canonical_value`` dbt macro as a Spark SQL expression (same arithmetic, IEEE doubles)."""
    whens = " ".join(
        f"WHEN '{src}' THEN {conv[1].replace('x', f'(CAST({value} AS DOUBLE))')}"
        for src, conv in unit_conversions.items())
    if not whens:
        return f"CAST({value} AS DOUBLE)"
    return f"CAST(CASE lower(trim({unit})) {whens} ELSE CAST({value} AS DOUBLE) END AS DOUBLE)"


def _format_us(us: int) -> str:
    """µs since the epoch as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), the watermark's text form."""
    from datetime import UTC, datetime, timedelta

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))).strftime("%Y-%m-%d %H:%M:%S.%f")


def _parse_us(text: str) -> int:
    from datetime import UTC, datetime

    t = datetime.fromisoformat(text)
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _last_commit(dt) -> tuple[str | None, str | None]:
    """(watermark, spec) of the newest refresh commit: custom commit metadata of a delta-rs
    commit, or the JSON ``userMetadata`` of a delta-spark commit (``use_delta_spark_jars``)."""
    return last_refresh(dt.history(20))


def last_refresh(history: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    for commit in history:
        meta: Mapping[str, Any] = commit
        if WATERMARK_KEY not in meta and isinstance(commit.get("userMetadata"), str):
            try:
                meta = json.loads(commit["userMetadata"])
            except ValueError:
                continue
        if isinstance(meta, Mapping) and WATERMARK_KEY in meta:
            return str(meta[WATERMARK_KEY]) or None, (str(meta[SPEC_KEY]) if SPEC_KEY in meta else None)
    return None, None


def _windows(batches, phases):
    """Bioreactor batch windows that get aligned rows, with ``mes_ingested_at``."""
    from pyspark.sql import functions as F

    from lakehouse.spark.transforms import bioreactor_windows_spark

    return bioreactor_windows_spark(batches, phases).where(
        F.col("inoculation_ts").isNotNull() & F.col("harvest_ts").isNotNull()
        & (F.col("harvest_ts") >= F.col("inoculation_ts")))


def _window_days(windows, grid_us: int):
    """(batch_id, unit_id, date) for every UTC day from the first grid bucket to harvest + grid."""
    from pyspark.sql import functions as F

    from lakehouse.spark.transforms import BUCKET_ORIGIN_US

    inoc = F.unix_micros(F.col("inoculation_ts").cast("timestamp"))
    start = inoc - F.pmod(inoc - F.lit(BUCKET_ORIGIN_US), F.lit(grid_us))
    end = F.unix_micros(F.col("harvest_ts").cast("timestamp")) + F.lit(grid_us)
    return windows.select(
        "batch_id", "unit_id",
        F.explode(F.sequence(F.to_date(F.timestamp_micros(start)), F.to_date(F.timestamp_micros(end)))).alias("date"))


def _empty_aligned(spark, parameters: Sequence[str]):
    from pyspark.sql import types as T

    fields = [T.StructField("batch_id", T.StringType()), T.StructField("unit_id", T.StringType()),
              T.StructField("ts", T.TimestampType()), T.StructField("culture_age_h", T.DoubleType()),
              T.StructField("maturity_pct", T.DoubleType()), T.StructField("phase", T.StringType())]
    fields += [T.StructField(p, T.DoubleType()) for p in parameters]
    fields += [T.StructField("_source_ingested_at", T.TimestampType())]
    return spark.createDataFrame([], T.StructType(fields))


def refresh_aligned_readings(
    lake: Any,
    spark: Any,
    *,
    grid_minutes: int = 1,
    parameters: Sequence[str] = PARAMETERS,
    unit_conversions: Mapping[str, Sequence[str]] | None = None,
    full_refresh: bool = False,
    use_delta_spark_jars: bool = False,
) -> AlignedRefresh:
    """Bring ``silver/process_readings_aligned`` up to date with the bronze tables of ``lake``."""
    from deltalake import DeltaTable
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from lakehouse.spark.delta_bridge import read_delta, write_delta
    from lakehouse.spark.transforms import align_readings_spark

    conversions = dict(unit_conversions or {})
    parameters = list(parameters)
    opts = lake.delta_storage_options()
    jars = {"use_delta_spark_jars": use_delta_spark_jars}
    uri = lake.uri(SILVER_LAYER, ALIGNED_TABLE)
    spec = alignment_spec(grid_minutes, parameters, conversions)
    grid_us = int(grid_minutes) * 60_000_000

    existing = DeltaTable(uri, storage_options=opts or None) if lake.delta_exists(uri) else None
    old_wm, old_spec = _last_commit(existing) if existing is not None else (None, None)
    incremental = existing is not None and not full_refresh and old_spec == spec and old_wm is not None

    def bronze(name: str, columns: list[str] | None = None):
        t_uri = lake.uri("bronze", name)
        return read_delta(spark, t_uri, opts, columns=columns, **jars) if lake.delta_exists(t_uri) else None

    batches, phases = bronze("mes_batches"), bronze("mes_phases")
    readings = bronze("historian_readings", ["ts", "unit_id", "tag", "parameter", "value", "eng_unit", "quality",
                                             "date", "_source_file", "_ingested_at"])
    if batches is None or phases is None:
        if existing is None:  # a young lake: an empty table, so that dbt reads zero rows
            res = write_delta(_empty_aligned(spark, parameters), uri, opts, mode="overwrite",
                              partition_by=["batch_id"], commit_metadata={WATERMARK_KEY: "", SPEC_KEY: spec}, **jars)
            return AlignedRefresh(uri, "full", 0, version=res.version if res else None)
        return AlignedRefresh(uri, "unchanged", 0, version=existing.version(), watermark=old_wm)

    windows = _windows(batches, phases).cache()
    try:
        days = _window_days(windows, grid_us)
        if readings is not None:
            readings = readings.where(F.col("parameter").isNotNull())
            loads = readings.groupBy("unit_id", "date").agg(F.max("_ingested_at").alias("r_ing"))
            batch_loads = (days.join(loads, ["unit_id", "date"], "inner")
                           .groupBy("batch_id").agg(F.max("r_ing").alias("r_ing")))
        else:
            batch_loads = windows.select("batch_id", F.lit(None).cast("timestamp").alias("r_ing")).limit(0)
        sources = (windows.join(batch_loads, "batch_id", "left")
                   .select("batch_id", F.unix_micros(F.greatest(
                       F.col("mes_ingested_at"), F.coalesce(F.col("r_ing"), F.col("mes_ingested_at")))).alias("us")))
        per_batch: dict[str, int] = {r["batch_id"]: int(r["us"]) for r in sources.collect()}
        old_us = _parse_us(old_wm) if incremental else None
        rebuild = sorted(b for b, us in per_batch.items() if old_us is None or us > old_us)
        top = max([*per_batch.values(), *([old_us] if old_us is not None else [])], default=None)
        new_wm = _format_us(top) if top is not None else ""
        meta = {WATERMARK_KEY: new_wm, SPEC_KEY: spec, "lakehouse.operation": "align-spark",
                "lakehouse.batches_rebuilt": str(len(rebuild))}
        if incremental and not rebuild:
            return AlignedRefresh(uri, "unchanged", len(per_batch), [], 0, existing.version(), old_wm)
        if not rebuild:
            res = write_delta(_empty_aligned(spark, parameters), uri, opts, mode="overwrite",
                              partition_by=["batch_id"], commit_metadata=meta, **jars)
            return AlignedRefresh(uri, "full", 0, [], 0, res.version if res else None, new_wm)

        selected = spark.createDataFrame([(b,) for b in rebuild], "batch_id string")
        w_sel = windows.join(F.broadcast(selected), "batch_id")
        if readings is not None:
            wanted_days = days.join(F.broadcast(selected), "batch_id").select("unit_id", "date").distinct()
            dates = sorted({r["date"] for r in wanted_days.select("date").distinct().collect()})
            r = readings.where(F.col("date").isin(dates)).join(F.broadcast(wanted_days), ["unit_id", "date"])
            latest = Window.partitionBy("unit_id", "tag", "ts").orderBy(F.col("_ingested_at").desc(),
                                                                       F.col("_source_file").desc())
            r = (r.withColumn("__rn", F.row_number().over(latest)).where("__rn = 1")
                 .where((F.col("quality") == GOOD_QUALITY) & F.col("parameter").isin(parameters))
                 .select("unit_id", "parameter", F.expr(canonical_value_sql(conversions)).alias("value"),
                         "quality", "ts"))
        else:
            r = spark.createDataFrame([], "unit_id string, parameter string, value double, quality int, ts timestamp")
        aligned = align_readings_spark(r, w_sel.select("batch_id", "unit_id", "inoculation_ts", "harvest_ts"),
                                       grid_minutes, spark, phases=phases.join(F.broadcast(selected), "batch_id"),
                                       parameters=tuple(parameters), dedupe=False)
        src = (spark.createDataFrame([(b, per_batch[b]) for b in rebuild], "batch_id string, us long")
               .select("batch_id", F.timestamp_micros("us").alias("_source_ingested_at")))
        out = aligned.join(F.broadcast(src), "batch_id").select(
            "batch_id", "unit_id", "ts", "culture_age_h", "maturity_pct", "phase", *parameters, "_source_ingested_at")
        if incremental:
            res = write_delta(out, uri, opts, mode="overwrite", partition_by=["batch_id"],
                              partition_filters=[("batch_id", "in", rebuild)], commit_metadata=meta, **jars)
        else:
            res = write_delta(out, uri, opts, mode="overwrite", partition_by=["batch_id"], commit_metadata=meta, **jars)
        return AlignedRefresh(uri, "incremental" if incremental else "full", len(per_batch), rebuild,
                              res.num_records if res else 0, res.version if res else None, new_wm)
    finally:
        windows.unpersist()
