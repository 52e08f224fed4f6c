"""The second simulated plant: a microbial (Pichia) fed-batch site exported like a foreign vendor.

:func:`export_microbial_plant` plans a campaign of methanol-induced *Pichia pastoris* fed-batches
on a few fermenters (``F-201``, ``F-202``, ...), injects faults, integrates all batches in one
vectorised call (:func:`twin.microbial.simulate_fermentations`) and writes what such a plant's
systems would export — nothing shaped like the CHO twin's landing zone:

* ``historian/HIST_<YYYYMMDD>.csv`` — one long CSV per **local** day (``America/Chicago``, no
  offset, a DST change inside the default period), columns ``Tagname,Timestamp,Value,Quality``,
  tags ``F-201/TIC-110.PV`` (vessel / ISA loop tag . attribute), the plant's units (°F, psig,
  SLPM, gpm, kg/h, g/h, mg/L DO), text quality ``Good``/``Bad``, continuous logging every
  ``interval_min`` (idle, preparation and harvest included), rare communication gaps;
* ``batch_list.csv`` — ``Lot,Fermenter,Product,Recipe,Inoculated,Harvested,Status``
  (``Completed`` / ``Aborted`` / ``Deviation``);
* ``deviations.csv`` — what QA recorded: ``Deviation ID,Lot,Recorded Onset,Category,
  Description,Opened`` (lags the true onset, misses some faults, includes non-process ones);
* ``lab_results.csv`` — a wide LIMS sheet, one row per sample and test;
* ``_truth/`` — ground truth no model may read: ``batches.csv`` (true fault kind, onset, end,
  whether and how it was recorded), ``trajectories.parquet`` (true titer, biomass, substrates
  at every logging step), ``samples.csv`` (true values at the sample times), ``README.md``.

Everything is seed-deterministic (streams derived from ``(seed, stream, ...)``): the same
seed gives byte-identical files. Signal catalog: :data:`SIGNALS`; documentation:
``docs/twin.md`` ("Second plant: microbial fed-batch").
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa

from twin.microbial import (
    FaultType,
    FermentationFaults,
    FermentationRecipe,
    FermentationResult,
    Fermenter,
    Phase,
    PichiaKinetics,
    do_saturation_mg_l,
    offgas_rates,
    simulate_fermentations,
)
from twin.writers import parquet_bytes

__all__ = ["SIGNALS", "TIMEZONE", "MicrobialExport", "SignalSpec", "export_microbial_plant", "plan_campaign"]

TIMEZONE = "America/Chicago"
HIST_TS_FMT = "%m/%d/%Y %H:%M:%S"  # historian: US month/day/year, 24 h, local, no offset
BATCH_TS_FMT = "%m/%d/%Y %H:%M"  # MES batch list and QA system
LIMS_TS_FMT = "%Y-%m-%d %H:%M"  # LIMS: ISO-like local time without offset
PRODUCT = "VHH-07"
RECIPE_ID = "PP-MEOH-FB-v2"
DT_MIN = 5.0  # model step [min]
DENSITY = Fermenter().density_kg_l

# random streams (keep stable: changing them changes every output)
_S_RECIPE, _S_FAULT, _S_PLAN, _S_SAMPLE, _S_HIST, _S_LAB, _S_QA = 1, 2, 3, 4, 5, 6, 7


# --------------------------------------------------------------------------- signal catalog


def _f(c: np.ndarray) -> np.ndarray:
    return np.asarray(c) * 1.8 + 32.0


@dataclass(frozen=True)
class SignalSpec:
    """One exported historian signal: ``<vessel>/<loop>`` tag, unit, kind and noise (export unit)."""

    loop: str
    unit: str
    kind: str  # process value / setpoint / flow / totaliser / rate / state
    meaning: str
    decimals: int
    noise_sd: float = 0.0
    noise_rel: float = 0.0


#: name (key into the per-vessel value arrays) -> spec; order = export order
SIGNALS: dict[str, SignalSpec] = {
    "temperature": SignalSpec("TIC-110.PV", "degF", "process value", "broth temperature", 1, 0.08),
    "temperature_sp": SignalSpec("TIC-110.SP", "degF", "setpoint", "broth temperature setpoint", 1),
    "ph": SignalSpec("AIC-120.PV", "pH", "process value", "broth pH (in-situ probe)", 2, 0.01),
    "ph_sp": SignalSpec("AIC-120.SP", "pH", "setpoint", "pH setpoint (dead band +/-0.03)", 2),
    "do": SignalSpec("AIC-130.PV", "mg/L", "process value", "dissolved oxygen (optical probe)", 2, 0.04, 0.01),
    "do_sp": SignalSpec("AIC-130.SP", "mg/L", "setpoint", "dissolved-oxygen setpoint of the cascade", 2),
    "agitation": SignalSpec("SIC-140.PV", "rpm", "process value", "agitator speed (DO cascade stage 1)", 0, 1.5),
    "air_flow": SignalSpec("FIC-150.PV", "SLPM", "flow", "sparged air, standard L/min (0 degC, 1 atm)", 1, 0.4, 0.005),
    "o2_flow": SignalSpec("FIC-151.PV", "SLPM", "flow", "sparged pure O2 (DO cascade stage 3)", 1, 0.15),
    "pressure": SignalSpec("PIC-160.PV", "psig", "process value", "headspace back-pressure (gauge)", 2, 0.04),
    "offgas_o2": SignalSpec("AI-170A.PV", "%", "process value", "exhaust O2, dry mole %", 3, 0.006),
    "offgas_co2": SignalSpec("AI-170B.PV", "%", "process value", "exhaust CO2, dry mole %", 3, 0.004),
    "our": SignalSpec("AY-170C.PV", "mmol/L/h", "rate", "oxygen uptake rate (off-gas system, inert balance)", 2),
    "cer": SignalSpec("AY-170D.PV", "mmol/L/h", "rate", "CO2 evolution rate (off-gas system, inert balance)", 2),
    "feed_flow": SignalSpec("FIC-180.PV", "kg/h", "flow", "methanol feed, Coriolis mass flow", 3, 0.003, 0.01),
    "feed_sp": SignalSpec("FIC-180.SP", "kg/h", "setpoint", "methanol feed setpoint (recipe profile)", 3),
    "feed_tank": SignalSpec(
        "WI-180.PV",
        "kg",
        "process value",
        "methanol feed tank on a balance (net; falls while feeding, 0 = no tank)",
        2,
        0.02,
    ),
    "base_flow": SignalSpec("FI-190.PV", "g/h", "flow", "25 % NH4OH addition (pH control), from its balance", 1, 2.0),
    "base_total": SignalSpec("FQI-190.PV", "kg", "totaliser", "25 % NH4OH added since preparation start", 3),
    "acid_flow": SignalSpec("FI-191.PV", "g/h", "flow", "20 % H3PO4 addition (pH control), from its balance", 1, 1.0),
    "acid_total": SignalSpec("FQI-191.PV", "kg", "totaliser", "20 % H3PO4 added since preparation start", 3),
    "weight": SignalSpec("WI-100.PV", "kg", "process value", "vessel contents (load cells, tared empty)", 1, 0.15),
    "cw_flow": SignalSpec("FI-200.PV", "gpm", "flow", "chilled water into the jacket loop, US gal/min", 2, 0.02, 0.01),
    "cw_in": SignalSpec("TI-201.PV", "degF", "process value", "chilled-water supply temperature", 1, 0.1),
    "cw_out": SignalSpec(
        "TI-202.PV", "degF", "process value", "chilled-water return (jacket loop) temperature", 1, 0.1
    ),
    "phase": SignalSpec(
        "KS-100.STEP",
        "code",
        "state",
        "sequence step: 0 idle, 1 preparation, 2 glycerol batch, 3 transition, 4 methanol induction, 5 harvest",
        0,
    ),
}
HIST_COLUMNS = ("Tagname", "Timestamp", "Value", "Quality")


def tag_name(vessel: str, name: str) -> str:
    """``F-201`` + ``temperature`` -> ``F-201/TIC-110.PV``."""
    return f"{vessel}/{SIGNALS[name].loop}"


# --------------------------------------------------------------------------- faults and QA

#: fault kind -> (anchor probabilities (inoculation, feed start), onset range h, duration range h,
#: magnitude range, probability QA records it, record lag range h, deviation category, description)
FAULT_SPECS: dict[FaultType, dict[str, Any]] = {
    FaultType.AERATION_FAILURE: dict(
        anchor1=0.7,
        onset0=(8.0, 16.0),
        onset1=(5.0, 60.0),
        duration=(4.0, 14.0),
        magnitude=(0.25, 0.6),
        p_record=0.9,
        lag=(0.2, 2.0),
        category="Utilities - Process Air",
        text="Process air compressor tripped, air flow low; backup compressor",
    ),
    FaultType.FEED_BLOCKAGE: dict(
        anchor1=1.0,
        onset1=(6.0, 70.0),
        duration=(2.0, 10.0),
        magnitude=(0.0, 0.4),
        p_record=0.7,
        lag=(1.0, 6.0),
        category="Equipment - Feed System",
        text="Methanol feed flow below setpoint, feed line partly blocked, line flushed",
    ),
    FaultType.OVERFEED: dict(
        anchor1=1.0,
        onset1=(6.0, 60.0),
        duration=(2.0, 6.0),
        magnitude=(1.3, 1.8),
        p_record=0.6,
        lag=(2.0, 10.0),
        category="Process - Feed Rate",
        text="Methanol feed above setpoint, feed controller output stuck high",
    ),
    FaultType.COOLING_FAILURE: dict(
        anchor1=1.0,
        onset1=(30.0, 75.0),
        duration=(4.0, 16.0),
        magnitude=(9.0, 16.0),
        p_record=0.9,
        lag=(0.5, 3.0),
        category="Utilities - Chilled Water",
        text="Chiller trip, chilled water supply temperature high, temperature alarm",
    ),
    FaultType.BASE_PUMP_FAILURE: dict(
        anchor1=1.0,
        onset1=(5.0, 70.0),
        duration=(2.0, 4.0),
        magnitude=(0.0, 0.0),
        p_record=0.85,
        lag=(0.5, 4.0),
        category="Equipment - pH Control",
        text="Base pump stalled, pH low alarm, pump head replaced",
    ),
    FaultType.CONTAMINATION: dict(
        anchor1=0.0,
        onset0=(4.0, 50.0),
        duration=(0.0, 0.0),
        magnitude=(-4.0, -3.0),
        p_record=1.0,
        lag=(0.0, 0.0),
        category="Contamination",
        text="Gram-negative rods in microscopy / plate count, culture contaminated",
    ),
}
CONTAM_DETECT_FRACTION = 0.02  # contaminant share of the biomass visible in microscopy
MINOR_CATEGORY = "Documentation - Sampling"
LOW_TITER_CATEGORY = "Process - Low Titer"
LOW_TITER_MG_L = 1200.0  # harvest titer alert limit: below it QA opens a deviation at harvest


@dataclass
class Campaign:
    """Per-batch inputs of a campaign (arrays over batches) and the vessel assignment."""

    recipes: dict[str, np.ndarray]
    kinetics: PichiaKinetics
    fermenter: Fermenter
    faults: FermentationFaults
    vessel_idx: np.ndarray
    sample_times_h: np.ndarray
    missed: np.ndarray  # (n, k) sample slots skipped
    lot_factor: np.ndarray
    info: dict[str, np.ndarray] = field(default_factory=dict)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *keys])


def plan_campaign(n_batches: int, n_vessels: int, seed: int, fault_fraction: float = 1.0 / 3.0) -> Campaign:
    """Recipe variation, biological spread, vessel hardware, faults and sample schedules per batch."""
    n = int(n_batches)
    rng = _rng(seed, _S_RECIPE)
    vessel_idx = np.arange(n) % n_vessels
    nom = FermentationRecipe()
    recipes = {
        "initial_mass_kg": np.round(rng.normal(nom.initial_mass_kg, 2.0, n), 1),
        "glycerol_g_l": np.round(rng.normal(nom.glycerol_g_l, 1.5, n), 1),
        "seed_dcw_g_l": np.round(nom.seed_dcw_g_l * rng.lognormal(0.0, 0.3, n), 3),
        "temp_induction_c": np.round(2.0 * rng.uniform(23.8, 26.7, n)) / 2.0,
        "ph_initial": np.round(rng.normal(nom.ph_initial, 0.05, n), 2),
        "hold_h": rng.uniform(0.5, 6.0, n),
        "feed_f0_g_kg_h": np.round(rng.normal(nom.feed_f0_g_kg_h, 0.1, n), 2),
        "feed_mu_set": np.round(rng.uniform(0.017, 0.029, n), 4),
        "feed_fmax_g_kg_h": np.round(rng.uniform(5.8, 8.2, n), 2),
        "induction_h": np.round(rng.uniform(78.0, 110.0, n)),
        "feed_tank_kg": np.round(rng.uniform(95.0, 115.0, n), 1),
    }
    lot = rng.normal(1.0, 0.03, n)  # raw-material (PTM1 trace salts) lot: productivity, not visible online
    mu_meoh = rng.normal(1.0, 0.05, n)
    kin = PichiaKinetics(
        mu_max_gly=PichiaKinetics.mu_max_gly * rng.normal(1.0, 0.04, n),
        mu_max_meoh=PichiaKinetics.mu_max_meoh * mu_meoh,
        y_meoh=PichiaKinetics.y_meoh * rng.normal(1.0, 0.03, n),
        k_end=PichiaKinetics.k_end * rng.normal(1.0, 0.1, n),
        ind_tau_h=PichiaKinetics.ind_tau_h * rng.lognormal(0.0, 0.15, n),
        alpha_p=PichiaKinetics.alpha_p * lot,
        beta_p=PichiaKinetics.beta_p * lot,
    )
    # vessel hardware: F-201 reference, F-202 slightly better mass transfer, F-203 older, smaller jacket
    kla_v = np.array([1.0, 1.05, 0.92, 1.0, 0.97, 1.03])[vessel_idx % 6]
    ua_v = np.array([1.0, 1.0, 0.88, 1.05, 0.95, 1.0])[vessel_idx % 6]
    # one chilled-water header for the site: supply temperature creeps up through the campaign
    # (batches are numbered in time order) with day-to-day scatter
    cw = np.round(7.5 + 1.5 * np.arange(n) / max(n - 1, 1) + rng.normal(0.0, 0.2, n), 2)
    ferm = Fermenter(kla_ref_per_h=Fermenter.kla_ref_per_h * kla_v, ua_kw_k=Fermenter.ua_kw_k * ua_v, cw_supply_c=cw)

    # faults: a balanced mix of the kinds over ~fault_fraction of the batches
    frng = _rng(seed, _S_FAULT)
    faults = FermentationFaults.none(n)
    n_faulty = int(round(fault_fraction * n))
    idx = np.sort(frng.choice(n, size=n_faulty, replace=False)) if n_faulty else np.zeros(0, dtype=np.int64)
    kinds = list(FAULT_SPECS)
    order = frng.permutation(len(kinds))
    for j, i in enumerate(idx):
        ft = kinds[int(order[j % len(kinds)])]
        spec = FAULT_SPECS[ft]
        anchor = int(frng.uniform() < spec["anchor1"])
        onset = frng.uniform(*(spec["onset1"] if anchor else spec["onset0"]))
        mag = frng.uniform(*spec["magnitude"])
        faults.fault_type[i] = int(ft)
        faults.anchor[i] = anchor
        faults.onset_h[i] = round(onset * 12.0) / 12.0  # on the 5-min step
        faults.duration_h[i] = round(frng.uniform(*spec["duration"]) * 12.0) / 12.0
        faults.magnitude[i] = 10.0**mag if ft == FaultType.CONTAMINATION else mag

    # in-process samples every 8 h (+-15 min) from 0.5 h; ~5 % missed
    srng = _rng(seed, _S_SAMPLE)
    k = 18
    base = 0.5 + 8.0 * np.arange(k)[None, :] + srng.uniform(-0.25, 0.25, (n, k))
    base[:, 0] = 0.5
    times = np.round(base * 12.0) / 12.0
    missed = srng.uniform(size=(n, k)) < 0.05
    missed[:, 0] = False
    sample_times = np.where(missed, np.inf, times)
    return Campaign(
        recipes=recipes,
        kinetics=kin,
        fermenter=ferm,
        faults=faults,
        vessel_idx=vessel_idx,
        sample_times_h=sample_times,
        missed=missed,
        lot_factor=lot,
        info={"mu_meoh_scale": mu_meoh},
    )


# --------------------------------------------------------------------------- export


@dataclass
class MicrobialExport:
    """What :func:`export_microbial_plant` wrote (counts and timings)."""

    out: str
    vessels: list[str]
    batches: int
    faulty_batches: int
    fault_kinds: dict[str, int]
    recorded_deviations: int
    historian_rows: int
    historian_files: int
    lab_rows: int
    first_local_day: str
    last_local_day: str
    simulate_seconds: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data."""
        return dict(vars(self))


