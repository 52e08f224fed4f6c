"""Integrity of the raw layer enforced, not by convention: bronze and quarantine refuse
deletes, updates and overwrites (Delta append-only), vacuum cannot go below the retention
floor, the commit history is kept, tables of older lakes are upgraded by maintenance, every
ingestion commit records the configuration in force, and concurrent first runs on a new lake
all succeed without duplicating a row."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from ingest_testdata import good_landing, write

from lakehouse.ingest.maintenance import RetentionBelowFloorError, maintain, maintain_table
from lakehouse.ingest.readers import IngestContext
from lakehouse.ingest.schemas import BRONZE_SCHEMAS, BRONZE_TABLE_PROPERTIES
from lakehouse.ingest.writer import ingest_landing, table_uri
from lakehouse.provenance import code_version
from lakehouse.storage import Lake


def _dt(lake: Lake, table: str) -> DeltaTable:
    return DeltaTable(table_uri(lake, table), storage_options=lake.delta_storage_options())


def _refused(fn) -> str:
    with pytest.raises(Exception) as info:
        fn()
    return str(info.value)


def test_bronze_and_quarantine_are_append_only_and_keep_their_history(lake_local: Lake):
    lake = lake_local
    good_landing(lake, days=1, units=("BR-101",), minutes=5)
    write(lake, "lims/broken.csv", b"sample_id,batch_id\n")  # a rejected file: quarantine exists
    ingest_landing(lake, run_id="r1")
    for table in ("lims_results", "historian_readings", "_quarantine"):
        dt = _dt(lake, table)
        assert dt.metadata().configuration.get("delta.appendOnly") == "true", table
        rows = dt.to_pyarrow_table().num_rows
        assert "append-only" in _refused(lambda dt=dt: dt.delete())
        assert "append-only" in _refused(lambda dt=dt: dt.update({"_run_id": "'x'"}))
        data = dt.to_pyarrow_table().slice(0, 1)
        assert "append-only" in _refused(
            lambda table=table, data=data: write_deltalake(
                table_uri(lake, table), data, mode="overwrite", storage_options=lake.delta_storage_options()
            )
        )
        assert _dt(lake, table).to_pyarrow_table().num_rows == rows

    # vacuum below the floor is refused by maintenance and by the table itself
    with pytest.raises(RetentionBelowFloorError, match="below the floor of 168 h"):
        maintain(lake, retention_hours=0)
    assert "retention" in _refused(
        lambda: _dt(lake, "lims_results").vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=True)
    )

    # maintenance compacts and checkpoints but keeps every log entry: version 0 stays loadable
    v_before = _dt(lake, "historian_readings").version()
    maintain(lake)
    log_dir = lake.uri("bronze", "historian_readings", "_delta_log")
    jsons = sorted(f for f in os.listdir(log_dir) if f.endswith(".json"))
    assert jsons[0] == f"{0:020d}.json" and len(jsons) >= v_before + 1
    assert DeltaTable(table_uri(lake, "historian_readings"), version=0).version() == 0


def test_maintenance_upgrades_a_table_from_before_the_rules(lake_local: Lake):
    lake = lake_local
    uri = table_uri(lake, "cmms_work_orders")
    schema = BRONZE_SCHEMAS["cmms_work_orders"]
    DeltaTable.create(uri, schema)  # an old lake: no properties
    write_deltalake(
        uri,
        pa.Table.from_pylist([{"work_order_id": "WO-1", "equipment_id": "BR-101-AGT"}], schema=schema),
        mode="append",
    )
    out = maintain_table(lake, "cmms_work_orders")
    assert out["properties_set"] == sorted(BRONZE_TABLE_PROPERTIES)
    assert "append-only" in _refused(lambda: DeltaTable(uri).delete())
    assert maintain_table(lake, "cmms_work_orders")["properties_set"] == []


def test_every_ingestion_commit_records_the_config_in_force(lake: Lake):
    good_landing(lake, days=1, units=("BR-101",), minutes=5)
    ingest_landing(lake, run_id="cfg")
    for table in ("historian_readings", "lims_results", "_ingest_log"):
        commit = _dt(lake, table).history(1)[0]
        assert commit["lakehouse.config_sha256"] == IngestContext().fingerprint(), table
        assert commit["lakehouse.code_version"] == code_version() and commit["lakehouse.run_id"] == "cfg"
        assert commit["lakehouse.tagmap"]


def test_concurrent_first_runs_on_a_new_lake_succeed_exactly_once(lake: Lake):
    expected = good_landing(lake, days=1, units=("BR-101", "BR-102"), minutes=5)
    with ThreadPoolExecutor(6) as pool:
        reports = list(pool.map(lambda i: ingest_landing(lake, run_id=f"race-{i}"), range(6)))
    for table, n in expected.items():
        if n:
            assert _dt(lake, table).to_pyarrow_table().num_rows == n, table
    assert sum(sum(r.rows_written.values()) for r in reports) == sum(expected.values())
