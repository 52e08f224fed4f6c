"""The landing sensor (run keys, cursor) and bronze maintenance (compaction, checkpoint, vacuum)."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from ingest_testdata import T0, good_landing, lims_csv, write

from assets.ingest import build_ingest_defs
from assets.resources import LakeResource
from lakehouse.ingest.maintenance import maintain
from lakehouse.ingest.writer import ingest_landing, table_uri
from lakehouse.storage import Lake

DEFS = build_ingest_defs("2026-01-01")
SENSOR = next(s for s in DEFS.sensors if s.name == "landing_files_sensor")


def _tick(lake: Lake, cursor: str | None):
    with dg.build_sensor_context(cursor=cursor, resources={"lake": LakeResource(root_uri=lake.root)}) as ctx:
        result = SENSOR(ctx)
    return result


def test_sensor_requests_runs_for_new_files_only(lake_local: Lake):
    lake = lake_local
    good_landing(lake, days=2, units=("BR-101",), minutes=5)
    first = _tick(lake, None)
    reqs = {r.tags["lakehouse/system"]: r for r in first.run_requests}
    assert set(reqs) == {"historian", "lims", "mes", "chromatography", "filtration", "cmms"}
    h = reqs["historian"]  # two contiguous days -> ONE run over the range
    assert (h.tags[ASSET_PARTITION_RANGE_START_TAG], h.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "2026-01-03",
        "2026-01-04",
    )
    assert h.asset_selection == [dg.AssetKey(["bronze", "historian_readings"])]
    assert len({r.run_key for r in first.run_requests}) == 6
    cursor = first.cursor
    assert len(json.loads(cursor)["inflight"]) == 12  # every landing file, launched once

    second = _tick(lake, cursor)  # launched already: nothing requested again
    assert not second.run_requests
    # the runs happen (here: the library directly); the ingest log now holds the files
    ingest_landing(lake, run_id="runs")
    third = _tick(lake, second.cursor)
    assert not third.run_requests and json.loads(third.cursor)["inflight"] == {}

    day = T0.date().replace(day=10)
    write(lake, f"lims/{day}.csv", lims_csv(day, batch_id="BR101-0009")[0])
    fourth = _tick(lake, third.cursor)
    assert [r.tags["lakehouse/system"] for r in fourth.run_requests] == ["lims"]
    assert fourth.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_maintenance_compacts_and_keeps_exactly_once(lake_local: Lake):
    lake = lake_local
    good_landing(lake, days=1, units=("BR-101",), minutes=5)
    ingest_landing(lake, run_id="a")
    for d in range(4, 9):  # many small commits
        day = T0.date().replace(day=d)
        write(lake, f"lims/{day}.csv", lims_csv(day, batch_id=f"BR101-00{d:02d}")[0])
        ingest_landing(lake, ["lims"], run_id=f"r{d}")
    lims_uri = table_uri(lake, "lims_results")
    before_rows = lake.read_delta(lims_uri).num_rows
    out = {r["table"]: r for r in maintain(lake)}
    assert out["lims_results"]["files_before"] == 6 and out["lims_results"]["files_after"] == 1
    # the compacted-away files are younger than the retention floor: kept for readers
    assert out["lims_results"]["vacuumed_files"] == 0
    assert lake.read_delta(lims_uri).num_rows == before_rows
    assert lake.read_delta(lims_uri, version=1).num_rows < before_rows  # old versions readable
    # app transactions survive compaction: nothing is ingested twice, even bypassing the log
    rep = ingest_landing(lake, run_id="again", skip_logged=False)
    assert rep.files_already_committed == rep.files_listed and sum(rep.rows_written.values()) == 0
    assert lake.read_delta(lims_uri).num_rows == before_rows
    # and the Dagster asset reports file counts
    maint = DEFS.get_assets_def(dg.AssetKey(["bronze", "_maintenance"]))
    res = dg.materialize(
        [maint],
        resources={"lake": LakeResource(root_uri=lake.root)},
        run_config={"ops": {"bronze___maintenance": {"config": {"retention_hours": 200}}}},
    )
    md = res.get_asset_materialization_events()[0].materialization.metadata
    assert md["files_after"].value <= md["files_before"].value
    log = pl.from_arrow(lake.read_delta(table_uri(lake, "_ingest_log")))
    assert log.filter(pl.col("_run_id") == "again").height == rep.files_listed
