"""The aligned process readings computed on Spark, kept incrementally in ``silver/process_readings_aligned``.

With the Spark engine, the grid alignment of the historian (the heavy step of the process data
model) runs here instead of in DuckDB; dbt's ``int_process_readings__aligned`` then reads this
Delta table (``LAKEHOUSE_ALIGNMENT_ENGINE=spark``) and everything downstream — the as-of assay
join, ``fct_process_readings``, the gold publication, the features — is unchanged.

The table holds exactly the rows and columns of ``int_process_readings__aligned`` (same
semantics, values within float rounding), ``_source_ingested_at`` included, plus its own
``_loaded_at``:

* ``_source_ingested_at`` of a batch = the newest ingestion among its inputs: its MES batch
  record and phases, and every historian reading (``parameter`` not null) of its unit on every
  UTC day its grid window touches — the definition of the dbt model (lineage).
* Change capture by commit order (``lakehouse/delta_changes.py``): every refresh records, in
  its commit metadata, the bronze versions it read (``historian_readings``, ``mes_batches``,
  ``mes_phases``, pinned for the whole refresh). The next one rebuilds only the batches whose
  inputs gained data files since: a (unit, day) of new historian files their window touches,
  or a new MES record or phase file of theirs. Ingestion runs that overlap commit rows with
  out-of-order ``_ingested_at``; none is skipped. It replaces exactly their partitions (the
  table is partitioned by ``batch_id``) in one Delta commit. A change of the plant's catalog,
  grid or phase signal (the ``spec`` in the commit metadata) rebuilds everything, and so does a
  bronze version that is gone from the log (a re-created table).
* ``_loaded_at`` of the rebuilt batches = the refresh's stamp, strictly increasing from one
  refresh to the next (stored as the commit's watermark): dbt copies the batches whose
  ``_loaded_at`` is newer than the newest it holds.
* Readings are staged like ``stg_historian__readings``: rows without ``parameter`` dropped, the
  same reading (unit, tag, ts) ingested twice counts once (latest ``_ingested_at``, then
  ``_source_file``), then only good readings (quality 192) enter the grid. Values are already
  in the catalog's canonical units (the importer converted them): nothing is converted here.
* The columns are the signals of the plant's catalog (``plant``, :class:`lakehouse.plant.PlantBundle`),
  with its grid, state signals and phase signal — what the dbt model gets from the same bundle.

Plain Python + PySpark; the Dagster wiring is in ``assets/transform/dbt_models.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakehouse.transforms.grid import GOOD_QUALITY, grid_us, phase_codes

SILVER_LAYER = "silver"
ALIGNED_TABLE = "process_readings_aligned"
WATERMARK_KEY = "lakehouse.watermark"  # the refresh's _loaded_at stamp
SPEC_KEY = "lakehouse.alignment_spec"
BRONZE_KEY = "lakehouse.bronze_versions"  # JSON {bronze table: version read}
INPUT_TABLES = ("historian_readings", "mes_batches", "mes_phases")


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


def alignment_spec(
    g_us: int, parameters: Sequence[str], catalog_fingerprint: str = "", states: Sequence[str] = (), phase: Any = None
) -> str:
    """Fingerprint of everything that shapes the aligned rows (a change rebuilds every batch):
    grid, signal columns, the catalog (units, kinds, ranges), state and phase signals."""
    ph = phase_codes(phase)
    blob = json.dumps(
        {
            "grid_us": int(g_us),
            "parameters": list(parameters),
            "catalog": catalog_fingerprint,
            "states": sorted(states),
            "phase": [ph[0], sorted(ph[1].items())] if ph else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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


@dataclass(frozen=True)
class RefreshState:
    """What the newest refresh commit recorded.

    Attributes
    ----------
    watermark : str or None
        Its ``_loaded_at`` stamp ('YYYY-MM-DD HH:MM:SS.ffffff', UTC).
    spec : str or None
        Fingerprint of the signal columns, catalog, grid, state and phase signals (:func:`alignment_spec`).
    bronze_versions : dict or None
        Bronze table -> version it read (None: written before change capture by version).
    """

    watermark: str | None = None
    spec: str | None = None
    bronze_versions: Mapping[str, int] | None = None


def _last_commit(dt) -> RefreshState:
    """The state of the newest refresh commit: custom commit metadata of a delta-rs commit, or
    the JSON ``userMetadata`` of a delta-spark commit (``use_delta_spark_jars``)."""
    return last_refresh(dt.history(20))


def last_refresh(history: Sequence[Mapping[str, Any]]) -> RefreshState:
    """:class:`RefreshState` of the newest commit in ``history`` (newest first) that a refresh wrote."""
    for commit in history:
        meta: Mapping[str, Any] = commit
        if WATERMARK_KEY not in meta and isinstance(commit.get("userMetadata"), str):
            try:
                meta = json.loads(commit["userMetadata"])
            except ValueError:
                continue
        if isinstance(meta, Mapping) and WATERMARK_KEY in meta:
            versions = None
            if meta.get(BRONZE_KEY):
                try:
                    versions = {str(k): int(v) for k, v in json.loads(str(meta[BRONZE_KEY])).items()}
                except (ValueError, AttributeError):
                    versions = None
            return RefreshState(
                str(meta[WATERMARK_KEY]) or None, str(meta[SPEC_KEY]) if SPEC_KEY in meta else None, versions
            )
    return RefreshState()


def _changed_inputs(
    lake: Any, since: Mapping[str, int], now: Mapping[str, int]
) -> tuple[set[tuple[str, str]], set[str]] | None:
    """((unit_id, ISO day) with new historian files, batch ids with new MES files) between the
    bronze versions ``since`` and ``now``; None when a version is gone (rebuild everything)."""
    from lakehouse.delta_changes import VersionGoneError, changes_since, read_changed

    opts = lake.delta_storage_options()
    unit_days: set[tuple[str, str]] = set()
    batches: set[str] = set()
    try:
        for table in INPUT_TABLES:
            if now.get(table, -1) < 0:
                continue
            uri = lake.uri("bronze", table)
            changes = changes_since(uri, since.get(table, -1), opts, upto=now[table])
            if not changes.files:
                continue
            if table == "historian_readings":
                rows = read_changed(uri, changes, ["unit_id", "date"], opts)
                unit_days |= {
                    (str(u), str(d))
                    for u, d in zip(rows.column("unit_id").to_pylist(), rows.column("date").to_pylist(), strict=True)
                }
            else:
                rows = read_changed(uri, changes, ["batch_id"], opts)
                batches |= {str(b) for b in rows.column("batch_id").to_pylist() if b is not None}
    except VersionGoneError:
        return None
    return unit_days, batches


def _next_stamp(previous: str | None) -> str:
    """Now (UTC), but strictly after ``previous``: the refresh's ``_loaded_at``."""
    import time

    now_us = time.time_ns() // 1000
    if previous:
        now_us = max(now_us, _parse_us(previous) + 1)
    return _format_us(now_us)


