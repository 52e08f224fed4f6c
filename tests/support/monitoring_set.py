"""Site-like twin batches shaped like the gold marts, with ground truth — test and benchmark
scaffolding for the golden-batch / MSPC / calibration code (never imported by product code).

:func:`simulate_monitoring_set` (was ``ml.mspc.simulate_monitoring_set``) and
:func:`twin_marts` (was ``ml.golden.twin_marts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.golden import all_signals

#: per-signal measurement noise (1 SD of an hourly mean, absolute units) for twin-built frames
DEFAULT_NOISE: dict[str, float] = {
    "temperature": 0.025,
    "temperature_sp": 0.0,
    "ph": 0.006,
    "dissolved_oxygen": 0.6,
    "agitation": 0.3,
    "air_flow": 0.3,
    "o2_flow": 0.05,
    "co2_flow": 0.02,
    "offgas_o2": 0.02,
    "offgas_co2": 0.02,
    "capacitance": 0.15,
    "base_total": 20.0,
    "feed_flow_sp": 0.0,
    "feed_flow": 0.3,
    "feed_total": 50.0,
    "weight": 0.5,
    "pressure": 0.001,
    "vibration": 0.03,
    "motor_current": 0.03,
}
#: relative noise of the in-process assays (and their result delay in hours)
ASSAY_NOISE: dict[str, tuple[float, float]] = {
    "vcd": (0.05, 1.0),
    "viability": (0.01, 1.0),
    "glucose": (0.04, 1.0),
    "lactate": (0.05, 1.0),
    "ammonia": (0.06, 1.0),
    "osmolality": (0.015, 1.0),
    "titer": (0.04, 24.0),
}


def twin_marts(
    result: Any,
    batch_ids: Sequence[str],
    seed: int = 0,
    noise: dict[str, float] | None = None,
    status: Sequence[str] | None = None,
    signals: Sequence[str] | None = None,
    assay_every_h: float = 24.0,
    first_sample_h: float = 2.0,
) -> dict[str, pd.DataFrame]:
    """Gold-mart-shaped frames from a ``twin.bioreactor.BatchResult`` (tests, benchmarks).

    Returns ``readings`` (like ``fct_process_readings`` on the twin's record grid, with
    measurement noise), ``batches`` (like ``dim_batches``: status, setpoints, ``duration_h``,
    harvest titer and the noisy harvest CQAs) and ``assays`` (like ``fct_assay_results`` with
    ``culture_age_h`` of the sample and ``result_age_h`` when the result is approved).
    """
    noise = DEFAULT_NOISE if noise is None else noise
    signals = all_signals() if signals is None else signals
    rng = np.random.default_rng(seed)
    t = np.asarray(result.t_h, dtype=float)
    n = len(batch_ids)
    end = np.asarray(result.end_h, dtype=float)
    frames = []
    for i, b in enumerate(batch_ids):
        keep = t <= end[i] + 1e-9
        tt = t[keep]
        cols: dict[str, Any] = {"batch_id": b, "culture_age_h": tt, "maturity_pct": 100.0 * tt / end[i]}
        for s in signals:
            if s not in result.series:
                continue
            v = np.asarray(result.series[s][i, keep], dtype=float)
            sd = float(noise.get(s, 0.0))
            cols[s] = v + rng.normal(0.0, sd, v.shape) if sd > 0 else v.copy()
        frames.append(pd.DataFrame(cols))
    readings = pd.concat(frames, ignore_index=True)

    h = result.harvest_noisy
    batches = pd.DataFrame(
        {
            "batch_id": list(batch_ids),
            "status": list(status) if status is not None else ["complete"] * n,
            "duration_h": end,
        }
    )
    for k, v in result.recipes.items():
        batches[k] = np.asarray(v, dtype=float)
    batches["harvest_titer_g_l"] = np.asarray(h["titer"], dtype=float)
    batches["peak_vcd"] = np.asarray(h["peak_vcd"], dtype=float)
    batches["harvest_viability_pct"] = np.asarray(h["viability"], dtype=float)
    for k in ("g0f", "g1f", "g2f", "man5", "afucosylation", "hmw"):
        batches[f"{k}_pct"] = np.asarray(h[k], dtype=float)

    rows = []
    for i, b in enumerate(batch_ids):
        ts = np.arange(first_sample_h, end[i] + 1e-9, assay_every_h)
        for a, (rel, delay) in ASSAY_NOISE.items():
            if a not in result.series:
                continue
            tsa = ts[ts >= 72.0] if a == "titer" else ts
            v = np.interp(tsa, t, np.nan_to_num(result.series[a][i], nan=0.0))
            v = v * (1.0 + rel * rng.standard_normal(v.shape))
            for tj, vj in zip(tsa, v):
                rows.append((b, a, float(vj), float(tj), float(tj + delay)))
    assays = pd.DataFrame(rows, columns=["batch_id", "analyte", "value", "culture_age_h", "result_age_h"])
    return {"readings": readings, "batches": batches, "assays": assays}


def _vary_recipes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Nominal recipe with a site's small batch-to-batch setpoint variation (``twin.site``)."""
    from twin.bioreactor import recipes_to_arrays
    from twin.site import vary_recipes

    return recipes_to_arrays(vary_recipes(rng, n))


