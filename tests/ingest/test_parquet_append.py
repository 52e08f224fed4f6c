"""The historian's own append path (parquet by pyarrow, commit by delta-rs) and the ingestion
pipeline around it: what readers see, statistics that bound the data, exactly-once when part
of a batch is already committed, the buffered ingest log and the batch plan."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from ingest_testdata import historian_csv, lims_csv, write

from lakehouse.ingest import parquet_append, writer
from lakehouse.ingest.readers import SourceFile
from lakehouse.ingest.schemas import INGEST_LOG_TABLE, schema_of
from lakehouse.storage import Lake

TABLE = "historian_readings"


def _rows(days: list[dt.date], per_day: int = 5, seed: int = 0) -> pa.Table:
    """Bronze-shaped rows, µs time stamps (not on whole milliseconds), strings as dictionaries."""
    rng = np.random.default_rng(seed)
    ts, date = [], []
    for d in days:
        base = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
        for k in range(per_day):
            ts.append(base + dt.timedelta(hours=3 * k, microseconds=int(rng.integers(1, 999_999))))
            date.append(d)
    n = len(ts)
    string = lambda v: pa.array([v] * n, pa.string()).dictionary_encode()
    cols = {
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "unit_id": string("BR-101"),
        "tag": string("BR-101.TT101.PV"),
        "parameter": string("temperature"),
        "value": pa.array(rng.normal(36.8, 0.1, n)),
        "eng_unit": string("degC"),
        "quality": pa.array(np.full(n, 192, np.int16)),
        "date": pa.array(date, pa.date32()),
        "_source_file": string("landing/historian/x.csv"),
        "_source_hash": string("ab" * 32),
        "_run_id": string("t"),
        "_ingested_at": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n, pa.timestamp("us", tz="UTC")),
    }
    return pa.table(cols).cast(writer.write_schema(TABLE, pa.table(cols).schema))


@pytest.mark.parametrize("order", ["day-major", "interleaved"])
def test_append_reads_back_with_bounding_stats(lake_local, order):
    days = [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)]
    data = _rows(days)
    if order == "interleaved":  # not one run per day: the filtered (copying) split
        data = data.take(pa.array(np.argsort(np.arange(data.num_rows) % 5, kind="stable")))
    dt_ = writer.ensure_table(lake_local, TABLE)
    version = writer.append_rows(lake_local, TABLE, dt_, data, writer._commit_properties(["id-1"], "t", None))
    assert version == 1 and dt_.transaction_version("id-1") == 1
    back = pl.from_arrow(DeltaTable(writer.table_uri(lake_local, TABLE)).to_pyarrow_table())
    want = pl.from_arrow(data.cast(schema_of(TABLE)))
    assert back.sort("ts").equals(want.sort("ts"))
    assert back.schema["tag"] == pl.String and back.schema["quality"] == pl.Int16
    actions = pl.from_arrow(pa.table(dt_.get_add_actions(flatten=True)))
    assert actions.height == 3  # one file per day
    for row in actions.iter_rows(named=True):
        day = row["partition.date"]
        in_file = want.filter(pl.col("date") == day).get_column("ts")
        assert row["num_records"] == in_file.len() and row["null_count.ts"] == 0
        # milliseconds in the log, rounded outwards: the bounds hold every µs value
        assert row["min.ts"] <= in_file.min() and row["max.ts"] >= in_file.max()
        assert row["max.ts"] - in_file.max() < dt.timedelta(milliseconds=1)
    # a SQL reader (DuckDB's delta extension, as dbt and BI tools read bronze) sees the same rows
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dbt_project" / "plugins"))
    import lakehouse_duckdb

    con = duckdb.connect()
    lakehouse_duckdb.configure(con)
    uri = writer.table_uri(lake_local, TABLE)
    n, total = con.sql(f"select count(*), sum(value) from delta_scan('{uri}')").fetchone()
    assert n == data.num_rows and total == pytest.approx(float(want.get_column("value").sum()))
    second = con.sql(f"select count(*) from delta_scan('{uri}') where ts >= '2026-01-02' and ts < '2026-01-03'")
    assert second.fetchone()[0] == 5


def test_encode_refuses_other_columns():
    data = _rows([dt.date(2026, 1, 1)]).drop_columns(["_run_id"])
    with pytest.raises(ValueError, match="do not match"):
        parquet_append.encode(
            data, columns=schema_of(TABLE).names, partition_by="date", layout=writer.PARQUET_LAYOUTS[TABLE]
        )


def test_stat_bounds_are_milliseconds_rounded_outwards():
    t = dt.datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=dt.UTC)
    assert parquet_append._stat_value(t, ceil=False) == "2026-01-01T00:00:00.123Z"
    assert parquet_append._stat_value(t, ceil=True) == "2026-01-01T00:00:00.124Z"
    whole = t.replace(microsecond=999_001)
    assert parquet_append._stat_value(whole, ceil=True) == "2026-01-01T00:00:01.000Z"


def _historian(lake: Lake, days: int, units=("BR-101", "BR-102")) -> int:
    rows = 0
    for u in units:
        for d in range(days):
            day = dt.date(2026, 1, 1) + dt.timedelta(days=d)
            data, n = historian_csv(u, day, minutes=20)
            write(lake, f"historian/{u}/{day.isoformat()}.csv", data)
            rows += n
    return rows


def test_a_batch_partly_committed_writes_only_the_rest(lake):
    """After a crash that kept the ingest log from recording a commit, the next run's batch
    holds committed and new files together: the rows encoded ahead for the whole batch are not
    used, only the new files' rows are written."""
    first = _historian(lake, days=2)
    writer.ingest_landing(lake, ["historian"], run_id="first")
    uri = writer.table_uri(lake, INGEST_LOG_TABLE)
    lake.filesystem().rm(lake.fs_path(uri), recursive=True)  # as if the log commit was lost
    more = _historian(lake, days=3) - first  # the third day of both units is new
    report = writer.ingest_landing(lake, ["historian"], run_id="second")
    assert report.rows_written[TABLE] == more and report.files_already_committed == 4
    hist = pl.from_arrow(lake.read_delta(writer.table_uri(lake, TABLE)))
    assert hist.height == first + more
    assert hist.group_by("tag", "ts").len().get_column("len").max() == 1


