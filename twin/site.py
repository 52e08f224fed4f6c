"""Site simulator: N fed-batch bioreactors, Protein A capture and UF/DF over a date range.

It plans every unit's time line (preparation, inoculation, culture, harvest, turnaround),
lets equipment degrade and fail (``twin.equipment``), injects process deviations
(``twin.deviations``), integrates all batches in one vectorised call
(``twin.bioreactor.simulate_batches``), runs the downstream steps on the harvests
(``twin.downstream``) and writes the landing zone exactly as ``docs/contracts.md`` specifies,
plus the simulator's ground truth under ``landing/_truth/``.

Everything is deterministic for a seed: every random stream is derived from
``(seed, stream, unit, ...)`` so that output files are byte-identical between runs.

Entry points: :func:`simulate_site` (write the landing zone) and :func:`plan_site` (the planned,
simulated site in memory: what a live server plays, see ``twin.live``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from twin import downstream as ds
from twin import equipment as eq
from twin.bioreactor import (
    DESIGN_SPACE,
    NOMINAL_RECIPE,
    SETPOINT_KEYS,
    BatchResult,
    Faults,
    KineticParams,
    Recipe,
    Vessel,
    feed_command,
    recipes_to_arrays,
    simulate_batches,
)
from twin.deviations import DEFAULT_RATES, DeviationType, sample_deviations
from twin.historian import (
    BatchSignals, DayReadings, HistorianDay, Segment, UnitTimeline, build_unit_day, unit_day_readings,
)
from twin.writers import LandingWriter, csv_bytes, iso1, iso_ms, json_bytes, parquet_bytes, to_datetime64, ts_array

ProgressFn = Callable[[int, int], None]

# random-stream ids (keep stable: changing them changes every output)
_S_PLAN, _S_RECIPE, _S_HIST, _S_LIMS, _S_DSP, _S_CQA = 1, 2, 3, 4, 5, 6

HARVEST_H = (4.0, 6.0)
DRAIN_H = 4.0
INOCULATE_H = 0.5
PREPARE_H = (16.0, 28.0)
TURNAROUND_H = (24.0, 72.0)  # harvest end -> next inoculation
AGITATOR_REPAIR_H = (12.0, 48.0)
PUMP_REPAIR_H = (3.0, 8.0)  # Faults.pump_down_h default (a rupture; the site changes worn tubing first)
AGITATOR_PM_D = 90.0
SKID_PM_D = 30.0
SAMPLE_TOD_H = 8.5  # daily sampling around 08:30 UTC


@dataclass(frozen=True)
class SiteConfig:
    """What to simulate. ``interval_s`` is the historian logging interval."""

    start: str = "2026-01-01"
    days: int = 90
    bioreactors: int = 4
    interval_s: float = 60.0
    seed: int = 7
    product: str = "mAb-A"
    recipe_id: str = "FB-14D-v3"
    nominal: Recipe = NOMINAL_RECIPE
    dt_h: float = 0.25
    deviation_rates: dict[DeviationType, float] | None = None
    workers: int = 2
    write_trajectories: bool = True

    def unit_ids(self) -> list[str]:
        return [f"BR-{101 + i}" for i in range(self.bioreactors)]


@dataclass
class WorkOrderRec:
    equipment_id: str
    equipment_type: str
    work_type: str
    failure_mode: str
    priority: str
    opened_h: float
    closed_h: float
    description: str


@dataclass
class PlannedBatch:
    """One bioreactor batch as planned (hours since the simulation start unless *_rel)."""

    unit_idx: int
    unit_id: str
    seq: int
    recipe: Recipe
    prep_start: float
    inoc: float
    end_rel: float
    harvest_end: float = math.nan
    status: str = "complete"
    deviation_type: str = ""
    deviation_onset: float = math.nan
    sample_offset_h: float = 0.0
    mu_mult: float = 1.0
    qp_mult: float = 1.0
    faults: dict[str, float] = field(default_factory=dict)

    @property
    def batch_id(self) -> str:
        return f"{self.unit_id.replace('-', '')}-{self.seq:04d}"

    @property
    def lost(self) -> bool:
        return self.status == "aborted"

    @property
    def end_culture(self) -> float:
        return self.inoc + self.end_rel

    sim_end_rel: float = math.nan  # simulated culture age: end_rel, or up to the window end


@dataclass
class Failure:
    equipment_id: str
    failure_mode: str
    degradation_start: float
    failure_time: float
    repaired_at: float


@dataclass
class _UnitState:
    bearing: tuple[float, float, float]
    pump_run_h: float
    pump_life_h: float
    pump_installed: float
    pump_last_pm: float  # last tubing change (preventive or corrective): the PM interval runs from it
    probe_age: int
    probe_installed: float
    probe_degr_start: float
    probe_pending_wo: int  # index of an open probe work order (-1 none)
    agit_last_pm: float
    pump_degr_start: float = math.nan  # when the tubing in place passed half its life


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *keys])


# The small batch-to-batch setpoint variation of a real site: recipe field -> (sd of the normal
# draw around the nominal value, rounding as entered in the MES: ("decimals", d) → round(x, d);
# ("per", k) → round(k·x)/k; ("step", s) → s·round(x/s)), clipped to DESIGN_SPACE. Draw order =
# key order. Used by the site simulator and by ml.mspc's twin evaluation sets.
RECIPE_VARIATION: dict[str, tuple[float, tuple[str, float]]] = {
    "temperature_c": (0.15, ("decimals", 1)),
    "temp_shift_day": (0.4, ("per", 4.0)),
    "temp_shift_c": (0.35, ("decimals", 1)),
    "ph": (0.03, ("decimals", 2)),
    "do_pct": (4.0, ("decimals", 0)),
    "feed_rate_pct_per_day": (0.25, ("per", 20.0)),
    "seed_density_e6_per_ml": (0.06, ("decimals", 2)),
    "working_volume_l": (12.0, ("step", 5.0)),
    "duration_days": (0.35, ("per", 4.0)),
}


def _round_setpoint(x: Any, rounding: tuple[str, float], rnd: Callable) -> Any:
    kind, k = rounding
    if kind == "decimals":
        return rnd(x, int(k))
    if kind == "per":
        return rnd(k * x) / k
    if kind == "step":
        return k * rnd(x / k)
    raise ValueError(f"unknown rounding {rounding!r}")


def vary_recipe(rng: np.random.Generator, nominal: Recipe) -> Recipe:
    """``nominal`` with the site's batch-to-batch setpoint variation (:data:`RECIPE_VARIATION`)."""
    values = {}
    for key, (sd, rounding) in RECIPE_VARIATION.items():
        lo, hi = DESIGN_SPACE[key]
        x = _round_setpoint(rng.normal(getattr(nominal, key), sd), rounding, round)
        values[key] = float(min(max(x, lo), hi))
    return replace(nominal, **values)


