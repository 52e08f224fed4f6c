"""Alignment engine switch inside the asset graph, on the SeaweedFS S3 server.

Two lakes get byte-identical bronze tables (the fixture plant of tests/transform: jitter,
uncertain/bad readings, a re-exported day file, an aborted batch). The transform assets
(dbt build + gold publication + checks) run on lake A with ``SparkResource()`` and on lake B
with ``SparkResource(engine="spark")``: the historian alignment runs in DuckDB on A and on
Spark (``silver/process_readings_aligned``) on B. Then a new day arrives together with a
re-export of an old day in degF — imported through the ingestion with a tag map that declares
degF, so bronze holds degC — and both run again (incremental). After each round the DuckDB
marts and the gold Delta tables of A and B must hold the same rows and values.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transform"))

import bronze_fixture as bf
from transform_helpers import FIRST_DAY, PLANT, materialize_transform

from tests.conftest import s3_lake

pytestmark = [pytest.mark.spark, pytest.mark.s3, pytest.mark.usefixtures("clean_dbt_run_targets")]

PROCESS_KEYS = ["batch_id", "ts"]
SILVER = ("silver", "process_readings_aligned")


def _append(lakes, tables: dict[str, pa.Table]) -> None:
    for lake in lakes:
        for name, table in tables.items():
            kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
            lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)


def _write_days(lakes, days: range) -> None:
    for i in days:
        _append(lakes, bf.day_tables(PLANT, FIRST_DAY + dt.timedelta(days=i)))


def _reexport_in_degf(lake_a, lake_b, day: dt.date, tmp_path: Path) -> pa.Table:
    """A later re-export of BR-101's temperatures of 06:00–09:00 on ``day``, in degF, imported
    through the ingestion (a tag map that declares degF) into lake A; the bronze rows it wrote
    are appended to lake B as they are (both lakes keep byte-identical bronze). Returns them."""
    from lakehouse.ingest.foreign import run_import_config

    t = lake_a.delta_table(lake_a.uri("bronze", "historian_readings")).to_pyarrow_table(
        filters=[("date", "=", day), ("unit_id", "=", "BR-101")]
    )
    lo = dt.datetime.combine(day, dt.time(6), tzinfo=dt.UTC)
    hi = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    t = t.filter(
        pc.and_(
            pc.and_(pc.greater_equal(t["ts"], pa.scalar(lo, bf.TS)), pc.less(t["ts"], pa.scalar(hi, bf.TS))),
            pc.equal(t["parameter"], "temperature"),
        )
    )
    assert t.num_rows > 100
    lines = ["timestamp,tag,value,unit,quality"] + [
        f"{r['ts']:%Y-%m-%dT%H:%M:%S.%fZ},{r['tag']},{r['value'] * 1.8 + 32.0!r},degF,{r['quality']}"
        for r in t.to_pylist()
    ]
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "reexport.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "tagmap.yaml").write_text("site: fixture\nsuffixes:\n  TEMP.PV: {parameter: temperature, unit: degF}\n")
    (tmp_path / "import.yaml").write_text("site: fixture\nhistorian:\n  files: [export/*.csv]\n  tagmap: tagmap.yaml\n")
    report = run_import_config(tmp_path / "import.yaml", lake_a, run_id="reexport-degf")
    bad = t.filter(pc.not_equal(t["quality"], 192))  # the fixture's absurd 9999 readings: out of range now
    assert report.rows_valid["historian_readings"] + report.rows_quarantined.get("historian_readings", 0) == t.num_rows
    new = lake_a.delta_table(lake_a.uri("bronze", "historian_readings")).to_pyarrow_table(filters=[("date", "=", day)])
    new = new.filter(pc.equal(new["_run_id"], "reexport-degf"))
    assert new.num_rows == report.rows_valid["historian_readings"] >= t.num_rows - bad.num_rows
    _append([lake_b], {"historian_readings": new})
    # bronze holds canonical units only: the importer converted degF -> degC
    assert new["eng_unit"].unique().to_pylist() == ["degC"]
    orig = {(r["tag"], r["ts"]): r["value"] for r in t.to_pylist()}
    assert all(abs(r["value"] - orig[(r["tag"], r["ts"])]) < 1e-9 for r in new.to_pylist())
    return new


def _run(lake, engine: str, warehouse: Path):
    result = materialize_transform(lake, warehouse, engine=engine)
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    checks = {f"{c.asset_key.to_user_string()}::{c.check_name}": c.passed for c in result.get_asset_check_evaluations()}
    assert result.success and not failures, failures
    assert len(checks) > 60 and all(checks.values()), [k for k, ok in checks.items() if not ok]
    return result


def _aligned_md(result) -> dict:
    [m] = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key.to_user_string() == "int_process_readings__aligned"
    ]
    return {k: v.value for k, v in m.materialization.metadata.items()}


def _mart(warehouse: Path, table: str, keys: list[str]) -> pl.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        return pl.from_arrow(con.execute(f"select * from {table}").fetch_arrow_table()).sort(keys)
    finally:
        con.close()


def _assert_same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    # when each engine loaded a row (`_loaded_at`) differs by design; the data may not
    a, b = (df.drop([c for c in ("_loaded_at", "_bronze_version") if c in df.columns]) for df in (a, b))
    assert a.height == b.height > 0
    assert a.columns == b.columns
    # averages summed in another order: equal up to float rounding (DuckDB vs Spark)
    assert_frame_equal(a, b, check_dtypes=True, abs_tol=1e-9, rel_tol=1e-12)


def _assert_engines_agree(lake_a, lake_b, wh_a: Path, wh_b: Path) -> pl.DataFrame:
    for table, keys in (
        ("intermediate.int_process_readings__aligned", PROCESS_KEYS),
        ("intermediate.int_process_readings__assays_asof", PROCESS_KEYS),
        ("marts.fct_process_readings", PROCESS_KEYS),
        ("marts.fct_equipment_health_daily", ["equipment_id", "date"]),
        ("marts.dim_batches", ["batch_id"]),
    ):
        _assert_same(_mart(wh_a, table, keys), _mart(wh_b, table, keys))
    gold = [
        pl.read_delta(lk.uri("gold", "fct_process_readings"), storage_options=lk.delta_storage_options()).sort(
            PROCESS_KEYS
        )
        for lk in (lake_a, lake_b)
    ]
    _assert_same(*gold)
    return gold[1]


def test_alignment_on_spark_gives_the_same_model_as_duckdb(spark, s3_server, tmp_path):
    from deltalake import DeltaTable

    lake_a, lake_b = s3_lake(s3_server), s3_lake(s3_server)
    wh_a, wh_b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"

    # ---- round 1: five days, one historian day file re-exported with corrected values
    _write_days((lake_a, lake_b), range(5))
    corrected = bf.reingest_readings(lake_a, FIRST_DAY + dt.timedelta(days=1))
    _append([lake_b], {"historian_readings": corrected})

    r_a = _run(lake_a, "default", wh_a)
    r_b = _run(lake_b, "spark", wh_b)
    md_a, md_b = _aligned_md(r_a), _aligned_md(r_b)
    assert md_a["engine"] == "default" and "spark_table" not in md_a
    assert md_b["engine"] == "spark" and md_b["spark_refresh_mode"] == "full"
    assert not lake_a.delta_exists(lake_a.uri(*SILVER))  # the default engine never writes it

    gold = _assert_engines_agree(lake_a, lake_b, wh_a, wh_b)
    silver = DeltaTable(lake_b.uri(*SILVER), storage_options=lake_b.delta_storage_options())
    assert silver.metadata().partition_columns == ["batch_id"]
    n_batches = gold["batch_id"].n_unique()
    assert md_b["spark_batches_rebuilt"] == n_batches >= 4
    assert md_b["spark_rows_written"] == gold.height
    # the re-exported values (+0.5) won on both engines: BR-101 12:00–13:00 of day 2
    noon = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=1), dt.time(12, 30), tzinfo=dt.UTC)
    in_minute = pc.and_(
        pc.greater_equal(corrected["ts"], pa.scalar(noon, bf.TS)),
        pc.less(corrected["ts"], pa.scalar(noon + dt.timedelta(minutes=1), bf.TS)),
    )
    raw = corrected.filter(
        pc.and_(in_minute, pc.and_(pc.equal(corrected["parameter"], "ph"), pc.equal(corrected["quality"], 192)))
    )
    row = gold.filter((pl.col("unit_id") == "BR-101") & (pl.col("ts") == noon))
    assert row.height == 1 and raw.num_rows >= 1
    assert row["ph"][0] == pytest.approx(float(pc.mean(raw["value"]).as_py()), abs=1e-9)
    before = dict(
        zip(
            *_mart(wh_b, "marts.fct_process_readings", PROCESS_KEYS)
            .group_by("batch_id")
            .agg(pl.col("_loaded_at").max())
            .to_dict()
            .values(),
            strict=True,
        )
    )

    # ---- round 2: day 6 arrives, and day 4 of BR-101 is re-exported with temperatures in degF
    _write_days((lake_a, lake_b), range(5, 6))
    day4 = FIRST_DAY + dt.timedelta(days=3)
    _reexport_in_degf(lake_a, lake_b, day4, tmp_path)

    r_a = _run(lake_a, "default", wh_a)
    r_b = _run(lake_b, "spark", wh_b)
    md_b = _aligned_md(r_b)
    assert md_b["spark_refresh_mode"] == "incremental"
    gold = _assert_engines_agree(lake_a, lake_b, wh_a, wh_b)

    after = dict(
        zip(
            *_mart(wh_b, "marts.fct_process_readings", PROCESS_KEYS)
            .group_by("batch_id")
            .agg(pl.col("_loaded_at").max())
            .to_dict()
            .values(),
            strict=True,
        )
    )
    changed = {b for b in after if before.get(b) != after[b]}  # rebuilt: loaded again
    # exactly the BR-101 batches whose window touches day 4, and the batches new or grown with day 6
    touched = {
        b for b in gold.filter((pl.col("unit_id") == "BR-101") & (pl.col("ts").dt.date() == day4))["batch_id"].unique()
    }
    assert touched and touched <= changed
    assert md_b["spark_batches_rebuilt"] == len(changed) < len(after)
    assert all(after[b] == before[b] for b in before if b not in changed)  # history untouched
    # the degF re-export, converted to degC at ingestion, gave the first export's values on both engines
    t_row = gold.filter(
        (pl.col("unit_id") == "BR-101") & (pl.col("ts") == dt.datetime.combine(day4, dt.time(7, 0), tzinfo=dt.UTC))
    )
    assert t_row.height == 1 and 20.0 < t_row["temperature"][0] < 40.0

    # ---- nothing new: the refresh rewrites nothing
    from lakehouse.spark.aligned_table import refresh_aligned_readings

    v = DeltaTable(lake_b.uri(*SILVER), storage_options=lake_b.delta_storage_options()).version()
    again = refresh_aligned_readings(lake_b, spark)
    assert (again.mode, again.batches_rebuilt, again.batches_total) == ("unchanged", [], len(after))
    assert DeltaTable(lake_b.uri(*SILVER), storage_options=lake_b.delta_storage_options()).version() == v
    # a changed alignment spec (grid) rebuilds every batch
    regrid = refresh_aligned_readings(lake_b, spark, grid_minutes=5)
    assert regrid.mode == "full" and len(regrid.batches_rebuilt) == len(after)
    five = pl.read_delta(lake_b.uri(*SILVER), storage_options=lake_b.delta_storage_options())
    assert five.height < gold.height / 4 and (five["ts"].dt.minute() % 5 == 0).all()


def test_refresh_watermark_read_from_delta_rs_and_delta_spark_commits():
    """The watermark/spec survive both writers: delta-rs custom metadata, delta-spark userMetadata."""
    import json

    from lakehouse.spark.aligned_table import BRONZE_KEY, SPEC_KEY, WATERMARK_KEY, RefreshState, last_refresh

    rs = {
        "operation": "WRITE",
        WATERMARK_KEY: "2026-01-05 10:00:00.000000",
        SPEC_KEY: "abc",
        BRONZE_KEY: '{"historian_readings": 7, "mes_batches": 2}',
    }
    spark_commit = {
        "operation": "WRITE",
        "userMetadata": json.dumps(
            {WATERMARK_KEY: "2026-01-06 00:00:00.000000", SPEC_KEY: "abc", BRONZE_KEY: '{"mes_phases": 3}'}
        ),
    }
    assert last_refresh([{"operation": "OPTIMIZE"}, rs]) == RefreshState(
        "2026-01-05 10:00:00.000000", "abc", {"historian_readings": 7, "mes_batches": 2}
    )
    assert last_refresh([spark_commit, rs]) == RefreshState("2026-01-06 00:00:00.000000", "abc", {"mes_phases": 3})
    assert last_refresh([{"userMetadata": "not json"}, {"operation": "VACUUM"}]) == RefreshState()
    # an empty first build; a table written before change capture by version (full rebuild)
    assert last_refresh([{WATERMARK_KEY: "", SPEC_KEY: "abc"}]) == RefreshState(None, "abc", None)