def test_ingest_log_is_written_once_per_run_or_per_interval(lake_local, monkeypatch):
    _historian(lake_local, days=3)
    report = writer.ingest_landing(lake_local, ["historian"], run_id="one", max_batch_files=2)
    assert report.commits >= 3  # several bronze commits ...
    log = DeltaTable(writer.table_uri(lake_local, INGEST_LOG_TABLE))
    assert log.version() == 1  # ... one log commit (created by it) with every file
    assert log.to_pyarrow_table().num_rows == 6
    monkeypatch.setattr(writer, "LOG_FLUSH_SECONDS", 0.0)  # flush after every batch
    for u in ("BR-103",):
        for d in range(3):
            day = dt.date(2026, 1, 1) + dt.timedelta(days=d)
            write(lake_local, f"historian/{u}/{day.isoformat()}.csv", historian_csv(u, day, minutes=5)[0])
    writer.ingest_landing(lake_local, ["historian"], run_id="two", max_batch_files=2)
    log = DeltaTable(writer.table_uri(lake_local, INGEST_LOG_TABLE))
    assert log.version() == 1 + 2  # batches of [BR-103 days 1, 2] and [day 3]: a log commit each
    ops = [json.loads(h.get("lakehouse.files", "0")) for h in log.history() if h.get("operation") == "WRITE"]
    assert sorted(ops) == [1, 1, 1]  # one txn id per flush


def test_every_ingestion_of_one_run_logs_its_files(lake_local):
    """A Dagster run ingests each system in its own call with the run's id: every call's files
    must reach the ingest log (they did not: the second call's log commit had the first one's
    txn id and was skipped — its files were re-read by every later run and escaped the
    duplicate-content check)."""
    _historian(lake_local, days=1)
    write(lake_local, "lims/a.csv", lims_csv(dt.date(2026, 1, 1))[0])
    writer.ingest_landing(lake_local, ["historian"], run_id="dagster-run")
    writer.ingest_landing(lake_local, ["lims"], run_id="dagster-run")
    log = pl.from_arrow(DeltaTable(writer.table_uri(lake_local, INGEST_LOG_TABLE)).to_pyarrow_table())
    assert sorted(log.get_column("system").to_list()) == ["historian", "historian", "lims"]
    again = writer.ingest_landing(lake_local, ["lims"], run_id="next")
    assert again.files_skipped_unchanged == 1 and again.files_ingested == 0
    write(lake_local, "lims/a-copy.csv", lims_csv(dt.date(2026, 1, 1))[0])  # same content, new name
    dup = writer.ingest_landing(lake_local, ["lims"], run_id="later")
    assert dup.rows_written["lims_results"] == 0 and "duplicate file" in dup.files_rejected[0]["reason"]


def _files(sizes: list[int]) -> list[SourceFile]:
    return [
        SourceFile(uri=f"f{i}", rel_path=f"f{i}", size=s, fingerprint="", kind="historian") for i, s in enumerate(sizes)
    ]


def test_batches_start_and_end_short_and_keep_the_order():
    files = _files([10] * 40)  # 400 bytes in batches of at most 100
    plan = writer._batches(files, max_bytes=100, max_files=1000)
    sizes = [sum(f.size for f in b) for b in plan]
    assert sizes[0] <= 25 and sizes[-1] <= 25 and max(sizes) <= 100
    assert [f.rel_path for b in plan for f in b] == [f.rel_path for f in files]
    assert [len(b) for b in writer._batches(_files([10] * 2), max_bytes=100, max_files=1000)] == [2]
    assert [len(b) for b in writer._batches(_files([60, 60, 60]), max_bytes=100, max_files=1000)] == [1, 1, 1]