def vary_recipes(rng: np.random.Generator, n: int, nominal: Recipe | None = None) -> dict[str, np.ndarray]:
    """``n`` recipes drawn like :func:`vary_recipe`, vectorised: one array per field."""
    nominal = nominal or NOMINAL_RECIPE
    return {key: np.clip(_round_setpoint(rng.normal(getattr(nominal, key), sd, n), rounding, np.round),
                         *DESIGN_SPACE[key])
            for key, (sd, rounding) in RECIPE_VARIATION.items()}


# --------------------------------------------------------------------------- planning


class _Planner:
    """Sequential event planning of one bioreactor (batches, failures, maintenance)."""

    def __init__(self, cfg: SiteConfig, unit_idx: int, t_end: float, wos: list[WorkOrderRec],
                 failures: list[Failure]) -> None:
        self.cfg = cfg
        self.u = unit_idx
        self.unit_id = cfg.unit_ids()[unit_idx]
        self.t_end = t_end
        self.rng = _rng(cfg.seed, _S_PLAN, unit_idx)
        self.rrng = _rng(cfg.seed, _S_RECIPE, unit_idx)
        self.wos = wos
        self.failures = failures
        self.timeline = UnitTimeline(self.unit_id)
        self.batches: list[PlannedBatch] = []
        rng = self.rng
        onset, fail = eq.sample_bearing(rng, 0.0, first=True)
        self.timeline.bearings.append((-1e9, onset, fail))
        self.st = _UnitState(
            bearing=(-1e9, onset, fail),
            pump_run_h=float(rng.uniform(0.0, 1200.0)), pump_life_h=eq.sample_pump_life(rng),
            pump_installed=-1e9, pump_last_pm=-float(rng.uniform(0.0, eq.PUMP_PM_INTERVAL_D)) * 24.0,
            probe_age=int(rng.integers(0, eq.DO_INITIAL_AGE_MAX)), probe_installed=-1e9, probe_degr_start=math.nan,
            probe_pending_wo=-1, agit_last_pm=-float(rng.uniform(0.0, AGITATOR_PM_D)) * 24.0,
        )
        if self.st.pump_run_h >= float(eq.pump_tolerance_hours(self.st.pump_life_h)):
            self.st.pump_run_h = 0.5 * self.st.pump_life_h
        # wear of the tubing in place began before the window: estimate when it passed half life
        excess = self.st.pump_run_h - 0.5 * self.st.pump_life_h
        self.st.pump_degr_start = -excess * 1.4 if excess >= 0 else math.nan

    # -- work orders ------------------------------------------------------------
    def _wo(self, suffix: str, work_type: str, mode: str, prio: str, opened: float, closed: float,
            desc: str) -> int:
        eid = f"{self.unit_id}-{suffix}"
        etype = eq.EQUIPMENT_TYPES[suffix]
        self.wos.append(WorkOrderRec(eid, etype, work_type, mode, prio, opened, closed, desc))
        return len(self.wos) - 1

    def _bearing_failure(self, t_fail: float, repair_h: float, in_batch: bool) -> float:
        """Agitator bearing failure at ``t_fail``; returns the repair completion time."""
        rng = self.rng
        opened = t_fail + float(rng.uniform(0.05, 0.5))
        done = t_fail + repair_h
        desc = ("Agitator stopped during culture: bearing seized, DO lost; bearing replaced" if in_batch
                else "Agitator bearing seized at start-up; bearing replaced")
        self._wo("AGT", "corrective", "bearing_failure", "high", opened, done, desc)
        _, onset, fail = self.st.bearing
        self.failures.append(Failure(f"{self.unit_id}-AGT", "bearing_failure", onset, t_fail, done))
        onset2, fail2 = eq.sample_bearing(rng, done)
        self.st.bearing = (done, onset2, fail2)
        self.timeline.bearings.append(self.st.bearing)
        return done

    # -- main loop --------------------------------------------------------------
    def plan(self) -> None:
        cfg, rng, st = self.cfg, self.rng, self.st
        cycle_h = (cfg.nominal.duration_days * 24.0 + 48.0)
        free_from = self.u * cycle_h / max(cfg.bioreactors, 1) + float(rng.uniform(0.0, 12.0))
        first = True
        seq = 0
        while True:
            prep_dur = float(rng.uniform(*PREPARE_H))
            if first:
                prep_start = free_from
                first = False
            else:
                ta = float(rng.uniform(*TURNAROUND_H))
                prep_dur = min(prep_dur, ta - 1.5)
                prep_start = max(free_from + ta - prep_dur - INOCULATE_H, free_from + 1.0)
            inoc = prep_start + prep_dur + INOCULATE_H
            # a bearing that reaches its end before inoculation seizes at start-up
            _, _, bfail = st.bearing
            if bfail < inoc:
                t_fail = max(bfail, prep_start)
                if t_fail >= self.t_end:
                    break
                free_from = self._bearing_failure(t_fail, float(rng.uniform(*AGITATOR_REPAIR_H)), False)
                continue
            if prep_start >= self.t_end:
                break
            seq += 1
            self._maintenance(prep_start)
            b, free_from = self._plan_batch(seq, prep_start, inoc)
            self.batches.append(b)

    def _maintenance(self, t: float) -> None:
        """Preventive work done in the idle time right before a Prepare; probe calibration."""
        st, rng = self.st, self.rng
        if t - st.agit_last_pm >= AGITATOR_PM_D * 24.0:
            self._wo("AGT", "preventive", "", "medium", t - 3.0, t - 1.0,
                     "Quarterly agitator inspection and lubrication")
            st.agit_last_pm = t
        if t - st.pump_last_pm >= eq.PUMP_PM_INTERVAL_D * 24.0:
            self._wo("FP", "preventive", "", "medium", t - 2.0, t - 1.5,
                     "Feed pump head service and tubing replacement (PM)")
            st.pump_last_pm = t
            st.pump_run_h = 0.0
            st.pump_life_h = eq.sample_pump_life(rng)
            st.pump_installed = t
            st.pump_degr_start = math.nan
        if st.probe_pending_wo >= 0:  # replace the probe that drifted out of tolerance
            self.wos[st.probe_pending_wo].closed_h = t + 0.5
            st.probe_pending_wo = -1
            st.probe_age = 0
            st.probe_installed = t
            st.probe_degr_start = math.nan
        st.probe_age += 1
        self._wo("DO", "calibration", "", "low", t + 0.2, t + 0.7, "DO probe 2-point calibration before SIP")

    def _plan_batch(self, seq: int, prep_start: float, inoc: float) -> tuple[PlannedBatch, float]:
        """Plan one batch; returns it and the time the vessel is free again."""
        cfg, rng, st = self.cfg, self.rng, self.st
        dt = cfg.dt_h
        recipe = vary_recipe(self.rrng, cfg.nominal)
        mu_mult = float(self.rrng.lognormal(0.0, 0.04))
        qp_mult = float(self.rrng.lognormal(0.0, 0.06))
        dur_h = recipe.duration_days * 24.0
        b = PlannedBatch(self.u, self.unit_id, seq, recipe, prep_start, inoc, dur_h, mu_mult=mu_mult, qp_mult=qp_mult)
        tod = (inoc % 24.0)
        off = (SAMPLE_TOD_H + float(rng.uniform(-0.5, 0.5)) - tod) % 24.0
        if off < 1.0:
            off += 24.0
        b.sample_offset_h = round(off / dt) * dt
        f: dict[str, float] = dict(
            agitator_fail_h=math.inf, agitator_down_h=math.inf, pump_run_h0=st.pump_run_h,
            pump_life_h=st.pump_life_h, pump_down_h=float(rng.uniform(*PUMP_REPAIR_H)),
            pump_wear_max=eq.PUMP_WEAR_AT_FAILURE, do_drift_per_day=0.0, do_restd_h=math.inf,
            dev_type=0.0, dev_onset_h=math.inf, dev_magnitude=0.0, dev_duration_h=0.0,
        )
        # process deviation
        draw = sample_deviations(rng, np.array([dur_h]), cfg.deviation_rates or DEFAULT_RATES)
        dtype = DeviationType(int(draw.dev_type[0]))
        end_rel = dur_h
        if dtype is not DeviationType.NONE:
            f.update(dev_type=float(int(dtype)), dev_onset_h=float(draw.onset_h[0]),
                     dev_magnitude=float(draw.magnitude[0]), dev_duration_h=float(draw.duration_h[0]))
            b.deviation_type, b.deviation_onset = dtype.label, inoc + float(draw.onset_h[0])
            if dtype is DeviationType.CONTAMINATION:
                end_rel = min(end_rel, round(float(draw.detect_h[0]) / dt) * dt)
                b.status = "aborted"
        # agitator bearing failure during the culture -> DO crash -> batch terminated
        _, _, bfail = st.bearing
        repair_done = -math.inf
        if inoc <= bfail < inoc + end_rel:
            rel = bfail - inoc
            f["agitator_fail_h"] = rel
            stop = round((rel + float(rng.uniform(3.0, 8.0))) / dt) * dt
            end_rel = min(end_rel, stop)
            b.status = "aborted"
            b.deviation_type, b.deviation_onset = "agitator_failure", bfail
            f["dev_type"] = 0.0  # the agitator failure supersedes a later process deviation
            f["dev_onset_h"] = math.inf
            repair_done = self._bearing_failure(bfail, float(rng.uniform(*AGITATOR_REPAIR_H)), True)
        b.end_rel = end_rel
        # feed pump tubing wear (running hours on the recipe feed schedule): flow out of tolerance
        # found at the daily feed review -> corrective work order, tubing changed (long before the
        # tubing would rupture at its life)
        rec = recipes_to_arrays([recipe])
        n_steps = int(math.ceil(end_rel / dt))
        t_steps = np.arange(n_steps) * dt
        running = feed_command(rec, t_steps, dt, np.array([end_rel]))[0] > 0.0
        run0 = np.array([st.pump_run_h])
        h_tol = float(eq.pump_tolerance_hours(st.pump_life_h))
        t_cross = float(eq.pump_failure_time(running[None, :], dt, run0, np.array([h_tol]))[0])
        run_total = float(running.sum() * dt)
        half = 0.5 * st.pump_life_h
        if st.pump_run_h < half <= st.pump_run_h + run_total:
            idx = int(np.argmax(st.pump_run_h + np.cumsum(running * dt) >= half))
            pump_degr = inoc + idx * dt
        else:
            pump_degr = math.nan
        degr = st.pump_degr_start if math.isnan(pump_degr) else pump_degr
        if math.isfinite(t_cross) and t_cross < end_rel:
            # first daily review (at the sampling time) after the crossing, else the harvest reconciliation
            k = max(math.ceil((t_cross - b.sample_offset_h) / 24.0), 0)
            detect = b.sample_offset_h + 24.0 * k + 0.5
            swap_on = detect + float(rng.uniform(0.5, 3.0))
            swap_h = float(rng.uniform(*eq.PUMP_SWAP_H))
            t_abs = inoc + t_cross
            if swap_on + swap_h < end_rel - dt:  # tubing changed during the culture
                h_swap = st.pump_run_h + float((running & (t_steps < swap_on)).sum() * dt)
                swap_on = t_steps[np.argmax(t_steps >= swap_on)]
                # the simulator's tubing model: wear curve of the old tubing up to the swap, no flow
                # while swapping, then new tubing (whose wear over the rest of the batch follows the
                # old curve; carried over as equivalent hours of the new tubing below)
                f.update(pump_life_h=h_swap, pump_wear_max=eq.PUMP_WEAR_AT_FAILURE * (h_swap / st.pump_life_h) ** 2,
                         pump_down_h=swap_h)
                done = inoc + swap_on + swap_h
                h_new = float((running & (t_steps >= swap_on + swap_h)).sum() * dt)
            else:  # found at the end of the culture: changed during the turnaround
                detect = min(detect, end_rel + 0.5)
                done = inoc + end_rel + float(rng.uniform(2.0, 6.0))
                h_new = 0.0
            self._wo("FP", "corrective", "flow_out_of_tolerance", "medium", inoc + detect, done,
                     f"Feed delivered below {eq.PUMP_FLOW_TOLERANCE:.0%} of setpoint at the daily feed review "
                     "(pump tubing worn); tubing replaced")
            self.failures.append(Failure(f"{self.unit_id}-FP", "flow_out_of_tolerance",
                                         degr if not math.isnan(degr) else t_abs - 24.0, t_abs, done))
            old_life = st.pump_life_h
            st.pump_life_h = eq.sample_pump_life(rng)
            st.pump_run_h = h_new * st.pump_life_h / old_life
            st.pump_installed = st.pump_last_pm = done
            st.pump_degr_start = math.nan
        else:
            st.pump_run_h += run_total
            if not math.isnan(pump_degr):
                st.pump_degr_start = pump_degr
        # DO probe drift during this batch; out of tolerance -> work order, re-standardised
        drift = eq.do_drift_rate(rng, st.probe_age)
        f["do_drift_per_day"] = drift
        if abs(drift) * dur_h / 24.0 >= 0.5 * eq.DO_FAIL_REL_DEV and math.isnan(st.probe_degr_start):
            st.probe_degr_start = inoc
        cross = eq.DO_FAIL_REL_DEV / max(abs(drift), 1e-12) * 24.0  # hours after inoculation
        if cross < end_rel and st.probe_pending_wo < 0:
            k = math.ceil((cross - b.sample_offset_h) / 24.0)
            detect_rel = b.sample_offset_h + 24.0 * max(k, 0) + 0.5
            if detect_rel < end_rel:
                f["do_restd_h"] = round(detect_rel / dt) * dt
                idx = self._wo("DO", "corrective", "probe_drift", "medium", inoc + detect_rel, math.inf,
                               "DO probe reading deviates >15 % from blood-gas reference; re-standardised, "
                               "replace at next preparation")
                st.probe_pending_wo = idx
                degr = st.probe_degr_start if not math.isnan(st.probe_degr_start) else inoc
                self.failures.append(Failure(f"{self.unit_id}-DO", "probe_drift", degr, inoc + cross, math.nan))
        # end of the record: harvest (complete) or drain (aborted)
        t_end_culture = inoc + end_rel
        if b.status == "complete":
            b.harvest_end = t_end_culture + float(rng.uniform(*HARVEST_H))
        else:
            b.harvest_end = t_end_culture + DRAIN_H
        self.timeline.segments += [
            Segment("prepare", prep_start, inoc - INOCULATE_H, len(self.batches)),
            Segment("inoculate", inoc - INOCULATE_H, inoc, len(self.batches)),
            Segment("culture", inoc, t_end_culture, len(self.batches)),
            Segment("harvest" if b.status == "complete" else "drain", t_end_culture, b.harvest_end, len(self.batches)),
        ]
        b.faults = f
        return b, max(b.harvest_end, repair_done)


