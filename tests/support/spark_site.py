"""Synthetic multi-bioreactor site data in the contract's bronze shape (tests and benchmarks).

Vectorised numpy: millions of long-format historian rows per second. Not a process model
(that is ``twin/``): just realistic structure for the alignment — consecutive batches per
unit with turnaround gaps, inoculation off the grid, µs jitter, a plant that lacks some
tags on some units, bad/uncertain quality, outages (carry-forward), ISA-88 phases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from lakehouse.transforms.grid import default_parameters

_US = 1_000_000
_MIN = 60 * _US
_HOUR = 60 * _MIN
START = datetime(2026, 1, 1, tzinfo=UTC)

_TAG_SUFFIX = {
    "temperature": "TEMP.PV",
    "temperature_sp": "TEMP.SP",
    "ph": "PH.PV",
    "dissolved_oxygen": "DO.PV",
    "agitation": "AGIT.PV",
    "air_flow": "AIR.FLOW",
    "o2_flow": "O2.FLOW",
    "co2_flow": "CO2.FLOW",
    "offgas_o2": "OFFGAS.O2",
    "offgas_co2": "OFFGAS.CO2",
    "capacitance": "CAP.PV",
    "base_total": "BASE.TOT",
    "feed_flow_sp": "FEED.FLOW.SP",
    "feed_flow": "FEED.FLOW.PV",
    "feed_total": "FEED.TOT",
    "weight": "WEIGHT.PV",
    "pressure": "PRESS.PV",
    "vibration": "AGIT.VIB",
    "motor_current": "AGIT.CURRENT",
}
_LEVEL = {
    "temperature": 36.8,
    "temperature_sp": 36.8,
    "ph": 7.0,
    "dissolved_oxygen": 40.0,
    "agitation": 120.0,
    "air_flow": 20.0,
    "o2_flow": 2.0,
    "co2_flow": 0.5,
    "offgas_o2": 20.0,
    "offgas_co2": 1.5,
    "capacitance": 10.0,
    "base_total": 100.0,
    "feed_flow_sp": 5.0,
    "feed_flow": 4.9,
    "feed_total": 500.0,
    "weight": 2000.0,
    "pressure": 0.3,
    "vibration": 2.0,
    "motor_current": 8.0,
}
PHASES = ("Prepare", "Inoculate", "Batch", "Fed-Batch", "Production", "Harvest")


@dataclass
class Site:
    readings: pa.Table  # bronze historian_readings shape (without lineage unless asked)
    windows: pa.Table  # batch_id, unit_id, inoculation_ts, harvest_ts
    phases: pa.Table  # mes_phases shape
    batches: pa.Table  # mes_batches (subset of columns)


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype("int64"), pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def synthetic_site(
    n_units: int = 4,
    days: float = 2.0,
    *,
    sample_seconds: int = 60,
    batch_hours: float = 14 * 24.0,
    turnaround_hours: float = 24.0,
    parameters: tuple[str, ...] | None = None,
    seed: int = 7,
    lineage: bool = False,
    duplicate_fraction: float = 0.0,
    start: datetime = START,
) -> Site:
    """``n_units`` bioreactors logging ``parameters`` every ``sample_seconds`` for ``days``.

    Each unit runs back-to-back batches of ``batch_hours`` (±10 %) separated by
    ``turnaround_hours``; the historian logs throughout. Unit 2 (if any) has no capacitance
    probe. ~2 % of readings are not good quality, each parameter has outages of 5–40 minutes.
    ``lineage`` adds ``_source_file``/``_ingested_at``; ``duplicate_fraction`` re-ingests that
    share of rows later with a different value (only the newest ingestion must count).
    """
    parameters = default_parameters() if parameters is None else tuple(parameters)
    rng = np.random.default_rng(seed)
    t0 = int(start.timestamp() * _US)
    span = int(days * 24 * _HOUR)
    step = sample_seconds * _US
    n_t = span // step
    base_t = t0 + np.arange(n_t, dtype=np.int64) * step

    cols: dict[str, list] = {k: [] for k in ("ts", "unit_id", "parameter", "value", "quality")}
    win_rows, phase_rows, batch_rows = [], [], []
    for u in range(n_units):
        unit = f"BR-{101 + u}"
        # batches of this unit
        t = t0 + int(rng.uniform(0.5, 6.0) * _HOUR) + int(rng.integers(0, 60 * _US))
        k = 0
        while t < t0 + span:
            dur = int(batch_hours * rng.uniform(0.9, 1.1) * _HOUR) + int(rng.integers(0, 60 * _US))
            inoc, harv = t, t + dur
            bid = f"BR{101 + u}-{k + 1:04d}"
            win_rows.append((bid, unit, inoc, harv))
            edges = [
                inoc - int(0.1 * dur),
                inoc,
                inoc + int(0.02 * dur),
                inoc + int(0.15 * dur),
                inoc + int(0.45 * dur),
                harv,
                harv + int(0.03 * dur),
            ]
            for i, ph in enumerate(PHASES):
                phase_rows.append((bid, "Production Culture", ph, ph, i + 1, edges[i], edges[i + 1]))
            batch_rows.append((bid, "bioreactor", "mAb-A", unit, "FB-14D-v3", "complete", edges[0], edges[-1]))
            t = harv + int(turnaround_hours * _HOUR)
            k += 1
        for p in parameters:
            if u == 2 and p == "capacitance":
                continue
            ts = base_t + rng.integers(-step // 4, step // 4, size=n_t)  # µs jitter
            keep = np.ones(n_t, dtype=bool)
            for _ in range(max(1, int(days))):  # outages
                a = int(rng.integers(0, n_t))
                keep[a : a + int(rng.integers(5, 40) * 60 // sample_seconds)] = False
            ts = ts[keep]
            n = len(ts)
            phase = (ts - t0) / (24 * _HOUR)
            level = _LEVEL.get(p, 10.0)  # a signal of another catalog: any level will do
            val = level * (1.0 + 0.05 * np.sin(phase * 2 * np.pi / 3 + u)) + rng.normal(0, 0.01 * level, n)
            q = np.where(rng.random(n) < 0.02, rng.choice([0, 64], size=n), 192).astype(np.int16)
            cols["ts"].append(ts)
            cols["unit_id"].append(np.full(n, u, dtype=np.int32))
            cols["parameter"].append(np.full(n, list(parameters).index(p), dtype=np.int32))
            cols["value"].append(val)
            cols["quality"].append(q)

    ts = np.concatenate(cols["ts"])
    unit_idx = np.concatenate(cols["unit_id"])
    par_idx = np.concatenate(cols["parameter"])
    units = pa.array([f"BR-{101 + u}" for u in range(n_units)])
    pars = pa.array(list(parameters))
    unit_col = pa.DictionaryArray.from_arrays(pa.array(unit_idx), units).cast(pa.string())
    par_col = pa.DictionaryArray.from_arrays(pa.array(par_idx), pars).cast(pa.string())
    n_par = len(parameters)
    tags = pa.array([f"BR-{101 + u}.{_TAG_SUFFIX.get(p, p.upper())}" for u in range(n_units) for p in parameters])
    tag_col = pa.DictionaryArray.from_arrays(pa.array(unit_idx * n_par + par_idx), tags).cast(pa.string())
    ts_arr = _ts(ts)
    readings = pa.table(
        {
            "ts": ts_arr,
            "unit_id": unit_col,
            "tag": tag_col,
            "parameter": par_col,
            "value": pa.array(np.concatenate(cols["value"])),
            "quality": pa.array(np.concatenate(cols["quality"]), pa.int16()),
            "date": ts_arr.cast(pa.date32()),
        }
    )
    if lineage or duplicate_fraction:
        n = readings.num_rows
        ing = np.full(n, t0 + span + _HOUR, dtype=np.int64)
        readings = readings.append_column("_source_file", pa.array(["landing/historian/a.csv"] * n))
        readings = readings.append_column("_ingested_at", _ts(ing))
        if duplicate_fraction:
            idx = np.sort(rng.choice(n, size=int(n * duplicate_fraction), replace=False))
            dup = readings.take(pa.array(idx))
            # an older ingestion with a different value: must NOT count
            dup = dup.set_column(
                dup.schema.get_field_index("value"), "value", pa.array(dup["value"].to_numpy() + 1000.0)
            )
            dup = dup.set_column(
                dup.schema.get_field_index("_ingested_at"), "_ingested_at", _ts(np.full(len(idx), t0, dtype=np.int64))
            )
            readings = pa.concat_tables([readings, dup])

    wa = list(zip(*win_rows)) if win_rows else [[], [], [], []]
    windows = pa.table(
        {
            "batch_id": pa.array(wa[0], pa.string()),
            "unit_id": pa.array(wa[1], pa.string()),
            "inoculation_ts": _ts(np.asarray(wa[2], dtype=np.int64)),
            "harvest_ts": _ts(np.asarray(wa[3], dtype=np.int64)),
        }
    )
    pa_ = list(zip(*phase_rows))
    phases = pa.table(
        {
            "batch_id": pa.array(pa_[0], pa.string()),
            "unit_procedure": pa.array(pa_[1]),
            "operation": pa.array(pa_[2]),
            "phase": pa.array(pa_[3]),
            "phase_seq": pa.array(pa_[4], pa.int32()),
            "start_ts": _ts(np.asarray(pa_[5], dtype=np.int64)),
            "end_ts": _ts(np.asarray(pa_[6], dtype=np.int64)),
        }
    )
    ba = list(zip(*batch_rows))
    batches = pa.table(
        {
            "batch_id": pa.array(ba[0], pa.string()),
            "record_type": pa.array(ba[1]),
            "product": pa.array(ba[2]),
            "unit_id": pa.array(ba[3]),
            "recipe_id": pa.array(ba[4]),
            "status": pa.array(ba[5]),
            "start_ts": _ts(np.asarray(ba[6], dtype=np.int64)),
            "end_ts": _ts(np.asarray(ba[7], dtype=np.int64)),
        }
    )
    return Site(readings, windows, phases, batches)
