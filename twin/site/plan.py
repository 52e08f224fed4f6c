"""Planning the site: every unit's time line (preparation, inoculation, culture, harvest,
turnaround), equipment degradation, failures and maintenance (``twin.equipment``), process
deviations (``twin.deviations``), all cultures integrated in one vectorised call
(``twin.bioreactor.simulate_batches``) and the downstream steps on the harvests
(``twin.downstream``). Nothing is written here: :mod:`twin.site.write` turns the plan into the
landing zone.

Every random stream is derived from ``(seed, stream, unit, ...)`` (:func:`twin.site.config.rng`),
so a plan is the same for the same seed. :func:`plan_site` returns the whole plan as a
:class:`SitePlan`: what :func:`twin.site.write.simulate_site` writes, and what a live server
plays (``twin.live``: :meth:`SitePlan.unit_day`, :meth:`SitePlan.batch_state`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from twin import downstream as ds
from twin import equipment as eq
from twin.bioreactor import (
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
from twin.historian import BatchSignals, DayReadings, HistorianDay, Segment, UnitTimeline, unit_day_readings
from twin.site.config import (
    _S_DSP,
    _S_HIST,
    _S_PLAN,
    _S_RECIPE,
    AGITATOR_PM_D,
    AGITATOR_REPAIR_H,
    DRAIN_H,
    HARVEST_H,
    INOCULATE_H,
    PREPARE_H,
    PUMP_REPAIR_H,
    SAMPLE_TOD_H,
    SKID_PM_D,
    TURNAROUND_H,
    SiteConfig,
    _rng,
    vary_recipe,
)
from twin.writers import to_datetime64


@dataclass
class WorkOrderRec:
    """A CMMS work order as planned (times in hours since the simulation start)."""

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
        """The batch id: unit without the dash and a 4-digit sequence (``BR101-0003``)."""
        return f"{self.unit_id.replace('-', '')}-{self.seq:04d}"

    @property
    def lost(self) -> bool:
        """True when the batch was aborted (deviation detected)."""
        return self.status == "aborted"

    @property
    def end_culture(self) -> float:
        """End of the culture in hours since the simulation start."""
        return self.inoc + self.end_rel

    sim_end_rel: float = math.nan  # simulated culture age: end_rel, or up to the window end


@dataclass
class Failure:
    """An equipment failure (ground truth): equipment, mode, degradation start, failure and repair time."""

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


# --------------------------------------------------------------------------- planning


class _Planner:
    """Sequential event planning of one bioreactor (batches, failures, maintenance)."""

    def __init__(
        self, cfg: SiteConfig, unit_idx: int, t_end: float, wos: list[WorkOrderRec], failures: list[Failure]
    ) -> None:
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
            pump_run_h=float(rng.uniform(0.0, 1200.0)),
            pump_life_h=eq.sample_pump_life(rng),
            pump_installed=-1e9,
            pump_last_pm=-float(rng.uniform(0.0, eq.PUMP_PM_INTERVAL_D)) * 24.0,
            probe_age=int(rng.integers(0, eq.DO_INITIAL_AGE_MAX)),
            probe_installed=-1e9,
            probe_degr_start=math.nan,
            probe_pending_wo=-1,
            agit_last_pm=-float(rng.uniform(0.0, AGITATOR_PM_D)) * 24.0,
        )
        if self.st.pump_run_h >= float(eq.pump_tolerance_hours(self.st.pump_life_h)):
            self.st.pump_run_h = 0.5 * self.st.pump_life_h
        # wear of the tubing in place began before the window: estimate when it passed half life
        excess = self.st.pump_run_h - 0.5 * self.st.pump_life_h
        self.st.pump_degr_start = -excess * 1.4 if excess >= 0 else math.nan

    # -- work orders ------------------------------------------------------------
    def _wo(self, suffix: str, work_type: str, mode: str, prio: str, opened: float, closed: float, desc: str) -> int:
        eid = f"{self.unit_id}-{suffix}"
        etype = eq.EQUIPMENT_TYPES[suffix]
        self.wos.append(WorkOrderRec(eid, etype, work_type, mode, prio, opened, closed, desc))
        return len(self.wos) - 1

    def _bearing_failure(self, t_fail: float, repair_h: float, in_batch: bool) -> float:
        """Agitator bearing failure at ``t_fail``; returns the repair completion time."""
        rng = self.rng
        opened = t_fail + float(rng.uniform(0.05, 0.5))
        done = t_fail + repair_h
        desc = (
            "Agitator stopped during culture: bearing seized, DO lost; bearing replaced"
            if in_batch
            else "Agitator bearing seized at start-up; bearing replaced"
        )
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
        cycle_h = cfg.nominal.duration_days * 24.0 + 48.0
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
            self._wo(
                "AGT", "preventive", "", "medium", t - 3.0, t - 1.0, "Quarterly agitator inspection and lubrication"
            )
            st.agit_last_pm = t
        if t - st.pump_last_pm >= eq.PUMP_PM_INTERVAL_D * 24.0:
            self._wo(
                "FP", "preventive", "", "medium", t - 2.0, t - 1.5, "Feed pump head service and tubing replacement (PM)"
            )
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
        tod = inoc % 24.0
        off = (SAMPLE_TOD_H + float(rng.uniform(-0.5, 0.5)) - tod) % 24.0
        if off < 1.0:
            off += 24.0
        b.sample_offset_h = round(off / dt) * dt
        f: dict[str, float] = dict(
            agitator_fail_h=math.inf,
            agitator_down_h=math.inf,
            pump_run_h0=st.pump_run_h,
            pump_life_h=st.pump_life_h,
            pump_down_h=float(rng.uniform(*PUMP_REPAIR_H)),
            pump_wear_max=eq.PUMP_WEAR_AT_FAILURE,
            do_drift_per_day=0.0,
            do_restd_h=math.inf,
            dev_type=0.0,
            dev_onset_h=math.inf,
            dev_magnitude=0.0,
            dev_duration_h=0.0,
        )
        # process deviation
        draw = sample_deviations(rng, np.array([dur_h]), cfg.deviation_rates or DEFAULT_RATES)
        dtype = DeviationType(int(draw.dev_type[0]))
        end_rel = dur_h
        if dtype is not DeviationType.NONE:
            f.update(
                dev_type=float(int(dtype)),
                dev_onset_h=float(draw.onset_h[0]),
                dev_magnitude=float(draw.magnitude[0]),
                dev_duration_h=float(draw.duration_h[0]),
            )
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
                f.update(
                    pump_life_h=h_swap,
                    pump_wear_max=eq.PUMP_WEAR_AT_FAILURE * (h_swap / st.pump_life_h) ** 2,
                    pump_down_h=swap_h,
                )
                done = inoc + swap_on + swap_h
                h_new = float((running & (t_steps >= swap_on + swap_h)).sum() * dt)
            else:  # found at the end of the culture: changed during the turnaround
                detect = min(detect, end_rel + 0.5)
                done = inoc + end_rel + float(rng.uniform(2.0, 6.0))
                h_new = 0.0
            self._wo(
                "FP",
                "corrective",
                "flow_out_of_tolerance",
                "medium",
                inoc + detect,
                done,
                f"Feed delivered below {eq.PUMP_FLOW_TOLERANCE:.0%} of setpoint at the daily feed review "
                "(pump tubing worn); tubing replaced",
            )
            self.failures.append(
                Failure(
                    f"{self.unit_id}-FP",
                    "flow_out_of_tolerance",
                    degr if not math.isnan(degr) else t_abs - 24.0,
                    t_abs,
                    done,
                )
            )
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
                idx = self._wo(
                    "DO",
                    "corrective",
                    "probe_drift",
                    "medium",
                    inoc + detect_rel,
                    math.inf,
                    "DO probe reading deviates >15 % from blood-gas reference; re-standardised, "
                    "replace at next preparation",
                )
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
        [b.recipe for b in batches],
        params=params,
        dt_h=cfg.dt_h,
        seed=cfg.seed,
        faults=faults,
        record_every_h=cfg.dt_h,
        sample_offset_h=np.array([b.sample_offset_h for b in batches]),
        end_h=np.array([b.sim_end_rel for b in batches]),
    )


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


def _downstream(
    cfg: SiteConfig,
    batches: list[PlannedBatch],
    res: BatchResult,
    t_end: float,
    wos: list[WorkOrderRec],
    failures: list[Failure],
) -> list[_Dsp]:
    rng = _rng(cfg.seed, _S_DSP)
    index = {id(b): i for i, b in enumerate(batches)}
    harvests = sorted(
        (b for b in batches if b.status == "complete" and b.harvest_end < t_end),
        key=lambda b: (b.harvest_end, b.unit_idx),
    )
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
        wos.append(
            WorkOrderRec(
                "AKTA-01",
                "chromatography_skid",
                "preventive",
                "",
                "low",
                t,
                t + 4.0,
                "Monthly skid PM: pump seals, valve block, UV lamp check",
            )
        )
        wos.append(
            WorkOrderRec(
                "TFF-01",
                "tff_skid",
                "preventive",
                "",
                "low",
                t + 24.0,
                t + 28.0,
                "Monthly skid PM: pump, pressure transmitters, integrity tester",
            )
        )
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
            run = _CaptureRun(
                f"PA-{b.batch_id}-C{c + 1:02d}", column.column_id, column.cycles, t, t + cyc.duration_s / 3600.0, cyc
            )
            runs.append(run)
            pool_mass += cyc.pool_mass_g
            pool_vol += cyc.pool_volume_l
            t = run.end + 0.25
            if cyc.result != "pass":  # pressure alarm: column fails, replaced before the next cycle
                repaired = run.end + 8.0
                wos.append(
                    WorkOrderRec(
                        column.column_id,
                        "chromatography_column",
                        "corrective",
                        "high_backpressure",
                        "high",
                        run.end + 0.2,
                        repaired,
                        f"Protein A column pressure {cyc.max_pressure_bar:.2f} bar above limit; "
                        "column unpacked and replaced",
                    )
                )
                failures.append(
                    Failure(
                        column.column_id,
                        "high_backpressure",
                        col_degr if not math.isnan(col_degr) else run.start,
                        run.end,
                        repaired,
                    )
                )
                col_n += 1
                column = eq.ColumnHealth.new(rng, f"COL-PA-{col_n:02d}", 0)
                col_degr = math.nan
                t = repaired
        akta_free = t
        d = _Dsp(
            b, f"HCCF-{b.batch_id}", vol, titer, start, runs[-1].end, runs, pool_vol, pool_mass / max(pool_vol, 1e-9)
        )
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
            wos.append(
                WorkOrderRec(
                    membrane.membrane_id,
                    "tff_membrane",
                    "corrective",
                    "low_flux",
                    "medium",
                    d.uf_end + 0.5,
                    repaired,
                    f"TFF mean flux {uf.mean_flux_lmh:.1f} LMH below specification; cassettes replaced",
                )
            )
            degr = mem_degr if not math.isnan(mem_degr) else uf_start
            failures.append(Failure(membrane.membrane_id, "low_flux", degr, d.uf_end, repaired))
            mem_n += 1
            membrane = eq.MembraneHealth.new(rng, f"MEM-{mem_n:02d}", 0)
            mem_degr = math.nan
            tff_free = repaired
        out.append(d)
    return out


# --------------------------------------------------------------------------- the whole plan


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
        return unit_day_readings(
            days[day], self.t0, _rng(self.cfg.seed, _S_HIST, self.cfg.unit_ids().index(unit_id), day)
        )

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


def _historian_days(plan: SitePlan) -> dict[str, list[HistorianDay]]:
    """unit id -> one :class:`HistorianDay` per simulated day."""
    cfg, t_end, batches, res = plan.cfg, plan.t_end, plan.batches, plan.result
    ves = Vessel()
    signals: list[BatchSignals] = []
    for i, b in enumerate(batches):
        keep = (
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
        )
        signals.append(
            BatchSignals(
                inoc_h=b.inoc,
                t_rec=res.t_h,
                series={k: res.series[k][i] for k in keep},
                temperature_c=b.recipe.temperature_c,
                ph=b.recipe.ph,
                do_pct=b.recipe.do_pct,
                v0_l=b.recipe.working_volume_l,
                agit_min=ves.agit_min_rpm,
                air_min=ves.air_min_vvm * b.recipe.working_volume_l,
            )
        )
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
            totals[j] = (
                float(np.interp(e, sig.t_rec, sig.series["base_total"])),
                float(np.interp(e, sig.t_rec, sig.series["feed_total"])),
            )
        out[p.unit_id] = [
            HistorianDay(
                p.unit_id,
                tl,
                {i: signals[i] for i in range(len(signals))},
                d * 24.0,
                cfg.day_interval_s(d),
                t_end,
                totals,
            )
            for d in range(int(cfg.days))
        ]
    return out


def _phases(b: PlannedBatch) -> list[tuple[str, str, float, float]]:
    """(operation, phase, start, end) of a bioreactor record, truncated at an abort."""
    r = b.recipe
    inoc = b.inoc
    feed = inoc + r.feed_start_day * 24.0
    shift = inoc + r.temp_shift_day * 24.0
    end_c = b.end_culture
    out = [
        ("Vessel Preparation", "Prepare", b.prep_start, inoc - INOCULATE_H),
        ("Inoculation", "Inoculate", inoc - INOCULATE_H, inoc),
    ]
    for phase, a, z in (("Batch", inoc, feed), ("Fed-Batch", feed, shift), ("Production", shift, math.inf)):
        a2, z2 = a, min(z, end_c)
        if a2 < end_c and z2 > a2:
            out.append(("Cell Culture", phase, a2, z2))
    if b.status == "complete":
        out.append(("Harvest", "Harvest", end_c, b.harvest_end))
    return out