def _close_probe_failures(failures: list[Failure], wos: list[WorkOrderRec]) -> None:
    """Repair time of a probe failure = closing of its work order (probe replaced)."""
    closed = {}
    for w in wos:
        if w.failure_mode == "probe_drift":
            closed.setdefault(w.equipment_id, []).append(w.closed_h)
    for fl in failures:
        if fl.failure_mode == "probe_drift" and math.isnan(fl.repaired_at):
            cands = [c for c in closed.get(fl.equipment_id, []) if c > fl.failure_time]
            fl.repaired_at = min(cands) if cands else math.inf


# --------------------------------------------------------------------------- simulate


@dataclass
class SiteSummary:
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
        return self.historian_readings / max(self.seconds, 1e-9)


def simulate_site(out: str, config: SiteConfig | None = None, storage_options: dict[str, Any] | None = None,
                  progress: ProgressFn | None = None) -> SiteSummary:
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
        out=out, batches=len(batches), batches_closed=closed,
        batches_lost=sum(1 for b in batches if b.lost and b.harvest_end < t_end),
        deviations=sum(1 for b in batches if b.deviation_type and b.inoc < t_end),
        failures=sum(1 for f in failures if f.failure_time < t_end),
        work_orders=sum(1 for w in wos if w.opened_h < t_end),
        capture_runs=sum(len(c.cycles) for c in dsp if c.cap_end < t_end),
        ufdf_runs=sum(1 for c in dsp if c.uf is not None and c.uf_end < t_end),
        historian_readings=n_readings, lims_results=n_lims, files_written=writer.files_written,
        bytes_written=writer.bytes_written, seconds=seconds, timings=timings,
    )


