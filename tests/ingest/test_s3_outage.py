"""A short S3 outage does not end an ingestion, and a BI reader's read-only key cannot write.

A private SeaweedFS server (not the session's: this test kills it) is stopped right after the
first bronze commit of a run and comes back after a few seconds (at least 5 s without service,
restart included). The run rides it out (retries with back-off on every commit and read) and
bronze holds exactly what was exported: no loss, no duplicate."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest
from deltalake import DeltaTable, write_deltalake
from ingest_testdata import good_landing

from lakehouse.ingest import writer
from lakehouse.s3server import start_s3_server
from lakehouse.storage import Lake, S3Settings

pytestmark = pytest.mark.s3


@pytest.fixture
def private_server():
    server = start_s3_server(bucket="outage")
    try:
        yield server
    finally:
        server.stop()


def _lake(server, key=None, secret=None) -> Lake:
    return Lake(
        server.uri("lake"),
        S3Settings(
            endpoint_url=server.endpoint_url,
            access_key_id=key or server.access_key,
            secret_access_key=secret or server.secret_key,
        ),
    )


def test_ingestion_survives_an_s3_restart(private_server, monkeypatch, caplog):
    caplog.set_level("WARNING", logger="lakehouse.retry")
    lake = _lake(private_server)
    expected = good_landing(lake, days=3, units=("BR-101", "BR-102"), minutes=30)
    outage: dict[str, float] = {}

    def restart_later():
        time.sleep(5.0)
        private_server.start()
        outage["up"] = time.monotonic()

    def kill_once(event, info):
        if event == "bronze_committed" and "down" not in outage:
            outage["down"] = time.monotonic()
            private_server.kill()
            threading.Thread(target=restart_later, daemon=True).start()

    monkeypatch.setattr(writer, "HOOKS", [kill_once])
    report = writer.ingest_landing(lake, run_id="outage", max_batch_files=2)
    assert outage["up"] - outage["down"] >= 5.0  # it really was down for the whole sleep
    # and the run met the outage: at least one commit or read failed and was retried
    retries = [r.getMessage() for r in caplog.records if r.name == "lakehouse.retry"]
    assert any("failed" in m and "retrying" in m for m in retries), retries
    for table, n in expected.items():
        if n:
            got = DeltaTable(lake.uri("bronze", table), storage_options=lake.delta_storage_options())
            assert got.to_pyarrow_table().num_rows == n, table
    assert sum(report.rows_written.values()) == sum(expected.values())
    assert not report.files_rejected


def test_a_read_only_key_reads_the_lake_and_cannot_write(private_server):
    writer_lake = _lake(private_server)
    good_landing(writer_lake, days=1, units=("BR-101",), minutes=5)
    writer.ingest_landing(writer_lake, run_id="w")
    reader = _lake(private_server, private_server.readonly_access_key, private_server.readonly_secret_key)
    uri = reader.uri("bronze", "lims_results")
    table = DeltaTable(uri, storage_options=reader.delta_storage_options()).to_pyarrow_table()
    assert table.num_rows > 0
    # DuckDB, as a BI tool would read it, with the read-only secret
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dbt_project" / "plugins"))
    import lakehouse_duckdb

    con = duckdb.connect()
    lakehouse_duckdb.configure(
        con,
        {
            "s3_endpoint_url": private_server.endpoint_url,
            "s3_access_key_id": private_server.readonly_access_key,
            "s3_secret_access_key": private_server.readonly_secret_key,
        },
    )
    assert con.execute(f"select count(*) from delta_scan('{uri}')").fetchone()[0] == table.num_rows
    with pytest.raises(Exception, match=r"(?i)access ?denied|forbidden|403"):
        write_deltalake(uri, table.slice(0, 1), mode="append", storage_options=reader.delta_storage_options())
    with pytest.raises(Exception, match=r"(?i)access ?denied|forbidden|403"):
        reader.filesystem().pipe(reader.fs_path(reader.uri("landing", "evil.csv")), b"x")
    assert (
        DeltaTable(uri, storage_options=writer_lake.delta_storage_options()).to_pyarrow_table().num_rows
        == table.num_rows
    )
