"""Landing → bronze through REAL Dagster materializations against the SeaweedFS S3 server."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest
from ingest_testdata import BAD_DAY, T0, bad_landing, good_landing, historian_csv, write

from assets.ingest import build_ingest_defs
from assets.resources import LakeResource
from lakehouse.ingest.schemas import BRONZE_SCHEMAS, LINEAGE_COLUMNS
from lakehouse.ingest.writer import table_uri
from lakehouse.storage import Lake

pytestmark = pytest.mark.s3

DEFS = build_ingest_defs("2026-01-01")
HISTORIAN = DEFS.get_assets_def(dg.AssetKey(["bronze", "historian_readings"]))
UNPARTITIONED = [
    a
    for a in DEFS.assets
    if isinstance(a, dg.AssetsDefinition)
    and not a.partitions_def
    and not ({k.path[-1] for k in a.keys} & {"_maintenance", "_quarantine"})
]
QUARANTINE = DEFS.get_assets_def(dg.AssetKey(["bronze", "_quarantine"]))


def _resource(lake: Lake, s3_server) -> LakeResource:
    return LakeResource(
        root_uri=lake.root,
        s3_endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        aws_region=s3_server.region,
    )


def _count(lake: Lake, table: str) -> int:
    uri = table_uri(lake, table)
    return (
        lake.read_delta(uri, columns=["_run_id"] if table != "_quarantine" else ["reason"]).num_rows
        if lake.delta_exists(uri)
        else 0
    )


def _materialize_all(lake, res, days):
    results = []
    for day in days:
        results.append(dg.materialize([HISTORIAN], resources={"lake": res}, partition_key=day))
    results.append(dg.materialize(UNPARTITIONED, resources={"lake": res}))
    for r in results:
        assert r.success
    return results


def _meta(result: dg.ExecuteInProcessResult, table: str) -> dict:
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(["bronze", table])]
    assert mats, table
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def test_landing_to_bronze_exactly_once_on_s3(lake_s3: Lake, s3_server):
    lake = lake_s3
    res = _resource(lake, s3_server)
    expected = good_landing(lake, days=2, units=("BR-101", "BR-102"), minutes=15)
    days = [(T0.date()).isoformat(), (T0.date().replace(day=T0.day + 1)).isoformat()]

    first = _materialize_all(lake, res, days)
    for table, n in expected.items():
        assert _count(lake, table) == n, table
    # lineage on every row, the contract's columns exactly
    hist = pl.from_arrow(lake.read_delta(table_uri(lake, "historian_readings")))
    assert hist.columns == BRONZE_SCHEMAS["historian_readings"].names
    assert sum(hist.select(pl.col(LINEAGE_COLUMNS).null_count()).row(0)) == 0
    assert hist.get_column("_source_file").str.starts_with(lake.root + "/landing/historian/").all()
    assert hist.get_column("_source_hash").str.len_chars().eq(64).all()
    assert hist.get_column("date").unique().sort().cast(pl.Utf8).to_list() == days
    assert set(hist.get_column("parameter").unique()) >= {"temperature", "ph", "dissolved_oxygen"}
    assert _meta(first[0], "historian_readings")["rows_appended"] == expected["historian_readings"] // 2
    assert _count(lake, "_quarantine") == 0

    # ingest again (all assets, same partitions): zero new rows, no new Delta versions
    versions = {t: lake.delta_table(table_uri(lake, t)).version() for t in expected}
    again = _materialize_all(lake, res, days)
    for table, n in expected.items():
        assert _count(lake, table) == n, table
        assert lake.delta_table(table_uri(lake, table)).version() == versions[table], table
    assert _meta(again[-1], "lims_results")["rows_appended"] == 0
    assert _meta(again[0], "historian_readings")["files_unchanged_skipped"] == 2

    # a changed file under the same name is a new version: ingested and recorded as such
    b, n = historian_csv("BR-101", T0.date(), minutes=16)
    write(lake, f"historian/BR-101/{days[0]}.csv", b)
    dg.materialize([HISTORIAN], resources={"lake": res}, partition_key=days[0])
    hist = pl.from_arrow(lake.read_delta(table_uri(lake, "historian_readings")))
    assert hist.height == expected["historian_readings"] + n
    versions_of_file = hist.filter(pl.col("_source_file").str.ends_with(f"BR-101/{days[0]}.csv"))
    assert versions_of_file.get_column("_source_hash").n_unique() == 2
    log = pl.from_arrow(lake.read_delta(table_uri(lake, "_ingest_log")))
    assert log.filter(pl.col("rel_path") == f"historian/BR-101/{days[0]}.csv").get_column("source_hash").n_unique() == 2


def test_bad_input_is_quarantined_and_the_rest_ingested_on_s3(lake_s3: Lake, s3_server):
    lake = lake_s3
    res = _resource(lake, s3_server)
    exp = bad_landing(lake)
    hist_run = dg.materialize([HISTORIAN], resources={"lake": res}, partition_key=BAD_DAY.isoformat())
    rest_run = dg.materialize(UNPARTITIONED, resources={"lake": res})
    assert hist_run.success and rest_run.success  # the pipeline keeps going on bad input

    for table, n in exp["rows"].items():
        assert _count(lake, table) == n, table
    q = pl.from_arrow(lake.read_delta(table_uri(lake, "_quarantine")))
    rows_q = q.filter(pl.col("row_number").is_not_null())
    files_q = q.filter(pl.col("row_number").is_null())
    for needle, n in exp["row_reasons"].items():
        assert rows_q.filter(pl.col("reason").str.contains(needle, literal=True)).height == n, needle
    assert files_q.height == exp["whole_files"]
    for needle, n in exp["file_reasons"].items():
        assert files_q.filter(pl.col("reason").str.contains(needle, literal=True)).height >= n, needle
    # every rejected file is named, every bad row keeps its original values
    assert files_q.get_column("source_file").n_unique() == exp["whole_files"]
    raw = rows_q.filter(pl.col("reason").str.contains("non-numeric")).get_column("raw_record").item()
    assert '"value": "12O.03"' in raw
    # invariant: rows read = rows in bronze + rows in quarantine (historian: one file with bad rows)
    hist_q = rows_q.filter(pl.col("table") == "historian_readings").height
    assert _count(lake, "historian_readings") + hist_q == exp["historian_read"]
    meta = _meta(hist_run, "historian_readings")
    assert meta["rows_read"] == meta["rows_valid"] + meta["rows_quarantined"]
    assert meta["files_rejected"] == 5
    # the WARN check fired for the tables with rejects, and passed for the clean ones
    checks = {
        (e.asset_key.path[-1], e.passed): e.severity
        for e in [*hist_run.get_asset_check_evaluations(), *rest_run.get_asset_check_evaluations()]
    }
    assert checks[("historian_readings", False)] == dg.AssetCheckSeverity.WARN
    assert checks[("lims_results", False)] == dg.AssetCheckSeverity.WARN
    assert ("cmms_work_orders", True) in checks  # nothing set aside there: the check passes
    # the quarantine summary asset reports and warns on growth
    summary = dg.materialize([QUARANTINE], resources={"lake": res})
    assert _meta(summary, "_quarantine")["total_rows"] == q.height

    # re-run: nothing new in bronze or quarantine
    dg.materialize([HISTORIAN], resources={"lake": res}, partition_key=BAD_DAY.isoformat())
    dg.materialize(UNPARTITIONED, resources={"lake": res})
    assert _count(lake, "_quarantine") == q.height
    for table, n in exp["rows"].items():
        assert _count(lake, table) == n, table
