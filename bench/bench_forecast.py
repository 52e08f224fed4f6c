"""The twin as a live mirror (``twin.mirror``): forecast accuracy, bands, update cost, scenarios.

``run()`` measures, in one process (no lake, no Dagster), on held-out twin batches
(``tests.support.mirror_set``: the site's recipe variation, biological spread wider than the
site's, parameters the mirror does not estimate, inoculum error; LIMS assays with the site's
precision and result delays):

* ``forecast_titer_day{5,7,9}_mape``: mean absolute percentage error of the harvest-titer
  forecast (posterior mean) from the data known at culture day 5/7/9 against the true harvest
  titer, over ``BENCH_FORECAST_BATCHES`` (100) batches; ``forecast_titer_prior_mape``: the same
  with no data (the population prior); ``forecast_titer_day7_ape_p50/_p90/_max``: its distribution;
  ``forecast_titer_day7_mape_vs_measured``: against the *measured* harvest titer (4 % assay noise);
* ``forecast_band80_coverage`` / ``forecast_band95_coverage``: fraction of true harvest titers
  inside the 80 / 95 % bands (days 5, 7, 9 pooled); ``forecast_cqa_day7_mae`` /
  ``forecast_cqa_day7_band80_coverage``: the same for harvest viability and CQAs from day 7 (per key);
* ``forecast_update_10_batches_s`` (wall) and ``_cpu_s``: one update of 10 running batches at
  mixed culture ages (days 2-12) — estimate warm-started from the posterior of an hour earlier +
  a forecast with 100 draws; ``forecast_cold_10_batches_s``: the same from scratch;
* ``forecast_recommend_s``: ranking the default corrective actions of one batch (64 draws);
* ``forecast_scenario_true_gain_g_l``: for deviating batches (missed feed, over-feed, hot and cold
  temperature faults), the true harvest-titer gain of the best-ranked action (applied in the
  truth, the deviation replayed) vs doing nothing; ``forecast_scenario_true_score_gain_g_l`` /
  ``forecast_scenario_improved_fraction``: the same for the ranking objective, the expected
  in-spec titer (true titer x probability that the measured true CQAs pass their specs);
* ``forecast_load_avg_1m_start`` / ``_end``: the shared host's load average around the run.

``__main__`` prints the JSON. Runtime ≈ 1-3 min on 2 cores.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml.golden import load_config
from ml.mirror import twin_specs
from tests.support.mirror_set import simulate_mirror_set, true_outcome
from twin import mirror
from twin.bioreactor import CQA_KEYS, Faults
from twin.deviations import DeviationType


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def bench_accuracy(n: int, seed: int = 2027, n_draws: int = 60) -> dict:
    ms = simulate_mirror_set(n, seed=seed)
    truth = ms.truth["titer"].to_numpy()
    out: dict = {"forecast_batches": n}
    hits = {0.8: [], 0.95: []}
    prev = None
    for day in (0, 5, 7, 9):
        posts = mirror.estimate(ms.data, day * 24.0, previous=prev)
        prev = posts
        fcs = mirror.forecast(posts, n_draws=n_draws, record_every_h=24.0)
        mean = np.array([f.harvest["titer"].mean() for f in fcs])
        ape = np.abs(mean / truth - 1.0) * 100.0
        out[f"forecast_titer_{'prior' if day == 0 else f'day{day}'}_mape"] = round(float(ape.mean()), 2)
        if day == 0:
            continue
        for level in hits:
            b = np.array([f.band("titer", level) for f in fcs])
            hits[level].append((truth >= b[:, 0]) & (truth <= b[:, 1]))
        if day == 7:
            out["forecast_titer_day7_ape_p50"] = round(float(np.median(ape)), 2)
            out["forecast_titer_day7_ape_p90"] = round(float(np.percentile(ape, 90)), 2)
            out["forecast_titer_day7_ape_max"] = round(float(ape.max()), 2)
            meas = ms.truth["harvest_titer_measured"].to_numpy()
            out["forecast_titer_day7_mape_vs_measured"] = round(float(np.mean(np.abs(mean / meas - 1.0)) * 100), 2)
            out["forecast_band80_coverage_day7"] = round(float(np.mean(hits[0.8][-1])), 3)
            for k in ("viability", *CQA_KEYS):
                tr = ms.truth[k].to_numpy()
                b = np.array([f.band(k, 0.8) for f in fcs])
                med = np.array([np.median(f.harvest[k]) for f in fcs])
                out.setdefault("forecast_cqa_day7_mae", {})[k] = round(float(np.mean(np.abs(med - tr))), 3)
                out.setdefault("forecast_cqa_day7_band80_coverage", {})[k] = round(
                    float(np.mean((tr >= b[:, 0]) & (tr <= b[:, 1]))), 3
                )
    out["forecast_band80_coverage"] = round(float(np.mean(hits[0.8])), 3)
    out["forecast_band95_coverage"] = round(float(np.mean(hits[0.95])), 3)
    return out


def bench_update(seed: int = 31) -> dict:
    ms = simulate_mirror_set(10, seed=seed, prefix="U")
    ages = np.linspace(48.0, 288.0, 10)
    before = mirror.estimate(ms.data, ages - 1.0)
    c0, t0 = time.process_time(), time.perf_counter()
    posts = mirror.estimate(ms.data, ages, previous=[mirror.Posterior.from_dict(p.to_dict()) for p in before])
    mirror.forecast(posts, n_draws=100)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    mirror.forecast(mirror.estimate(ms.data, ages), n_draws=100)
    cold = time.perf_counter() - t0
    specs = twin_specs(load_config())
    t0 = time.perf_counter()
    recs = mirror.recommend(posts[4], specs, n_draws=64)
    rec_s = time.perf_counter() - t0
    return {
        "forecast_update_10_batches_s": round(wall, 2),
        "forecast_update_10_batches_cpu_s": round(cpu, 2),
        "forecast_update_iterations_mean": round(float(np.mean([p.iterations for p in posts])), 1),
        "forecast_cold_10_batches_s": round(cold, 2),
        "forecast_recommend_s": round(rec_s, 2),
        "forecast_recommend_actions": len(recs),
    }


def bench_scenarios(seed: int = 41) -> dict:
    cases = [  # (type, onset h, magnitude, duration h, decision time h)
        (DeviationType.FEED_ERROR, 110.0, 0.0, 40.0, 152.0),
        (DeviationType.FEED_ERROR, 90.0, 0.0, 30.0, 122.0),
        (DeviationType.FEED_ERROR, 110.0, 2.4, 24.0, 136.0),
        (DeviationType.TEMPERATURE_FAULT, 100.0, 3.0, 20.0, 125.0),
        (DeviationType.TEMPERATURE_FAULT, 160.0, 2.5, 16.0, 180.0),
        (DeviationType.TEMPERATURE_FAULT, 60.0, -4.5, 24.0, 90.0),
    ]
    f = Faults.none(len(cases))
    for i, (typ, onset, mag, dur, _) in enumerate(cases):
        f.dev_type[i], f.dev_onset_h[i], f.dev_magnitude[i], f.dev_duration_h[i] = typ, onset, mag, dur
    ms = simulate_mirror_set(len(cases), seed=seed, faults=f, online_every_h=0.25, prefix="D")
    specs = twin_specs(load_config())
    gains, score_gains = [], []
    for i, case in enumerate(cases):
        t = case[-1]
        best = mirror.recommend(mirror.estimate(ms.data[i], t)[0], specs, n_draws=48)[0]
        truth = true_outcome(ms, i, [mirror.NO_ACTION, best.action], t)
        p_in, _ = mirror.spec_risk({k: truth[k].to_numpy() for k in truth}, specs, mirror.Prior().quality)
        score = truth["titer"].to_numpy() * p_in  # expected in-spec titer of the truth (assay noise only)
        gains.append(float(truth["titer"][1] - truth["titer"][0]))
        score_gains.append(float(score[1] - score[0]))
    return {
        "forecast_scenario_batches": len(cases),
        "forecast_scenario_true_gain_g_l": round(float(np.mean(gains)), 3),
        "forecast_scenario_true_score_gain_g_l": round(float(np.mean(score_gains)), 3),
        "forecast_scenario_improved_fraction": round(float(np.mean(np.array(score_gains) > 0)), 3),
    }


def run() -> dict:
    load_start = os.getloadavg()[0]
    t_all = time.perf_counter()
    out = bench_accuracy(_env("BENCH_FORECAST_BATCHES", 100))
    out.update(bench_update())
    out.update(bench_scenarios())
    out["forecast_total_seconds"] = round(time.perf_counter() - t_all, 1)
    out["forecast_load_avg_1m_start"] = round(load_start, 2)
    out["forecast_load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    out["forecast_cpus"] = os.cpu_count()
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