def export_microbial_plant(
    out_dir: str | Path,
    n_batches: int = 60,
    seed: int = 21,
    *,
    n_vessels: int = 3,
    start: str = "2026-01-12",
    interval_min: int = 10,
    fault_fraction: float = 1.0 / 3.0,
    progress: Callable[[str], None] | None = None,
) -> MicrobialExport:
    """Simulate a Pichia fed-batch campaign and write it as a foreign plant's exports into ``out_dir``.

    Parameters
    ----------
    out_dir: export folder (replaced if it exists).
    n_batches: batches in the campaign, spread round-robin over ``n_vessels`` fermenters.
    seed: master seed; the same seed gives byte-identical files.
    start: first **local** day (America/Chicago) of the historian export, ``YYYY-MM-DD``; the
        default period (≈ 4.5 months from mid-January) contains the March DST change.
    interval_min: historian logging interval (a multiple of 5 minutes).
    fault_fraction: share of batches with a fault (balanced over the six fault kinds).
    progress: optional callback receiving short progress messages.
    """
    t_start = time.perf_counter()
    say = progress or (lambda msg: None)
    if interval_min % 5 or interval_min <= 0:
        raise ValueError("interval_min must be a positive multiple of 5")
    rec_every = int(interval_min // DT_MIN)
    vessels = [f"F-{201 + i}" for i in range(n_vessels)]
    out = Path(out_dir)
    camp = plan_campaign(n_batches, n_vessels, seed, fault_fraction)
    say(f"simulating {n_batches} batches")
    res = simulate_fermentations(
        camp.recipes,
        camp.kinetics,
        camp.fermenter,
        camp.faults,
        sample_times_h=camp.sample_times_h,
        dt_h=DT_MIN / 60.0,
        record_every=rec_every,
    )
    t_sim = time.perf_counter() - t_start
    n = res.n_batches
    step_h = interval_min / 60.0

    # ------------------------------------------------------------ contamination: QA finds it in a sample
    end_rec = np.round(res.events["end_h"] / step_h).astype(np.int64)  # records of the culture
    qrng = _rng(seed, _S_QA)
    st = res.samples
    frac = np.where(st["taken"], st["x_contaminant"] / np.maximum(st["dcw"], 1e-9), 0.0)
    detect_t = np.full(n, np.inf)
    detect_result = np.full(n, np.inf)
    aborted = np.zeros(n, dtype=bool)
    for i in np.where(camp.faults.fault_type == FaultType.CONTAMINATION)[0]:
        hit = np.where(frac[i] > CONTAM_DETECT_FRACTION)[0]
        if hit.size:
            detect_t[i] = st["t_h"][i, hit[0]]
            detect_result[i] = detect_t[i] + qrng.uniform(6.0, 20.0)  # microscopy confirmed by plating
            stop = detect_result[i] + qrng.uniform(2.0, 6.0)
            if stop < res.events["end_h"][i]:
                aborted[i] = True
                end_rec[i] = int(math.ceil(stop / step_h))
    end_h = end_rec * step_h

    # ------------------------------------------------------------ calendar (grid indices, UTC)
    tz = ZoneInfo(TIMEZONE)
    day0 = dt.date.fromisoformat(start)
    t0 = dt.datetime.combine(day0, dt.time(0, 0), tzinfo=tz).astimezone(dt.UTC)
    per_day = int(round(24 * 60 / interval_min))
    prng = _rng(seed, _S_PLAN)
    prep_start = np.zeros(n, dtype=np.int64)
    inoc = np.zeros(n, dtype=np.int64)
    harvest_end = np.zeros(n, dtype=np.int64)
    for v in range(n_vessels):
        g = int(v * per_day * 1.6 + prng.integers(0, per_day // 4))
        for i in np.where(camp.vessel_idx == v)[0]:
            prep_len = int(prng.integers(int(10 * 60 / interval_min), int(14 * 60 / interval_min)))
            prep_start[i] = g
            inoc[i] = g + prep_len
            harvest_end[i] = (
                inoc[i] + end_rec[i] + int(prng.integers(int(2 * 60 / interval_min), int(3 * 60 / interval_min) + 1))
            )
            g = int(harvest_end[i] + prng.integers(int(8 * 60 / interval_min), int(30 * 60 / interval_min)))
    last_day = (t0 + dt.timedelta(minutes=interval_min * int(harvest_end.max()))).astimezone(tz).date()
    t_end_utc = dt.datetime.combine(last_day + dt.timedelta(days=2), dt.time(0, 0), tzinfo=tz).astimezone(dt.UTC)
    n_grid = int((t_end_utc - t0).total_seconds() // (interval_min * 60))
    grid_us = np.int64(t0.timestamp() * 1e6) + np.arange(n_grid, dtype=np.int64) * np.int64(interval_min * 60e6)
    grid_ts = pl.Series("ts", grid_us).cast(pl.Datetime("us", "UTC"))
    local = grid_ts.dt.convert_time_zone(TIMEZONE)
    grid_local_str = local.dt.strftime(HIST_TS_FMT).to_numpy()
    grid_day = local.dt.date().to_numpy()

    lots = _lot_numbers(inoc, tz, t0, interval_min)
    say("building historian")
    hist_rows, hist_files = _write_historian(
        out,
        res,
        camp,
        vessels,
        lots,
        prep_start,
        inoc,
        end_rec,
        harvest_end,
        n_grid,
        grid_local_str,
        grid_day,
        seed,
        interval_min,
        aborted,
    )
    say("writing batch list, deviations, lab sheet, truth")

    def utc(idx_or_h: Any, base: np.ndarray | None = None) -> list[str | None]:
        """Grid index (+ hours) -> ISO UTC string."""
        vals = np.asarray(idx_or_h, dtype=float)
        if base is not None:
            vals = base * interval_min / 60.0 + vals
        else:
            vals = vals * interval_min / 60.0
        return [
            (t0 + dt.timedelta(hours=float(x))).strftime("%Y-%m-%dT%H:%M:%SZ") if np.isfinite(x) else None for x in vals
        ]

    def local_str(hours_from_t0: float, fmt: str) -> str:
        return (t0 + dt.timedelta(hours=float(hours_from_t0))).astimezone(tz).strftime(fmt)

    inoc_h = inoc * step_h  # hours since t0
    # ------------------------------------------------------------ deviations (what QA recorded)
    final = np.clip(end_rec, 0, res.t_h.shape[0] - 1)
    final_titer = res["titer"][np.arange(n), final]
    devs, rec_info = _deviations(camp, res, lots, inoc_h, detect_t, end_h, final_titer, local_str, qrng)
    status = np.where(aborted, "Aborted", np.where(rec_info["any_recorded"], "Deviation", "Completed"))

    # ------------------------------------------------------------ batch list
    out.mkdir(parents=True, exist_ok=True)
    bl = (
        pl.DataFrame(
            {
                "Lot": lots,
                "Fermenter": [vessels[v] for v in camp.vessel_idx],
                "Product": [PRODUCT] * n,
                "Recipe": [RECIPE_ID] * n,
                "Inoculated": [local_str(x, BATCH_TS_FMT) for x in inoc_h],
                "Harvested": [local_str(x, BATCH_TS_FMT) for x in inoc_h + end_h],
                "Status": status.tolist(),
            }
        )
        .with_columns(pl.Series("_o", inoc_h))
        .sort("_o")
        .drop("_o")
    )
    bl.write_csv(out / "batch_list.csv")
    pl.DataFrame(
        devs,
        schema={c: pl.Utf8 for c in ("Deviation ID", "Lot", "Recorded Onset", "Category", "Description", "Opened")},
    ).write_csv(out / "deviations.csv")

    # ------------------------------------------------------------ lab sheet
    lab, samples_truth = _lab_sheet(res, camp, lots, inoc_h, end_h, end_rec, local_str, seed)
    lab.write_csv(out / "lab_results.csv")

    # ------------------------------------------------------------ truth
    truth = out / "_truth"
    truth.mkdir(exist_ok=True)
    ft = camp.faults.fault_type
    onset = res.events["fault_onset_h"]
    onset = np.where(onset < end_h, onset, np.inf)
    f_end = np.minimum(res.events["fault_end_h"], end_h)
    rows = np.arange(n)
    tb = (
        pl.DataFrame(
            {
                "lot": lots,
                "vessel": [vessels[v] for v in camp.vessel_idx],
                "prep_start_utc": utc(prep_start),
                "inoculation_utc": utc(inoc),
                "end_utc": utc(inoc + end_rec),
                "harvest_end_utc": utc(harvest_end),
                "status": status.tolist(),
                "aborted": aborted.astype(int),
                "faulty": (np.isfinite(onset) & (ft > 0)).astype(int),
                "fault_type": [
                    FaultType(int(x)).label if np.isfinite(o) else "" for x, o in zip(ft, onset, strict=True)
                ],
                "fault_onset_age_h": np.round(onset, 4),
                "fault_onset_utc": utc(onset, inoc),
                "fault_end_utc": utc(np.where(np.isfinite(onset), f_end, np.inf), inoc),
                "fault_magnitude": np.where(np.isfinite(onset), camp.faults.magnitude, np.nan),
                "fault_recorded": rec_info["fault_recorded"].astype(int),
                "deviation_id": rec_info["fault_dev_id"],
                "recorded_onset_lag_h": np.round(rec_info["lag_h"], 3),
                "glycerol_out_age_h": np.round(res.events["glycerol_out_h"], 4),
                "feed_start_age_h": np.round(res.events["feed_start_h"], 4),
                "feed_start_utc": utc(res.events["feed_start_h"], inoc),
                "final_titer_mg_l": np.round(res["titer"][rows, final], 3),
                "final_dcw_g_l": np.round(res["dcw"][rows, final], 3),
                **{
                    k: camp.recipes[k]
                    for k in (
                        "initial_mass_kg",
                        "glycerol_g_l",
                        "seed_dcw_g_l",
                        "temp_induction_c",
                        "feed_mu_set",
                        "feed_fmax_g_kg_h",
                        "induction_h",
                    )
                },
                "hold_h": np.round(camp.recipes["hold_h"], 4),
                "lot_factor_productivity": np.round(camp.lot_factor, 4),
                "mu_meoh_scale": np.round(camp.info["mu_meoh_scale"], 4),
            }
        )
        .with_columns(pl.Series("_o", inoc_h))
        .sort("_o")
        .drop("_o")
    )
    tb = tb.with_columns(
        pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c)
        for c, t in tb.schema.items()
        if t == pl.Float64
    )
    tb.write_csv(truth / "batches.csv")
    samples_truth.write_csv(truth / "samples.csv")
    (truth / "trajectories.parquet").write_bytes(parquet_bytes(_trajectories(res, lots, inoc, end_rec, grid_us)))
    (truth / "README.md").write_text(TRUTH_README)

    kinds: dict[str, int] = {}
    for x, o in zip(ft, onset, strict=True):
        if np.isfinite(o) and x > 0:
            kinds[FaultType(int(x)).label] = kinds.get(FaultType(int(x)).label, 0) + 1
    return MicrobialExport(
        out=str(out),
        vessels=vessels,
        batches=n,
        faulty_batches=int(sum(kinds.values())),
        fault_kinds=kinds,
        recorded_deviations=len(devs["Deviation ID"]),
        historian_rows=hist_rows,
        historian_files=hist_files,
        lab_rows=lab.height,
        first_local_day=str(grid_day[0]),
        last_local_day=str(grid_day[-1]),
        simulate_seconds=round(t_sim, 2),
        seconds=round(time.perf_counter() - t_start, 2),
    )


TRUTH_README = """# Ground truth of the simulated microbial plant (never an input to a model)

* `batches.csv` — one row per batch: vessel, UTC times (prep start, inoculation, culture end,
  harvest end), status as exported, **true** fault (`fault_type`, `fault_onset_age_h` = hours
  after inoculation, `fault_onset_utc`, `fault_end_utc`, `fault_magnitude`), and how QA recorded
  it: `fault_recorded`, `deviation_id`, `recorded_onset_lag_h` (recorded onset − true onset).
  `faulty` = 1 for batches with a process/equipment fault (whether recorded or not).
  QA's deviation list (`../deviations.csv`) LAGS the true onset (minutes to hours; a
  contamination is only seen in a later sample), MISSES some faults (feed-rate errors and short
  blockages often go unnoticed) and CONTAINS deviations that are not process faults
  (category `Documentation - Sampling`: a missed in-process sample). A fault QA did not record
  may still leave a `Process - Low Titer` deviation at harvest (harvest titer < 1200 mg/L; its
  recorded onset is the harvest, not the fault). A `Deviation` status in the batch list
  therefore is not the same as `faulty`.
  Fault magnitudes: aeration_failure = air-supply cap as a fraction of the minimum air flow;
  feed_blockage = delivered/commanded methanol flow; overfeed = setpoint multiplier;
  cooling_failure = chilled-water supply temperature rise (degC); base_pump_failure = none;
  contamination = contaminant inoculum as a fraction of the yeast biomass.
* `trajectories.parquet` — every logging step of every culture (inoculation to culture end):
  `lot`, `timestamp_utc`, `culture_age_h`, `phase`, true `titer_mg_l`, `dcw_g_l`,
  `x_contaminant_g_l`, `glycerol_g_l`, `methanol_g_l`, `ethanol_g_l`, `do_mg_l`, `ph`,
  `temperature_c`, `our_mmol_l_h`, `cer_mmol_l_h` (noise-free), `fault_active`.
* `samples.csv` — the true composition at every in-process sample that was taken.

Exported timestamps are America/Chicago wall-clock time without an offset; the UTC times here
convert to them with the IANA zone rules (the fall-back hour is ambiguous in the exports).
"""


def _lot_numbers(inoc: np.ndarray, tz: ZoneInfo, t0: dt.datetime, interval_min: int) -> list[str]:
    """Lots numbered by inoculation order within each local year: ``PX26-0007``."""
    order = np.argsort(inoc, kind="stable")
    lots = [""] * len(inoc)
    seq: dict[int, int] = {}
    for i in order:
        year = (t0 + dt.timedelta(minutes=interval_min * int(inoc[i]))).astimezone(tz).year
        seq[year] = seq.get(year, 0) + 1
        lots[i] = f"PX{year % 100:02d}-{seq[year]:04d}"
    return lots


def _deviations(
    camp: Campaign,
    res: FermentationResult,
    lots: list[str],
    inoc_h: np.ndarray,
    detect_t: np.ndarray,
    end_h: np.ndarray,
    final_titer: np.ndarray,
    local_str: Callable[[float, str], str],
    rng: np.random.Generator,
) -> tuple[dict[str, list[str]], dict[str, np.ndarray]]:
    """QA's deviation records: lagging, incomplete, plus non-process (missed sample) and
    consequence-only (low harvest titer) deviations."""
    n = res.n_batches
    onset = res.events["fault_onset_h"]
    entries: list[tuple[float, str, str, str, str, float]] = []  # (abs time, lot, category, text, ...)
    fault_recorded = np.zeros(n, dtype=bool)
    any_recorded = np.zeros(n, dtype=bool)
    lag = np.full(n, np.nan)
    fault_key: dict[int, float] = {}
    for i in range(n):
        ft = FaultType(int(camp.faults.fault_type[i]))
        draw = rng.uniform(size=4)
        if ft != FaultType.NONE and np.isfinite(onset[i]) and onset[i] < end_h[i]:
            spec = FAULT_SPECS[ft]
            if ft == FaultType.CONTAMINATION:
                seen = detect_t[i] if np.isfinite(detect_t[i]) else end_h[i]  # else: harvest bioburden test
                rec_t = seen
            else:
                rec_t = onset[i] + spec["lag"][0] + draw[1] * (spec["lag"][1] - spec["lag"][0])
            if draw[0] < spec["p_record"] and rec_t <= end_h[i] + 24.0:
                rec_t = round(rec_t * 12.0) / 12.0
                fault_recorded[i] = True
                lag[i] = rec_t - onset[i]
                fault_key[i] = inoc_h[i] + rec_t
                entries.append(
                    (inoc_h[i] + rec_t, lots[i], spec["category"], spec["text"], 2.0 + 28.0 * draw[2], float(i))
                )
        if final_titer[i] < LOW_TITER_MG_L and not fault_recorded[i]:  # found when the harvest titer is in
            entries.append(
                (
                    inoc_h[i] + end_h[i],
                    lots[i],
                    LOW_TITER_CATEGORY,
                    f"Harvest titer below the alert limit of {LOW_TITER_MG_L:.0f} mg/L, investigation opened",
                    30.0 + 30.0 * draw[3],
                    float(i),
                )
            )
        # a missed in-process sample is sometimes written up
        base_t = 0.5 + 8.0 * np.arange(camp.missed.shape[1])
        missed = np.where(camp.missed[i] & (base_t < end_h[i]))[0]
        base_t = base_t[missed]
        for j, t_m in zip(missed, base_t, strict=True):
            if rng.uniform() < 0.3 and t_m < end_h[i]:
                entries.append(
                    (
                        inoc_h[i] + t_m + 0.5,
                        lots[i],
                        MINOR_CATEGORY,
                        f"In-process sample {j + 1} not taken at the scheduled time",
                        4.0 + 20.0 * draw[3],
                        float(i),
                    )
                )
    entries.sort(key=lambda e: (e[0], e[1]))
    cols: dict[str, list[str]] = {
        c: [] for c in ("Deviation ID", "Lot", "Recorded Onset", "Category", "Description", "Opened")
    }
    dev_id = np.full(n, "", dtype=object)
    year_seq: dict[str, int] = {}
    for t_abs, lot, cat, text, open_lag, i in entries:
        yy = local_str(t_abs, "%y")
        year_seq[yy] = year_seq.get(yy, 0) + 1
        did = f"DEV-{yy}-{year_seq[yy]:04d}"
        cols["Deviation ID"].append(did)
        cols["Lot"].append(lot)
        cols["Recorded Onset"].append(local_str(t_abs, BATCH_TS_FMT))
        cols["Category"].append(cat)
        cols["Description"].append(text)
        cols["Opened"].append(local_str(t_abs + open_lag, BATCH_TS_FMT))
        any_recorded[int(i)] = True
        if cat != MINOR_CATEGORY and fault_key.get(int(i)) == t_abs:
            dev_id[int(i)] = did
    return cols, {
        "fault_recorded": fault_recorded,
        "any_recorded": any_recorded,
        "lag_h": lag,
        "fault_dev_id": dev_id.astype(str).tolist(),
    }


# --------------------------------------------------------------------------- historian


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """Unit-variance AR(1) noise along the last axis."""
    e = rng.normal(size=shape)
    out = np.empty(shape)
    out[..., 0] = e[..., 0]
    c = math.sqrt(1.0 - phi * phi)
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + c * e[..., t]
    return out


def _culture_values(res: FermentationResult, i: int, n_rec: int) -> dict[str, np.ndarray]:
    """Noise-free signals of batch ``i`` for its first ``n_rec`` records, in the plant's units."""
    s = {k: v[i, :n_rec] for k, v in res.series.items()}
    return {
        "temperature": _f(s["temperature"]),
        "temperature_sp": _f(s["temperature_sp"]),
        "ph": s["ph"],
        "ph_sp": s["ph_sp"],
        "do": s["do"],
        "do_sp": s["do_sp"],
        "agitation": s["agitation"],
        "air_flow": s["air_flow"],
        "o2_flow": s["o2_flow"],
        "pressure": s["pressure"] * 14.5038,
        "offgas_o2": s["offgas_o2"],
        "offgas_co2": s["offgas_co2"],
        "feed_flow": s["feed_flow"],
        "feed_sp": s["feed_sp"],
        "feed_tank": s["feed_tank"],
        "base_flow": s["base_flow"],
        "base_total": s["base_total"],
        "acid_flow": s["acid_flow"],
        "acid_total": s["acid_total"],
        "weight": s["mass"],
        "cw_flow": s["cw_flow"] / 3.785411784,
        "cw_in": _f(s["cw_in"]),
        "cw_out": _f(s["cw_out"]),
        "phase": s["phase"],
    }


def _write_historian(
    out: Path,
    res: FermentationResult,
    camp: Campaign,
    vessels: list[str],
    lots: list[str],
    prep_start: np.ndarray,
    inoc: np.ndarray,
    end_rec: np.ndarray,
    harvest_end: np.ndarray,
    n_grid: int,
    grid_local_str: np.ndarray,
    grid_day: np.ndarray,
    seed: int,
    interval_min: int,
    aborted: np.ndarray,
) -> tuple[int, int]:
    """Per-vessel signal arrays over the whole grid (idle, preparation, culture, harvest), noise,
    bad-quality readings and gaps; one CSV per local day."""
    names = list(SIGNALS)
    col = {nm: j for j, nm in enumerate(names)}
    per_h = 60.0 / interval_min
    frames = []
    for v, vessel in enumerate(vessels):
        rng = _rng(seed, _S_HIST, v)
        t_h = np.arange(n_grid) / per_h
        vals = np.zeros((len(names), n_grid))
        # ---- idle defaults (empty, tared vessel; probes in air / storage)
        amb = 21.0 + 1.5 * np.sin(2 * np.pi * (t_h - 9.0) / 24.0)
        cw_sup = float(np.mean(camp.fermenter.cw_supply_c))
        vals[col["temperature"]] = _f(amb)
        vals[col["temperature_sp"]] = _f(25.0)
        vals[col["ph"]] = 7.0
        vals[col["ph_sp"]] = 5.0
        vals[col["do"]] = do_saturation_mg_l(amb, 1.01325)
        vals[col["do_sp"]] = 2.0
        vals[col["offgas_o2"]] = 20.95
        vals[col["offgas_co2"]] = 0.04
        vals[col["cw_in"]] = _f(cw_sup)
        vals[col["cw_out"]] = _f(amb)
        phase = np.zeros(n_grid)
        totals = {"base_total": 0.0, "acid_total": 0.0}
        for i in np.where(camp.vessel_idx == v)[0][np.argsort(prep_start[camp.vessel_idx == v], kind="stable")]:
            p0, i0, n_rec, h1 = int(prep_start[i]), int(inoc[i]), int(end_rec[i]), int(harvest_end[i])
            e0 = i0 + n_rec
            rec = {k: float(res.recipes[k][i]) for k in res.recipes}
            m0 = rec["initial_mass_kg"]
            # hold totalisers of the previous batch until this preparation
            vals[col["base_total"], p0:] = 0.0
            vals[col["acid_total"], p0:] = 0.0
            # ---- preparation: fill + SIP + cool/condition
            L = i0 - p0
            a, b = p0 + int(0.3 * L), p0 + int(0.55 * L)
            phase[p0:i0] = Phase.PREPARATION
            fill = np.clip((np.arange(p0, i0) - p0) / max(a - p0, 1), 0.0, 1.0)
            vals[col["weight"], p0:i0] = 0.95 * m0 * fill
            vals[col["temperature"], a:b] = _f(121.0)
            vals[col["temperature_sp"], a:b] = _f(121.0)
            vals[col["pressure"], a:b] = 15.2
            vals[col["agitation"], a:b] = 100.0
            cool = np.exp(-(np.arange(b, i0) - b) / (1.5 * per_h))
            vals[col["temperature"], b:i0] = _f(rec["temp_growth_c"] + (121.0 - rec["temp_growth_c"]) * cool)
            vals[col["temperature_sp"], b:i0] = _f(rec["temp_growth_c"])
            vals[col["cw_flow"], b:i0] = np.where(cool > 0.02, 6.6, 0.6)
            vals[col["cw_out"], b:i0] = _f(
                cw_sup + (rec["temp_growth_c"] + (121.0 - rec["temp_growth_c"]) * cool - cw_sup) * 0.5
            )
            vals[col["agitation"], b:i0] = 300.0
            vals[col["air_flow"], b:i0] = 60.0
            vals[col["pressure"], b:i0] = 0.3 * 14.5038
            vals[col["ph"], a:i0] = rec["ph_initial"]
            vals[col["ph_sp"], p0:i0] = rec["ph_sp"]
            vals[col["do"], b:i0] = do_saturation_mg_l(rec["temp_growth_c"], 1.01325 + 0.3)
            vals[col["feed_tank"], b:i0] = rec["feed_tank_kg"]
            # ---- culture
            cv = _culture_values(res, i, n_rec)
            for nm, arr in cv.items():
                vals[col[nm], i0:e0] = arr
            phase[i0:e0] = cv["phase"]
            # ---- harvest (drain) and idle afterwards
            last = {nm: arr[-1] for nm, arr in cv.items()}
            end_w = float(res["mass"][i, n_rec])
            phase[e0:h1] = Phase.HARVEST
            drain = np.linspace(end_w, 0.0, h1 - e0 + 1)[1:]
            vals[col["weight"], e0:h1] = drain
            for nm in ("temperature", "temperature_sp", "ph", "ph_sp", "do_sp", "cw_in", "feed_tank"):
                vals[col[nm], e0:h1] = last[nm]
            vals[col["feed_tank"], e0:h1] = float(res["feed_tank"][i, n_rec])
            vals[col["do"], e0:h1] = np.minimum(last["do"] + np.linspace(0, 4.0, h1 - e0), 8.0)
            vals[col["agitation"], e0:h1] = 150.0
            vals[col["pressure"], e0:h1] = 0.0
            vals[col["cw_flow"], e0:h1] = 1.0
            vals[col["cw_out"], e0:h1] = last["temperature"] - 3.0
            for nm in ("base_total", "acid_total"):
                totals[nm] = float(res[nm][i, n_rec])
                vals[col[nm], e0:] = totals[nm]
            vals[col["offgas_o2"], e0:h1] = 20.95
            vals[col["offgas_co2"], e0:h1] = 0.04
            # idle after the harvest: probes out, vessel empty (defaults), totals held
            for nm in ("air_flow", "o2_flow", "feed_flow", "feed_sp", "base_flow", "acid_flow", "our", "cer"):
                vals[col[nm], e0:h1] = 0.0
        vals[col["phase"]] = phase
        # ---- noise (export units), analyser OUR/CER from the noisy readings
        noisy = vals.copy()
        for nm, spec in SIGNALS.items():
            j = col[nm]
            if spec.noise_sd == 0.0 and spec.noise_rel == 0.0:
                continue
            sd = spec.noise_sd + spec.noise_rel * np.abs(vals[j])
            e = _ar1(rng, (n_grid,), 0.6) if nm in ("temperature", "ph", "cw_out") else rng.normal(size=n_grid)
            noisy[j] = vals[j] + sd * e
        for nm in (
            "agitation",
            "air_flow",
            "o2_flow",
            "feed_flow",
            "base_flow",
            "acid_flow",
            "cw_flow",
            "feed_tank",
            "weight",
        ):
            j = col[nm]
            noisy[j] = np.where(vals[j] == 0.0, np.abs(noisy[j] - vals[j]) * (nm in ("weight", "feed_tank")), noisy[j])
            noisy[j] = np.maximum(noisy[j], 0.0) if nm not in ("weight", "feed_tank") else noisy[j]
        flowing = (vals[col["air_flow"]] > 0.0) & (phase >= Phase.GLYCEROL_BATCH) & (phase <= Phase.INDUCTION)
        vol = np.maximum(noisy[col["weight"]], 1.0) / DENSITY
        our, cer = offgas_rates(
            noisy[col["air_flow"]],
            noisy[col["o2_flow"]],
            noisy[col["offgas_o2"]] / 100.0,
            noisy[col["offgas_co2"]] / 100.0,
            vol,
        )
        noisy[col["our"]] = np.where(flowing, our, 0.0)
        noisy[col["cer"]] = np.where(flowing, cer, 0.0)
        for nm, spec in SIGNALS.items():
            noisy[col[nm]] = np.round(noisy[col[nm]], spec.decimals) + 0.0
        # ---- bad readings (value frozen, quality Bad) and communication gaps (no rows)
        bad = rng.uniform(size=noisy.shape) < 0.0015
        bad[:, 0] = False
        for j in range(len(names)):
            idx = np.where(bad[j])[0]
            noisy[j, idx] = noisy[j, idx - 1]
        keep = np.ones(n_grid, dtype=bool)
        for _ in range(int(rng.integers(1, 4))):
            g0 = int(rng.integers(0, n_grid - 12))
            keep[g0 : g0 + int(rng.integers(2, 10))] = False
        ti = np.where(keep)[0]
        nt = ti.size
        frames.append(
            pl.DataFrame(
                {
                    "Tagname": np.repeat(np.array([tag_name(vessel, nm) for nm in names]), nt),
                    "_t": np.tile(ti, len(names)),
                    "Value": noisy[:, ti].reshape(-1),
                    "Quality": np.where(bad[:, ti].reshape(-1), "Bad", "Good"),
                }
            )
        )
    hist = pl.concat(frames).sort("Tagname", "_t")
    hist = hist.with_columns(
        pl.Series("Timestamp", grid_local_str).gather(hist["_t"]), pl.Series("_day", grid_day).gather(hist["_t"])
    )
    hdir = out / "historian"
    if out.exists():
        shutil.rmtree(out)
    hdir.mkdir(parents=True)
    n_files = 0
    for (day,), g in hist.group_by("_day", maintain_order=False):
        g.sort("Tagname", "_t").select(*HIST_COLUMNS).write_csv(hdir / f"HIST_{day.strftime('%Y%m%d')}.csv")
        n_files += 1
    return hist.height, n_files


# --------------------------------------------------------------------------- lab sheet and truth


def _lab_sheet(
    res: FermentationResult,
    camp: Campaign,
    lots: list[str],
    inoc_h: np.ndarray,
    end_h: np.ndarray,
    end_rec: np.ndarray,
    local_str: Callable[[float, str], str],
    seed: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Wide LIMS sheet: one row per sample and test (Biomass, Substrates, Titer); truth at the samples."""
    rng = _rng(seed, _S_LAB)
    st = res.samples
    n, k = st["t_h"].shape
    rows: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    cols = ("OD600", "DCW (g/L)", "Glycerol (g/L)", "Methanol (g/L)", "Ethanol (g/L)", "Titer (mg/L)")
    for i in range(n):
        ts = list(st["t_h"][i])
        vals = {key: list(st[key][i]) for key in ("dcw", "glycerol", "methanol", "ethanol", "titer", "x_contaminant")}
        taken = list(st["taken"][i] & (st["t_h"][i] < end_h[i]))
        # harvest sample at the end of the culture
        j_end = int(end_rec[i])
        ts.append(end_h[i])
        for key in vals:
            vals[key].append(float(res[key][i, j_end]))
        taken.append(True)
        feed_start = res.events["feed_start_h"][i]
        for j, t in enumerate(ts):
            if not taken[j]:
                continue
            sid = f"{lots[i]}-{'H' if j == len(ts) - 1 else f'S{j + 1:02d}'}"
            t_abs = inoc_h[i] + t
            sampled = local_str(t_abs, LIMS_TS_FMT)
            dcw, gly, meoh, etoh, titer = (vals[key][j] for key in ("dcw", "glycerol", "methanol", "ethanol", "titer"))
            truth.append(
                {
                    "sample_id": sid,
                    "lot": lots[i],
                    "culture_age_h": round(float(t), 4),
                    "dcw_g_l": dcw,
                    "glycerol_g_l": gly,
                    "methanol_g_l": meoh,
                    "ethanol_g_l": etoh,
                    "titer_mg_l": titer,
                    "x_contaminant_g_l": vals["x_contaminant"][j],
                }
            )
            u = rng.uniform(size=6)
            z = rng.normal(size=6)
            od = dcw / 0.26 * (1.0 + 0.05 * z[0])
            dcw_m = dcw * (1.0 + 0.03 * z[1]) + 0.3 * z[2]
            base = {c: None for c in cols}
            rows.append(
                {
                    "Sample ID": sid,
                    "Lot": lots[i],
                    "Sampled": sampled,
                    "Reported": local_str(t_abs + 0.3 + 1.2 * u[0], LIMS_TS_FMT),
                    "Test": "Biomass",
                    **base,
                    "OD600": round(max(od, 0.0), 1),
                    "DCW (g/L)": round(max(dcw_m, 0.0), 2),
                }
            )
            sub = {
                "Glycerol (g/L)": gly * (1 + 0.02 * z[3]),
                "Methanol (g/L)": meoh * (1 + 0.03 * z[4]) + 0.02 * z[5],
                "Ethanol (g/L)": etoh * (1 + 0.03 * z[3]) + 0.02 * z[4],
            }
            sub = {c: (round(max(x, 0.0), 2) if u[1] > 0.01 else None) for c, x in sub.items()}
            rows.append(
                {
                    "Sample ID": sid,
                    "Lot": lots[i],
                    "Sampled": sampled,
                    "Reported": local_str(t_abs + 2.0 + 6.0 * u[2], LIMS_TS_FMT),
                    "Test": "HPLC-Substrates",
                    **base,
                    **sub,
                }
            )
            if t >= feed_start and u[3] > 0.01:  # the titer assay runs from induction on
                tz_ = rng.normal()
                rows.append(
                    {
                        "Sample ID": sid,
                        "Lot": lots[i],
                        "Sampled": sampled,
                        "Reported": local_str(t_abs + 12.0 + 28.0 * u[4], LIMS_TS_FMT),
                        "Test": "Titer-HPLC",
                        **base,
                        "Titer (mg/L)": round(max(titer * (1 + 0.03 * tz_) + 5.0 * rng.normal(), 0.0), 1),
                    }
                )
    schema = {
        "Sample ID": pl.Utf8,
        "Lot": pl.Utf8,
        "Sampled": pl.Utf8,
        "Reported": pl.Utf8,
        "Test": pl.Utf8,
        **{c: pl.Float64 for c in cols},
    }
    lab = pl.DataFrame(rows, schema=schema).sort("Sampled", "Sample ID", "Test")
    tr = pl.DataFrame(truth).with_columns(
        pl.col(c).round(5)
        for c in ("dcw_g_l", "glycerol_g_l", "methanol_g_l", "ethanol_g_l", "titer_mg_l", "x_contaminant_g_l")
    )
    return lab, tr


def _trajectories(
    res: FermentationResult, lots: list[str], inoc: np.ndarray, end_rec: np.ndarray, grid_us: np.ndarray
) -> pa.Table:
    """True states at every logging step of every culture (long table)."""
    parts: dict[str, list[np.ndarray]] = {}
    keys = {
        "titer_mg_l": "titer",
        "dcw_g_l": "dcw",
        "x_contaminant_g_l": "x_contaminant",
        "glycerol_g_l": "glycerol",
        "methanol_g_l": "methanol",
        "ethanol_g_l": "ethanol",
        "do_mg_l": "do",
        "ph": "ph",
        "temperature_c": "temperature",
        "our_mmol_l_h": "our",
        "cer_mmol_l_h": "cer",
    }
    for i in np.argsort(inoc, kind="stable"):
        m = int(end_rec[i]) + 1
        parts.setdefault("lot", []).append(np.full(m, lots[i], dtype=object))
        parts.setdefault("timestamp_utc", []).append(grid_us[int(inoc[i]) : int(inoc[i]) + m])
        parts.setdefault("culture_age_h", []).append(np.round(res.t_h[:m], 6))
        ph = res["phase"][i, :m].copy()
        ph[-1] = Phase.HARVEST
        parts.setdefault("phase", []).append(ph.astype(np.int64))
        for out_key, key in keys.items():
            parts.setdefault(out_key, []).append(res[key][i, :m])
        parts.setdefault("fault_active", []).append(np.nan_to_num(res["fault_active"][i, :m]) > 0.5)
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    arrays = {
        "lot": pa.array(cols["lot"].tolist(), pa.string()),
        "timestamp_utc": pa.array(cols["timestamp_utc"], pa.timestamp("us", tz="UTC")),
        "culture_age_h": pa.array(cols["culture_age_h"]),
        "phase": pa.array(cols["phase"]),
        **{k: pa.array(np.round(cols[k], 6)) for k in keys},
        "fault_active": pa.array(cols["fault_active"]),
    }
    return pa.table(arrays)
