"""Any plant, YAML only: the soft sensor and MSPC of the second simulated plant, judged on its truth.

``run()`` exports the default campaign of ``twin.microbial_site.export_microbial_plant`` (60 Pichia
fed-batches, 20 with a fault; a foreign vendor's files), turns it into gold-shaped frames with
``tests/support/plant2.py`` (STAND-IN for the import → dbt path until the signal catalog lands) and
uses only the plant's bundle ``config/plants/plant2/`` and library code:

* ``plant2_softsensor_rmse`` / ``plant2_baseline_rmse``: titer soft sensor vs the mean trajectory by
  culture age, RMSE against the TRUE titer on the hourly rows of the held-out normal batches
  (the latest quarter of the normal batches; rows before the induction gate left out);
  ``plant2_pi90_coverage``: share of those rows whose 90 % interval holds the true titer;
* ``plant2_mspc_detected_fraction``: faulty batches with an alarm at or after the true onset;
  ``plant2_mspc_false_alarm_fraction``: truly fault-free batches that ever alarm — MSPC by 5-fold
  cross-validation over batches (every batch scored once by a model whose reference it is not in).

Spread: MSPC over ``BENCH_PLANT2_MSPC_SEEDS`` fold assignments (default 0,1,2,3) and the whole
evaluation over ``BENCH_PLANT2_EXPORT_SEEDS`` campaigns (default 21 = the reported figures, 22, 23).
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
BUNDLE = ROOT / "config" / "plants" / "plant2"


def _seeds(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


def _one_campaign(seed: int, mspc_seeds: list[int], tmp: Path) -> dict:
    from ml import golden as gb
    from tests.support.plant2 import evaluate_plant2, load_plant2, mspc_truth_figures, plant2_catalog
    from twin.microbial_site import export_microbial_plant

    t = time.perf_counter()
    exp = export_microbial_plant(tmp / f"export-{seed}", seed=seed)
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    frames = load_plant2(tmp / f"export-{seed}")
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    res = evaluate_plant2(frames, BUNDLE / "softsensor.yaml", BUNDLE / "golden.yaml", mspc_seed=mspc_seeds[0])
    t_eval = time.perf_counter() - t
    cfg = gb.load_config(BUNDLE / "golden.yaml", catalog=plant2_catalog())
    ms = [res["mspc"]] + [
        mspc_truth_figures(
            frames["readings"], frames["batches"], frames["deviations"], frames["truth_batches"], cfg, seed=s
        )
        for s in mspc_seeds[1:]
    ]
    ss = res["softsensor"]["normal"]
    m = res["softsensor_model"]
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
        "seconds": {"export": round(t_export, 1), "load": round(t_load, 1), "evaluate": round(t_eval, 1)},
    }


def run() -> dict:
    t_all = time.perf_counter()
    export_seeds = _seeds("BENCH_PLANT2_EXPORT_SEEDS", "21,22,23")
    mspc_seeds = _seeds("BENCH_PLANT2_MSPC_SEEDS", "0,1,2,3")
    with tempfile.TemporaryDirectory(prefix="bench-plant2-") as d:
        runs = [_one_campaign(s, mspc_seeds, Path(d)) for s in export_seeds]
    main = runs[0]

    def spread(key: str) -> list[float]:
        vals = [v for r in runs for v in (r[key] if isinstance(r[key], list) else [r[key]])]
        return [round(min(vals), 3), round(max(vals), 3)]

    out = {
        "plant2_softsensor_rmse": round(main["softsensor_rmse"], 1),
        "plant2_baseline_rmse": round(main["baseline_rmse"], 1),
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