@dataclass
class SitePlan:
    """A planned and simulated site (every unit's time line, batches, cultures), before any file
    is written: what :func:`simulate_site` writes, and what a live server plays
    (:meth:`unit_day`, :meth:`batch_state`)."""

    cfg: SiteConfig
    t0: np.datetime64
    t_end: float
    planners: list[_Planner]
    batches: list[PlannedBatch]
    wos: list[WorkOrderRec]
    failures: list[Failure]
    result: BatchResult
    timings: dict[str, float]
    _days: dict[str, list[HistorianDay]] | None = None

    def historian_days(self) -> dict[str, list[HistorianDay]]:
        """unit id -> the inputs of each of its historian days (built once)."""
        if self._days is None:
            self._days = _historian_days(self)
        return self._days

    def unit_day(self, unit_id: str, day: int) -> DayReadings:
        """The historian readings of ``unit_id`` on day ``day`` (0 = ``cfg.start``): the same
        values, qualities and timestamps as the day's landing CSV, as arrays."""
        days = self.historian_days()[unit_id]
        if not 0 <= day < len(days):
            raise IndexError(f"day {day} outside the simulated window (0..{len(days) - 1})")
        return unit_day_readings(days[day], self.t0, _rng(self.cfg.seed, _S_HIST, self.cfg.unit_ids().index(unit_id), day))

    def batch_state(self, unit_id: str, t_h: float) -> tuple[str, str, str]:
        """(batch id, operation, phase) of ``unit_id`` at ``t_h`` hours after the start, as the
        MES records them; ("", "", "Idle") when no batch occupies the vessel (``Drain`` while an
        aborted batch is drained)."""
        for b in self.batches:
            if b.unit_id != unit_id or not (b.prep_start <= t_h < b.harvest_end):
                continue
            for op, phase, a, z in _phases(b):
                if a <= t_h < z:
                    return b.batch_id, op, phase
            return b.batch_id, "Drain", "Drain"
        return "", "", "Idle"


