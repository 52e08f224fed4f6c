"""Synthetic bronze Delta tables, exactly in the schema of ``docs/contracts.md``.

Used by the transform tests and by ``bench/bench_dbt.py`` until (and besides) the real
twin → ingestion path. It simulates a small plant that exports one UTC day at a time:

* bioreactors (``BR-101``, ``BR-102``, …) on a fixed, staggered batch schedule; the historian
  logs every minute (with sub-second jitter), also between batches; quality is mostly 192,
  some readings are uncertain (64) or bad (0, with an absurd value); ``BR-101`` has a
  12-minute gap every day; ``BR-102`` has no capacitance probe (the column stays null);
* MES batch records (bioreactor, capture, UF/DF) on the day the record closes, with phases,
  materials and genealogy edges; every third batch of the second unit is aborted (no Harvest);
* LIMS results on the day they are approved (result_time), with realistic assay delays;
* Protein A capture runs and UF/DF runs (run + curves) the day after harvest;
* CMMS work orders.

``write_days(lake, first_day, n_days)`` appends the days' exports to the bronze tables, one
commit per table per day, with lineage columns, as ingestion would. ``reingest_readings``
appends a second version of a historian file (same readings, corrected values, later
``_ingested_at``) — staging must keep the latest.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from lakehouse.storage import Lake

UTC = dt.UTC
EPOCH = dt.datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")

# canonical parameter -> (tag suffix, unit)
PARAMETERS: dict[str, tuple[str, str]] = {
    "temperature": ("TEMP.PV", "degC"),
    "temperature_sp": ("TEMP.SP", "degC"),
    "ph": ("PH.PV", "pH"),
    "dissolved_oxygen": ("DO.PV", "%"),
    "agitation": ("AGIT.PV", "rpm"),
    "air_flow": ("AIR.FLOW", "L/min"),
    "o2_flow": ("O2.FLOW", "L/min"),
    "co2_flow": ("CO2.FLOW", "L/min"),
    "offgas_o2": ("OFFGAS.O2", "%"),
    "offgas_co2": ("OFFGAS.CO2", "%"),
    "capacitance": ("CAP.PV", "pF/cm"),
    "base_total": ("BASE.TOT", "mL"),
    "feed_flow_sp": ("FEED.FLOW.SP", "mL/min"),
    "feed_flow": ("FEED.FLOW.PV", "mL/min"),
    "feed_total": ("FEED.TOT", "mL"),
    "weight": ("WEIGHT.PV", "kg"),
    "pressure": ("PRESS.PV", "bar"),
    "vibration": ("AGIT.VIB", "mm/s"),
    "motor_current": ("AGIT.CURRENT", "A"),
}

PHASES = ["Prepare", "Inoculate", "Batch", "Fed-Batch", "Production", "Harvest"]
SETPOINT_KEYS = [
    "temperature_c",
    "temp_shift_day",
    "temp_shift_c",
    "ph",
    "do_pct",
    "feed_rate_pct_per_day",
    "seed_density_e6_per_ml",
    "working_volume_l",
]


def _lineage_fields() -> list[pa.Field]:
    return [
        pa.field("_source_file", pa.string()),
        pa.field("_source_hash", pa.string()),
        pa.field("_run_id", pa.string()),
        pa.field("_ingested_at", TS),
    ]


SCHEMAS: dict[str, pa.Schema] = {
    "historian_readings": pa.schema(
        [
            ("ts", TS),
            ("unit_id", pa.string()),
            ("tag", pa.string()),
            ("parameter", pa.string()),
            ("value", pa.float64()),
            ("eng_unit", pa.string()),
            ("quality", pa.int16()),
            ("date", pa.date32()),
            *_lineage_fields(),
        ]
    ),
    "lims_results": pa.schema(
        [
            ("sample_id", pa.string()),
            ("batch_id", pa.string()),
            ("sample_time", TS),
            ("result_time", TS),
            ("analyte", pa.string()),
            ("value", pa.float64()),
            ("unit", pa.string()),
            ("method", pa.string()),
            *_lineage_fields(),
        ]
    ),
    "mes_batches": pa.schema(
        [
            ("batch_id", pa.string()),
            ("record_type", pa.string()),
            ("product", pa.string()),
            ("unit_id", pa.string()),
            ("recipe_id", pa.string()),
            ("status", pa.string()),
            ("start_ts", TS),
            ("end_ts", TS),
            ("output_lot", pa.string()),
            ("setpoints_json", pa.string()),
            *[(k, pa.float64()) for k in SETPOINT_KEYS],
            *_lineage_fields(),
        ]
    ),
    "mes_phases": pa.schema(
        [
            ("batch_id", pa.string()),
            ("unit_procedure", pa.string()),
            ("operation", pa.string()),
            ("phase", pa.string()),
            ("phase_seq", pa.int32()),
            ("start_ts", TS),
            ("end_ts", TS),
            *_lineage_fields(),
        ]
    ),
    "mes_materials": pa.schema(
        [
            ("batch_id", pa.string()),
            ("lot_id", pa.string()),
            ("material", pa.string()),
            ("role", pa.string()),
            ("quantity", pa.float64()),
            ("unit", pa.string()),
            *_lineage_fields(),
        ]
    ),
    "mes_genealogy": pa.schema(
        [
            ("batch_id", pa.string()),
            ("input_lot", pa.string()),
            ("output_lot", pa.string()),
            ("record_type", pa.string()),
            *_lineage_fields(),
        ]
    ),
    "chrom_runs": pa.schema(
        [
            ("run_id", pa.string()),
            ("skid_id", pa.string()),
            ("column_id", pa.string()),
            ("column_cycle", pa.int32()),
            ("batch_id", pa.string()),
            ("input_lot", pa.string()),
            ("output_lot", pa.string()),
            ("start", TS),
            ("end", TS),
            ("load_volume_l", pa.float64()),
            ("load_titer_g_l", pa.float64()),
            ("column_volume_l", pa.float64()),
            ("pool_volume_l", pa.float64()),
            ("pool_concentration_g_l", pa.float64()),
            ("step_yield_pct", pa.float64()),
            ("max_pressure_bar", pa.float64()),
            ("result", pa.string()),
            *_lineage_fields(),
        ]
    ),
    "chrom_curves": pa.schema(
        [
            ("run_id", pa.string()),
            ("skid_id", pa.string()),
            ("volume_ml", pa.float64()),
            ("time_s", pa.float64()),
            ("uv280_mau", pa.float64()),
            ("conductivity_ms_cm", pa.float64()),
            ("ph", pa.float64()),
            ("pressure_bar", pa.float64()),
            ("phase", pa.string()),
            *_lineage_fields(),
        ]
    ),
    "filtration_runs": pa.schema(
        [
            ("run_id", pa.string()),
            ("skid_id", pa.string()),
            ("membrane_id", pa.string()),
            ("membrane_use", pa.int32()),
            ("input_lot", pa.string()),
            ("output_lot", pa.string()),
            ("start", TS),
            ("end", TS),
            ("diavolumes", pa.float64()),
            ("final_concentration_g_l", pa.float64()),
            ("step_yield_pct", pa.float64()),
            ("mean_flux_lmh", pa.float64()),
            ("result", pa.string()),
            *_lineage_fields(),
        ]
    ),
    "filtration_curves": pa.schema(
        [
            ("run_id", pa.string()),
            ("skid_id", pa.string()),
            ("time_s", pa.float64()),
            ("feed_pressure_bar", pa.float64()),
            ("retentate_pressure_bar", pa.float64()),
            ("permeate_pressure_bar", pa.float64()),
            ("tmp_bar", pa.float64()),
            ("permeate_flux_lmh", pa.float64()),
            ("conductivity_ms_cm", pa.float64()),
            ("retentate_volume_l", pa.float64()),
            ("phase", pa.string()),
            *_lineage_fields(),
        ]
    ),
    "cmms_work_orders": pa.schema(
        [
            ("work_order_id", pa.string()),
            ("equipment_id", pa.string()),
            ("equipment_type", pa.string()),
            ("work_type", pa.string()),
            ("failure_mode", pa.string()),
            ("priority", pa.string()),
            ("opened_at", TS),
            ("closed_at", TS),
            ("description", pa.string()),
            *_lineage_fields(),
        ]
    ),
}
BRONZE_TABLES = list(SCHEMAS)


# --------------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class Batch:
    batch_id: str
    unit_id: str
    number: int
    inoculation: dt.datetime
    harvest: dt.datetime | None  # None: aborted before harvest
    end: dt.datetime
    phases: tuple[tuple[str, dt.datetime, dt.datetime], ...]
    setpoints: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def start(self) -> dt.datetime:
        return self.phases[0][1]

    @property
    def status(self) -> str:
        return "complete" if self.harvest is not None else "aborted"

    @property
    def tag(self) -> str:  # BR101-0007
        return self.batch_id

    @property
    def harvest_lot(self) -> str:
        return f"HCCF-{self.batch_id}"

    @property
    def capture_lot(self) -> str:
        return f"CAP-{self.batch_id}"

    @property
    def ds_lot(self) -> str:
        return f"DS-{self.batch_id}"

    @property
    def capture_start(self) -> dt.datetime:
        return self.end + dt.timedelta(hours=5)

    @property
    def capture_end(self) -> dt.datetime:
        return self.capture_start + dt.timedelta(hours=3)

    @property
    def ufdf_start(self) -> dt.datetime:
        return self.capture_end + dt.timedelta(hours=4)

    @property
    def ufdf_end(self) -> dt.datetime:
        return self.ufdf_start + dt.timedelta(hours=4)


@dataclass(frozen=True)
class Plant:
    """A deterministic plant schedule; ``culture_days`` is inoculation → harvest."""

    n_units: int = 2
    culture_days: float = 2.5
    turnaround_h: float = 14.0
    seed: int = 7
    product: str = "mAb-A"
    stagger_h: float = 7.0  # offset of unit i's schedule: i * stagger_h

    @property
    def units(self) -> list[str]:
        return [f"BR-{101 + i}" for i in range(self.n_units)]

    @property
    def cycle(self) -> dt.timedelta:
        return dt.timedelta(days=self.culture_days, hours=self.turnaround_h)

    def _batch(self, unit_index: int, k: int) -> Batch:
        unit = self.units[unit_index]
        stagger = dt.timedelta(hours=self.stagger_h * unit_index, seconds=37 + 11 * unit_index)
        inoc = EPOCH + dt.timedelta(hours=6) + stagger + k * self.cycle
        number = 100 + k
        batch_id = f"{unit.replace('-', '')}-{number:04d}"
        length = dt.timedelta(days=self.culture_days)
        aborted = unit_index == 1 and k % 3 == 2
        shift = inoc + 0.5 * length
        t = [
            inoc - dt.timedelta(hours=8),
            inoc,
            inoc + dt.timedelta(hours=1),
            inoc + 0.2 * length,
            shift,
            inoc + length,
            inoc + length + dt.timedelta(hours=4),
        ]
        phases = [(PHASES[i], t[i], t[i + 1]) for i in range(6)]
        harvest: dt.datetime | None = t[5]
        end = t[6]
        if aborted:  # contamination found in Production: aborted, never harvested
            abort = shift + 0.3 * length
            phases = phases[:4] + [("Production", shift, abort)]
            harvest, end = None, abort
        setpoints = {
            "temperature_c": 36.8,
            "temp_shift_day": round(0.5 * self.culture_days, 3),
            "temp_shift_c": 33.0,
            "ph": 7.0,
            "do_pct": 40.0,
            "feed_rate_pct_per_day": 3.0,
            "seed_density_e6_per_ml": 0.5,
            "working_volume_l": 2000.0,
        }
        return Batch(batch_id, unit, number, inoc, harvest, end, tuple(phases), setpoints)

    def batches_overlapping(self, t0: dt.datetime, t1: dt.datetime) -> list[Batch]:
        """Batches whose [start, downstream end] overlaps [t0, t1)."""
        out = []
        span = int((t1 - EPOCH) / self.cycle) + 3
        for u in range(self.n_units):
            for k in range(-int(3 + (EPOCH - t0) / self.cycle), span):
                b = self._batch(u, k)
                if b.start < t1 and b.ufdf_end + dt.timedelta(days=3) >= t0:
                    out.append(b)
        return out


# --------------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=4096)
def _file_hash(source_file: str) -> str:
    return hashlib.sha256(source_file.encode()).hexdigest()


def _lineage(n: int, source_file: str, run_id: str, ingested_at: dt.datetime) -> dict:
    h = hashlib.sha256(source_file.encode()).hexdigest()
    return {
        "_source_file": [source_file] * n,
        "_source_hash": [h] * n,
        "_run_id": [run_id] * n,
        "_ingested_at": pa.array([ingested_at] * n, TS),
    }


def _table(name: str, cols: dict) -> pa.Table:
    schema = SCHEMAS[name]
    return pa.Table.from_pydict({f.name: cols[f.name] for f in schema}, schema=schema)


def _state_at(plant: Plant, unit_index: int, ts_s: np.ndarray, batches: list[Batch]):
    """Per-minute process state for one unit: culture age in days (nan outside batches)."""
    age = np.full(ts_s.shape, np.nan)
    shift = np.zeros(ts_s.shape, dtype=bool)
    for b in batches:
        if b.unit_id != plant.units[unit_index]:
            continue
        a0 = b.inoculation.timestamp()
        a1 = (b.harvest or b.end).timestamp()
        m = (ts_s >= a0) & (ts_s < a1)
        age[m] = (ts_s[m] - a0) / 86400.0
        shift[m] = ts_s[m] >= a0 + 0.5 * plant.culture_days * 86400
    return age, shift


def _signals(plant: Plant, unit_index: int, ts_s: np.ndarray, batches, rng) -> dict[str, np.ndarray]:
    age, shift = _state_at(plant, unit_index, ts_s, batches)
    running = ~np.isnan(age)
    a = np.nan_to_num(age)
    L = plant.culture_days
    x = np.where(running, np.clip(a / L, 0, 1), 0.0)  # maturity 0..1
    noise = lambda s: rng.normal(0.0, s, ts_s.shape)
    days_since_epoch = (ts_s - EPOCH.timestamp()) / 86400.0
    wear = 1.0 + (0.04 * days_since_epoch if unit_index == 0 else 0.0)  # BR-101 agitator wears
    temp_sp = np.where(running, np.where(shift, 33.0, 36.8), 20.0)
    feeding = running & (a > 0.2 * L)
    feed_sp = np.where(feeding, 12.0, 0.0)
    feed_pv = feed_sp * (0.97 if unit_index == 1 else 1.0) + np.where(feeding, noise(0.1), 0.0)
    return {
        "temperature": temp_sp + noise(0.05),
        "temperature_sp": temp_sp,
        "ph": np.where(running, 7.0 - 0.1 * x, 7.2) + noise(0.01),
        "dissolved_oxygen": np.where(running, 40.0 + 2.0 * x, 100.0) + noise(0.5),
        "agitation": np.where(running, 80 + 40 * x, 0.0) + noise(0.2),
        "air_flow": np.where(running, 10 + 20 * x, 0.0) + noise(0.1),
        "o2_flow": np.where(running, 5 * x**2, 0.0) + np.abs(noise(0.02)),
        "co2_flow": np.where(running, 0.5 * (1 - x), 0.0) + np.abs(noise(0.01)),
        "offgas_o2": np.where(running, 20.9 - 3 * x, 20.9) + noise(0.02),
        "offgas_co2": np.where(running, 0.5 + 4 * x, 0.04) + noise(0.02),
        "capacitance": np.where(running, 2 + 40 * x, 0.0) + noise(0.1),
        "base_total": np.where(running, 300 * x, 0.0),
        "feed_flow_sp": feed_sp,
        "feed_flow": feed_pv,
        "feed_total": np.where(feeding, 12.0 * 60 * 24 * np.maximum(a - 0.2 * L, 0), 0.0),
        "weight": np.where(running, 1800 + 200 * x, 0.0) + noise(0.5),
        "pressure": np.where(running, 0.3, 0.0) + noise(0.002),
        "vibration": (np.where(running, 1.5, 0.3) * wear) + noise(0.05),
        "motor_current": np.where(running, 8.0 + 4 * x, 0.5) * (1 + 0.5 * (wear - 1)) + noise(0.05),
    }


# --------------------------------------------------------------------------- one day
def day_tables(
    plant: Plant, day: dt.date, ingested_at: dt.datetime | None = None, run_id: str | None = None
) -> dict[str, pa.Table]:
    """Everything the plant exports on UTC ``day``, as bronze tables (only non-empty ones)."""
    ingested_at = ingested_at or dt.datetime.now(UTC)
    run_id = run_id or f"fixture-{uuid.uuid4().hex[:8]}"
    d0 = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
    d1 = d0 + dt.timedelta(days=1)
    rng = np.random.default_rng(plant.seed * 100_003 + day.toordinal())
    batches = plant.batches_overlapping(d0 - dt.timedelta(days=plant.culture_days + 2), d1)
    out: dict[str, pa.Table] = {}

    # ---- historian: one file per unit per day, long format, 1-min with jitter
    hist_parts = []
    for ui, unit in enumerate(plant.units):
        minutes = np.arange(1440)
        jitter = rng.integers(50_000, 900_000, size=1440)  # µs after the minute
        if unit == "BR-101":  # 12-minute historian outage every day (10:00-10:11)
            keep = ~((minutes >= 600) & (minutes < 612))
            minutes, jitter = minutes[keep], jitter[keep]
        ts_us = int(d0.timestamp()) * 1_000_000 + minutes * 60_000_000 + jitter
        sig = _signals(plant, ui, ts_us / 1e6, batches, rng)
        params = [p for p in PARAMETERS if not (unit == "BR-102" and p == "capacitance")]
        n = len(ts_us)
        for p in params:
            suffix, eng = PARAMETERS[p]
            q = np.full(n, 192, dtype=np.int16)
            vals = sig[p].astype(float).copy()
            # every ~500th reading uncertain, every ~2000th bad with an absurd value
            q[rng.random(n) < 0.002] = 64
            bad = rng.random(n) < 0.0005
            q[bad] = 0
            vals[bad] = 9999.0
            hist_parts.append(
                {
                    "ts": ts_us,
                    "unit_id": np.full(n, unit),
                    "tag": np.full(n, f"{unit}.{suffix}"),
                    "parameter": np.full(n, p),
                    "value": vals,
                    "eng_unit": np.full(n, eng),
                    "quality": q,
                    "src": np.full(n, f"landing/historian/{unit}/{day.isoformat()}.csv"),
                }
            )
    if hist_parts:
        cat = {k: np.concatenate([h[k] for h in hist_parts]) for k in hist_parts[0]}
        n = len(cat["ts"])
        cols = {
            "ts": pa.array(cat["ts"], pa.int64()).cast(TS),
            "unit_id": cat["unit_id"],
            "tag": cat["tag"],
            "parameter": cat["parameter"],
            "value": cat["value"],
            "eng_unit": cat["eng_unit"],
            "quality": pa.array(cat["quality"], pa.int16()),
            "date": pa.array([day] * n, pa.date32()),
            "_source_file": cat["src"],
            "_source_hash": [_file_hash(x) for x in cat["src"].tolist()],
            "_run_id": [run_id] * n,
            "_ingested_at": pa.array([ingested_at] * n, TS),
        }
        out["historian_readings"] = _table("historian_readings", cols)

    def in_day(t: dt.datetime | None) -> bool:
        return t is not None and d0 <= t < d1

    # ---- MES records closing today
    mb, mp, mm, mg = [], [], [], []
    for b in batches:
        if in_day(b.end):
            src = f"landing/mes/{b.batch_id}.json"
            mb.append(
                dict(
                    batch_id=b.batch_id,
                    record_type="bioreactor",
                    product=plant.product,
                    unit_id=b.unit_id,
                    recipe_id="FB-TEST-v1",
                    status=b.status,
                    start_ts=b.start,
                    end_ts=b.end,
                    output_lot=b.harvest_lot if b.harvest else None,
                    setpoints_json=json.dumps(b.setpoints),
                    **b.setpoints,
                    _src=src,
                )
            )
            for seq, (ph, s, e) in enumerate(b.phases, start=1):
                mp.append(
                    dict(
                        batch_id=b.batch_id,
                        unit_procedure="Production Culture",
                        operation=f"{ph} operation",
                        phase=ph,
                        phase_seq=seq,
                        start_ts=s,
                        end_ts=e,
                        _src=src,
                    )
                )
            mm.append(
                dict(
                    batch_id=b.batch_id,
                    lot_id=f"MED-{b.number:04d}",
                    material="basal medium",
                    role="input",
                    quantity=1800.0,
                    unit="L",
                    _src=src,
                )
            )
            if b.harvest:
                mm.append(
                    dict(
                        batch_id=b.batch_id,
                        lot_id=b.harvest_lot,
                        material="HCCF",
                        role="output",
                        quantity=1950.0,
                        unit="L",
                        _src=src,
                    )
                )
        if b.harvest and in_day(b.capture_end):
            rec = f"{b.batch_id}-CAP"
            src = f"landing/mes/{rec}.json"
            mb.append(
                dict(
                    batch_id=rec,
                    record_type="capture",
                    product=plant.product,
                    unit_id="AKTA-01",
                    recipe_id="PA-CAP-v2",
                    status="complete",
                    start_ts=b.capture_start,
                    end_ts=b.capture_end,
                    output_lot=b.capture_lot,
                    setpoints_json="{}",
                    **{k: None for k in SETPOINT_KEYS},
                    _src=src,
                )
            )
            mp.append(
                dict(
                    batch_id=rec,
                    unit_procedure="Capture",
                    operation="Protein A",
                    phase="Load",
                    phase_seq=1,
                    start_ts=b.capture_start,
                    end_ts=b.capture_end,
                    _src=src,
                )
            )
            mg.append(
                dict(batch_id=rec, input_lot=b.harvest_lot, output_lot=b.capture_lot, record_type="capture", _src=src)
            )
        if b.harvest and in_day(b.ufdf_end):
            rec = f"{b.batch_id}-UFDF"
            src = f"landing/mes/{rec}.json"
            mb.append(
                dict(
                    batch_id=rec,
                    record_type="ufdf",
                    product=plant.product,
                    unit_id="TFF-01",
                    recipe_id="UFDF-v1",
                    status="complete",
                    start_ts=b.ufdf_start,
                    end_ts=b.ufdf_end,
                    output_lot=b.ds_lot,
                    setpoints_json="{}",
                    **{k: None for k in SETPOINT_KEYS},
                    _src=src,
                )
            )
            mp.append(
                dict(
                    batch_id=rec,
                    unit_procedure="UF/DF",
                    operation="TFF",
                    phase="DF",
                    phase_seq=1,
                    start_ts=b.ufdf_start,
                    end_ts=b.ufdf_end,
                    _src=src,
                )
            )
            mg.append(dict(batch_id=rec, input_lot=b.capture_lot, output_lot=b.ds_lot, record_type="ufdf", _src=src))

    def rows_to_table(name: str, rows: list[dict]) -> None:
        if not rows:
            return
        cols: dict = {f.name: [r.get(f.name) for r in rows] for f in SCHEMAS[name] if not f.name.startswith("_")}
        for f in SCHEMAS[name]:
            if not f.name.startswith("_"):
                cols[f.name] = pa.array(cols[f.name], f.type)
        srcs = [r["_src"] for r in rows]
        cols["_source_file"] = srcs
        cols["_source_hash"] = [hashlib.sha256(s.encode()).hexdigest() for s in srcs]
        cols["_run_id"] = [run_id] * len(rows)
        cols["_ingested_at"] = pa.array([ingested_at] * len(rows), TS)
        out[name] = _table(name, cols)

    rows_to_table("mes_batches", mb)
    rows_to_table("mes_phases", mp)
    rows_to_table("mes_materials", mm)
    rows_to_table("mes_genealogy", mg)

    # ---- LIMS: results approved today
    lims = []
    src = f"landing/lims/{day.isoformat()}.csv"
    for b in batches:
        unit_tag = b.unit_id.replace("-", "")
        stop = b.harvest or b.end
        k = 0
        while True:
            st = b.inoculation + dt.timedelta(hours=2 + 24 * k)
            if st >= stop:
                break
            sid = f"S-{unit_tag}-{b.number:04d}-D{k:02d}"
            age = (st - b.inoculation).total_seconds() / 86400
            x = min(age / plant.culture_days, 1.0)
            vcd = 0.5 + 15 * x
            fast = [
                ("vcd", vcd, "1e6 cells/mL", "Vi-CELL"),
                ("viability", 99 - 8 * x, "%", "Vi-CELL"),
                ("glucose", 6 - 3 * x, "g/L", "BGA"),
                ("lactate", 1 + x, "g/L", "BGA"),
                ("po2_offline", 41.0 + 1.5 * x, "%", "BGA"),
                ("ph_offline", 6.98 - 0.1 * x, "pH", "BGA"),
            ]
            for analyte, value, unit, method in fast:
                rt = st + dt.timedelta(hours=1, minutes=30)
                if in_day(rt):
                    lims.append(
                        dict(
                            sample_id=sid,
                            batch_id=b.batch_id,
                            sample_time=st,
                            result_time=rt,
                            analyte=analyte,
                            value=float(value),
                            unit=unit,
                            method=method,
                            _src=src,
                        )
                    )
            if k >= 1:
                rt = st + dt.timedelta(hours=30)
                if in_day(rt):
                    lims.append(
                        dict(
                            sample_id=sid,
                            batch_id=b.batch_id,
                            sample_time=st,
                            result_time=rt,
                            analyte="titer",
                            value=float(3 * x),
                            unit="g/L",
                            method="ProA-HPLC",
                            _src=src,
                        )
                    )
            k += 1
        if b.harvest:
            st = b.harvest + dt.timedelta(minutes=10)
            sid = f"S-{unit_tag}-{b.number:04d}-H"
            cqas = [
                ("titer", 3.1, "g/L", "ProA-HPLC", 20),
                ("g0f", 42.0, "%", "HILIC", 48),
                ("g1f", 30.0, "%", "HILIC", 48),
                ("g2f", 8.0, "%", "HILIC", 48),
                ("man5", 4.0, "%", "HILIC", 48),
                ("afucosylation", 7.5, "%", "HILIC", 48),
                ("hmw", 2.1, "%", "SEC", 30),
            ]
            for analyte, value, unit, method, delay_h in cqas:
                rt = st + dt.timedelta(hours=delay_h)
                if in_day(rt):
                    lims.append(
                        dict(
                            sample_id=sid,
                            batch_id=b.batch_id,
                            sample_time=st,
                            result_time=rt,
                            analyte=analyte,
                            value=value + 0.01 * b.number,
                            unit=unit,
                            method=method,
                            _src=src,
                        )
                    )
            # drug-substance release assay on the DS lot
            st = b.ufdf_end + dt.timedelta(minutes=30)
            rt = st + dt.timedelta(hours=26)
            if in_day(rt):
                lims.append(
                    dict(
                        sample_id=f"S-{b.ds_lot}-REL",
                        batch_id=b.ds_lot,
                        sample_time=st,
                        result_time=rt,
                        analyte="hmw",
                        value=1.2,
                        unit="%",
                        method="SEC",
                        _src=src,
                    )
                )
    rows_to_table("lims_results", lims)

    # ---- chromatography + filtration runs finishing today
    cr, cc, fr, fc = [], [], [], []
    for b in batches:
        if not b.harvest:
            continue
        cyc = b.number * plant.n_units + plant.units.index(b.unit_id)
        if in_day(b.capture_end):
            run_id_c = f"AKTA-01-{b.batch_id}"
            col = f"COL-PA-0{1 + cyc % 2}"
            src = f"landing/chromatography/AKTA-01/{run_id_c}/run.json"
            max_p = 2.0 + 0.01 * (cyc // 2)
            cr.append(
                dict(
                    run_id=run_id_c,
                    skid_id="AKTA-01",
                    column_id=col,
                    column_cycle=cyc // 2,
                    batch_id=b.batch_id,
                    input_lot=b.harvest_lot,
                    output_lot=b.capture_lot,
                    start=b.capture_start,
                    end=b.capture_end,
                    load_volume_l=1900.0,
                    load_titer_g_l=3.0,
                    column_volume_l=50.0,
                    pool_volume_l=120.0,
                    pool_concentration_g_l=44.0,
                    step_yield_pct=92.5,
                    max_pressure_bar=max_p,
                    result="pass",
                    _src=src,
                )
            )
            n = 120
            t = np.linspace(0, (b.capture_end - b.capture_start).total_seconds(), n)
            phase = np.array(
                ["Equilibrate"] * 10 + ["Load"] * 50 + ["Wash"] * 20 + ["Elute"] * 20 + ["Strip"] * 10 + ["CIP"] * 10
            )
            uv = np.where(phase == "Elute", 1500 * np.sin(np.linspace(0, np.pi, n)) + 100, 50.0)
            for i in range(n):
                cc.append(
                    dict(
                        run_id=run_id_c,
                        skid_id="AKTA-01",
                        volume_ml=float(t[i] * 10),
                        time_s=float(t[i]),
                        uv280_mau=float(uv[i]),
                        conductivity_ms_cm=15.0 if phase[i] != "Elute" else 3.0,
                        ph=7.2 if phase[i] != "Elute" else 3.6,
                        pressure_bar=float(max_p * (0.6 + 0.4 * (phase[i] == "Load"))),
                        phase=str(phase[i]),
                        _src=src.replace("run.json", "curves.csv"),
                    )
                )
        if in_day(b.ufdf_end):
            run_id_f = f"TFF-01-{b.batch_id}"
            mem = f"MEM-0{1 + cyc % 2}"
            src = f"landing/filtration/TFF-01/{run_id_f}/run.json"
            flux = 40.0 - 0.2 * (cyc // 2)
            fr.append(
                dict(
                    run_id=run_id_f,
                    skid_id="TFF-01",
                    membrane_id=mem,
                    membrane_use=cyc // 2,
                    input_lot=b.capture_lot,
                    output_lot=b.ds_lot,
                    start=b.ufdf_start,
                    end=b.ufdf_end,
                    diavolumes=8.0,
                    final_concentration_g_l=100.0,
                    step_yield_pct=96.0,
                    mean_flux_lmh=flux,
                    result="pass",
                    _src=src,
                )
            )
            n = 80
            t = np.linspace(0, (b.ufdf_end - b.ufdf_start).total_seconds(), n)
            phase = np.array(["UF1"] * 20 + ["DF"] * 40 + ["UF2"] * 15 + ["Recovery"] * 5)
            for i in range(n):
                fc.append(
                    dict(
                        run_id=run_id_f,
                        skid_id="TFF-01",
                        time_s=float(t[i]),
                        feed_pressure_bar=1.8,
                        retentate_pressure_bar=0.8,
                        permeate_pressure_bar=0.1,
                        tmp_bar=1.2 + 0.001 * i,
                        permeate_flux_lmh=float(flux + 5 - 10 * i / n),
                        conductivity_ms_cm=15.0 - 10 * (phase[i] != "UF1"),
                        retentate_volume_l=float(120 - i),
                        phase=str(phase[i]),
                        _src=src.replace("run.json", "curves.csv"),
                    )
                )
    rows_to_table("chrom_runs", cr)
    rows_to_table("chrom_curves", cc)
    rows_to_table("filtration_runs", fr)
    rows_to_table("filtration_curves", fc)

    # ---- CMMS work orders opened today
    wos = []
    src = f"landing/cmms/{day.isoformat()}.csv"
    dn = (day - EPOCH.date()).days
    if dn % 3 == 1:
        wos.append(
            dict(
                work_order_id=f"WO-{dn:05d}-1",
                equipment_id="BR-101-AGT",
                equipment_type="agitator",
                work_type="corrective",
                failure_mode="bearing_wear",
                priority="high",
                opened_at=d0 + dt.timedelta(hours=9),
                closed_at=d0 + dt.timedelta(hours=15),
                description="Agitator vibration high, bearing inspected",
                _src=src,
            )
        )
    if dn % 4 == 0:
        wos.append(
            dict(
                work_order_id=f"WO-{dn:05d}-2",
                equipment_id="BR-102-FP",
                equipment_type="feed_pump",
                work_type="preventive",
                failure_mode=None,
                priority="low",
                opened_at=d0 + dt.timedelta(hours=8),
                closed_at=None,
                description="Feed pump tubing replacement",
                _src=src,
            )
        )
        wos.append(
            dict(
                work_order_id=f"WO-{dn:05d}-3",
                equipment_id="COL-PA-01",
                equipment_type="chromatography_column",
                work_type="calibration",
                failure_mode=None,
                priority="medium",
                opened_at=d0 + dt.timedelta(hours=13),
                closed_at=d0 + dt.timedelta(hours=14),
                description="Column HETP test",
                _src=src,
            )
        )
    rows_to_table("cmms_work_orders", wos)
    return out


# --------------------------------------------------------------------------- writers
def write_days(lake: Lake, first_day: dt.date, n_days: int, plant: Plant | None = None) -> dict[str, int]:
    """Append ``n_days`` of plant exports to the bronze tables (one commit per table per day)."""
    plant = plant or Plant()
    counts: dict[str, int] = {}
    for i in range(n_days):
        day = first_day + dt.timedelta(days=i)
        for name, table in day_tables(plant, day).items():
            kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
            lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)
            counts[name] = counts.get(name, 0) + table.num_rows
    return counts


def write_bulk(lake: Lake, first_day: dt.date, n_days: int, plant: Plant | None = None) -> dict[str, int]:
    """Like :func:`write_days` but one commit per table (faster for benchmarks)."""
    plant = plant or Plant()
    parts: dict[str, list[pa.Table]] = {}
    for i in range(n_days):
        for name, table in day_tables(plant, first_day + dt.timedelta(days=i)).items():
            parts.setdefault(name, []).append(table)
    counts = {}
    for name, tables in parts.items():
        table = pa.concat_tables(tables)
        kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
        lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)
        counts[name] = table.num_rows
    return counts


def reingest_readings(
    lake: Lake, day: dt.date, unit_id: str = "BR-101", hours: tuple[int, int] = (12, 13), delta: float = 0.5
) -> pa.Table:
    """Append a corrected second version of a historian file: the same readings (same ts) of
    ``unit_id`` between ``hours`` with ``value + delta`` and a later ``_ingested_at``."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    dt_ = DeltaTable(lake.uri("bronze", "historian_readings"), storage_options=lake.delta_storage_options())
    t = dt_.to_pyarrow_table(filters=[("date", "=", day), ("unit_id", "=", unit_id)])
    lo = dt.datetime(day.year, day.month, day.day, hours[0], tzinfo=UTC)
    hi = dt.datetime(day.year, day.month, day.day, hours[1], tzinfo=UTC)
    t = t.filter(pc.and_(pc.greater_equal(t["ts"], pa.scalar(lo, TS)), pc.less(t["ts"], pa.scalar(hi, TS))))
    t = t.set_column(t.schema.get_field_index("value"), "value", pc.add(t["value"], delta))
    now = dt.datetime.now(UTC)
    n = t.num_rows
    t = t.set_column(t.schema.get_field_index("_ingested_at"), "_ingested_at", pa.array([now] * n, TS))
    t = t.set_column(
        t.schema.get_field_index("_source_hash"), "_source_hash", pa.array([hashlib.sha256(b"v2").hexdigest()] * n)
    )
    t = t.cast(SCHEMAS["historian_readings"])
    lake.write_delta(lake.uri("bronze", "historian_readings"), t, mode="append", partition_by=["date"])
    return t
