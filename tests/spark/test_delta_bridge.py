"""Delta on Spark through delta-rs (no delta-spark jars): read, write, time travel, atomicity.

Every table written by Spark here is read back by three independent engines (delta-rs,
polars, DuckDB's delta extension) on local disk and on the real S3 server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakehouse.spark.delta_bridge import read_delta, write_delta
from lakehouse.storage import Lake
from tests.spark._readers import read_deltalake, read_duckdb, read_polars

pytestmark = pytest.mark.spark

T0 = datetime(2026, 1, 3, 23, 58, tzinfo=UTC)


def readings(n: int = 600, start: datetime = T0, units=("BR-101", "BR-102")) -> pa.Table:
    """Historian-like bronze rows crossing a UTC day boundary (two `date` partitions)."""
    ts = [start + timedelta(seconds=7 * i, microseconds=(i * 37) % 1000) for i in range(n)]
    return pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "unit_id": pa.array([units[i % len(units)] for i in range(n)]),
            "parameter": pa.array(["temperature" if i % 3 else "ph" for i in range(n)]),
            "value": pa.array([36.5 + (i % 11) / 10 if i % 17 else None for i in range(n)], pa.float64()),
            "quality": pa.array([192 if i % 13 else 64 for i in range(n)], pa.int16()),
            "date": pa.array([t.date() for t in ts], pa.date32()),
        }
    )


def _sorted(t: pa.Table, keys=("ts", "unit_id", "parameter")) -> pa.Table:
    return t.sort_by([(k, "ascending") for k in keys])


def _parquet_files(lake: Lake, uri: str) -> set[str]:
    fs = lake.filesystem()
    return {p for p in fs.find(lake.fs_path(uri)) if p.endswith(".parquet")}


# ---------------------------------------------------------------------------- write → read
def test_spark_write_is_read_identically_by_deltalake_polars_duckdb(spark, lake: Lake):
    uri = lake.uri("bronze", "historian_readings")
    data = readings()
    res = write_delta(spark.createDataFrame(data), uri, lake.delta_storage_options(), partition_by=["date"])
    assert res.version == 0 and res.num_records == data.num_rows

    expected = _sorted(data)
    via_rs = _sorted(read_deltalake(lake, uri).select(data.column_names))
    assert via_rs.schema == data.schema  # ts stays timestamp[us, tz=UTC], quality int16, date date32
    assert via_rs.equals(expected)

    via_pl = read_polars(lake, uri)
    assert via_pl.height == data.num_rows
    assert set(via_pl.columns) == set(data.column_names)
    assert str(via_pl.schema["ts"]) in ("Datetime(time_unit='us', time_zone='UTC')",)

    via_duck = read_duckdb(lake, uri)
    assert via_duck.num_rows == data.num_rows
    assert set(via_duck.column_names) == set(data.column_names)
    assert pc.sum(via_duck["value"]).as_py() == pytest.approx(pc.sum(data["value"]).as_py())

    back = read_delta(spark, uri, lake.delta_storage_options())
    got = _sorted(pa.table(back.toArrow()).select(data.column_names))
    assert got.equals(expected)

    # the log carries partition values and per-file statistics like a delta-rs write
    from deltalake import DeltaTable

    actions = pa.table(
        DeltaTable(uri, storage_options=lake.delta_storage_options() or None).get_add_actions(flatten=True)
    )
    assert sorted(set(actions["partition.date"].to_pylist())) == [date(2026, 1, 3), date(2026, 1, 4)]
    assert sum(actions["num_records"].to_pylist()) == data.num_rows
    assert "min.ts" in actions.column_names and "max.value" in actions.column_names


def test_time_travel_overwrite_and_removed_files(spark, lake: Lake):
    uri = lake.uri("silver", "tt")
    opts = lake.delta_storage_options()
    first = readings(100)
    second = readings(40, start=T0 + timedelta(days=2))
    write_delta(spark.createDataFrame(first), uri, opts, partition_by="date")  # v0
    write_delta(spark.createDataFrame(second), uri, opts)  # v1 append
    write_delta(spark.createDataFrame(second.slice(0, 5)), uri, opts, mode="overwrite")  # v2

    assert read_delta(spark, uri, opts).count() == 5  # removed files are not read
    assert read_delta(spark, uri, opts, version=0).count() == 100
    assert read_delta(spark, uri, opts, version=1).count() == 140
    assert read_deltalake(lake, uri, version=1).num_rows == 140
    # time travel by timestamp (resolved on the driver with delta-rs)
    assert read_delta(spark, uri, opts, version=datetime.now(UTC)).count() == 5

    # overwrite of one partition only (partition_filters)
    day = second["date"][0].as_py()
    repl = readings(3, start=datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1))
    write_delta(
        spark.createDataFrame(repl), uri, opts, mode="overwrite", partition_filters=[("date", "=", day.isoformat())]
    )
    assert read_delta(spark, uri, opts).count() == 3


def test_column_pruning_and_partition_columns(spark, lake: Lake):
    uri = lake.uri("silver", "parts")
    opts = lake.delta_storage_options()
    data = readings(200)
    # a partition value that needs escaping in the path, and a null partition value
    data = data.set_column(
        1,
        "unit_id",
        pa.array(["BR 101/a:b%" if i % 4 == 0 else (None if i % 4 == 1 else "BR-102") for i in range(data.num_rows)]),
    )
    write_delta(spark.createDataFrame(data), uri, opts, partition_by=["unit_id", "date"])

    only = read_delta(spark, uri, opts, columns=["unit_id", "value"])
    assert only.columns == ["unit_id", "value"]
    got = pa.table(only.toArrow())
    exp = data.select(["unit_id", "value"])
    key = [("unit_id", "ascending"), ("value", "ascending")]
    assert got.sort_by(key).equals(exp.sort_by(key))

    # partition column alone (no data column read at all)
    counts = {
        r["unit_id"]: r["count"]
        for r in read_delta(spark, uri, opts, columns=["unit_id"]).groupBy("unit_id").count().collect()
    }
    assert counts == {"BR 101/a:b%": 50, None: 50, "BR-102": 100}
    # the other engines see the same partition values
    assert sorted(read_polars(lake, uri)["unit_id"].drop_nulls().unique().to_list()) == ["BR 101/a:b%", "BR-102"]
    assert read_duckdb(lake, uri).num_rows == data.num_rows

    with pytest.raises(ValueError, match="not in the table"):
        read_delta(spark, uri, opts, columns=["nope"])


def test_partition_filters_prune_files(spark, lake_local: Lake):
    """A filter on the partition column must not even open the other partitions' files."""
    lake = lake_local
    uri = lake.uri("silver", "prune")
    write_delta(spark.createDataFrame(readings(300)), uri, None, partition_by="date")
    for p in Path(uri, "date=2026-01-04").glob("*.parquet"):
        p.write_bytes(b"not parquet")  # unreadable: only pruning can save the query
    df = read_delta(spark, uri).where("date = date'2026-01-03'")
    assert df.count() == sum(1 for d in readings(300)["date"].to_pylist() if d == date(2026, 1, 3))


