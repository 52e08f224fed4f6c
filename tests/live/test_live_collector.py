"""The live collector against the twin's real OPC UA server: killed, restarted, server restarts.

Every test ends with the same verdict (:func:`assert_exactly_once`): for every tag, bronze (and
``_quarantine`` for the tag the tag map does not know) holds exactly the readings the server
served up to the tag's committed cursor — no gap, no duplicate, same values, timestamps,
qualities and units.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import polars as pl
import pytest
from live_testutil import (
    SIM_START,
    UNKNOWN_SUFFIX,
    bronze,
    cursors,
    served,
    start_collector,
    stop,
    upto_cursor,
    wait_until,
)

from lakehouse.ingest.tagmap import load_tagmap
from lakehouse.live import HOOKS, collect, read_status
from lakehouse.storage import Lake
from tests.conftest import s3_lake
from twin.historian import TAG_NAMES, TAG_UNITS
from twin.live.server import PlantServerThread, SimClock

TAGS = [f"BR-101.{s}" for s in TAG_NAMES]
UNKNOWN = f"BR-101.{UNKNOWN_SUFFIX}"
MAPPED = [t for t in TAGS if t != UNKNOWN]
SPEED = 1800.0  # 30 simulated minutes per second: 30 readings per tag and second
WINDOW_S = 5 * 86_400.0  # HistoryRead serves everything since the site start


def _version(lake: Lake) -> int:
    uri = lake.table_uri("bronze", "historian_readings")
    return lake.delta_table(uri).version() if lake.delta_exists(uri) else -1


def assert_exactly_once(lake: Lake, endpoint: str, served_df: pl.DataFrame, *, unknown: bool = True) -> dict:
    """Bronze (+ quarantine) == served, per tag up to its cursor; returns the cursors."""
    cur = cursors(lake, endpoint, TAGS)
    assert all(c is not None for c in cur.values()), cur
    b = bronze(lake)
    assert b.group_by("tag", "ts").len()["len"].max() == 1, "duplicate readings in bronze"
    mapped = MAPPED if unknown else TAGS
    expect = upto_cursor(served_df.filter(pl.col("tag").is_in(mapped)), cur)
    got = b.select("tag", "ts", "value", "quality").sort("tag", "ts")
    assert got.height == expect.height > 0
    assert got.equals(expect.select("tag", "ts", "value", "quality").sort("tag", "ts")), "bronze != served"
    # canonical names and units from the tag map, lineage of the live source
    units = b.select("tag", "eng_unit", "unit_id", "parameter").unique()
    assert all(r["eng_unit"] == TAG_UNITS[r["tag"].split(".", 1)[1]] for r in units.iter_rows(named=True))
    assert set(units["unit_id"]) == {"BR-101"} and units.height == len(mapped)
    assert set(b["_source_file"].unique()) == {endpoint}
    # bad-quality readings land with their quality (and their value)
    assert (got["quality"] == 0).sum() == (expect["quality"] == 0).sum() > 0
    assert (got["quality"] == 64).sum() > 0
    if unknown:
        q = bronze(lake, "_quarantine")
        raw = pl.DataFrame([json.loads(r) for r in q["raw_record"]])
        assert set(q["reason"]) == {"tag not in tag map"} and set(raw["tag"]) == {UNKNOWN}
        qts = raw.select(pl.col("source_timestamp").str.to_datetime(time_unit="us", time_zone="UTC").alias("ts"))
        assert qts["ts"].is_duplicated().sum() == 0, "duplicate readings in quarantine"
        exp_q = upto_cursor(served_df.filter(pl.col("tag") == UNKNOWN), cur)
        assert qts.sort("ts")["ts"].equals(exp_q.sort("ts")["ts"])
    return cur


@pytest.fixture
def server(live_plan):
    clock = SimClock.starting_now(SIM_START, speed=SPEED)
    with PlantServerThread(live_plan, clock, port=0, history_window_s=WINDOW_S) as srv:
        yield srv


def test_collector_killed_mid_batch_and_restarted(tmp_path, server, tagmap_without_vibration):
    lake = Lake(str(tmp_path / "lake"))
    args = ("--tagmap", str(tagmap_without_vibration), "--flush-interval", "0.5")
    # 1. dies right after its 3rd quarantine commit: rejected readings in, their valid batch not
    p = start_collector(server.endpoint, lake.root, *args, crash_after="quarantine_committed:3")
    rc, out = p.wait(timeout=300), p.stdout.read()
    assert rc == 77, out[-3000:]
    v1 = _version(lake)
    assert v1 >= 2  # the backfill and at least one live micro-batch made it before the crash
    # 2. restarted, then SIGKILLed while collecting
    p = start_collector(server.endpoint, lake.root, *args)
    wait_until(lambda: _version(lake) >= v1 + 3, 240, "commits of the 2nd run", p)
    p.send_signal(signal.SIGKILL)
    rc, out = stop(p)
    assert rc == -signal.SIGKILL
    v2 = _version(lake)
    # 3. restarted once more, stopped cleanly (SIGTERM: commits what it buffered)
    p = start_collector(server.endpoint, lake.root, *args)
    wait_until(lambda: _version(lake) >= v2 + 3, 240, "commits of the 3rd run", p)
    rc, out = stop(p)
    assert rc == 0, out[-3000:]
    served_df = served(server.endpoint, TAGS)

    cur = assert_exactly_once(lake, server.endpoint, served_df)
    b = bronze(lake)
    assert b["_run_id"].n_unique() == 3  # all three processes committed readings
    span_h = (max(cur.values()) - b["ts"].min().timestamp() * 1e6) / 3.6e9
    assert span_h > 24  # the backfill (a simulated day) plus live collection
    status = read_status(lake)
    assert status["state"] == "stopped" and status["rows_committed"] > 0
    assert status["tags"]["BR-101.TEMP.PV"]["cursor"] is not None
    assert status["last_commit_version"] == _version(lake)


def test_collector_rides_out_a_server_restart(tmp_path, live_plan):
    """A running collector (in a thread, via :func:`collect`) outlives its server's restart."""
    lake = Lake(str(tmp_path / "lake"))
    clock = SimClock.starting_now(SIM_START, speed=SPEED)
    srv = PlantServerThread(live_plan, clock, port=0, history_window_s=WINDOW_S).start()
    port, stop_collecting, result = srv.server.port, threading.Event(), {}
    worker = threading.Thread(
        target=lambda: result.update(
            status=collect(
                lake, srv.endpoint, flush_interval_s=0.5, backfill_s=None, stop=stop_collecting, log_every_s=1.0
            )
        )
    )
    worker.start()
    try:
        wait_until(lambda: _version(lake) >= 2, 240, "first commits")
        srv.stop()  # the plant's OPC UA server goes away ...
        down_at = _version(lake)
        time.sleep(3.0)
        srv = PlantServerThread(live_plan, clock, port=port, history_window_s=WINDOW_S).start()  # ... and back
        wait_until(lambda: _version(lake) >= down_at + 3, 240, "commits after the restart")
        stop_collecting.set()
        worker.join(60)
        assert not worker.is_alive()
        served_df = served(srv.endpoint, TAGS)
    finally:
        stop_collecting.set()
        srv.stop()
    assert_exactly_once(lake, srv.endpoint, served_df, unknown=False)
    status = result["status"]
    assert status.reconnects >= 1 and status.sessions >= 2 and status.rows_quarantined == 0
    assert status.state == "stopped" and read_status(lake)["sessions"] == status.sessions
    # the outage was filled from history: readings from the down time were committed after it
    b = bronze(lake)
    assert b["_ingested_at"].n_unique() > 3


