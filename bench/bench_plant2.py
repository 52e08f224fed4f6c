"""Any plant, YAML only: the soft sensor and MSPC of the second simulated plant, judged on its truth.

``run()`` exports a campaign of ``twin.microbial_site.export_microbial_plant`` (default 60 Pichia
fed-batches, 20 with a fault; a foreign vendor's files) and takes it the real way with the shipped
bundle ``config/plants/pichia/``: import → bronze → dbt → gold → the plant job of
``lakehouse run --plant`` (features, model selection, gate, scores, golden batch, MSPC) in one
Dagster run (``tests.support.plant2.run_plant``). Then, against the truth no model reads:

* ``plant2_softsensor_rmse`` / ``plant2_baseline_rmse``: the titer champion's published scores
  (``scores/titer``) vs its mean trajectory by culture age, RMSE against the TRUE titer (g/L) on
  the hourly rows of the held-out normal batches (rows before the induction gate left out);
  ``plant2_pi90_coverage``: share of those rows whose 90 % interval holds the true titer;
* ``plant2_mspc_detected_fraction``: faulty batches with an alarm at or after the true onset;
  ``plant2_mspc_false_alarm_fraction``: truly fault-free batches that ever alarm — MSPC with the
  bundle's golden.yaml by 5-fold cross-validation over the gold batches (every batch scored once
  by a model whose reference it is not in).

Spread: MSPC over ``BENCH_PLANT2_MSPC_SEEDS`` fold assignments (default 0,1,2,3) and the whole
evaluation over ``BENCH_PLANT2_EXPORT_SEEDS`` campaigns (default 21; e.g. 21,22,23);
``BENCH_PLANT2_BATCHES`` (default 60) batches per campaign.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore")


def _seeds(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


def _one_campaign(seed: int, mspc_seeds: list[int], tmp: Path, n_batches: int) -> dict:
    from lakehouse.storage import Lake
    from tests.support.plant2 import evaluate_plant2, mspc_truth_figures, run_plant
    from twin.microbial_site import export_microbial_plant

    t = time.perf_counter()
    export = tmp / f"export-{seed}"
    exp = export_microbial_plant(export, n_batches=n_batches, seed=seed)
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    _, result = run_plant(export, tmp / f"lake-{seed}", tmp / f"warehouse-{seed}.duckdb")
    t_run = time.perf_counter() - t
    if not result.success:
        raise RuntimeError(f"the plant run failed for export seed {seed}")
    t = time.perf_counter()
    res = evaluate_plant2(Lake(str(tmp / f"lake-{seed}")), export, mspc_seed=mspc_seeds[0])
    t_eval = time.perf_counter() - t
    g, truth = res["frames"], res["truth"]
    ms = [res["mspc"]] + [
        mspc_truth_figures(g["readings"], g["batches"], g["deviations"], truth["batches"], res["golden"], seed=s)
        for s in mspc_seeds[1:]
    ]
    ss = res["softsensor"]["normal"]
    m = res["softsensor"]["metrics"]
    return {
        "seed": seed,
        "batches": exp.batches,
        "faulty_batches": exp.faulty_batches,
        "softsensor_rmse": ss["rmse"],
        "baseline_rmse": ss["baseline_mean_trajectory_rmse"],
        "pi90_coverage": ss["pi90_coverage"],
        "softsensor_test_batches": ss["n_batches"],
        "selected": m["selection"]["chosen"],
        "cv_rmse_by_candidate": m["selection"]["cv_rmse_by_candidate"],
        "lab_rmse": m["test"]["rmse"],
        "lab_carry_forward_rmse": m["baseline_test"]["rmse"],
        "lab_mean_trajectory_rmse": m["baseline_mean_trajectory_test"]["rmse"],
        "lab_pi90_coverage": m["interval"]["coverage_test"],
        "fault_post_onset": res["softsensor"]["fault_post_onset"],
        "mspc_detected": [x["detected_fraction"] for x in ms],
        "mspc_false_alarm": [x["false_alarm_fraction"] for x in ms],
        "mspc_missed": ms[0]["missed"],
        "mspc_false_alarms": ms[0]["false_alarms"],
        "mspc_median_delay_h": ms[0]["median_delay_h"],
        "mspc_phase1_excluded": ms[0]["phase1_excluded"],
        "seconds": {"export": round(t_export, 1), "plant_run": round(t_run, 1), "evaluate": round(t_eval, 1)},
    }


def run() -> dict:
    t_all = time.perf_counter()
    export_seeds = _seeds("BENCH_PLANT2_EXPORT_SEEDS", "21")
    mspc_seeds = _seeds("BENCH_PLANT2_MSPC_SEEDS", "0,1,2,3")
    n_batches = int(os.environ.get("BENCH_PLANT2_BATCHES", "60"))
    with tempfile.TemporaryDirectory(prefix="bench-plant2-") as d:
        runs = [_one_campaign(s, mspc_seeds, Path(d), n_batches) for s in export_seeds]
    main = runs[0]

    def spread(key: str) -> list[float]:
        vals = [v for r in runs for v in (r[key] if isinstance(r[key], list) else [r[key]])]
        return [round(min(vals), 3), round(max(vals), 3)]

    out = {
        "plant2_softsensor_rmse": round(main["softsensor_rmse"], 4),
        "plant2_baseline_rmse": round(main["baseline_rmse"], 4),
        "plant2_softsensor_improvement": round(1 - main["softsensor_rmse"] / main["baseline_rmse"], 3),
        "plant2_pi90_coverage": round(main["pi90_coverage"], 3),
        "plant2_mspc_detected_fraction": round(main["mspc_detected"][0], 3),
        "plant2_mspc_false_alarm_fraction": round(main["mspc_false_alarm"][0], 3),
        "plant2_spread": {
            "export_seeds": export_seeds,
            "mspc_fold_seeds": mspc_seeds,
            "softsensor_improvement": spread_improvement(runs),
            "pi90_coverage": spread("pi90_coverage"),
            "mspc_detected_fraction": spread("mspc_detected"),
            "mspc_false_alarm_fraction": spread("mspc_false_alarm"),
        },
        "plant2_runs": runs,
        "plant2_seconds": round(time.perf_counter() - t_all, 1),
    }
    return json.loads(json.dumps(out, default=float))


def spread_improvement(runs: list[dict]) -> list[float]:
    vals = [1 - r["softsensor_rmse"] / r["baseline_rmse"] for r in runs]
    return [round(min(vals), 3), round(max(vals), 3)]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