def test_schema_evolution_and_delta_rs_written_tables(spark, lake_local: Lake):
    """Tables written by delta-rs (with a column added later) are read by the bridge."""
    from deltalake import write_deltalake

    uri = lake_local.uri("bronze", "evolving")
    write_deltalake(uri, pa.table({"a": [1, 2], "b": ["x", "y"]}))
    write_deltalake(uri, pa.table({"a": [3], "b": ["z"], "c": [1.5]}), mode="append", schema_mode="merge")
    rows = sorted(read_delta(spark, uri).collect(), key=lambda r: r["a"])
    assert [(r.a, r.b, r.c) for r in rows] == [(1, "x", None), (2, "y", None), (3, "z", 1.5)]


def test_append_checks_schema_and_accepts_spark_etc_utc(spark, lake_local: Lake):
    uri = lake_local.uri("silver", "schema")
    data = readings(20)
    write_delta(spark.createDataFrame(data), uri, None)
    with pytest.raises(ValueError, match="no schema evolution"):
        write_delta(spark.createDataFrame(data.append_column("extra", pa.array([1] * 20))), uri, None)
    # a session in "Etc/UTC" hands Arrow timestamps with that tz to the executors
    old = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Etc/UTC")
    try:
        res = write_delta(spark.createDataFrame(data.drop_columns(["quality"])), uri, None)
    finally:
        spark.conf.set("spark.sql.session.timeZone", old)
    assert res.version == 1
    t = read_deltalake(lake_local, uri)
    assert t.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert t.num_rows == 40 and t["quality"].null_count == 20


# ---------------------------------------------------------------------------- atomicity
def test_failed_task_leaves_table_at_old_version(spark, lake: Lake):
    uri = lake.uri("silver", "atomic")
    opts = lake.delta_storage_options()
    write_delta(spark.createDataFrame(readings(50)), uri, opts)
    before = _parquet_files(lake, uri)
    df = spark.createDataFrame(readings(400)).repartition(4)
    with pytest.raises(Exception, match="injected failure"):
        write_delta(df, uri, opts, _fail_partition=2)
    from deltalake import DeltaTable

    dt = DeltaTable(uri, storage_options=opts or None)
    assert dt.version() == 0
    assert read_delta(spark, uri, opts).count() == 50
    assert read_deltalake(lake, uri).num_rows == 50
    # the files the other tasks had finished were removed right away (best effort: a task
    # still being cancelled may leave one behind) — a full vacuum leaves exactly the table
    dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False, full=True)
    assert _parquet_files(lake, uri) == before


