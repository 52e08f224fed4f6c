"""Overlapping ingestion runs never make an incremental dbt run skip data (issue: an
ingestion run that started earlier but committed later stamped its rows with an older
``_ingested_at`` than rows a faster run had already committed and dbt had already loaded; the
next incremental run, selecting ``_ingested_at > watermark``, silently skipped them).

Change capture now follows commit order (the Delta version processed, ``_bronze_version``) from
bronze to staging and the warehouse's own load order (``_loaded_at``) downstream
(dbt_project/macros/incremental.sql). The oracle: the incrementally maintained warehouse equals
a from-scratch build of the same lake, table by table, and the gold Delta table equals the mart.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import bronze_fixture as bf
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from transform_helpers import FIRST_DAY, PLANT, materialize_transform

from lakehouse.storage import Lake

UTC = dt.UTC
LOAD_COLUMNS = {"_loaded_at", "_bronze_version"}  # when/what the warehouse loaded: differ by design
MODELS = {
    "staging.stg_historian__readings": ["unit_id", "tag", "reading_ts"],
    "staging.stg_lims__results": ["sample_id", "analyte"],
    "staging.stg_mes__batches": ["batch_id"],
    "intermediate.int_process_readings__aligned": ["batch_id", "ts"],
    "intermediate.int_process_readings__assays_asof": ["batch_id", "ts"],
    "intermediate.int_equipment__historian_daily": ["unit_id", "reading_date"],
    "marts.fct_process_readings": ["batch_id", "ts"],
    "marts.fct_equipment_health_daily": ["equipment_id", "date"],
    "marts.dim_batches": ["batch_id"],
}


def _commit_day(lake: Lake, day_offset: int, ingested_at: dt.datetime) -> None:
    for name, table in bf.day_tables(PLANT, FIRST_DAY + dt.timedelta(days=day_offset), ingested_at=ingested_at).items():
        kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
        lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)


def _ok(result) -> None:
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success and not failures, failures


def _table(warehouse, name: str, keys: list[str]) -> pl.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        df = pl.from_arrow(con.execute(f"select * from {name}").fetch_arrow_table())
    finally:
        con.close()
    return df.drop([c for c in df.columns if c in LOAD_COLUMNS]).sort(keys)


def test_a_late_commit_of_an_earlier_ingestion_is_not_skipped(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    incremental, rebuilt = tmp_path / "incremental.duckdb", tmp_path / "rebuilt.duckdb"
    t0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for d in range(3):
        _commit_day(lake, d, t0 + dt.timedelta(minutes=d))
    _ok(materialize_transform(lake, incremental))

    # run A starts at t1 (slow: day 3 of every system), run B starts at t2 > t1 (fast: day 4)
    t1, t2 = t0 + dt.timedelta(hours=1), t0 + dt.timedelta(hours=1, minutes=5)
    _commit_day(lake, 4, t2)  # B commits first …
    _ok(materialize_transform(lake, incremental))  # … an incremental run loads it …
    _commit_day(lake, 3, t1)  # … then A commits rows stamped BEFORE B's
    _ok(materialize_transform(lake, incremental))

    _ok(materialize_transform(lake, rebuilt))  # the same lake, built from scratch
    day3 = FIRST_DAY + dt.timedelta(days=3)
    stg = _table(incremental, "staging.stg_historian__readings", MODELS["staging.stg_historian__readings"])
    assert stg.filter(pl.col("reading_date") == day3).height > 2000  # the late day is there
    for name, keys in MODELS.items():
        a, b = _table(incremental, name, keys), _table(rebuilt, name, keys)
        assert a.height == b.height > 0, name
        assert_frame_equal(a, b, check_dtypes=True, abs_tol=1e-12), name
    gold = pl.read_delta(lake.uri("gold", "fct_process_readings")).drop("_loaded_at").sort(["batch_id", "ts"])
    assert_frame_equal(gold, _table(incremental, "marts.fct_process_readings", ["batch_id", "ts"]), check_dtypes=False)
    assert gold.filter(pl.col("ts").dt.date() == day3).height > 1000


def test_overlapping_real_ingestion_runs_lose_no_reading(tmp_path, monkeypatch):
    """The same race through the real ingestion path: run A hashes, validates and stamps its
    file, then waits before its bronze commit; run B ingests another day completely; dbt runs;
    then A commits. Staging holds every reading of both files."""
    import ingest_testdata as td

    from lakehouse.ingest import writer
    from lakehouse.warehouse import DBT_PROJECT_DIR, dbt_env, missing_bronze_tables

    lake = Lake(str(tmp_path / "lake"))
    warehouse = tmp_path / "wh.duckdb"
    day_a, day_b = dt.date(2026, 1, 3), dt.date(2026, 1, 4)
    data_a, n_a = td.historian_csv("BR-101", day_a, minutes=20)
    data_b, n_b = td.historian_csv("BR-101", day_b, minutes=20)
    td.write(lake, f"historian/BR-101/{day_a.isoformat()}.csv", data_a)
    files, _ = writer.list_landing(lake, ["historian"])
    [file_a] = files

    a_waiting, a_go = threading.Event(), threading.Event()

    def hold_a(event, info):
        if event == "bronze_committing" and info["run_id"] == "run-a":
            a_waiting.set()
            assert a_go.wait(60)

    monkeypatch.setattr(writer, "HOOKS", [hold_a])
    report_a = {}
    thread = threading.Thread(target=lambda: report_a.update(r=writer.ingest_files(lake, [file_a], run_id="run-a")))
    thread.start()
    assert a_waiting.wait(60)

    td.write(lake, f"historian/BR-101/{day_b.isoformat()}.csv", data_b)
    files, _ = writer.list_landing(lake, ["historian"])
    report_b = writer.ingest_files(lake, [f for f in files if f.rel_path != file_a.rel_path], run_id="run-b")
    assert report_b.rows_written["historian_readings"] == n_b

    env = {**os.environ, **dbt_env(lake, warehouse, missing_bronze_tables(lake))}
    dbt_bin = Path(sys.executable).parent / "dbt"

    def dbt():
        proc = subprocess.run(
            [str(dbt_bin), "build", "--select", "stg_historian__readings", "--target-path", str(tmp_path / "target")],
            cwd=DBT_PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout[-3000:]

    dbt()
    a_go.set()
    thread.join(60)
    assert report_a["r"].rows_written["historian_readings"] == n_a
    dbt()

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        per_day = dict(
            con.execute("select reading_date, count(*) from staging.stg_historian__readings group by 1").fetchall()
        )
    finally:
        con.close()
    assert per_day == {day_a: n_a, day_b: n_b}
    assert report_a["r"].rows_written["historian_readings"] == n_a


@pytest.fixture(autouse=True)
def _testdata_on_path():
    path = str(Path(__file__).resolve().parents[1] / "ingest")
    sys.path.insert(0, path)
    yield
    sys.path.remove(path)
