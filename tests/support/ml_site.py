"""Synthetic frames shaped like the gold marts (``docs/contracts.md``), for tests and as a
stand-in when neither the twin nor the gold tables are at hand.

This is NOT the digital twin: a compact, vectorised process caricature whose only job is to
produce frames with the contract's columns and plausible cause→effect structure (growth →
capacitance/OUR/CER → titer; setpoints → glycans/HMW; wear → health signals → failures).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

SIGNAL_COLUMNS = (
    "temperature",
    "temperature_sp",
    "ph",
    "dissolved_oxygen",
    "agitation",
    "air_flow",
    "o2_flow",
    "co2_flow",
    "offgas_o2",
    "offgas_co2",
    "capacitance",
    "base_total",
    "feed_flow_sp",
    "feed_flow",
    "feed_total",
    "weight",
    "pressure",
    "vibration",
    "motor_current",
)
HARVEST_ANALYTES = ("g0f", "g1f", "g2f", "man5", "afucosylation", "hmw")


@dataclass
class SyntheticSite:
    dim_batches: pl.DataFrame
    fct_process_readings: pl.DataFrame
    fct_assay_results: pl.DataFrame
    fct_equipment_health_daily: pl.DataFrame
    fct_work_orders: pl.DataFrame
    truth_failures: pl.DataFrame

    def gold(self) -> dict[str, pl.DataFrame]:
        return {
            "dim_batches": self.dim_batches,
            "fct_process_readings": self.fct_process_readings,
            "fct_assay_results": self.fct_assay_results,
            "fct_equipment_health_daily": self.fct_equipment_health_daily,
            "fct_work_orders": self.fct_work_orders,
        }


def _simulate_batch(rng: np.random.Generator, sp: dict, duration_h: float):
    """Hourly caricature of a fed-batch culture. Returns dict of hourly arrays."""
    hours = np.arange(0.0, duration_h + 1e-9, 1.0)
    n = len(hours)
    x = np.empty(n)  # VCD 1e6/mL
    via = np.empty(n)
    titer = np.empty(n)
    lac = np.empty(n)
    x[0], via[0], titer[0], lac[0] = sp["seed_density_e6_per_ml"], 97.0, 0.0, 0.0
    qp_batch = sp["_qp_factor"] * 1.0e-3  # g/L per (1e6 cells/mL . h)
    xmax = sp["_xmax"]
    for i in range(1, n):
        t = hours[i - 1]
        shifted = t >= sp["temp_shift_day"] * 24
        temp = sp["temp_shift_c"] if shifted else sp["temperature_c"]
        mu = 0.032 * np.exp(-((temp - 36.8) ** 2) / 8.0) * np.exp(-((sp["ph"] - 7.0) ** 2) / 0.05)
        mu *= max(0.0, 1 - x[i - 1] / xmax)
        mu *= 1.0 if t > 12 else 0.6
        death = 0.0008 + (0.004 if t > 24 * 10 else 0.0) + 0.00001 * (t / 24) ** 2
        x[i] = x[i - 1] * np.exp((mu - death) * 1.0)
        via[i] = np.clip(via[i - 1] - 100 * death * 0.35 + rng.normal(0, 0.05), 40, 99)
        qp = (
            qp_batch
            * (1.0 + 0.09 * max(0.0, sp["temperature_c"] - temp))
            * (1 + 0.02 * (sp["feed_rate_pct_per_day"] - 3))
        )
        titer[i] = titer[i - 1] + qp * x[i - 1]
        lac[i] = lac[i - 1] + (0.004 if t < 120 else -0.001) * x[i - 1] * 0.1
    return hours, x, via, titer, np.maximum(lac, 0)


def make_site(
    n_batches: int = 12,
    n_units: int = 3,
    grid_minutes: int = 5,
    duration_days: float = 14.0,
    seed: int = 0,
    start: datetime | None = None,
    health_days: int | None = None,
    n_columns: int = 2,
    n_membranes: int = 2,
) -> SyntheticSite:
    """Build gold-shaped frames for ``n_batches`` batches spread over ``n_units`` bioreactors."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    units = [f"BR-{101 + i}" for i in range(n_units)]
    next_free = {u: start + timedelta(hours=6 * i) for i, u in enumerate(units)}
    batch_rows, readings, assays = [], [], []
    per_unit_count = {u: 0 for u in units}
    for _ in range(n_batches):
        unit = min(units, key=lambda u: next_free[u])
        per_unit_count[unit] += 1
        batch_id = f"{unit.replace('-', '')}-{per_unit_count[unit]:04d}"
        sp = {
            "temperature_c": round(float(rng.uniform(36.3, 37.2)), 2),
            "temp_shift_day": round(float(rng.uniform(4.5, 7.5)), 1),
            "temp_shift_c": round(float(rng.uniform(32.0, 34.5)), 2),
            "ph": round(float(rng.uniform(6.85, 7.15)), 2),
            "do_pct": float(rng.choice([30.0, 40.0, 50.0])),
            "feed_rate_pct_per_day": round(float(rng.uniform(2.0, 4.0)), 2),
            "seed_density_e6_per_ml": round(float(rng.uniform(0.35, 0.65)), 2),
            "working_volume_l": 2000.0,
            "_qp_factor": float(rng.lognormal(0.0, 0.15)),
            "_xmax": float(rng.uniform(14, 26)),
        }
        dur_h = float(round(duration_days * 24 + rng.uniform(-18, 18)))
        inoc = next_free[unit] + timedelta(hours=4)
        inoc = inoc.replace(second=0, microsecond=0)
        harvest = inoc + timedelta(hours=dur_h)
        next_free[unit] = harvest + timedelta(hours=float(rng.uniform(30, 60)))
        hours, x, via, titer, lac = _simulate_batch(rng, sp, dur_h)

        # ---- grid readings
        t_min = np.arange(0, dur_h * 60 + 1e-9, grid_minutes)
        th = t_min / 60.0
        xv = np.interp(th, hours, x)
        shifted = th >= sp["temp_shift_day"] * 24
        temp_sp = np.where(shifted, sp["temp_shift_c"], sp["temperature_c"])
        n = len(th)
        noise = lambda s, n=n: rng.normal(0, s, n)
        our = 0.055 * xv * (1.0 + 0.1 * np.sin(th / 7)) * (1 - 0.15 * shifted)  # L/min O2 (2000 L)
        cer = our * rng.uniform(0.85, 1.0)
        air = np.full(n, 20.0)
        o2 = np.clip((our - 0.25) * 1.8, 0, None)
        agitation = 80 + 25 * np.clip(our / 1.2, 0, 1.5)
        total_in = air + o2
        offgas_o2 = 100 * (0.2095 * air + o2 - our) / total_in + noise(0.03)
        co2_flow = np.clip(0.4 - 0.04 * th / 24, 0, None)
        offgas_co2 = 100 * (cer + co2_flow + 0.0004 * air) / (total_in + co2_flow) + noise(0.02)
        feed_start = 72.0
        feed_sp = np.where(
            th >= feed_start, sp["feed_rate_pct_per_day"] / 100 * sp["working_volume_l"] * 1000 / 1440, 0.0
        )
        feed_pv = feed_sp * (1 + noise(0.01))
        feed_total = np.cumsum(feed_pv) * grid_minutes
        lac_v = np.interp(th, hours, lac)
        base_total = 1500 * lac_v + 0.5 * th + np.abs(noise(2))
        row = {
            "batch_id": batch_id,
            "unit_id": unit,
            "ts": [inoc + timedelta(minutes=float(m)) for m in t_min],
            "culture_age_h": th,
            "maturity_pct": 100 * th / dur_h,
            "phase": np.select(
                [th < 1, th < feed_start, ~shifted, th < dur_h],
                ["Inoculate", "Batch", "Fed-Batch", "Production"],
                "Harvest",
            ),
            "temperature": temp_sp + noise(0.05),
            "temperature_sp": temp_sp,
            "ph": sp["ph"] + noise(0.02) - 0.05 * np.tanh(lac_v),
            "dissolved_oxygen": sp["do_pct"] + noise(1.0),
            "agitation": agitation + noise(0.5),
            "air_flow": air + noise(0.1),
            "o2_flow": o2 + np.abs(noise(0.01)),
            "co2_flow": co2_flow,
            "offgas_o2": offgas_o2,
            "offgas_co2": offgas_co2,
            "capacitance": 1.1 * xv * (1 + 0.0015 * th) + noise(0.15),
            "base_total": base_total,
            "feed_flow_sp": feed_sp,
            "feed_flow": feed_pv,
            "feed_total": feed_total,
            "weight": sp["working_volume_l"] * 0.9 + feed_total / 1000 + noise(0.3),
            "pressure": 0.3 + noise(0.005),
            "vibration": 1.5 + noise(0.05),
            "motor_current": 12 + 0.5 * agitation / 100 + noise(0.05),
        }
        readings.append(pl.DataFrame(row))

        # ---- assays
        def add(
            sample_time: datetime,
            analyte: str,
            value: float,
            unit_: str,
            method: str,
            delay_h: float,
            sid: str,
            batch_id: str = batch_id,
            inoc: datetime = inoc,
        ):
            assays.append(
                {
                    "batch_id": batch_id,
                    "sample_id": sid,
                    "sample_time": sample_time,
                    "result_time": sample_time + timedelta(hours=delay_h),
                    "analyte": analyte,
                    "value": float(value),
                    "unit": unit_,
                    "culture_age_h": (sample_time - inoc).total_seconds() / 3600.0,
                }
            )

        day = 0
        while day * 24 + 8 <= dur_h:
            st = inoc + timedelta(hours=day * 24 + 8 + float(rng.uniform(-1, 1)))
            ah = (st - inoc).total_seconds() / 3600
            sid = f"S-{batch_id}-D{day:02d}"
            add(st, "vcd", np.interp(ah, hours, x) * rng.normal(1, 0.05), "1e6 cells/mL", "Vi-CELL", 1, sid)
            add(st, "viability", np.interp(ah, hours, via) + rng.normal(0, 0.8), "%", "Vi-CELL", 1, sid)
            add(st, "po2_offline", sp["do_pct"] + rng.normal(0, 1.5), "%", "BGA", 0.5, sid)
            if day >= 3 and (day % 2 == 1 or rng.random() < 0.3):
                add(
                    st,
                    "titer",
                    np.interp(ah, hours, titer) * rng.normal(1, 0.03),
                    "g/L",
                    "ProA-HPLC",
                    float(rng.uniform(18, 60)),
                    sid,
                )
            day += 1
        sid = f"S-{batch_id}-H"
        ht = harvest - timedelta(minutes=30)
        ivcd = np.trapezoid(x, hours) / 24
        cqa = {
            "g0f": 42 + 2.2 * (sp["temp_shift_c"] - 33.3) + 5 * (sp["feed_rate_pct_per_day"] - 3) + 0.05 * ivcd,
            "g1f": 30 - 1.5 * (sp["temp_shift_c"] - 33.3) - 2 * (sp["feed_rate_pct_per_day"] - 3),
            "g2f": 6 - 0.5 * (sp["temp_shift_c"] - 33.3),
            "man5": 3 + 0.02 * ivcd + 1.5 * (sp["ph"] - 7.0) * 10,
            "afucosylation": 7 + 0.8 * (sp["do_pct"] - 40) / 10 + 0.6 * (sp["ph"] - 7.0) * 10,
            "hmw": 1.8 + 0.012 * ivcd + 0.25 * (sp["temperature_c"] - 36.8) + 0.2 * (sp["feed_rate_pct_per_day"] - 3),
        }
        for analyte, v in cqa.items():
            add(
                ht,
                analyte,
                v + rng.normal(0, 0.25 if analyte != "hmw" else 0.05),
                "%",
                "HILIC" if analyte != "hmw" else "SEC",
                float(rng.uniform(48, 120)),
                sid,
            )
        add(ht, "titer", titer[-1] * rng.normal(1, 0.03), "g/L", "ProA-HPLC", float(rng.uniform(24, 72)), sid)
        batch_rows.append(
            {
                "batch_id": batch_id,
                "unit_id": unit,
                "product": "mAb-A",
                "recipe_id": "FB-14D-v3",
                "status": "complete",
                "start_ts": inoc - timedelta(hours=4),
                "end_ts": harvest + timedelta(hours=6),
                "inoculation_ts": inoc,
                "harvest_ts": harvest,
                "duration_h": dur_h,
                **{k: v for k, v in sp.items() if not k.startswith("_")},
                "harvest_titer_g_l": float(titer[-1]),
                "peak_vcd": float(x.max()),
                "harvest_viability_pct": float(via[-1]),
                **{f"{k}_pct": float(v) for k, v in cqa.items()},
                "n_deviation_work_orders": 0,
            }
        )

    dim = pl.DataFrame(batch_rows)
    readings_df = pl.concat(readings).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    assays_df = pl.DataFrame(assays).with_columns(
        pl.col("sample_time").cast(pl.Datetime("us", "UTC")), pl.col("result_time").cast(pl.Datetime("us", "UTC"))
    )
    dim = dim.with_columns(
        pl.col(c).cast(pl.Datetime("us", "UTC")) for c in ("start_ts", "end_ts", "inoculation_ts", "harvest_ts")
    )

    end = max(next_free.values())
    n_days = health_days or max(30, (end - start).days + 1)
    health, wos, truth = _equipment(rng, units, start, n_days, n_columns, n_membranes)
    return SyntheticSite(dim, readings_df, assays_df, health, wos, truth)


