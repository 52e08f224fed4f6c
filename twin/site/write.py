"""Writing the landing zone: :func:`simulate_site` plans the site (:mod:`twin.site.plan`) and
writes the historian, LIMS, MES, chromatography/filtration run folders and CMMS exports exactly
as ``docs/contracts.md`` specifies, plus the simulator's ground truth under
``landing/_truth/``. Byte-identical output for a seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from twin import downstream as ds
from twin.bioreactor import (
    SETPOINT_KEYS,
    BatchResult,
)
from twin.historian import HistorianDay, build_unit_day
from twin.site.config import (
    _S_CQA,
    _S_HIST,
    _S_LIMS,
    LIMS_DAILY,
    LIMS_TITER,
    LIMS_TITER_FROM_DAY,
    ProgressFn,
    SiteConfig,
    _rng,
)
from twin.site.plan import (
    Failure,
    PlannedBatch,
    SitePlan,
    WorkOrderRec,
    _downstream,
    _Dsp,
    _phases,
    plan_site,
)
from twin.writers import LandingWriter, csv_bytes, iso1, iso_ms, json_bytes, parquet_bytes, ts_array

# --------------------------------------------------------------------------- simulate


@dataclass
class SiteSummary:
    """What :func:`simulate_site` produced: batches, failures, work orders, readings, files and timing."""

    out: str
    batches: int
    batches_closed: int
    batches_lost: int
    deviations: int
    failures: int
    work_orders: int
    capture_runs: int
    ufdf_runs: int
    historian_readings: int
    lims_results: int
    files_written: int
    bytes_written: int
    seconds: float
    timings: dict[str, float]

    @property
    def readings_per_s(self) -> float:
        """Historian readings written per second of simulation."""
        return self.historian_readings / max(self.seconds, 1e-9)


def simulate_site(
    out: str,
    config: SiteConfig | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> SiteSummary:
    """Simulate the site and write ``<out>/landing/...`` (local path or ``s3://bucket/prefix``).

    ``storage_options`` go to ``fsspec.core.url_to_fs`` (s3fs: ``key``, ``secret``,
    ``client_kwargs={"endpoint_url": ...}``). ``progress(done, total)`` is called as files are
    written.
    """
    cfg = config or SiteConfig()
    t_start = time.perf_counter()
    units = cfg.unit_ids()
    n_days = int(cfg.days)
    total_steps = len(units) * n_days + 4
    done = 0

    def tick(k: int = 1) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total_steps)

    # ---- plan, simulate all cultures at once
    plan = plan_site(cfg)
    timings = dict(plan.timings)
    t0, t_end, batches, result = plan.t0, plan.t_end, plan.batches, plan.result
    wos, failures = plan.wos, plan.failures
    tick()

    writer = LandingWriter(out, storage_options)
    # ---- downstream
    t1 = time.perf_counter()
    dsp = _downstream(cfg, batches, result, t_end, wos, failures)
    timings["downstream"] = time.perf_counter() - t1

    # ---- historian (parallel build, ordered writes)
    t1 = time.perf_counter()
    n_readings = _write_historian(plan, writer, tick)
    timings["historian"] = time.perf_counter() - t1

    # ---- LIMS, MES, downstream files, CMMS, truth
    t1 = time.perf_counter()
    n_lims = _write_lims(cfg, t0, t_end, batches, result, writer)
    tick()
    _write_mes(cfg, t0, t_end, batches, result, dsp, writer)
    _write_downstream(cfg, t0, t_end, dsp, writer)
    tick()
    _write_cmms(t0, t_end, wos, writer)
    _write_truth(cfg, t0, t_end, batches, result, failures, writer)
    tick()
    writer.close()
    timings["other_files"] = time.perf_counter() - t1
    seconds = time.perf_counter() - t_start
    closed = sum(1 for b in batches if b.harvest_end < t_end)
    return SiteSummary(
        out=out,
        batches=len(batches),
        batches_closed=closed,
        batches_lost=sum(1 for b in batches if b.lost and b.harvest_end < t_end),
        deviations=sum(1 for b in batches if b.deviation_type and b.inoc < t_end),
        failures=sum(1 for f in failures if f.failure_time < t_end),
        work_orders=sum(1 for w in wos if w.opened_h < t_end),
        capture_runs=sum(len(c.cycles) for c in dsp if c.cap_end < t_end),
        ufdf_runs=sum(1 for c in dsp if c.uf is not None and c.uf_end < t_end),
        historian_readings=n_readings,
        lims_results=n_lims,
        files_written=writer.files_written,
        bytes_written=writer.bytes_written,
        seconds=seconds,
        timings=timings,
    )


# --------------------------------------------------------------------------- historian


def _write_historian(plan: SitePlan, writer: LandingWriter, tick: Callable[[int], None]) -> int:
    cfg, t0 = plan.cfg, plan.t0
    jobs: list[tuple[str, HistorianDay, np.random.Generator]] = []
    for p in plan.planners:
        for d, day in enumerate(plan.historian_days()[p.unit_id]):
            jobs.append((f"landing/historian/{p.unit_id}/{_day_str(t0, d)}.csv", day, _rng(cfg.seed, _S_HIST, p.u, d)))
    n_readings = 0

    def build(job: tuple[str, HistorianDay, np.random.Generator]) -> tuple[str, bytes]:
        path, day, rng = job
        return path, build_unit_day(day, t0, rng)

    with ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool:
        for path, data in pool.map(build, jobs):
            n_readings += data.count(b"\n") - 1
            writer.put(path, data)
            tick()
    return n_readings


def _day_str(t0: np.datetime64, d: int) -> str:
    return str((t0 + np.timedelta64(d, "D")).astype("datetime64[D]"))


# --------------------------------------------------------------------------- LIMS


def _write_lims(
    cfg: SiteConfig,
    t0: np.datetime64,
    t_end: float,
    batches: list[PlannedBatch],
    res: BatchResult,
    writer: LandingWriter,
) -> int:
    rows: dict[str, list[Any]] = {
        k: [] for k in ("sample_id", "batch_id", "sample_h", "result_h", "analyte", "value", "unit", "method")
    }
    dt = res.t_h[1] - res.t_h[0]

    def add(sid: str, bid: str, s_h: float, r_h: float, analyte: str, value: float, unit: str, method: str) -> None:
        rows["sample_id"].append(sid)
        rows["batch_id"].append(bid)
        rows["sample_h"].append(s_h)
        rows["result_h"].append(r_h)
        rows["analyte"].append(analyte)
        rows["value"].append(value)
        rows["unit"].append(unit)
        rows["method"].append(method)

    for i, b in enumerate(batches):
        rng = _rng(cfg.seed, _S_LIMS, b.unit_idx, b.seq)
        bid = b.batch_id
        short = bid
        # daily samples (the simulation withdrew them at these times)
        k = 0
        titer_next = LIMS_TITER_FROM_DAY
        while True:
            rel = b.sample_offset_h + 24.0 * k
            if rel > b.sim_end_rel + 1e-9:
                break
            j = int(round(rel / dt))
            s_h = b.inoc + rel + float(rng.uniform(-0.1, 0.1))
            day = int(rel // 24.0)
            sid = f"S-{short}-D{day:02d}"
            for analyte, key, unit, method, rsd, asd, delay in LIMS_DAILY:
                true = float(res.series[key][i, j])
                v = true * (1.0 + rsd * rng.standard_normal()) + asd * rng.standard_normal()
                v = max(v, 0.0) if analyte != "viability" else float(np.clip(v, 0.0, 100.0))
                add(sid, bid, s_h, s_h + float(rng.uniform(*delay)), analyte, round(v, 3), unit, method)
            if day >= titer_next:
                analyte, key, unit, method, rsd, _, delay = LIMS_TITER
                true = float(res.series[key][i, j])
                v = max(true * (1.0 + rsd * rng.standard_normal()), 0.0)
                add(sid, bid, s_h, s_h + float(rng.uniform(*delay)), analyte, round(v, 3), unit, method)
                titer_next = day + int(rng.integers(1, 3))
            k += 1
        if b.status != "complete" or b.sim_end_rel < b.end_rel:
            continue
        # harvest sample: cell counts, titer and product quality
        s_h = b.end_culture
        sid = f"S-{short}-HRV"
        h = {key: float(v[i]) for key, v in res.harvest.items()}
        add(
            sid,
            bid,
            s_h,
            s_h + float(rng.uniform(0.3, 1.5)),
            "vcd",
            round(h["vcd"] * (1 + 0.05 * rng.standard_normal()), 3),
            "1e6 cells/mL",
            "Vi-CELL",
        )
        add(
            sid,
            bid,
            s_h,
            s_h + float(rng.uniform(0.3, 1.5)),
            "viability",
            round(float(np.clip(h["viability"] + 1.2 * rng.standard_normal(), 0, 100)), 3),
            "%",
            "Vi-CELL",
        )
        add(
            sid,
            bid,
            s_h,
            s_h + float(rng.uniform(18.0, 48.0)),
            "titer",
            round(h["titer"] * (1 + 0.04 * rng.standard_normal()), 3),
            "g/L",
            "ProA-HPLC",
        )
        glycan_delay = float(rng.uniform(5.0, 10.0)) * 24.0
        qrng = _rng(cfg.seed, _S_CQA, b.unit_idx, b.seq)
        for analyte, sd in (("g0f", 0.8), ("g1f", 0.8), ("g2f", 0.3), ("man5", 0.25), ("afucosylation", 0.3)):
            value = round(max(h[analyte] + sd * qrng.standard_normal(), 0.0), 3)
            add(sid, bid, s_h, s_h + glycan_delay, analyte, value, "%", "HILIC")
        add(
            sid,
            bid,
            s_h,
            s_h + float(rng.uniform(2.0, 5.0)) * 24.0,
            "hmw",
            round(max(h["hmw"] + 0.08 * qrng.standard_normal(), 0.0), 3),
            "%",
            "SEC",
        )
    if not rows["sample_id"]:
        return 0
    r_h = np.array(rows["result_h"])
    s_h = np.array(rows["sample_h"])
    ok = r_h < t_end
    day = np.floor(r_h / 24.0).astype(np.int64)
    order = np.lexsort((np.arange(len(r_h)), r_h))
    order = order[ok[order]]
    n = 0
    for d in np.unique(day[order]):
        sel = order[day[order] == d]
        cols = {
            "sample_id": np.array(rows["sample_id"], dtype=object)[sel],
            "batch_id": np.array(rows["batch_id"], dtype=object)[sel],
            "sample_time": iso_ms(t0, s_h[sel]).astype(object),
            "result_time": iso_ms(t0, r_h[sel]).astype(object),
            "analyte": np.array(rows["analyte"], dtype=object)[sel],
            "value": np.array(rows["value"], dtype=float)[sel],
            "unit": np.array(rows["unit"], dtype=object)[sel],
            "method": np.array(rows["method"], dtype=object)[sel],
        }
        writer.put(f"landing/lims/{_day_str(t0, int(d))}.csv", csv_bytes(cols))
        n += len(sel)
    return n


def _write_downstream(cfg: SiteConfig, t0: np.datetime64, t_end: float, dsp: list[_Dsp], writer: LandingWriter) -> None:
    for d in dsp:
        for r in d.cycles:
            if r.end >= t_end:
                continue
            cyc = r.cycle
            cu = cyc.curves
            cols = {
                "volume_ml": np.round(cu["volume_ml"], 1),
                "time_s": np.round(cu["time_s"], 1),
                "uv280_mau": np.round(cu["uv280_mau"], 2),
                "conductivity_ms_cm": np.round(cu["conductivity_ms_cm"], 3),
                "ph": np.round(cu["ph"], 3),
                "pressure_bar": np.round(cu["pressure_bar"], 3),
                "phase": cu["phase"],
            }
            base = f"landing/chromatography/AKTA-01/{r.run_id}"
            writer.put(f"{base}/curves.csv", csv_bytes(cols))
            run = {
                "run_id": r.run_id,
                "skid_id": "AKTA-01",
                "column_id": r.column_id,
                "column_cycle": r.column_cycle,
                "batch_id": d.batch.batch_id,
                "input_lot": d.harvest_lot,
                "output_lot": f"CAP-{d.batch.batch_id}",
                "start": iso1(t0, r.start),
                "end": iso1(t0, r.end),
                "load_volume_l": round(cyc.load_volume_l, 2),
                "load_titer_g_l": round(d.harvest_titer, 4),
                "column_volume_l": round(ds.COLUMN_VOLUME_L, 2),
                "pool_volume_l": round(cyc.pool_volume_l, 2),
                "pool_concentration_g_l": round(cyc.pool_mass_g / max(cyc.pool_volume_l, 1e-9), 3),
                "step_yield_pct": round(cyc.step_yield_pct, 2),
                "max_pressure_bar": round(cyc.max_pressure_bar, 3),
                "result": cyc.result,
            }
            writer.put(f"{base}/run.json", json_bytes(run))
        if d.uf is None or d.uf_end >= t_end:
            continue
        uf = d.uf
        cu = uf.curves
        cols = {
            "time_s": np.round(cu["time_s"], 1),
            "feed_pressure_bar": np.round(cu["feed_pressure_bar"], 3),
            "retentate_pressure_bar": np.round(cu["retentate_pressure_bar"], 3),
            "permeate_pressure_bar": np.round(cu["permeate_pressure_bar"], 3),
            "tmp_bar": np.round(cu["tmp_bar"], 3),
            "permeate_flux_lmh": np.round(cu["permeate_flux_lmh"], 2),
            "conductivity_ms_cm": np.round(cu["conductivity_ms_cm"], 3),
            "retentate_volume_l": np.round(cu["retentate_volume_l"], 2),
            "phase": cu["phase"],
        }
        run_id = f"UF-{d.batch.batch_id}-R01"
        base = f"landing/filtration/TFF-01/{run_id}"
        writer.put(f"{base}/curves.csv", csv_bytes(cols))
        run = {
            "run_id": run_id,
            "skid_id": "TFF-01",
            "membrane_id": d.membrane_id,
            "membrane_use": d.membrane_use,
            "input_lot": f"CAP-{d.batch.batch_id}",
            "output_lot": f"DS-{d.batch.batch_id}",
            "start": iso1(t0, d.uf_start),
            "end": iso1(t0, d.uf_end),
            "diavolumes": ds.DIAVOLUMES,
            "final_concentration_g_l": round(uf.final_concentration_g_l, 2),
            "step_yield_pct": round(uf.step_yield_pct, 2),
            "mean_flux_lmh": round(uf.mean_flux_lmh, 2),
            "result": uf.result,
        }
        writer.put(f"{base}/run.json", json_bytes(run))


# --------------------------------------------------------------------------- MES


def _write_mes(
    cfg: SiteConfig,
    t0: np.datetime64,
    t_end: float,
    batches: list[PlannedBatch],
    res: BatchResult,
    dsp: list[_Dsp],
    writer: LandingWriter,
) -> None:
    index = {id(b): i for i, b in enumerate(batches)}
    for b in batches:
        if b.harvest_end >= t_end:
            continue
        i = index[id(b)]
        r = b.recipe
        v0 = r.working_volume_l
        e = b.end_rel
        feed_l = float(np.interp(e, res.t_h, res.series["feed_total"][i])) / 1000.0
        base_l = float(np.interp(e, res.t_h, res.series["base_total"][i])) / 1000.0
        d_prep = str((t0 + np.timedelta64(int(b.prep_start * 3600), "s")).astype("datetime64[D]")).replace("-", "")[2:]
        materials = [
            {
                "lot_id": f"MED-{d_prep}-{b.unit_id[-3:]}",
                "material": "basal medium",
                "role": "input",
                "quantity": round(0.9 * v0, 1),
                "unit": "L",
            },
            {
                "lot_id": f"INOC-{b.batch_id}",
                "material": "inoculum (N-1 seed)",
                "role": "input",
                "quantity": round(0.1 * v0, 1),
                "unit": "L",
            },
        ]
        if feed_l > 0:
            materials.append(
                {
                    "lot_id": f"FEED-{d_prep}-{b.unit_id[-3:]}",
                    "material": "feed medium",
                    "role": "input",
                    "quantity": round(feed_l, 2),
                    "unit": "L",
                }
            )
        if base_l > 0:
            materials.append(
                {
                    "lot_id": f"BASE-{d_prep[:4]}",
                    "material": "1 M sodium carbonate",
                    "role": "input",
                    "quantity": round(base_l, 2),
                    "unit": "L",
                }
            )
        out_lot = f"HCCF-{b.batch_id}" if b.status == "complete" else None
        if out_lot:
            materials.append(
                {
                    "lot_id": out_lot,
                    "material": "harvested cell culture fluid",
                    "role": "output",
                    "quantity": round(float(res.harvest["volume"][i]), 1),
                    "unit": "L",
                }
            )
        rec = {
            "record_type": "bioreactor",
            "batch_id": b.batch_id,
            "product": cfg.product,
            "unit_id": b.unit_id,
            "recipe_id": cfg.recipe_id,
            "status": b.status,
            "start": iso1(t0, b.prep_start),
            "end": iso1(t0, b.harvest_end),
            "setpoints": {k: float(getattr(r, k)) for k in SETPOINT_KEYS},
            "procedure": [
                {
                    "unit_procedure": "Production Culture",
                    "operation": op,
                    "phase": ph,
                    "start": iso1(t0, a),
                    "end": iso1(t0, z),
                }
                for op, ph, a, z in _phases(b)
            ],
            "materials": materials,
            "output_lot": out_lot,
            "input_lots": [],
        }
        writer.put(f"landing/mes/{b.batch_id}.json", json_bytes(rec))
    for d in dsp:
        b = d.batch
        if d.cap_end < t_end:
            proc = []
            for k, r in enumerate(d.cycles):
                for ph, a, z in r.cycle.phase_bounds_s:
                    proc.append(
                        {
                            "unit_procedure": "Protein A Capture",
                            "operation": f"Cycle {k + 1}",
                            "phase": ph,
                            "start": iso1(t0, r.start + a / 3600.0),
                            "end": iso1(t0, r.start + z / 3600.0),
                        }
                    )
            rec = {
                "record_type": "capture",
                "batch_id": f"PA-{b.batch_id}",
                "product": cfg.product,
                "unit_id": "AKTA-01",
                "recipe_id": "PA-CAPTURE-v2",
                "status": "complete",
                "start": iso1(t0, d.cap_start),
                "end": iso1(t0, d.cap_end),
                "setpoints": {
                    "column_volume_l": round(ds.COLUMN_VOLUME_L, 2),
                    "load_density_g_l": ds.LOAD_TARGET_G_L,
                    "linear_velocity_cm_h": ds.LINEAR_VELOCITY_CM_H,
                    "cycles": len(d.cycles),
                },
                "procedure": proc,
                "materials": [
                    {
                        "lot_id": d.harvest_lot,
                        "material": "harvested cell culture fluid",
                        "role": "input",
                        "quantity": round(d.harvest_volume_l, 1),
                        "unit": "L",
                    },
                    {
                        "lot_id": f"CAP-{b.batch_id}",
                        "material": "Protein A eluate pool",
                        "role": "output",
                        "quantity": round(d.pool_volume_l, 1),
                        "unit": "L",
                    },
                ],
                "output_lot": f"CAP-{b.batch_id}",
                "input_lots": [d.harvest_lot],
            }
            writer.put(f"landing/mes/PA-{b.batch_id}.json", json_bytes(rec))
        if d.uf is not None and d.uf_end < t_end:
            uf = d.uf
            rec = {
                "record_type": "ufdf",
                "batch_id": f"UF-{b.batch_id}",
                "product": cfg.product,
                "unit_id": "TFF-01",
                "recipe_id": "UFDF-v1",
                "status": "complete",
                "start": iso1(t0, d.uf_start),
                "end": iso1(t0, d.uf_end),
                "setpoints": {
                    "target_concentration_g_l": ds.DS_TARGET_G_L,
                    "diavolumes": ds.DIAVOLUMES,
                    "tmp_bar": ds.TMP_SETPOINT_BAR,
                },
                "procedure": [
                    {
                        "unit_procedure": "UF/DF",
                        "operation": "TFF",
                        "phase": ph,
                        "start": iso1(t0, d.uf_start + a / 3600.0),
                        "end": iso1(t0, d.uf_start + z / 3600.0),
                    }
                    for ph, a, z in uf.phase_bounds_s
                ],
                "materials": [
                    {
                        "lot_id": f"CAP-{b.batch_id}",
                        "material": "Protein A eluate pool",
                        "role": "input",
                        "quantity": round(d.pool_volume_l, 1),
                        "unit": "L",
                    },
                    {
                        "lot_id": f"DFB-{b.batch_id}",
                        "material": "formulation buffer",
                        "role": "input",
                        "quantity": round(ds.DIAVOLUMES * d.pool_volume_l * d.pool_conc / ds.UF1_TARGET_G_L, 1),
                        "unit": "L",
                    },
                    {
                        "lot_id": f"DS-{b.batch_id}",
                        "material": "drug substance",
                        "role": "output",
                        "quantity": round(uf.final_volume_l, 2),
                        "unit": "L",
                    },
                ],
                "output_lot": f"DS-{b.batch_id}",
                "input_lots": [f"CAP-{b.batch_id}"],
            }
            writer.put(f"landing/mes/UF-{b.batch_id}.json", json_bytes(rec))


# --------------------------------------------------------------------------- CMMS


def _write_cmms(t0: np.datetime64, t_end: float, wos: list[WorkOrderRec], writer: LandingWriter) -> None:
    ws = sorted((w for w in wos if w.opened_h < t_end), key=lambda w: (w.opened_h, w.equipment_id, w.work_type))
    if not ws:
        return
    ids = [f"WO-{t0.astype('datetime64[Y]')!s}-{k + 1:05d}" for k in range(len(ws))]
    opened = np.array([w.opened_h for w in ws])
    day = np.floor(opened / 24.0).astype(np.int64)
    for d in np.unique(day):
        sel = np.flatnonzero(day == d)
        cols = {
            "work_order_id": [ids[k] for k in sel],
            "equipment_id": [ws[k].equipment_id for k in sel],
            "equipment_type": [ws[k].equipment_type for k in sel],
            "work_type": [ws[k].work_type for k in sel],
            "failure_mode": [ws[k].failure_mode for k in sel],
            "priority": [ws[k].priority for k in sel],
            "opened_at": [str(iso_ms(t0, ws[k].opened_h)) for k in sel],
            "closed_at": [str(iso_ms(t0, ws[k].closed_h)) if ws[k].closed_h < t_end else "" for k in sel],
            "description": [ws[k].description for k in sel],
        }
        cols = {k: pa.array(v, type=pa.string()) for k, v in cols.items()}
        writer.put(f"landing/cmms/{_day_str(t0, int(d))}.csv", csv_bytes(cols))


# --------------------------------------------------------------------------- truth


def _write_truth(
    cfg: SiteConfig,
    t0: np.datetime64,
    t_end: float,
    batches: list[PlannedBatch],
    res: BatchResult,
    failures: list[Failure],
    writer: LandingWriter,
) -> None:
    sel = [i for i, b in enumerate(batches) if b.prep_start < t_end]
    bs = [batches[i] for i in sel]
    closed = np.array([b.harvest_end < t_end and b.sim_end_rel >= b.end_rel for b in bs])
    h = {k: np.where(closed, res.harvest[k][sel], np.nan) for k in res.harvest}
    cols: dict[str, Any] = {
        "batch_id": pa.array([b.batch_id for b in bs]),
        "unit_id": pa.array([b.unit_id for b in bs]),
        "recipe_id": pa.array([cfg.recipe_id] * len(bs)),
        "start": ts_array(t0, np.array([b.prep_start for b in bs])),
        "end": ts_array(t0, np.array([b.harvest_end for b in bs])),
        "inoculation": ts_array(t0, np.array([b.inoc for b in bs])),
        "culture_end": ts_array(t0, np.array([b.end_culture for b in bs])),
        "status": pa.array([b.status for b in bs]),
        "closed_in_window": pa.array([b.harvest_end < t_end for b in bs]),
        "deviation_type": pa.array([b.deviation_type or None for b in bs], type=pa.string()),
        "deviation_onset": ts_array(t0, np.array([b.deviation_onset for b in bs])),
        "lost": pa.array([b.lost for b in bs]),
    }
    for k in SETPOINT_KEYS + ("duration_days",):
        cols[k] = pa.array([float(getattr(b.recipe, k)) for b in bs])
    for k in ("titer", "viability", "peak_vcd", "ivcd", "volume", "g0f", "g1f", "g2f", "man5", "afucosylation", "hmw"):
        cols[f"{k}_true"] = pa.array(h[k].astype(float))
    writer.put("landing/_truth/batches.parquet", parquet_bytes(pa.table(cols)))
    fs = sorted((f for f in failures if f.failure_time < t_end), key=lambda f: (f.failure_time, f.equipment_id))
    fcols = {
        "equipment_id": pa.array([f.equipment_id for f in fs], type=pa.string()),
        "failure_mode": pa.array([f.failure_mode for f in fs], type=pa.string()),
        "degradation_start": ts_array(t0, np.array([f.degradation_start for f in fs], dtype=float)),
        "failure_time": ts_array(t0, np.array([f.failure_time for f in fs], dtype=float)),
        "repaired_at": ts_array(
            t0, np.array([f.repaired_at if f.repaired_at < t_end else math.nan for f in fs], dtype=float)
        ),
    }
    writer.put("landing/_truth/failures.parquet", parquet_bytes(pa.table(fcols)))
    if not cfg.write_trajectories:
        return
    keys = (
        "vcd",
        "viability",
        "glucose",
        "lactate",
        "glutamine",
        "ammonia",
        "osmolality",
        "titer",
        "ph",
        "do_true",
        "dissolved_oxygen",
        "temperature",
        "volume",
    )
    step = max(1, int(round(1.0 / (res.t_h[1] - res.t_h[0]))))
    for i in sel:
        b = batches[i]
        m = np.arange(0, len(res.t_h), step)
        m = m[(res.t_h[m] <= b.sim_end_rel + 1e-9) & (b.inoc + res.t_h[m] < t_end)]
        if m.size == 0:
            continue
        tcols: dict[str, Any] = {
            "batch_id": pa.array([b.batch_id] * m.size),
            "ts": ts_array(t0, b.inoc + res.t_h[m]),
            "culture_age_h": pa.array(res.t_h[m]),
        }
        for k in keys:
            tcols[k] = pa.array(res.series[k][i, m])
        writer.put(f"landing/_truth/trajectories/{b.batch_id}.parquet", parquet_bytes(pa.table(tcols)))