def _windows(batches, phases):
    """Bioreactor batch windows that get aligned rows, with ``mes_ingested_at``."""
    from pyspark.sql import functions as F

    from lakehouse.spark.transforms import bioreactor_windows_spark

    return bioreactor_windows_spark(batches, phases).where(
        F.col("inoculation_ts").isNotNull()
        & F.col("harvest_ts").isNotNull()
        & (F.col("harvest_ts") >= F.col("inoculation_ts"))
    )


def _window_days(windows, grid_us: int):
    """(batch_id, unit_id, date) for every UTC day from the first grid bucket to harvest + grid."""
    from pyspark.sql import functions as F

    from lakehouse.spark.transforms import BUCKET_ORIGIN_US

    inoc = F.unix_micros(F.col("inoculation_ts").cast("timestamp"))
    start = inoc - F.pmod(inoc - F.lit(BUCKET_ORIGIN_US), F.lit(grid_us))
    end = F.unix_micros(F.col("harvest_ts").cast("timestamp")) + F.lit(grid_us)
    return windows.select(
        "batch_id",
        "unit_id",
        F.explode(F.sequence(F.to_date(F.timestamp_micros(start)), F.to_date(F.timestamp_micros(end)))).alias("date"),
    )


def _empty_aligned(spark, parameters: Sequence[str]):
    from pyspark.sql import types as T

    fields = [
        T.StructField("batch_id", T.StringType()),
        T.StructField("unit_id", T.StringType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("culture_age_h", T.DoubleType()),
        T.StructField("maturity_pct", T.DoubleType()),
        T.StructField("phase", T.StringType()),
    ]
    fields += [T.StructField(p, T.DoubleType()) for p in parameters]
    fields += [T.StructField("_source_ingested_at", T.TimestampType()), T.StructField("_loaded_at", T.TimestampType())]
    return spark.createDataFrame([], T.StructType(fields))


def refresh_aligned_readings(
    lake: Any,
    spark: Any,
    *,
    plant: Any = None,
    grid_minutes: int | None = None,
    parameters: Sequence[str] | None = None,
    full_refresh: bool = False,
    use_delta_spark_jars: bool = False,
) -> AlignedRefresh:
    """Bring ``silver/process_readings_aligned`` up to date with the bronze tables of ``lake``.

    ``plant`` (a :class:`lakehouse.plant.PlantBundle`; default: the default bundle) gives the
    signal columns, grid, state and phase signals. ``grid_minutes`` / ``parameters`` override
    its grid / signals (tests)."""
    from deltalake import DeltaTable
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from lakehouse.spark.delta_bridge import read_delta, write_delta
    from lakehouse.spark.transforms import align_readings_spark

    if plant is None:
        from lakehouse.plant import default_plant

        plant = default_plant()
    parameters = list(plant.catalog.names() if parameters is None else parameters)
    states = [s.name for s in plant.catalog.of_kind("state") if s.name in parameters]
    phase = plant.phase_signal if plant.phase_signal and plant.phase_signal.signal in parameters else None
    g_us = grid_us(grid_minutes) if grid_minutes is not None else grid_us(grid_seconds=plant.grid_seconds)
    opts = lake.delta_storage_options()
    jars = {"use_delta_spark_jars": use_delta_spark_jars}
    uri = lake.uri(SILVER_LAYER, ALIGNED_TABLE)
    spec = alignment_spec(g_us, parameters, plant.catalog.fingerprint(), states, phase)

    existing = DeltaTable(uri, storage_options=opts or None) if lake.delta_exists(uri) else None
    state = _last_commit(existing) if existing is not None else RefreshState()
    incremental = existing is not None and not full_refresh and state.spec == spec and state.bronze_versions is not None
    # the bronze versions this refresh reads, pinned: what it records is exactly what it saw
    from lakehouse.delta_changes import table_version

    versions = {t: table_version(lake.uri("bronze", t), opts) for t in INPUT_TABLES}

    def bronze(name: str, columns: list[str] | None = None):
        if versions[name] < 0:
            return None
        return read_delta(spark, lake.uri("bronze", name), opts, version=versions[name], columns=columns, **jars)

    batches, phases = bronze("mes_batches"), bronze("mes_phases")
    readings = bronze(
        "historian_readings",
        ["ts", "unit_id", "tag", "parameter", "value", "eng_unit", "quality", "date", "_source_file", "_ingested_at"],
    )
    stamp = _next_stamp(state.watermark)
    meta = {
        WATERMARK_KEY: stamp,
        SPEC_KEY: spec,
        BRONZE_KEY: json.dumps(versions, sort_keys=True),
        "lakehouse.operation": "align-spark",
    }
    if batches is None or phases is None:
        if existing is None:  # a young lake: an empty table, so that dbt reads zero rows
            res = write_delta(
                _empty_aligned(spark, parameters),
                uri,
                opts,
                mode="overwrite",
                partition_by=["batch_id"],
                commit_metadata=meta,
                **jars,
            )
            return AlignedRefresh(uri, "full", 0, version=res.version if res else None, watermark=stamp)
        return AlignedRefresh(uri, "unchanged", 0, version=existing.version(), watermark=state.watermark)

    changed = _changed_inputs(lake, state.bronze_versions or {}, versions) if incremental else None
    incremental = changed is not None
    windows = _windows(batches, phases).cache()
    try:
        days = _window_days(windows, g_us)
        all_batches = sorted(r["batch_id"] for r in windows.select("batch_id").collect())
        if incremental:
            unit_days, mes_batches = changed
            hit = set()
            if unit_days:
                touched = spark.createDataFrame(sorted(unit_days), "unit_id string, day string").select(
                    "unit_id", F.to_date("day").alias("date")
                )
                hit = {
                    r["batch_id"]
                    for r in days.join(F.broadcast(touched), ["unit_id", "date"])
                    .select("batch_id")
                    .distinct()
                    .collect()
                }
            rebuild = sorted(b for b in all_batches if b in hit or b in mes_batches)
        else:
            rebuild = all_batches
        meta["lakehouse.batches_rebuilt"] = str(len(rebuild))
        if incremental and not rebuild:
            return AlignedRefresh(uri, "unchanged", len(all_batches), [], 0, existing.version(), state.watermark)
        if not rebuild:
            res = write_delta(
                _empty_aligned(spark, parameters),
                uri,
                opts,
                mode="overwrite",
                partition_by=["batch_id"],
                commit_metadata=meta,
                **jars,
            )
            return AlignedRefresh(uri, "full", 0, [], 0, res.version if res else None, stamp)

        selected = spark.createDataFrame([(b,) for b in rebuild], "batch_id string")
        wanted_days = days.join(F.broadcast(selected), "batch_id").select("unit_id", "date").distinct()
        dates = sorted({r["date"] for r in wanted_days.select("date").distinct().collect()})
        # lineage of the rebuilt batches: the newest ingestion among their inputs (the dbt model's)
        if readings is not None:
            loads = (
                readings.where(F.col("date").isin(dates) & F.col("parameter").isNotNull())
                .groupBy("unit_id", "date")
                .agg(F.max("_ingested_at").alias("r_ing"))
            )
            batch_loads = (
                days.join(F.broadcast(selected), "batch_id")
                .join(loads, ["unit_id", "date"], "inner")
                .groupBy("batch_id")
                .agg(F.max("r_ing").alias("r_ing"))
            )
        else:
            batch_loads = windows.select("batch_id", F.lit(None).cast("timestamp").alias("r_ing")).limit(0)
        sources = (
            windows.join(F.broadcast(selected), "batch_id")
            .join(batch_loads, "batch_id", "left")
            .select(
                "batch_id",
                F.unix_micros(
                    F.greatest(F.col("mes_ingested_at"), F.coalesce(F.col("r_ing"), F.col("mes_ingested_at")))
                ).alias("us"),
            )
        )
        per_batch: dict[str, int] = {r["batch_id"]: int(r["us"]) for r in sources.collect()}

        w_sel = windows.join(F.broadcast(selected), "batch_id")
        if readings is not None:
            r = readings.where(F.col("date").isin(dates)).join(F.broadcast(wanted_days), ["unit_id", "date"])
            latest = Window.partitionBy("unit_id", "tag", "ts").orderBy(
                F.col("_ingested_at").desc(), F.col("_source_file").desc()
            )
            r = (
                r.withColumn("__rn", F.row_number().over(latest))
                .where("__rn = 1")
                .where((F.col("quality") == GOOD_QUALITY) & F.col("parameter").isin(parameters))
                .select("unit_id", "parameter", F.col("value").cast("double").alias("value"), "quality", "ts")
            )
        else:
            r = spark.createDataFrame([], "unit_id string, parameter string, value double, quality int, ts timestamp")
        aligned = align_readings_spark(
            r,
            w_sel.select("batch_id", "unit_id", "inoculation_ts", "harvest_ts"),
            spark=spark,
            phases=phases.join(F.broadcast(selected), "batch_id"),
            parameters=tuple(parameters),
            dedupe=False,
            grid_seconds=g_us // 1_000_000,
            state_parameters=states,
            phase_signal=phase,
        )
        src = spark.createDataFrame([(b, per_batch[b]) for b in rebuild], "batch_id string, us long").select(
            "batch_id",
            F.timestamp_micros("us").alias("_source_ingested_at"),
            F.timestamp_micros(F.lit(_parse_us(stamp))).alias("_loaded_at"),
        )
        out = aligned.join(F.broadcast(src), "batch_id").select(
            "batch_id",
            "unit_id",
            "ts",
            "culture_age_h",
            "maturity_pct",
            "phase",
            *parameters,
            "_source_ingested_at",
            "_loaded_at",
        )
        if incremental:
            res = write_delta(
                out,
                uri,
                opts,
                mode="overwrite",
                partition_by=["batch_id"],
                partition_filters=[("batch_id", "in", rebuild)],
                commit_metadata=meta,
                **jars,
            )
        else:
            res = write_delta(out, uri, opts, mode="overwrite", partition_by=["batch_id"], commit_metadata=meta, **jars)
        return AlignedRefresh(
            uri,
            "incremental" if incremental else "full",
            len(all_batches),
            rebuild,
            res.num_records if res else 0,
            res.version if res else None,
            stamp,
        )
    finally:
        windows.unpersist()
