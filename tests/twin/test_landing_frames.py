"""``tests.support.landing_frames.gold_frames`` (the benchmark shortcut landing → gold-shaped frames) on
the twin site of tests/twin: the aligned grid is the contract's, values come from the CSVs."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest


@pytest.fixture(scope="module")
def frames(site_dir):
    from tests.support.landing_frames import gold_frames

    return gold_frames(str(site_dir))


def test_aligned_grid_and_values_match_the_historian_files(frames, site_dir):
    from tests.support.landing_frames import read_historian

    batches, aligned = frames["dim_batches"], frames["fct_process_readings"]
    done = batches.filter(pl.col("inoculation_ts").is_not_null() & pl.col("harvest_ts").is_not_null())
    assert done.height >= 4
    per_batch = aligned.group_by("batch_id").agg(
        pl.len().alias("n"), pl.col("ts").min().alias("t0"), pl.col("ts").max().alias("t1")
    )
    grid = done.join(per_batch, on="batch_id", how="left")
    for b in grid.iter_rows(named=True):
        start = b["inoculation_ts"].replace(second=0, microsecond=0)  # time_bucket(1 min)
        assert b["t0"] == start and b["t1"] <= b["harvest_ts"] < b["t1"] + dt.timedelta(minutes=1)
        assert b["n"] == int((b["t1"] - b["t0"]).total_seconds() // 60) + 1  # no gaps, no duplicates
    assert aligned.select(pl.struct("batch_id", "ts").is_unique().all()).item()
    # exact culture age (µs), maturity 0 → 100 %
    first = aligned.join(done.select("batch_id", "inoculation_ts", "harvest_ts"), on="batch_id")
    age = (first["ts"] - first["inoculation_ts"]).dt.total_microseconds() / 3.6e9
    assert (first["culture_age_h"] - age).abs().max() < 1e-12
    assert first["maturity_pct"].max() <= 100.0 + 1e-9

    # a minute with readings holds their mean; a minute without carries the last value forward
    raw = read_historian(str(site_dir)).filter(pl.col("parameter") == "dissolved_oxygen").collect()
    b = done.row(1, named=True)
    rows = aligned.filter(pl.col("batch_id") == b["batch_id"]).sort("ts")
    mid = rows["ts"][rows.height // 2]
    window = raw.filter(
        (pl.col("unit_id") == b["unit_id"]) & pl.col("ts").is_between(mid, mid + dt.timedelta(hours=1), closed="left")
    )
    assert window.height >= 6  # 300 s logging
    for t in rows.filter(pl.col("ts").is_between(mid, mid + dt.timedelta(hours=1), closed="left")).iter_rows(
        named=True
    ):
        upto = window.filter(pl.col("ts") < t["ts"] + dt.timedelta(minutes=1))
        inside = upto.filter(pl.col("ts") >= t["ts"])
        if inside.height:
            assert t["dissolved_oxygen"] == pytest.approx(inside["value"].mean(), abs=1e-9)
        elif upto.height:
            prev = upto.filter(pl.col("ts") == upto["ts"].max())
            assert t["dissolved_oxygen"] == pytest.approx(prev["value"].mean(), abs=1e-9)


def test_other_frames_are_filled(frames):
    assert frames["fct_assay_results"].filter(pl.col("analyte") == "titer").height > 0
    health = frames["fct_equipment_health_daily"]
    assert {"agitator", "feed_pump"} <= set(health["equipment_type"].unique())
    assert frames["fct_work_orders"].height > 0 and "truth_failures" in frames
