"""Alignment to the per-batch grid: the DuckDB reference against the contract, Spark against it."""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from lakehouse.storage import Lake
from lakehouse.transforms.alignment import (
    align_readings,
    batch_windows,
    default_parameters,
    output_columns,
    output_schema,
)
from tests.support.spark_site import synthetic_site

UTC = UTC
T = datetime(2026, 1, 3, 8, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)


def _readings(rows) -> pa.Table:
    ts, unit, par, val, q = zip(*rows)
    return pa.table(
        {
            "ts": pa.array(ts, TS),
            "unit_id": pa.array(unit),
            "parameter": pa.array(par),
            "value": pa.array(val, pa.float64()),
            "quality": pa.array(q, pa.int16()),
        }
    )


def _windows(rows) -> pa.Table:
    b, u, i, h = zip(*rows)
    return pa.table(
        {
            "batch_id": pa.array(b),
            "unit_id": pa.array(u),
            "inoculation_ts": pa.array(i, TS),
            "harvest_ts": pa.array(h, TS),
        }
    )


def _phases(rows) -> pa.Table:
    b, p, s, e = zip(*rows)
    return pa.table(
        {"batch_id": pa.array(b), "phase": pa.array(p), "start_ts": pa.array(s, TS), "end_ts": pa.array(e, TS)}
    )


def m(minutes: float, seconds: float = 0) -> datetime:
    return T + timedelta(minutes=minutes, seconds=seconds)


# ----------------------------------------------------------------------------- the contract
def test_contract_rules_on_a_hand_made_example():
    readings = _readings(
        [
            (m(-1, 50), "BR-101", "temperature", 36.0, 192),  # in bucket 07:59 = first grid step
            (m(0, 10), "BR-101", "temperature", 37.0, 192),
            (m(0, 40), "BR-101", "temperature", 38.0, 192),  # mean of the 08:00 bucket = 37.5
            (m(0, 50), "BR-101", "temperature", 99.0, 64),  # uncertain quality: ignored
            (m(1, 30), "BR-101", "ph", 7.1, 192),  # ph starts at 08:01 → null before
            (m(3, 0), "BR-101", "temperature", 36.5, 192),  # 08:02 gap → carried 37.5
            (m(3, 59), "BR-101", "temperature", 35.5, 192),
            (m(4, 0), "BR-101", "temperature", 40.0, 0),  # bad quality at 08:04 → carried 36.0
            (m(5, 0), "BR-102", "temperature", 10.0, 192),  # other unit, not in any window here
            (m(10, 0), "BR-101", "temperature", 50.0, 192),  # second batch of the same unit
            (m(12, 0), "BR-101", "vibration", 2.0, 192),
        ]
    )
    windows = _windows(
        [
            ("B1", "BR-101", m(-1, 30), m(4, 0)),  # inoculation 07:59:30 → grid 07:59 … 08:04
            ("B2", "BR-101", m(11, 0), m(12, 30)),  # no carry-over from B1 / the 08:10 reading
            ("B0", "BR-101", None, m(1)),  # no inoculation: no rows
        ]
    )
    phases = _phases(
        [
            ("B1", "Inoculate", m(-1, 30), m(1)),
            ("B1", "Batch", m(2), m(3)),  # 08:01 is in a gap between phases → null
            ("B1", "Harvest", m(3), None),
            ("B2", "Production", m(11), m(12, 30)),
        ]
    )
    out = align_readings(readings, windows, grid_minutes=1, phases=phases)
    assert out.schema == output_schema()
    rows = out.select(["batch_id", "ts", "phase", "temperature", "ph", "vibration", "culture_age_h"]).to_pylist()
    got = [
        (r["batch_id"], r["ts"].strftime("%H:%M"), r["phase"], r["temperature"], r["ph"], r["vibration"]) for r in rows
    ]
    assert got == [
        ("B1", "07:59", None, 36.0, None, None),  # before the first phase's start
        ("B1", "08:00", "Inoculate", 37.5, None, None),
        ("B1", "08:01", None, 37.5, 7.1, None),
        ("B1", "08:02", "Batch", 37.5, 7.1, None),
        ("B1", "08:03", "Harvest", 36.0, 7.1, None),
        ("B1", "08:04", "Harvest", 36.0, 7.1, None),
        ("B2", "08:11", "Production", None, None, None),
        ("B2", "08:12", "Production", None, None, 2.0),
    ]
    assert rows[0]["culture_age_h"] == pytest.approx(-0.5 / 60)
    mat = out.filter(pa.compute.equal(out["batch_id"], "B1"))["maturity_pct"].to_pylist()
    assert mat[0] == pytest.approx(100 * (-30) / 270) and mat[-1] == pytest.approx(100 * 270 / 270)
    # every parameter of the contract is a column, null where the plant lacks it
    assert out.column_names == list(output_columns())
    assert out["capacitance"].null_count == out.num_rows