# column names as in gold/fct_equipment_health_daily
EQUIPMENT_SIGNALS = {
    "agitator": ("vibration_mean_mm_s", "vibration_max_mm_s", "motor_current_mean_a"),
    "feed_pump": ("feed_flow_dev_mean_ml_min", "feed_flow_dev_abs_max_ml_min"),
    "do_probe": ("do_offset_mean_pct",),
    "chromatography_column": ("column_max_pressure_bar",),
    "tff_membrane": ("tff_mean_tmp_bar", "tff_mean_flux_lmh"),
}
FAILURE_MODES = {
    "agitator": "bearing_failure",
    "feed_pump": "tubing_rupture",
    "do_probe": "probe_drift",
    "chromatography_column": "column_fouling",
    "tff_membrane": "membrane_fouling",
}


def _equipment(
    rng,
    units,
    start: datetime,
    n_days: int,
    n_columns: int,
    n_membranes: int,
    degradation_days: tuple[int, int] = (14, 35),
):
    equipment = []
    for u in units:
        equipment += [(f"{u}-AGT", "agitator", u), (f"{u}-FP", "feed_pump", u), (f"{u}-DO", "do_probe", u)]
    equipment += [(f"COL-PA-{i + 1:02d}", "chromatography_column", None) for i in range(n_columns)]
    equipment += [(f"MEM-{i + 1:02d}", "tff_membrane", None) for i in range(n_membranes)]
    all_cols = [c for cols in EQUIPMENT_SIGNALS.values() for c in cols]
    rows, wos, truth = [], [], []
    wo_n = 0
    day0 = start.date()
    for eq_id, eq_type, _unit in equipment:
        base = {
            "vib": rng.uniform(1.2, 2.0),
            "cur": rng.uniform(11, 13),
            "pres": rng.uniform(1.5, 2.2),
            "tmp": rng.uniform(0.8, 1.2),
            "flux": rng.uniform(45, 60),
        }
        d = int(rng.integers(10, 60))
        events = []  # (degradation_start_day, failure_day, repaired_day)
        while d < n_days:
            deg = int(rng.integers(*degradation_days))
            fail = d + deg
            rep = fail + int(rng.integers(1, 3))
            events.append((d, fail, rep))
            d = rep + int(rng.integers(20, 90))
        state = np.zeros(n_days)  # degradation fraction 0..1
        down = np.zeros(n_days, dtype=bool)
        for ds, fd, rd in events:
            for k in range(ds, min(fd, n_days)):
                state[k] = ((k - ds + 1) / (fd - ds)) ** 2
            down[fd : min(rd, n_days)] = True
            if fd < n_days:
                wo_n += 1
                ft = datetime.combine(day0 + timedelta(days=fd), datetime.min.time(), UTC) + timedelta(
                    hours=float(rng.uniform(1, 20))
                )
                rt = datetime.combine(day0 + timedelta(days=rd), datetime.min.time(), UTC) + timedelta(
                    hours=float(rng.uniform(0, 8))
                )
                truth.append(
                    {
                        "equipment_id": eq_id,
                        "failure_mode": FAILURE_MODES[eq_type],
                        "degradation_start": datetime.combine(day0 + timedelta(days=ds), datetime.min.time(), UTC),
                        "failure_time": ft,
                        "repaired_at": rt,
                    }
                )
                wos.append(
                    {
                        "work_order_id": f"WO-{wo_n:05d}",
                        "equipment_id": eq_id,
                        "equipment_type": eq_type,
                        "work_type": "corrective",
                        "failure_mode": FAILURE_MODES[eq_type],
                        "priority": "high",
                        "opened_at": ft,
                        "closed_at": rt,
                        "description": "failure",
                    }
                )
        # preventive / calibration work orders (no failure)
        period = 28 if eq_type == "do_probe" else 90
        for k in range(int(rng.integers(5, period)), n_days, period):
            if down[k]:
                continue
            wo_n += 1
            ot = datetime.combine(day0 + timedelta(days=k), datetime.min.time(), UTC) + timedelta(hours=9)
            wos.append(
                {
                    "work_order_id": f"WO-{wo_n:05d}",
                    "equipment_id": eq_id,
                    "equipment_type": eq_type,
                    "work_type": "calibration" if eq_type == "do_probe" else "preventive",
                    "failure_mode": None,
                    "priority": "low",
                    "opened_at": ot,
                    "closed_at": ot + timedelta(hours=3),
                    "description": "scheduled",
                }
            )
        for k in range(n_days):
            if down[k]:
                continue
            s = state[k]
            vals = {c: None for c in all_cols}
            if eq_type == "agitator":
                vals["vibration_mean_mm_s"] = base["vib"] * (1 + 1.5 * s) + rng.normal(0, 0.06)
                vals["vibration_max_mm_s"] = vals["vibration_mean_mm_s"] * 1.6 + rng.normal(0, 0.15)
                vals["motor_current_mean_a"] = base["cur"] * (1 + 0.08 * s) + rng.normal(0, 0.1)
            elif eq_type == "feed_pump":
                vals["feed_flow_dev_mean_ml_min"] = (-12 * s + rng.normal(0, 0.4)) / 100 * 40
                vals["feed_flow_dev_abs_max_ml_min"] = abs(vals["feed_flow_dev_mean_ml_min"]) * 1.5 + abs(
                    rng.normal(0, 0.1)
                )
            elif eq_type == "do_probe":
                vals["do_offset_mean_pct"] = 0.05 * (k % 28) + 8 * s + rng.normal(0, 0.6)
            elif eq_type == "chromatography_column":
                vals["column_max_pressure_bar"] = base["pres"] * (1 + 0.6 * s) + 0.0005 * k + rng.normal(0, 0.03)
            else:
                vals["tff_mean_tmp_bar"] = base["tmp"] * (1 + 0.5 * s) + rng.normal(0, 0.02)
                vals["tff_mean_flux_lmh"] = base["flux"] * (1 - 0.3 * s) + rng.normal(0, 0.8)
            rows.append({"equipment_id": eq_id, "equipment_type": eq_type, "date": day0 + timedelta(days=k), **vals})
    schema = {
        "equipment_id": pl.String,
        "equipment_type": pl.String,
        "date": pl.Date,
        **{c: pl.Float64 for c in all_cols},
    }
    health = pl.DataFrame(rows, schema=schema)
    wo_schema = {
        "work_order_id": pl.String,
        "equipment_id": pl.String,
        "equipment_type": pl.String,
        "work_type": pl.String,
        "failure_mode": pl.String,
        "priority": pl.String,
        "opened_at": pl.Datetime("us", "UTC"),
        "closed_at": pl.Datetime("us", "UTC"),
        "description": pl.String,
    }
    wo_df = pl.DataFrame(wos, schema=wo_schema).sort("opened_at")
    truth_df = pl.DataFrame(
        truth,
        schema={
            "equipment_id": pl.String,
            "failure_mode": pl.String,
            "degradation_start": pl.Datetime("us", "UTC"),
            "failure_time": pl.Datetime("us", "UTC"),
            "repaired_at": pl.Datetime("us", "UTC"),
        },
    )
    return health, wo_df, truth_df