def simulate_monitoring_set(
    n_normal: int,
    n_per_type: int = 0,
    seed: int = 0,
    prefix: str = "B",
    equipment: bool = True,
    variability: dict | None = None,
    deviation_types: Sequence[str] = ("contamination", "temperature_fault", "feed_error"),
    dt_h: float = 0.25,
    params: Any = None,
) -> dict[str, Any]:
    """Site-like twin batches with ground truth, for tests and benchmarks.

    Like ``twin.site``: the nominal recipe with small setpoint variation, biological
    variability of ``mu_max``/``qp``, DO-probe gain drift (re-standardised at the daily
    offline check once it exceeds 15 %) and feed-pump tubing wear. ``n_normal`` batches get no
    process deviation, ``n_per_type`` batches get each type of ``deviation_types`` (drawn by
    ``twin.deviations``: onset, magnitude, duration); contaminated batches are aborted when
    operators detect them. A tubing rupture inside a batch is labelled ``feed_pump_failure``
    (as the site's truth does). Returns ``readings``, ``batches``, ``assays``
    (:func:`twin_marts`) and ``truth`` (``batch_id, deviation_type, deviating, onset_h,
    lost, end_h``).
    """
    from ml.doe import sample_kinetics
    from twin import deviations as dv
    from twin import equipment as eq
    from twin.bioreactor import Faults, simulate_batches

    rng = np.random.default_rng(seed)
    types = [t for t in deviation_types for _ in range(n_per_type)]
    n = n_normal + len(types)
    rec = _vary_recipes(rng, n)
    dur = rec["duration_days"] * 24.0
    faults = Faults.none(n)
    sample_off = 2.0
    dev_label = np.array([""] * n, dtype=object)
    onset = np.full(n, np.nan)
    end_h = dur.copy()
    lost = np.zeros(n, dtype=bool)
    if equipment:
        drift = np.array([eq.do_drift_rate(rng, int(rng.integers(1, 10))) for _ in range(n)])
        faults.do_drift_per_day = drift
        cross = eq.DO_FAIL_REL_DEV / np.maximum(np.abs(drift), 1e-12) * 24.0
        k = np.ceil((cross - sample_off) / 24.0)
        faults.do_restd_h = np.where(cross < dur, sample_off + 24.0 * np.maximum(k, 0) + 0.5, np.inf)
        life = np.array([eq.sample_pump_life(rng) for _ in range(n)])
        run0 = rng.uniform(0.0, 600.0, n)
        run0 = np.where(run0 >= life, 0.5 * life, run0)
        faults.pump_life_h, faults.pump_run_h0 = life, run0
        t_rupt = rec["feed_start_day"] * 24.0 + (life - run0)  # continuous feed from feed start
        rupt = t_rupt < dur
        dev_label[rupt] = "feed_pump_failure"
        onset[rupt] = t_rupt[rupt]
    name_to_type = {t.label: t for t in dv.DeviationType if t is not dv.DeviationType.NONE}
    for j, label in enumerate(types):
        i = n_normal + j
        d = dv.sample_deviations(rng, dur[i : i + 1], {name_to_type[label]: 1.0})
        faults.dev_type[i] = d.dev_type[0]
        faults.dev_onset_h[i] = d.onset_h[0]
        faults.dev_magnitude[i] = d.magnitude[0]
        faults.dev_duration_h[i] = d.duration_h[0]
        if dev_label[i] != "" and onset[i] < d.onset_h[0]:
            continue  # an earlier pump failure stays the batch's labelled event
        dev_label[i] = label
        onset[i] = d.onset_h[0]
        if np.isfinite(d.detect_h[0]) and d.detect_h[0] < dur[i]:
            end_h[i] = round(d.detect_h[0] / dt_h) * dt_h
            lost[i] = True
    kin = sample_kinetics(n, params, variability, seed=seed + 7)
    res = simulate_batches(
        rec, params=kin, faults=faults, end_h=end_h, dt_h=dt_h, seed=seed, sample_offset_h=sample_off
    )
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    status = np.where(lost, "aborted", "complete")
    marts = twin_marts(res, ids, seed=seed + 11, status=list(status), first_sample_h=sample_off)
    truth = pd.DataFrame(
        {
            "batch_id": ids,
            "deviation_type": dev_label,
            "deviating": dev_label != "",
            "onset_h": onset,
            "lost": lost,
            "end_h": end_h,
        }
    )
    return {**marts, "truth": truth, "result": res}
