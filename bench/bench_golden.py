"""Golden batch / MSPC / in-silico DoE / twin calibration figures on the digital twin.

``run()`` measures, in one process (no lake, no Dagster):

* ``insilico_batches_per_s``: a Latin-hypercube DoE of ``BENCH_DOE_RUNS`` (1000) recipes inside
  ``DESIGN_SPACE`` run through ``twin.bioreactor.simulate_batches`` at the default resolution
  (RK4, dt 0.25 h, 14 ± 2 days) with batch-to-batch variability — one vectorised call per chunk;
* MSPC on site-like twin batches (``tests.support.monitoring_set.simulate_monitoring_set``): trained on
  ``BENCH_MSPC_TRAIN`` (80) normal historical batches, evaluated on ``BENCH_MSPC_NORMAL`` (120)
  new normal batches + ``BENCH_MSPC_PER_TYPE`` (12) of each injected deviation type
  (contamination, temperature fault, feed error; tubing ruptures that happen on their own are
  labelled too): ``mspc_detected_fraction``, ``mspc_median_lead_h`` (first alarm after the onset →
  deviation visible in an assay result, batch lost, or harvest), ``mspc_false_alarm_fraction``
  (normal batches ever alarmed), ``mspc_median_delay_h`` (onset → alarm), per type;
* twin calibration of ``mu_max``, ``qp``, ``kd_age`` to 12 batches of a "site" whose kinetics
  differ from the twin defaults: titer / VCD RMSE before and after;
* the setpoint recommendation from the DoE (XGBoost surrogate, constrained optimum) verified
  in the twin vs the historical (site-like) median titer.

``__main__`` prints the JSON. Runtime ≈ 1.5–3 min on 2 cores.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml import doe, mspc
from ml.golden import load_config, spec_limits
from tests.support.monitoring_set import simulate_monitoring_set, twin_marts


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def bench_insilico(n_runs: int, seed: int = 7) -> tuple[dict, object, object]:
    space = doe.design_space()
    design = doe.latin_hypercube(n_runs, space, seed=seed)
    t0 = time.perf_counter()
    runs = doe.simulate_design(design, seed=seed)  # default dt_h=0.25
    secs = time.perf_counter() - t0
    return (
        {
            "insilico_batches": n_runs,
            "insilico_seconds": round(secs, 2),
            "insilico_batches_per_s": round(n_runs / secs, 1),
        },
        space,
        runs,
    )


def bench_mspc(cfg: dict, n_train: int, n_normal: int, per_type: int) -> tuple[dict, list[float]]:
    t0 = time.perf_counter()
    hist = simulate_monitoring_set(n_train, 0, seed=1001, prefix="H")
    new = simulate_monitoring_set(n_normal, per_type, seed=2002, prefix="N")
    t_sim = time.perf_counter() - t0
    mcfg = mspc.MSPCConfig.from_dict(cfg["mspc"])
    good = hist["truth"].loc[~hist["truth"]["deviating"], "batch_id"].tolist()
    t0 = time.perf_counter()
    model = mspc.fit_mspc(mspc.align_for(mcfg, hist["readings"]), mcfg, batch_ids=good)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    sc = mspc.score(model, mspc.align_for(model, new["readings"]))
    t_score = time.perf_counter() - t0
    truth = new["truth"].copy()
    truth["visible_h"] = truth["batch_id"].map(
        mspc.visibility(
            truth, new["assays"], model.train_batches, z=float(cfg["mspc"].get("evaluation", {}).get("visible_z", 3.0))
        )
    )
    steps = sc.to_frame()
    metrics, per = mspc.evaluate_alarms(steps[steps["alarm"]], truth)
    per = per.drop(columns=["deviation_type"]).merge(truth[["batch_id", "deviation_type"]], on="batch_id")
    dev = per[per["deviating"]]
    by_type = {
        k: {
            "n": len(g),
            "detected": round(float(g["detected"].mean()), 3),
            "median_delay_h": round(float(g["delay_h"].median()), 1),
            "max_delay_h": round(float(g["delay_h"].max()), 1),
            "median_lead_h": round(float(g["lead_h"].median()), 1),
        }
        for k, g in dev.groupby("deviation_type")
    }
    hist_titer = hist["batches"].loc[hist["batches"]["status"] == "complete", "harvest_titer_g_l"]
    out = {
        "mspc_detected_fraction": round(metrics["detected_fraction"], 3),
        "mspc_median_lead_h": round(metrics["median_lead_h"], 1),
        "mspc_false_alarm_fraction": round(metrics["false_alarm_fraction"], 3),
        "mspc_median_delay_h": round(metrics["median_delay_h"], 1),
        "mspc_alarmed_within_24h_of_onset": round(float((dev["delay_h"] <= 24.0).mean()), 3),
        "mspc_pre_onset_alarm_fraction": round(metrics["pre_onset_alarm_fraction"], 3),
        "mspc_n_deviating": metrics["n_deviating"],
        "mspc_n_normal": metrics["n_normal"],
        "mspc_by_type": by_type,
        "mspc_train_batches": len(model.train_batches),
        "mspc_components": model.n_components,
        "mspc_phase1_excluded": len(model.info["phase1_excluded"]),
        "mspc_limit_scale": round(model.limit_scale, 3),
        "mspc_seconds": {"simulate": round(t_sim, 1), "fit": round(t_fit, 1), "score": round(t_score, 2)},
    }
    return out, hist_titer.tolist()


def bench_calibration(n: int = 12) -> dict:
    from twin.bioreactor import KineticParams, recipes_to_arrays, simulate_batches
    from twin.calibration import calibrate

    rng = np.random.default_rng(3)
    site = replace(KineticParams(), mu_max=0.82, qp=24.0, kd_age=0.11)
    kin = doe.sample_kinetics(n, site, {"mu_max": 0.03, "qp": 0.05}, seed=4)
    rec = recipes_to_arrays(
        {
            "seed_density_e6_per_ml": rng.uniform(0.45, 0.55, n),
            "feed_rate_pct_per_day": rng.uniform(2.8, 3.2, n),
            "temp_shift_day": rng.choice([5.5, 6.0, 6.5], n),
        }
    )
    res = simulate_batches(rec, params=kin)
    marts = twin_marts(res, [f"S{i:03d}" for i in range(n)], seed=5)
    t0 = time.perf_counter()
    out = calibrate(marts["batches"], marts["assays"], max_nfev=15)
    secs = time.perf_counter() - t0
    return {
        "calibration_titer_rmse_before_g_l": round(out.rmse_before["titer"], 3),
        "calibration_titer_rmse_after_g_l": round(out.rmse_after["titer"], 3),
        "calibration_vcd_rmse_before": round(out.rmse_before["vcd"], 3),
        "calibration_vcd_rmse_after": round(out.rmse_after["vcd"], 3),
        "calibration_params": {k: round(v, 4) for k, v in out.params.items()},
        "calibration_site_truth": {"mu_max": 0.82, "qp": 24.0, "kd_age": 0.11},
        "calibration_twin_runs": out.n_evaluations,
        "calibration_seconds": round(secs, 1),
    }


def bench_recommendation(cfg: dict, space, runs, hist_titers: list[float]) -> dict:
    specs = spec_limits(cfg)
    d = cfg.get("doe", {})
    s = d.get("surrogate", {})
    t0 = time.perf_counter()
    sur = doe.Surrogate.fit(
        runs,
        list(space),
        ["harvest_titer_g_l", *specs],
        n_estimators=int(s.get("n_estimators", 200)),
        folds=int(s.get("folds", 4)),
    )
    rec = doe.recommend(
        sur,
        space,
        specs,
        margin=float(d.get("margin", 0.05)),
        kappa=float(d.get("kappa", 1.0)),
        n_candidates=int(d.get("n_candidates", 20000)),
    )
    ver = doe.verify(rec["setpoints"], specs, n_replicates=int(d.get("verify_replicates", 24)))
    secs = time.perf_counter() - t0
    return {
        "doe_recommended_setpoints": {k: round(v, 3) for k, v in rec["setpoints"].items()},
        "doe_inside_design_space": bool(doe.inside(__import__("pandas").DataFrame([rec["setpoints"]]), space)[0]),
        "doe_predicted_titer_g_l": round(rec["predicted"]["harvest_titer_g_l"]["q50"], 3),
        "doe_verified_titer_g_l": round(ver["titer_mean"], 3),
        "doe_verified_cqa_pass_fraction": round(ver["cqa_pass_fraction"], 3),
        "historical_median_titer_g_l": round(float(np.median(hist_titers)), 3),
        "doe_surrogate_titer_r2": round(sur.cv_metrics["harvest_titer_g_l"]["r2"], 3),
        "doe_recommend_seconds": round(secs, 1),
    }


def run() -> dict:
    cfg = load_config()
    t_all = time.perf_counter()
    out: dict = {}
    ins, space, runs = bench_insilico(_env("BENCH_DOE_RUNS", 1000))
    out.update(ins)
    m, hist_titers = bench_mspc(
        cfg, _env("BENCH_MSPC_TRAIN", 80), _env("BENCH_MSPC_NORMAL", 120), _env("BENCH_MSPC_PER_TYPE", 12)
    )
    out.update(m)
    out.update(bench_calibration())
    out.update(bench_recommendation(cfg, space, runs, hist_titers))
    out["total_seconds"] = round(time.perf_counter() - t_all, 1)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