_KILL_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, threading, warnings
    warnings.filterwarnings("ignore")
    sys.path.insert(0, os.environ["PROJECT_ROOT"])
    from lakehouse.spark.session import get_spark_session
    from lakehouse.spark.delta_bridge import write_delta
    spark = get_spark_session("local[2]", shuffle_partitions=2, driver_memory="1g")
    tables = json.loads(os.environ["TABLES"])  # [[uri, storage_options], ...]
    ready = threading.Barrier(len(tables))
    def die(actions):
        print("FILES_WRITTEN", len(actions), flush=True)
        ready.wait(timeout=120)  # every table's executors have written their files ...
        os.kill(os.getpid(), signal.SIGKILL)  # ... and the driver dies before any commit
    def job(uri, opts):
        df = spark.range(0, 3000, numPartitions=3).selectExpr("id", "cast(id as double) * 0.5 as value")
        write_delta(df, uri, opts, _before_commit=die)
        print("COMMITTED", uri, flush=True)
    threads = [threading.Thread(target=job, args=tuple(t)) for t in tables]
    for t in threads: t.start()
    for t in threads: t.join()
""")


def test_driver_killed_before_commit_leaves_tables_at_old_version(spark, lake_local: Lake, lake_s3: Lake):
    """SIGKILL of the driver after the executors wrote their files, before the commit.

    One child process (one JVM) writes a table on local disk and one on S3 concurrently.
    """
    from deltalake import DeltaTable

    lakes = [lake_local, lake_s3]
    uris = [lk.uri("silver", "killed") for lk in lakes]
    committed = []
    for lk, uri in zip(lakes, uris):
        write_delta(
            spark.range(10).selectExpr("id", "cast(id as double) * 0.5 as value"), uri, lk.delta_storage_options()
        )
        committed.append(_parquet_files(lk, uri))

    env = {
        **os.environ,
        "PROJECT_ROOT": str(Path(__file__).resolve().parents[2]),
        "TABLES": json.dumps([[u, lk.delta_storage_options()] for lk, u in zip(lakes, uris)]),
    }
    env.pop("PYSPARK_PYTHON", None)
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert proc.stdout.count("FILES_WRITTEN 3") == 2 and "COMMITTED" not in proc.stdout

    for lk, uri, before in zip(lakes, uris, committed):
        opts = lk.delta_storage_options()
        dt = DeltaTable(uri, storage_options=opts or None)
        assert dt.version() == 0
        assert read_delta(spark, uri, opts).count() == 10
        assert read_deltalake(lk, uri).num_rows == 10
        orphans = _parquet_files(lk, uri) - before
        assert len(orphans) == 3  # written by the executors, never committed: invisible

        # orphans are not referenced by the log: a full vacuum removes them
        removed = dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False, full=True)
        assert len(removed) == 3
        assert _parquet_files(lk, uri) == before
        assert read_deltalake(lk, uri).num_rows == 10


# ---------------------------------------------------------------------------- misc
def test_delta_spark_jars_switch_uses_format_delta(spark, lake_local: Lake):
    """With use_delta_spark_jars the bridge is bypassed: here (no jars) Spark must say so."""
    uri = lake_local.uri("silver", "jars")
    with pytest.raises(Exception, match=r"(?i)delta"):
        write_delta(spark.range(3), uri, None, use_delta_spark_jars=True)


def test_secrets_are_redacted_from_plans(spark, lake_s3: Lake):
    uri = lake_s3.uri("silver", "secret")
    opts = lake_s3.delta_storage_options()
    write_delta(spark.range(3), uri, opts)
    df = read_delta(spark, uri, opts)
    plan = df._jdf.queryExecution().toString()
    assert lake_s3.s3.secret_access_key not in plan
    assert df.count() == 3


def test_replace_where_for_clusters_with_delta_spark_jars():
    """The predicate handed to delta-spark's replaceWhere for a partition overwrite."""
    from lakehouse.spark.delta_bridge import replace_where

    assert (
        replace_where([("batch_id", "in", ["BR101-0001", "O'Neil"]), ("date", "=", "2026-01-01")])
        == "`batch_id` IN ('BR101-0001', 'O''Neil') AND `date` = '2026-01-01'"
    )
    assert replace_where([("n", ">=", 3), ("flag", "=", True)]) == "`n` >= 3 AND `flag` = true"
    with pytest.raises(ValueError, match="operator"):
        replace_where([("a", "like", "x%")])