@pytest.mark.s3
def test_collector_on_s3_crash_and_restart(s3_server, server, tagmap_without_vibration):
    lake = s3_lake(s3_server)
    env = {
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
    }
    args = ("--tagmap", str(tagmap_without_vibration), "--flush-interval", "0.5")
    p = start_collector(server.endpoint, lake.root, *args, crash_after="bronze_committed:3", env=env)
    rc, out = p.wait(timeout=300), p.stdout.read()
    assert rc == 77, out[-3000:]
    v1 = _version(lake)
    p = start_collector(server.endpoint, lake.root, *args, env=env)
    wait_until(lambda: _version(lake) >= v1 + 2, 240, "commits of the 2nd run", p)
    rc, out = stop(p)
    assert rc == 0, out[-3000:]
    served_df = served(server.endpoint, TAGS)
    assert_exactly_once(lake, server.endpoint, served_df)
    assert read_status(lake)["state"] == "stopped"


def test_two_collectors_on_one_server_write_each_reading_once(tmp_path, server):
    """Two collectors of the same endpoint race. Collector b is held right before two of its
    commits (its cursors read) until collector a has committed: delta-rs rejects b's commit
    ("concurrent transaction"), b re-reads the cursors and writes only what a had not."""
    lake = Lake(str(tmp_path / "lake"))
    tagmap = load_tagmap(None)
    a_committed, held = threading.Event(), []

    def race(event: str, info: dict) -> None:
        if info.get("table") != "historian_readings":
            return
        if event == "bronze_committed" and info["run_id"] == "a":
            a_committed.set()
        elif event == "before_commit" and info["run_id"] == "b" and info["attempt"] == 0 and len(held) < 2:
            a_committed.clear()
            held.append(a_committed.wait(30.0))

    results: dict = {}
    stops = {"a": threading.Event(), "b": threading.Event()}

    def run(name: str) -> None:
        results[name] = collect(
            lake,
            server.endpoint,
            tagmap=tagmap,
            flush_interval_s=0.3,
            backfill_s=None,
            run_id=name,
            stop=stops[name],
            status_path=f"_live/{name}.json",
        )

    HOOKS.append(race)
    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(held) >= 2, 240, "two held commits of collector b")
        time.sleep(1.0)  # b's retry of the second held commit
    finally:
        for name in ("b", "a"):  # a outlives b: a held commit of b always finds a running
            stops[name].set()
            threads[0 if name == "a" else 1].join(60)
        HOOKS.remove(race)
    served_df = served(server.endpoint, TAGS)
    assert_exactly_once(lake, server.endpoint, served_df, unknown=False)
    a, b = results["a"], results["b"]
    assert held == [True, True] and b.commit_retries >= 2  # each held commit lost the race
    bronze_rows = bronze(lake)
    assert set(bronze_rows["_run_id"].unique()) <= {"a", "b"}
    for s in (a, b):  # each counts what it wrote itself (whoever committed a reading first)
        assert s.rows_committed == bronze_rows.filter(pl.col("_run_id") == s.run_id).height