def _brute_force(readings: pa.Table, windows: pa.Table, phases: pa.Table, grid_minutes: int, parameters) -> dict:
    """The contract's words, executed literally in Python (slow, small data only)."""
    g = timedelta(minutes=grid_minutes)
    rd = readings.to_pylist()
    if "_ingested_at" in readings.column_names:  # newest ingestion of a reading wins
        best = {}
        for r in rd:
            k = (r["unit_id"], r["tag"], r["ts"])
            if k not in best or (r["_ingested_at"], r["_source_file"]) > (
                best[k]["_ingested_at"],
                best[k]["_source_file"],
            ):
                best[k] = r
        rd = list(best.values())
    series = defaultdict(list)
    for r in rd:
        if r["quality"] == 192 and r["parameter"] in parameters:
            series[(r["unit_id"], r["parameter"])].append((r["ts"], r["value"]))
    for v in series.values():
        v.sort()
    ph_by_batch = defaultdict(list)
    for p in phases.to_pylist():
        if p["end_ts"] is None or p["end_ts"] > p["start_ts"]:
            ph_by_batch[p["batch_id"]].append(p)
    out = {}
    for w in windows.to_pylist():
        inoc, harv = w["inoculation_ts"], w["harvest_ts"]
        g0 = ORIGIN + ((inoc - ORIGIN) // g) * g
        last = {p: None for p in parameters}
        ts = g0
        while ts <= harv:
            vals = {}
            for p in parameters:
                s = series.get((w["unit_id"], p), [])
                lo = bisect.bisect_left(s, (ts, -np.inf))
                hi = bisect.bisect_left(s, (ts + g, -np.inf))
                if hi > lo:
                    last[p] = sum(v for _, v in s[lo:hi]) / (hi - lo)
                vals[p] = last[p]
            started = [p for p in ph_by_batch[w["batch_id"]] if p["start_ts"] <= ts]
            cur = max(started, key=lambda p: p["start_ts"]) if started else None
            phase = cur["phase"] if cur and (cur["end_ts"] is None or ts < cur["end_ts"]) else None
            out[(w["batch_id"], ts)] = (phase, vals)
            ts += g
    return out


@pytest.mark.parametrize("grid_minutes", [1, 7])
def test_default_engine_equals_the_literal_contract(grid_minutes):
    """7 minutes does not divide a day: buckets must start from DuckDB's 2000-01-03 origin."""
    site = synthetic_site(
        2,
        0.5,
        sample_seconds=20,
        batch_hours=4,
        turnaround_hours=1.5,
        parameters=("temperature", "ph", "capacitance"),
        lineage=True,
        duplicate_fraction=0.02,
        seed=3,
    )
    params = ("temperature", "ph", "capacitance")
    out = align_readings(site.readings, site.windows, grid_minutes, phases=site.phases, parameters=params)
    expected = _brute_force(site.readings, site.windows, site.phases, grid_minutes, params)
    assert out.num_rows == len(expected) > 0
    for r in out.to_pylist():
        phase, vals = expected[(r["batch_id"], r["ts"])]
        assert r["phase"] == phase
        for p in params:
            if vals[p] is None:
                assert r[p] is None, (r["batch_id"], r["ts"], p)
            else:
                assert r[p] == pytest.approx(vals[p], rel=1e-12, abs=1e-12)


def test_batch_windows_from_mes_records():
    site = synthetic_site(3, 2.0, batch_hours=12, turnaround_hours=4, parameters=("ph",))
    w = batch_windows(site.batches, site.phases)
    assert w.equals(site.windows.sort_by("batch_id"))


# ----------------------------------------------------------------------------- Spark parity
def assert_same_rows(default: pa.Table, spark_rows: pa.Table, rtol: float = 1e-9) -> None:
    """Same (batch_id, ts) rows in the same order, same phases, floats within ``rtol``."""
    spark_rows = spark_rows.sort_by([("batch_id", "ascending"), ("ts", "ascending")])
    default = default.sort_by([("batch_id", "ascending"), ("ts", "ascending")])
    assert spark_rows.column_names == default.column_names
    assert spark_rows.num_rows == default.num_rows
    for name in default.column_names:
        a, b = default[name], spark_rows[name]
        if pa.types.is_floating(a.type):
            an = a.to_numpy(zero_copy_only=False).astype(float)
            bn = b.to_numpy(zero_copy_only=False).astype(float)
            assert np.array_equal(np.isnan(an), np.isnan(bn)), name
            np.testing.assert_allclose(bn, an, rtol=rtol, atol=1e-12, equal_nan=True, err_msg=name)
        else:
            assert b.cast(a.type).equals(a), name


@pytest.mark.spark
def test_spark_engine_matches_default(spark):
    """Grid 7 min (bucket origin), duplicate ingestions, phases; grid 1 min: the bronze→gold test."""
    grid_minutes = 7
    site = synthetic_site(3, 1.0, batch_hours=7, turnaround_hours=2, lineage=True, duplicate_fraction=0.01, seed=11)
    ref = align_readings(site.readings, site.windows, grid_minutes, phases=site.phases)
    got = align_readings(site.readings, site.windows, grid_minutes, engine="spark", spark=spark, phases=site.phases)
    assert got.columns == list(output_columns())
    out = pa.table(got.toArrow())
    assert out.schema.field("ts").type == TS
    assert_same_rows(ref, out)
    # sanity: the data exercises carry-forward, phases and a unit without capacitance
    assert ref["phase"].null_count < ref.num_rows and ref["capacitance"].null_count > 0


@pytest.mark.spark
def test_bronze_to_gold_on_spark_through_delta(spark, lake_s3: Lake):
    """bronze Delta (written by delta-rs) → Spark alignment → gold Delta, read back by delta-rs."""
    from deltalake import write_deltalake

    from lakehouse.spark.delta_bridge import write_delta
    from lakehouse.spark.transforms import align_bronze_spark
    from tests.spark._readers import read_deltalake

    lake = lake_s3
    opts = lake.delta_storage_options()
    site = synthetic_site(2, 0.5, batch_hours=4, turnaround_hours=2, lineage=True, seed=5)
    for name, table, parts in (
        ("historian_readings", site.readings, ["date"]),
        ("mes_batches", site.batches, None),
        ("mes_phases", site.phases, None),
    ):
        write_deltalake(lake.uri("bronze", name), table, partition_by=parts, storage_options=opts)

    aligned = align_bronze_spark(lake, spark, grid_minutes=1)  # bridge reads + windows + alignment
    res = write_delta(aligned, lake.uri("gold", "fct_process_readings"), opts)

    ref = align_readings(site.readings, batch_windows(site.batches, site.phases), 1, phases=site.phases)
    gold = read_deltalake(lake, lake.uri("gold", "fct_process_readings"))
    assert res.num_records == ref.num_rows
    assert_same_rows(ref, gold.select(ref.column_names))


def test_engine_switch_validation():
    site = synthetic_site(1, 0.2, batch_hours=2, parameters=("ph",))
    with pytest.raises(ValueError, match="engine"):
        align_readings(site.readings, site.windows, engine="pandas")
    with pytest.raises(ValueError, match="grid_minutes"):
        align_readings(site.readings, site.windows, grid_minutes=0)
    assert set(default_parameters()) <= set(output_schema().names)
    with pytest.raises(ValueError, match="grid_seconds"):
        align_readings(site.readings, site.windows, grid_seconds=0.5)


# ---------------------------------------------------------------- any plant's catalog
ANY = ("broth_temp", "feed_kg_h", "step")  # signals the project never saw, one a state code
CODES = {1: "Prepare", 2: "Batch", 4: "Induction"}


def _any_plant_site(seed: int):
    """The synthetic site with a catalog of its own: ``step`` switches between state codes 1-5
    within grid steps (a mean of two codes would be a third code)."""
    import pyarrow.compute as pc

    site = synthetic_site(
        2,
        0.4,
        sample_seconds=7,
        batch_hours=3,
        turnaround_hours=1,
        parameters=ANY,
        lineage=True,
        duplicate_fraction=0.01,
        seed=seed,
    )
    r = site.readings
    is_step = pc.equal(r["parameter"], "step")
    minutes = pc.divide(r["ts"].cast(pa.int64()), 60_000_000).cast(pa.int64())
    code = pc.add(pc.bit_wise_and(pc.divide(minutes, 4), 3), 1).cast(pa.float64())  # 1..4, changes every 4 min
    return site, r.set_column(r.schema.get_field_index("value"), "value", pc.if_else(is_step, code, r["value"]))


def _brute_force_any(readings: pa.Table, windows: pa.Table, grid_s: int) -> dict:
    """The contract for a state signal, literally: last good reading per step, carried; phase
    = name of the carried code."""
    g = timedelta(seconds=grid_s)
    best = {}
    for r in readings.to_pylist():
        k = (r["unit_id"], r["tag"], r["ts"])
        if k not in best or (r["_ingested_at"], r["_source_file"]) > (best[k]["_ingested_at"], best[k]["_source_file"]):
            best[k] = r
    series = defaultdict(list)
    for r in best.values():
        if r["quality"] == 192:
            series[(r["unit_id"], r["parameter"])].append((r["ts"], r["value"]))
    for v in series.values():
        v.sort()
    out = {}
    for w in windows.to_pylist():
        ts = ORIGIN + ((w["inoculation_ts"] - ORIGIN) // g) * g
        last = {p: None for p in ANY}
        while ts <= w["harvest_ts"]:
            for p in ANY:
                s = series.get((w["unit_id"], p), [])
                lo, hi = bisect.bisect_left(s, (ts, -np.inf)), bisect.bisect_left(s, (ts + g, -np.inf))
                if hi > lo:
                    last[p] = s[hi - 1][1] if p == "step" else sum(v for _, v in s[lo:hi]) / (hi - lo)
            code = last["step"]
            out[(w["batch_id"], ts)] = (CODES.get(round(code)) if code is not None else None, dict(last))
            ts += g
    return out


@pytest.mark.parametrize("grid_seconds", [30, 600])
def test_default_engine_any_catalog_state_signal_and_phase_codes(grid_seconds):
    site, readings = _any_plant_site(seed=4)
    out = align_readings(
        readings,
        site.windows,
        grid_seconds=grid_seconds,
        phases=site.phases,
        parameters=ANY,
        state_parameters=["step"],
        phase_signal={"signal": "step", "codes": CODES},
    )
    assert out.column_names == [*output_columns(ANY)]
    expected = _brute_force_any(readings, site.windows, grid_seconds)
    assert out.num_rows == len(expected) > 0
    phases = set()
    for r in out.to_pylist():
        phase, vals = expected[(r["batch_id"], r["ts"])]
        assert r["phase"] == phase
        phases.add(phase)
        for p in ANY:
            assert (r[p] is None) == (vals[p] is None) and (r[p] is None or r[p] == pytest.approx(vals[p], rel=1e-12))
    assert {"Prepare", "Batch", None} <= phases  # code 3 is not mapped: no phase
    assert {v for v in out["step"].to_pylist() if v is not None} <= {1.0, 2.0, 3.0, 4.0}  # codes, never means
    with pytest.raises(ValueError, match="phase signal 'nope'"):
        align_readings(readings, site.windows, parameters=ANY, phase_signal={"signal": "nope", "codes": CODES})


@pytest.mark.spark
def test_spark_engine_matches_default_for_any_catalog(spark):
    site, readings = _any_plant_site(seed=6)
    kw = {
        "grid_seconds": 30,
        "phases": site.phases,
        "parameters": ANY,
        "state_parameters": ["step"],
        "phase_signal": {"signal": "step", "codes": CODES},
    }
    ref = align_readings(readings, site.windows, **kw)
    got = align_readings(readings, site.windows, engine="spark", spark=spark, **kw)
    assert_same_rows(ref, pa.table(got.toArrow()))
    assert ref["phase"].null_count < ref.num_rows
