"""Spark implementations of the heavy time-series transforms (same rows as the default engine).

:func:`align_readings_spark` is the contract's alignment (see
:mod:`lakehouse.transforms.alignment`, the single-node reference, for the rules). Times are
handled as integer microseconds since the epoch, so bucketing, grid generation and culture
age are exact and identical to DuckDB's ``time_bucket`` (origin 2000-01-03T00:00Z) and
``date_diff('microsecond', …) / 3.6e9``.

Plan: good readings of the wanted parameters → (optional de-duplication of repeated
ingestions) → keep only readings inside some window of their unit (broadcast range join
with one row per unit) → conditional aggregation per (unit, bucket) (``avg(CASE WHEN …)``, no
``pivot()``) → left join onto the generated grid → forward fill with
``last(…, ignorenulls) OVER (PARTITION BY batch_id ORDER BY ts)`` → phase by an as-of lookup
in the batch's (broadcast) sorted phase list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lakehouse.transforms.grid import (
    GOOD_QUALITY,
    US_PER_HOUR,
    default_parameters,
    grid_us,
    phase_case_sql,
    phase_codes,
)

# DuckDB's time_bucket origin for minute/hour/day widths: 2000-01-03T00:00:00Z (a Monday)
BUCKET_ORIGIN_US = 946_857_600_000_000

__all__ = ["align_bronze_spark", "align_readings_spark", "batch_windows_spark", "bioreactor_windows_spark", "to_spark"]


def to_spark(spark: Any, data: Any):
    """A Spark DataFrame from a Spark DataFrame, Arrow table, polars or pandas frame."""
    if data is None:
        return None
    from pyspark.sql import DataFrame as SparkDataFrame

    if isinstance(data, SparkDataFrame):
        return data
    if spark is None:
        raise ValueError("engine='spark' needs a SparkSession (spark=…) for non-Spark inputs")
    if type(data).__module__.startswith("polars"):
        data = data.to_arrow()
    if isinstance(data, pa.Table):
        # Spark wants plain string/binary (polars hands out string_view / large_string)
        fields = []
        for f in data.schema:
            t = f.type
            if t in (pa.large_string(), pa.string_view()):
                t = pa.string()
            elif t in (pa.large_binary(), pa.binary_view()):
                t = pa.binary()
            elif pa.types.is_timestamp(t) and t.tz is not None:
                t = pa.timestamp("us", tz="UTC")
            fields.append(f.with_type(t))
        data = data.cast(pa.schema(fields))
    return spark.createDataFrame(data)


def _bucket(col_us):
    """time_bucket(grid, ts) on µs since the epoch, aligned like DuckDB (origin 2000-01-03)."""
    from pyspark.sql import functions as F

    return col_us - F.pmod(col_us - F.lit(BUCKET_ORIGIN_US), F.col("__g_us"))


def bioreactor_windows_spark(mes_batches: Any, mes_phases: Any, spark: Any = None):
    """Every bioreactor batch with ``inoculation_ts``, ``harvest_ts`` (null when the phase is
    missing) and ``mes_ingested_at`` (newest ingestion of its record and phases; null without
    lineage columns) — ``int_batches__windows``. The latest ingested version of a record wins,
    then only bioreactor records are kept (as ``stg_mes__batches``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    b = to_spark(spark, mes_batches)
    p = _dedupe_phases(to_spark(spark, mes_phases))
    lineage = "_ingested_at" in b.columns
    if lineage:
        order = [F.col("_ingested_at").desc()] + ([F.col("_source_file").desc()] if "_source_file" in b.columns else [])
        b = b.withColumn("__rn", F.row_number().over(Window.partitionBy("batch_id").orderBy(*order))).where("__rn = 1")
    b = b.where(F.lower("record_type") == "bioreactor").select(
        F.col("batch_id").cast("string").alias("batch_id"),
        F.col("unit_id").cast("string").alias("unit_id"),
        (F.col("_ingested_at") if lineage else F.lit(None).cast("timestamp")).alias("b_ing"),
    )
    p_ing = F.max("_ingested_at") if "_ingested_at" in p.columns else F.lit(None).cast("timestamp")
    ms = p.groupBy("batch_id").agg(
        F.min(F.when(F.lower("phase") == "inoculate", F.col("start_ts"))).alias("inoculation_ts"),
        F.min(F.when(F.lower("phase") == "harvest", F.col("start_ts"))).alias("harvest_ts"),
        p_ing.alias("p_ing"),
    )
    return b.join(ms, "batch_id", "left").select(
        "batch_id",
        "unit_id",
        "inoculation_ts",
        "harvest_ts",
        F.greatest(F.col("b_ing"), F.coalesce(F.col("p_ing"), F.col("b_ing"))).alias("mes_ingested_at"),
    )


def batch_windows_spark(mes_batches: Any, mes_phases: Any, spark: Any = None):
    """Spark version of :func:`lakehouse.transforms.alignment.batch_windows`."""
    return (
        bioreactor_windows_spark(mes_batches, mes_phases, spark)
        .select("batch_id", "unit_id", "inoculation_ts", "harvest_ts")
        .orderBy("batch_id")
    )


def _dedupe_phases(p):
    """As ``stg_mes__phases``: latest ingested version of a record, one row per phase_seq."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if "_ingested_at" not in p.columns:
        return p
    p = (
        p.withColumn("__latest", F.max("_ingested_at").over(Window.partitionBy("batch_id")))
        .where(F.col("_ingested_at") == F.col("__latest"))
        .drop("__latest")
    )
    seq = "phase_seq" if "phase_seq" in p.columns else "phase"
    order = ([F.col("_source_file").desc()] if "_source_file" in p.columns else []) + [F.col("start_ts")]
    return (
        p.withColumn("__rn", F.row_number().over(Window.partitionBy("batch_id", seq).orderBy(*order)))
        .where("__rn = 1")
        .drop("__rn")
    )


def align_readings_spark(
    readings: Any,
    batch_windows: Any,
    grid_minutes: int = 1,
    spark: Any = None,
    *,
    phases: Any = None,
    parameters: Sequence[str] | None = None,
    dedupe: bool | None = None,
    grid_seconds: int | None = None,
    state_parameters: Sequence[str] = (),
    phase_signal: Any = None,
):
    """The aligned wide table as a Spark DataFrame (lazy); same rows/values as the default
    engine (arguments: :func:`lakehouse.transforms.alignment.align_readings`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    r = to_spark(spark, readings)
    w = to_spark(spark, batch_windows)
    spark = spark or r.sparkSession
    parameters = default_parameters() if parameters is None else tuple(parameters)
    states = {p for p in state_parameters if p in parameters}
    phase_sig = phase_codes(phase_signal)
    g_us = grid_us(grid_minutes, grid_seconds)
    g = F.lit(g_us)
    if dedupe is None:
        dedupe = "_ingested_at" in r.columns

    # -- windows (small): µs bounds of the grid
    w = (
        w.where(
            F.col("inoculation_ts").isNotNull()
            & F.col("harvest_ts").isNotNull()
            & (F.col("harvest_ts") >= F.col("inoculation_ts"))
        )
        .select(
            F.col("batch_id").cast("string").alias("batch_id"),
            F.col("unit_id").cast("string").alias("unit_id"),
            F.unix_micros(F.col("inoculation_ts").cast("timestamp")).alias("inoc_us"),
            F.unix_micros(F.col("harvest_ts").cast("timestamp")).alias("harv_us"),
        )
        .withColumn("__g_us", g)
    )
    w = w.withColumn("gs_us", _bucket(F.col("inoc_us"))).withColumn("ge_us", _bucket(F.col("harv_us"))).drop("__g_us")
    unit_span = w.groupBy("unit_id").agg(F.min("gs_us").alias("lo"), (F.max("ge_us") + g).alias("hi"))

    # -- readings: good quality, wanted parameters, inside some window of the unit
    r = r.where((F.col("quality") == GOOD_QUALITY) & F.col("parameter").isin(list(parameters)))
    if dedupe:
        key = "tag" if "tag" in r.columns else "parameter"
        order = [F.col("_ingested_at").desc()] + ([F.col("_source_file").desc()] if "_source_file" in r.columns else [])
        r = r.withColumn("__rn", F.row_number().over(Window.partitionBy("unit_id", key, "ts").orderBy(*order))).where(
            "__rn = 1"
        )
    r = r.select(
        F.col("unit_id").cast("string").alias("unit_id"),
        "parameter",
        F.col("value").cast("double").alias("value"),
        F.unix_micros(F.col("ts").cast("timestamp")).alias("ts_us"),
    )

    def step_value(p: str):
        """Mean of the step's readings; a state signal: its last reading (max_by over time)."""
        if p in states:
            return F.max_by(F.col("value"), F.when(F.col("parameter") == p, F.col("ts_us"))).alias(p)
        return F.avg(F.when(F.col("parameter") == p, F.col("value"))).alias(p)

    u = F.broadcast(unit_span).alias("u")
    r = (
        r.alias("r")
        .join(
            u,
            (F.col("r.unit_id") == F.col("u.unit_id"))
            & (F.col("r.ts_us") >= F.col("u.lo"))
            & (F.col("r.ts_us") < F.col("u.hi")),
        )
        .select("r.unit_id", "r.parameter", "r.value", "r.ts_us")
    )
    step = (
        r.withColumn("__g_us", g)
        .withColumn("bucket_us", _bucket(F.col("ts_us")))
        .groupBy("unit_id", "bucket_us")
        .agg(F.count(F.lit(1)).alias("__n"), *[step_value(p) for p in parameters])
        .drop("__n")
    )

    # -- grid, gaps filled forward within the batch
    grid = w.select(
        "batch_id",
        "unit_id",
        "inoc_us",
        "harv_us",
        F.explode(F.sequence(F.col("gs_us"), F.col("ge_us"), g)).alias("bucket_us"),
    )
    joined = grid.join(step, ["unit_id", "bucket_us"], "left")
    so_far = (
        Window.partitionBy("batch_id").orderBy("bucket_us").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    carried = joined.select(
        "batch_id",
        "unit_id",
        "bucket_us",
        "inoc_us",
        "harv_us",
        *[F.last(p, ignorenulls=True).over(so_far).alias(p) for p in parameters],
    )

    # -- phase: from the carried state code, or an as-of lookup in the batch's sorted phase list
    #    (broadcast, no range join)
    if phase_sig is not None:
        phase = F.expr(phase_case_sql(f"`{phase_sig[0]}`", phase_sig[1]))
    elif phases is not None:
        ph = _dedupe_phases(to_spark(spark, phases))
        ph = (
            ph.where(F.col("end_ts").isNull() | (F.col("end_ts") > F.col("start_ts")))
            .select(
                "batch_id",
                F.struct(
                    F.unix_micros(F.col("start_ts").cast("timestamp")).alias("s"),
                    F.unix_micros(F.col("end_ts").cast("timestamp")).alias("e"),
                    F.col("phase").cast("string").alias("phase"),
                ).alias("p"),
            )
            .groupBy("batch_id")
            .agg(F.array_sort(F.collect_list("p")).alias("__phases"))
        )
        carried = carried.join(F.broadcast(ph), "batch_id", "left")
        started = F.filter(F.coalesce(F.col("__phases"), F.array()), lambda x: x["s"] <= F.col("bucket_us"))
        cur = F.try_element_at(started, F.lit(-1))
        phase = F.when(cur["e"].isNull() | (F.col("bucket_us") < cur["e"]), cur["phase"])
    else:
        phase = F.lit(None).cast("string")

    age = (F.col("bucket_us") - F.col("inoc_us")) / F.lit(US_PER_HOUR)
    dur = (F.col("harv_us") - F.col("inoc_us")) / F.lit(US_PER_HOUR)
    return carried.select(
        "batch_id",
        "unit_id",
        F.timestamp_micros("bucket_us").alias("ts"),
        age.alias("culture_age_h"),
        (F.lit(100.0) * age / F.when(dur != 0, dur)).alias("maturity_pct"),
        phase.alias("phase"),
        *[F.col(p).cast("double").alias(p) for p in parameters],
    )


def align_bronze_spark(
    lake: Any,
    spark: Any,
    grid_minutes: int = 1,
    *,
    use_delta_spark_jars: bool = False,
    parameters: Sequence[str] | None = None,
):
    """``fct_process_readings`` rows on Spark straight from the bronze Delta tables of ``lake``.

    Reads ``bronze/historian_readings`` (only the columns the alignment needs),
    ``bronze/mes_batches`` and ``bronze/mes_phases`` through the Delta bridge, derives the
    batch windows and aligns. Returns the (lazy) Spark DataFrame; write it with
    :func:`lakehouse.spark.delta_bridge.write_delta`.
    """
    from deltalake import DeltaTable

    from lakehouse.spark.delta_bridge import read_delta

    opts = lake.delta_storage_options()
    jars = {"use_delta_spark_jars": use_delta_spark_jars}
    r_uri = lake.uri("bronze", "historian_readings")
    have = (
        set(DeltaTable(r_uri, storage_options=opts or None).schema().to_arrow().names)
        if not use_delta_spark_jars
        else None
    )
    wanted = ["ts", "unit_id", "tag", "parameter", "value", "quality", "_source_file", "_ingested_at"]
    cols = [c for c in wanted if have is None or c in have]
    readings = read_delta(spark, r_uri, opts, columns=cols, **jars)
    batches = read_delta(spark, lake.uri("bronze", "mes_batches"), opts, **jars)
    phases = read_delta(spark, lake.uri("bronze", "mes_phases"), opts, **jars)
    windows = batch_windows_spark(batches, phases, spark)
    return align_readings_spark(readings, windows, grid_minutes, spark, phases=phases, parameters=parameters)
