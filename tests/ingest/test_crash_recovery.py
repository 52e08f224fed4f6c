"""Kill the ingestion process between its commits, re-run: no duplicates, no loss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from ingest_testdata import BAD_DAY, bad_landing, good_landing

from lakehouse.ingest.schemas import BRONZE_SCHEMAS
from lakehouse.ingest.writer import ingest_landing, table_uri
from lakehouse.storage import Lake

HARNESS = Path(__file__).with_name("crash_harness.py")


def _run_harness(lake: Lake, crash_after: str, mode: str = "library", *extra: str, s3_env=None) -> int:
    env = {**os.environ, "INGEST_CRASH_AFTER": crash_after, "DAGSTER_HOME": "", **(s3_env or {})}
    env.pop("DAGSTER_HOME")
    proc = subprocess.run(
        [sys.executable, str(HARNESS), lake.root, mode, *extra], env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 77, (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:])
    return proc.returncode


def _table(lake: Lake, table: str) -> pl.DataFrame:
    uri = table_uri(lake, table)
    if not lake.delta_exists(uri):
        return pl.DataFrame()
    return pl.from_arrow(lake.read_delta(uri))


def _snapshot(lake: Lake) -> dict[str, int]:
    return {t: _table(lake, t).height for t in [*BRONZE_SCHEMAS, "_quarantine"]}


def _assert_no_duplicates(lake: Lake) -> None:
    hist = _table(lake, "historian_readings")
    assert hist.group_by("_source_file", "_source_hash", "tag", "ts").len().get_column("len").max() == 1
    q = _table(lake, "_quarantine")
    assert q.group_by("source_file", "source_hash", "table", "row_number").len().get_column("len").max() == 1
    for t in ["mes_batches", "mes_phases", "lims_results", "cmms_work_orders", "chrom_curves"]:
        df = _table(lake, t)
        data_cols = [c for c in df.columns if not c.startswith("_")]
        assert not df.select(data_cols + ["_source_hash"]).is_duplicated().any(), t


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, int]:
    """Row counts of an uninterrupted ingestion of the same landing zone."""
    lake = Lake(str(tmp_path_factory.mktemp("reference") / "lake"))
    good_landing(lake, days=2, units=("BR-101",), minutes=10)
    bad_landing(lake)
    ingest_landing(lake, run_id="reference")
    return _snapshot(lake)


@pytest.mark.parametrize(
    "crash_after",
    [
        "quarantine_committed",  # quarantine rows committed, bronze not yet
        "bronze_committed:mes_batches",  # between two tables fed by the same files
        "bronze_committed:historian_readings",  # data committed, ingest log not yet written
    ],
)
def test_crash_between_commits_then_rerun(tmp_path, reference, crash_after):
    lake = Lake(str(tmp_path / "lake"))
    good_landing(lake, days=2, units=("BR-101",), minutes=10)
    bad_landing(lake)
    _run_harness(lake, crash_after)
    partial = _snapshot(lake)
    assert partial != reference  # the crash really left the work unfinished
    report = ingest_landing(lake, run_id="recovery")
    assert _snapshot(lake) == reference
    _assert_no_duplicates(lake)
    # the recovery run appended exactly what was missing
    assert sum(report.rows_written.values()) == sum(reference[t] for t in BRONZE_SCHEMAS) - sum(
        partial[t] for t in BRONZE_SCHEMAS
    )
    # and a third run adds nothing
    ingest_landing(lake, run_id="third")
    assert _snapshot(lake) == reference


@pytest.mark.s3
def test_crash_inside_a_dagster_run_on_s3(lake_s3, s3_server):
    """The real asset in a real (in-process) Dagster run, killed after its Delta commit."""
    import dagster as dg

    from assets.ingest import build_ingest_defs
    from assets.resources import LakeResource

    lake = lake_s3
    exp = bad_landing(lake)
    _run_harness(lake, "quarantine_committed", "dagster", BAD_DAY.isoformat(), s3_env=s3_server.env())
    assert _table(lake, "historian_readings").height == 0 and _table(lake, "_quarantine").height > 0
    hist = build_ingest_defs("2026-01-01").get_assets_def(dg.AssetKey(["bronze", "historian_readings"]))
    res = LakeResource(
        root_uri=lake.root,
        s3_endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
    )
    assert dg.materialize([hist], resources={"lake": res}, partition_key=BAD_DAY.isoformat()).success
    hist_rows = _table(lake, "historian_readings")
    q = _table(lake, "_quarantine").filter(pl.col("table") == "historian_readings")
    assert hist_rows.height == exp["rows"]["historian_readings"]
    assert hist_rows.height + q.filter(pl.col("row_number").is_not_null()).height == exp["historian_read"]
    assert q.group_by("source_file", "row_number").len().get_column("len").max() == 1