def plan_site(cfg: SiteConfig) -> SitePlan:
    """Plan every unit (batches, failures, maintenance) and simulate all cultures at once."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    t0 = to_datetime64(cfg.start)
    t_end = float(cfg.days) * 24.0
    wos: list[WorkOrderRec] = []
    failures: list[Failure] = []
    planners = [_Planner(cfg, u, t_end, wos, failures) for u in range(len(cfg.unit_ids()))]
    for p in planners:
        p.plan()
    _close_probe_failures(failures, wos)
    batches = [b for p in planners for b in p.batches]
    for b in batches:  # cultures still running at the window end are simulated up to it only
        b.sim_end_rel = min(b.end_rel, max(cfg.dt_h, math.ceil((t_end - b.inoc) / cfg.dt_h) * cfg.dt_h))
    timings["plan"] = time.perf_counter() - t_start
    t1 = time.perf_counter()
    result = _simulate(cfg, batches)
    timings["bioreactors"] = time.perf_counter() - t1
    return SitePlan(cfg, t0, t_end, planners, batches, wos, failures, result, timings)


def _simulate(cfg: SiteConfig, batches: list[PlannedBatch]) -> BatchResult:
    n = len(batches)
    if n == 0:
        raise ValueError("no batches fit in the simulated period")
    faults = Faults.none(n)
    for i, b in enumerate(batches):
        for k, v in b.faults.items():
            getattr(faults, k)[i] = v
    faults.dev_type = faults.dev_type.astype(np.int64)
    params = KineticParams(
        mu_max=KineticParams.mu_max * np.array([b.mu_mult for b in batches]),
        qp=KineticParams.qp * np.array([b.qp_mult for b in batches]),
    )
    return simulate_batches(
        [b.recipe for b in batches], params=params, dt_h=cfg.dt_h, seed=cfg.seed, faults=faults,
        record_every_h=cfg.dt_h, sample_offset_h=np.array([b.sample_offset_h for b in batches]),
        end_h=np.array([b.sim_end_rel for b in batches]),
    )


# --------------------------------------------------------------------------- historian


def _historian_days(plan: SitePlan) -> dict[str, list[HistorianDay]]:
    """unit id -> one :class:`HistorianDay` per simulated day."""
    cfg, t_end, batches, res = plan.cfg, plan.t_end, plan.batches, plan.result
    ves = Vessel()
    signals: list[BatchSignals] = []
    for i, b in enumerate(batches):
        keep = ("temperature", "temperature_sp", "ph", "dissolved_oxygen", "agitation", "air_flow", "o2_flow",
                "co2_flow", "offgas_o2", "offgas_co2", "capacitance", "base_total", "feed_flow_sp", "feed_flow",
                "feed_total", "weight", "pressure")
        signals.append(BatchSignals(
            inoc_h=b.inoc, t_rec=res.t_h, series={k: res.series[k][i] for k in keep},
            temperature_c=b.recipe.temperature_c, ph=b.recipe.ph,
            do_pct=b.recipe.do_pct, v0_l=b.recipe.working_volume_l, agit_min=ves.agit_min_rpm,
            air_min=ves.air_min_vvm * b.recipe.working_volume_l,
        ))
    base = 0
    out: dict[str, list[HistorianDay]] = {}
    for p in plan.planners:
        idx = {j: base + j for j in range(len(p.batches))}
        base += len(p.batches)
        segs = [Segment(s.kind, s.t0, s.t1, idx[s.batch]) for s in p.timeline.segments]
        # idle segments hold the totalisers of the previous batch until the next Prepare
        tl = UnitTimeline(p.unit_id, [], p.timeline.bearings)
        ordered = sorted(segs, key=lambda s: s.t0)
        prev_end, prev_batch = -1e9, -1
        for s in ordered:
            if s.kind == "prepare" and prev_batch >= 0 and s.t0 > prev_end:
                tl.segments.append(Segment("idle", prev_end, s.t0, prev_batch))
            tl.segments.append(s)
            if s.kind in ("harvest", "drain"):
                prev_end, prev_batch = s.t1, s.batch
        if prev_batch >= 0:
            tl.segments.append(Segment("idle", prev_end, 1e12, prev_batch))
        totals = {}
        for j in range(len(batches)):
            sig = signals[j]
            e = batches[j].sim_end_rel
            totals[j] = (float(np.interp(e, sig.t_rec, sig.series["base_total"])),
                         float(np.interp(e, sig.t_rec, sig.series["feed_total"])))
        out[p.unit_id] = [HistorianDay(p.unit_id, tl, {i: signals[i] for i in range(len(signals))}, d * 24.0,
                                       cfg.interval_s, t_end, totals) for d in range(int(cfg.days))]
    return out


def _write_historian(plan: SitePlan, writer: LandingWriter, tick: Callable[[int], None]) -> int:
    cfg, t0 = plan.cfg, plan.t0
    jobs: list[tuple[str, HistorianDay, np.random.Generator]] = []
    for p in plan.planners:
        for d, day in enumerate(plan.historian_days()[p.unit_id]):
            jobs.append((f"landing/historian/{p.unit_id}/{_day_str(t0, d)}.csv", day,
                         _rng(cfg.seed, _S_HIST, p.u, d)))
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

_DAILY = (
    # analyte, series, unit, method, relative sd, absolute sd, delay (h) range
    ("vcd", "vcd", "1e6 cells/mL", "Vi-CELL", 0.05, 0.0, (0.3, 1.5)),
    ("viability", "viability", "%", "Vi-CELL", 0.0, 1.2, (0.3, 1.5)),
    ("glucose", "glucose", "g/L", "BGA", 0.03, 0.03, (0.2, 1.0)),
    ("lactate", "lactate", "g/L", "BGA", 0.04, 0.03, (0.2, 1.0)),
    ("glutamine", "glutamine", "mM", "Cedex Bio", 0.06, 0.05, (1.0, 4.0)),
    ("ammonia", "ammonia", "mM", "Cedex Bio", 0.05, 0.1, (1.0, 4.0)),
    ("osmolality", "osmolality", "mOsm/kg", "Osmometer", 0.0, 3.0, (1.0, 3.0)),
    ("ph_offline", "ph", "pH", "BGA", 0.0, 0.02, (0.2, 1.0)),
    ("po2_offline", "do_true", "%", "BGA", 0.015, 0.5, (0.2, 1.0)),  # ~0.8 % air sat. at 40-50 %
)


def _write_lims(cfg: SiteConfig, t0: np.datetime64, t_end: float, batches: list[PlannedBatch],
                res: BatchResult, writer: LandingWriter) -> int:
    rows: dict[str, list[Any]] = {k: [] for k in ("sample_id", "batch_id", "sample_h", "result_h", "analyte",
                                                   "value", "unit", "method")}
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
        titer_next = 3
        while True:
            rel = b.sample_offset_h + 24.0 * k
            if rel > b.sim_end_rel + 1e-9:
                break
            j = int(round(rel / dt))
            s_h = b.inoc + rel + float(rng.uniform(-0.1, 0.1))
            day = int(rel // 24.0)
            sid = f"S-{short}-D{day:02d}"
            for analyte, key, unit, method, rsd, asd, delay in _DAILY:
                true = float(res.series[key][i, j])
                v = true * (1.0 + rsd * rng.standard_normal()) + asd * rng.standard_normal()
                v = max(v, 0.0) if analyte != "viability" else float(np.clip(v, 0.0, 100.0))
                add(sid, bid, s_h, s_h + float(rng.uniform(*delay)), analyte, round(v, 3), unit, method)
            if day >= titer_next:
                true = float(res.series["titer"][i, j])
                v = max(true * (1.0 + 0.04 * rng.standard_normal()), 0.0)
                add(sid, bid, s_h, s_h + float(rng.uniform(18.0, 60.0)), "titer", round(v, 3), "g/L", "ProA-HPLC")
                titer_next = day + int(rng.integers(1, 3))
            k += 1
        if b.status != "complete" or b.sim_end_rel < b.end_rel:
            continue
        # harvest sample: cell counts, titer and product quality
        s_h = b.end_culture
        sid = f"S-{short}-HRV"
        h = {key: float(v[i]) for key, v in res.harvest.items()}
        add(sid, bid, s_h, s_h + float(rng.uniform(0.3, 1.5)), "vcd",
            round(h["vcd"] * (1 + 0.05 * rng.standard_normal()), 3), "1e6 cells/mL", "Vi-CELL")
        add(sid, bid, s_h, s_h + float(rng.uniform(0.3, 1.5)), "viability",
            round(float(np.clip(h["viability"] + 1.2 * rng.standard_normal(), 0, 100)), 3), "%", "Vi-CELL")
        add(sid, bid, s_h, s_h + float(rng.uniform(18.0, 48.0)), "titer",
            round(h["titer"] * (1 + 0.04 * rng.standard_normal()), 3), "g/L", "ProA-HPLC")
        glycan_delay = float(rng.uniform(5.0, 10.0)) * 24.0
        qrng = _rng(cfg.seed, _S_CQA, b.unit_idx, b.seq)
        for analyte, sd in (("g0f", 0.8), ("g1f", 0.8), ("g2f", 0.3), ("man5", 0.25), ("afucosylation", 0.3)):
            value = round(max(h[analyte] + sd * qrng.standard_normal(), 0.0), 3)
            add(sid, bid, s_h, s_h + glycan_delay, analyte, value, "%", "HILIC")
        add(sid, bid, s_h, s_h + float(rng.uniform(2.0, 5.0)) * 24.0, "hmw",
            round(max(h["hmw"] + 0.08 * qrng.standard_normal(), 0.0), 3), "%", "SEC")
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


# --------------------------------------------------------------------------- downstream


@dataclass
class _CaptureRun:
    run_id: str
    column_id: str
    column_cycle: int
    start: float
    end: float
    cycle: ds.CaptureCycle


@dataclass
class _Dsp:
    batch: PlannedBatch
    harvest_lot: str
    harvest_volume_l: float
    harvest_titer: float
    cap_start: float
    cap_end: float
    cycles: list[_CaptureRun]
    pool_volume_l: float
    pool_conc: float
    uf: ds.UfdfRun | None = None
    uf_start: float = math.nan
    uf_end: float = math.nan
    membrane_id: str = ""
    membrane_use: int = 0


def _downstream(cfg: SiteConfig, batches: list[PlannedBatch], res: BatchResult, t_end: float,
                wos: list[WorkOrderRec], failures: list[Failure]) -> list[_Dsp]:
    rng = _rng(cfg.seed, _S_DSP)
    index = {id(b): i for i, b in enumerate(batches)}
    harvests = sorted((b for b in batches if b.status == "complete" and b.harvest_end < t_end),
                      key=lambda b: (b.harvest_end, b.unit_idx))
    col_n = 1
    column = eq.ColumnHealth.new(rng, f"COL-PA-{col_n:02d}", int(rng.integers(20, 90)))
    col_degr = math.nan
    mem_n = 1
    membrane = eq.MembraneHealth.new(rng, f"MEM-{mem_n:02d}", int(rng.integers(0, 10)))
    mem_degr = math.nan
    akta_free = tff_free = 0.0
    out: list[_Dsp] = []
    # monthly preventive maintenance on the skids
    for k in range(int(cfg.days // SKID_PM_D) + 1):
        t = (k * SKID_PM_D + 10.0) * 24.0
        wos.append(WorkOrderRec("AKTA-01", "chromatography_skid", "preventive", "", "low", t, t + 4.0,
                                "Monthly skid PM: pump seals, valve block, UV lamp check"))
        wos.append(WorkOrderRec("TFF-01", "tff_skid", "preventive", "", "low", t + 24.0, t + 28.0,
                                "Monthly skid PM: pump, pressure transmitters, integrity tester"))
    for b in harvests:
        i = index[id(b)]
        vol = float(res.harvest["volume"][i]) * 0.97  # clarification losses
        titer = float(res.harvest["titer"][i])
        start = max(b.harvest_end + float(rng.uniform(2.0, 6.0)), akta_free)
        n_cyc = ds.plan_capture_cycles(vol, titer, column)
        t = start
        runs: list[_CaptureRun] = []
        pool_mass = pool_vol = 0.0
        for c in range(n_cyc):
            cyc = ds.simulate_capture_cycle(rng, vol / n_cyc, titer, column)
            column.cycles += 1
            if math.isnan(col_degr) and column.fouling() > 1.5:
                col_degr = t
            run = _CaptureRun(f"PA-{b.batch_id}-C{c + 1:02d}", column.column_id, column.cycles, t,
                              t + cyc.duration_s / 3600.0, cyc)
            runs.append(run)
            pool_mass += cyc.pool_mass_g
            pool_vol += cyc.pool_volume_l
            t = run.end + 0.25
            if cyc.result != "pass":  # pressure alarm: column fails, replaced before the next cycle
                repaired = run.end + 8.0
                wos.append(WorkOrderRec(column.column_id, "chromatography_column", "corrective", "high_backpressure",
                                        "high", run.end + 0.2, repaired,
                                        f"Protein A column pressure {cyc.max_pressure_bar:.2f} bar above limit; "
                                        "column unpacked and replaced"))
                failures.append(Failure(column.column_id, "high_backpressure",
                                        col_degr if not math.isnan(col_degr) else run.start, run.end, repaired))
                col_n += 1
                column = eq.ColumnHealth.new(rng, f"COL-PA-{col_n:02d}", 0)
                col_degr = math.nan
                t = repaired
        akta_free = t
        d = _Dsp(b, f"HCCF-{b.batch_id}", vol, titer, start, runs[-1].end, runs, pool_vol,
                 pool_mass / max(pool_vol, 1e-9))
        # UF/DF after viral inactivation / polishing holds
        uf_start = max(d.cap_end + float(rng.uniform(12.0, 30.0)), tff_free)
        uf = ds.simulate_ufdf(rng, pool_vol, d.pool_conc, membrane)
        membrane.uses += 1
        d.uf, d.uf_start, d.uf_end = uf, uf_start, uf_start + uf.duration_s / 3600.0
        d.membrane_id, d.membrane_use = membrane.membrane_id, membrane.uses
        tff_free = d.uf_end + 1.0
        if math.isnan(mem_degr) and membrane.permeability() < 0.8:
            mem_degr = uf_start
        if uf.result != "pass":
            repaired = d.uf_end + 6.0
            wos.append(WorkOrderRec(membrane.membrane_id, "tff_membrane", "corrective", "low_flux", "medium",
                                    d.uf_end + 0.5, repaired,
                                    f"TFF mean flux {uf.mean_flux_lmh:.1f} LMH below specification; "
                                    "cassettes replaced"))
            degr = mem_degr if not math.isnan(mem_degr) else uf_start
            failures.append(Failure(membrane.membrane_id, "low_flux", degr, d.uf_end, repaired))
            mem_n += 1
            membrane = eq.MembraneHealth.new(rng, f"MEM-{mem_n:02d}", 0)
            mem_degr = math.nan
            tff_free = repaired
        out.append(d)
    return out


def _write_downstream(cfg: SiteConfig, t0: np.datetime64, t_end: float, dsp: list[_Dsp],
                      writer: LandingWriter) -> None:
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
                "run_id": r.run_id, "skid_id": "AKTA-01", "column_id": r.column_id, "column_cycle": r.column_cycle,
                "batch_id": d.batch.batch_id, "input_lot": d.harvest_lot, "output_lot": f"CAP-{d.batch.batch_id}",
                "start": iso1(t0, r.start), "end": iso1(t0, r.end),
                "load_volume_l": round(cyc.load_volume_l, 2), "load_titer_g_l": round(d.harvest_titer, 4),
                "column_volume_l": round(ds.COLUMN_VOLUME_L, 2), "pool_volume_l": round(cyc.pool_volume_l, 2),
                "pool_concentration_g_l": round(cyc.pool_mass_g / max(cyc.pool_volume_l, 1e-9), 3),
                "step_yield_pct": round(cyc.step_yield_pct, 2), "max_pressure_bar": round(cyc.max_pressure_bar, 3),
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
            "run_id": run_id, "skid_id": "TFF-01", "membrane_id": d.membrane_id, "membrane_use": d.membrane_use,
            "input_lot": f"CAP-{d.batch.batch_id}", "output_lot": f"DS-{d.batch.batch_id}",
            "start": iso1(t0, d.uf_start), "end": iso1(t0, d.uf_end), "diavolumes": ds.DIAVOLUMES,
            "final_concentration_g_l": round(uf.final_concentration_g_l, 2),
            "step_yield_pct": round(uf.step_yield_pct, 2),
            "mean_flux_lmh": round(uf.mean_flux_lmh, 2), "result": uf.result,
        }
        writer.put(f"{base}/run.json", json_bytes(run))


# --------------------------------------------------------------------------- MES


def _phases(b: PlannedBatch) -> list[tuple[str, str, float, float]]:
    """(operation, phase, start, end) of a bioreactor record, truncated at an abort."""
    r = b.recipe
    inoc = b.inoc
    feed = inoc + r.feed_start_day * 24.0
    shift = inoc + r.temp_shift_day * 24.0
    end_c = b.end_culture
    out = [("Vessel Preparation", "Prepare", b.prep_start, inoc - INOCULATE_H),
           ("Inoculation", "Inoculate", inoc - INOCULATE_H, inoc)]
    for phase, a, z in (("Batch", inoc, feed), ("Fed-Batch", feed, shift), ("Production", shift, math.inf)):
        a2, z2 = a, min(z, end_c)
        if a2 < end_c and z2 > a2:
            out.append(("Cell Culture", phase, a2, z2))
    if b.status == "complete":
        out.append(("Harvest", "Harvest", end_c, b.harvest_end))
    return out


def _write_mes(cfg: SiteConfig, t0: np.datetime64, t_end: float, batches: list[PlannedBatch], res: BatchResult,
               dsp: list[_Dsp], writer: LandingWriter) -> None:
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
            {"lot_id": f"MED-{d_prep}-{b.unit_id[-3:]}", "material": "basal medium", "role": "input",
             "quantity": round(0.9 * v0, 1), "unit": "L"},
            {"lot_id": f"INOC-{b.batch_id}", "material": "inoculum (N-1 seed)", "role": "input",
             "quantity": round(0.1 * v0, 1), "unit": "L"},
        ]
        if feed_l > 0:
            materials.append({"lot_id": f"FEED-{d_prep}-{b.unit_id[-3:]}", "material": "feed medium", "role": "input",
                              "quantity": round(feed_l, 2), "unit": "L"})
        if base_l > 0:
            materials.append({"lot_id": f"BASE-{d_prep[:4]}", "material": "1 M sodium carbonate", "role": "input",
                              "quantity": round(base_l, 2), "unit": "L"})
        out_lot = f"HCCF-{b.batch_id}" if b.status == "complete" else None
        if out_lot:
            materials.append({"lot_id": out_lot, "material": "harvested cell culture fluid", "role": "output",
                              "quantity": round(float(res.harvest["volume"][i]), 1), "unit": "L"})
        rec = {
            "record_type": "bioreactor", "batch_id": b.batch_id, "product": cfg.product, "unit_id": b.unit_id,
            "recipe_id": cfg.recipe_id, "status": b.status, "start": iso1(t0, b.prep_start),
            "end": iso1(t0, b.harvest_end), "setpoints": {k: float(getattr(r, k)) for k in SETPOINT_KEYS},
            "procedure": [{"unit_procedure": "Production Culture", "operation": op, "phase": ph,
                           "start": iso1(t0, a), "end": iso1(t0, z)} for op, ph, a, z in _phases(b)],
            "materials": materials, "output_lot": out_lot, "input_lots": [],
        }
        writer.put(f"landing/mes/{b.batch_id}.json", json_bytes(rec))
    for d in dsp:
        b = d.batch
        if d.cap_end < t_end:
            proc = []
            for k, r in enumerate(d.cycles):
                for ph, a, z in r.cycle.phase_bounds_s:
                    proc.append({"unit_procedure": "Protein A Capture", "operation": f"Cycle {k + 1}", "phase": ph,
                                 "start": iso1(t0, r.start + a / 3600.0), "end": iso1(t0, r.start + z / 3600.0)})
            rec = {
                "record_type": "capture", "batch_id": f"PA-{b.batch_id}", "product": cfg.product,
                "unit_id": "AKTA-01", "recipe_id": "PA-CAPTURE-v2", "status": "complete",
                "start": iso1(t0, d.cap_start), "end": iso1(t0, d.cap_end),
                "setpoints": {"column_volume_l": round(ds.COLUMN_VOLUME_L, 2), "load_density_g_l": ds.LOAD_TARGET_G_L,
                              "linear_velocity_cm_h": ds.LINEAR_VELOCITY_CM_H, "cycles": len(d.cycles)},
                "procedure": proc,
                "materials": [
                    {"lot_id": d.harvest_lot, "material": "harvested cell culture fluid", "role": "input",
                     "quantity": round(d.harvest_volume_l, 1), "unit": "L"},
                    {"lot_id": f"CAP-{b.batch_id}", "material": "Protein A eluate pool", "role": "output",
                     "quantity": round(d.pool_volume_l, 1), "unit": "L"},
                ],
                "output_lot": f"CAP-{b.batch_id}", "input_lots": [d.harvest_lot],
            }
            writer.put(f"landing/mes/PA-{b.batch_id}.json", json_bytes(rec))
        if d.uf is not None and d.uf_end < t_end:
            uf = d.uf
            rec = {
                "record_type": "ufdf", "batch_id": f"UF-{b.batch_id}", "product": cfg.product, "unit_id": "TFF-01",
                "recipe_id": "UFDF-v1", "status": "complete", "start": iso1(t0, d.uf_start), "end": iso1(t0, d.uf_end),
                "setpoints": {"target_concentration_g_l": ds.DS_TARGET_G_L, "diavolumes": ds.DIAVOLUMES,
                              "tmp_bar": ds.TMP_SETPOINT_BAR},
                "procedure": [{"unit_procedure": "UF/DF", "operation": "TFF", "phase": ph,
                               "start": iso1(t0, d.uf_start + a / 3600.0), "end": iso1(t0, d.uf_start + z / 3600.0)}
                              for ph, a, z in uf.phase_bounds_s],
                "materials": [
                    {"lot_id": f"CAP-{b.batch_id}", "material": "Protein A eluate pool", "role": "input",
                     "quantity": round(d.pool_volume_l, 1), "unit": "L"},
                    {"lot_id": f"DFB-{b.batch_id}", "material": "formulation buffer", "role": "input",
                     "quantity": round(ds.DIAVOLUMES * d.pool_volume_l * d.pool_conc / ds.UF1_TARGET_G_L, 1),
                     "unit": "L"},
                    {"lot_id": f"DS-{b.batch_id}", "material": "drug substance", "role": "output",
                     "quantity": round(uf.final_volume_l, 2), "unit": "L"},
                ],
                "output_lot": f"DS-{b.batch_id}", "input_lots": [f"CAP-{b.batch_id}"],
            }
            writer.put(f"landing/mes/UF-{b.batch_id}.json", json_bytes(rec))


# --------------------------------------------------------------------------- CMMS


def _write_cmms(t0: np.datetime64, t_end: float, wos: list[WorkOrderRec], writer: LandingWriter) -> None:
    ws = sorted((w for w in wos if w.opened_h < t_end), key=lambda w: (w.opened_h, w.equipment_id, w.work_type))
    if not ws:
        return
    ids = [f"WO-{str(t0.astype('datetime64[Y]'))}-{k + 1:05d}" for k in range(len(ws))]
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


def _write_truth(cfg: SiteConfig, t0: np.datetime64, t_end: float, batches: list[PlannedBatch], res: BatchResult,
                 failures: list[Failure], writer: LandingWriter) -> None:
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
        "repaired_at": ts_array(t0, np.array([f.repaired_at if f.repaired_at < t_end else math.nan for f in fs],
                                             dtype=float)),
    }
    writer.put("landing/_truth/failures.parquet", parquet_bytes(pa.table(fcols)))
    if not cfg.write_trajectories:
        return
    keys = ("vcd", "viability", "glucose", "lactate", "glutamine", "ammonia", "osmolality", "titer", "ph", "do_true",
            "dissolved_oxygen", "temperature", "volume")
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
