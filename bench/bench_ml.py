"""ML benchmark: a twin site (>= 40 batches) → gold-shaped tables → features → XGBoost models →
held-out figures, PdM evaluated against the twin's ``_truth/failures.parquet``.

    python bench/bench_ml.py                      # simulate (cached) a 365-day, 4-bioreactor twin site
    python bench/bench_ml.py --lake data/lake     # use a lake's gold tables (+ its landing/_truth)

``run() -> dict`` returns ``titer_rmse, titer_rmse_baseline, pdm_recall_7d, pdm_precision_7d,
pdm_median_lead_days`` plus harvest-CQA figures and context. Definitions (``docs/ml.md``):

* titer: RMSE on assay samples of the latest 25 % of batches (forward split; the model never saw
  them); baseline = last titer result visible (result_time <= sample time), 0 before the first.
* harvest CQAs: RMSE of features-by-day-D models on held-out batches vs mean-of-training.
* PdM: the model's alerts on the held-out last 30 % of days; a truth failure counts as warned
  >= 7 days ahead when the first alert in the 21 days before it is >= 7 days before it;
  precision = alert days followed by a truth failure of that equipment within 21 days / alert days.
"""

from __future__ import annotations

import argparse
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

GOLD = ("dim_batches", "fct_process_readings", "fct_assay_results", "fct_equipment_health_daily", "fct_work_orders")


def _frames_from_twin(days: int, bioreactors: int, seed: int, cache: Path, timings: dict) -> dict:
    import polars as pl

    from tests.support.landing_frames import gold_frames
    from twin.site import SiteConfig, simulate_site

    key = cache / f"site-{days}d-{bioreactors}br-s{seed}"
    frames_dir = key / "frames"
    names = [*GOLD, "truth_failures", "truth_batches"]
    if all((frames_dir / f"{n}.parquet").exists() for n in names):
        timings["cached_frames"] = True
        return {n: pl.read_parquet(frames_dir / f"{n}.parquet") for n in names}
    t = time.perf_counter()
    if not (key / "landing" / "_truth" / "failures.parquet").exists():
        simulate_site(
            str(key),
            SiteConfig(
                days=days,
                bioreactors=bioreactors,
                seed=seed,
                write_trajectories=False,
                full_resolution_days=None,  # the bench's year at 1 minute, as measured before
            ),
        )
    timings["simulate_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    frames = gold_frames(str(key / "landing"))
    timings["landing_to_gold_frames_s"] = round(time.perf_counter() - t, 1)
    frames_dir.mkdir(parents=True, exist_ok=True)
    for n, df in frames.items():
        df.write_parquet(frames_dir / f"{n}.parquet")
    return frames


def _frames_from_lake(lake_root: str) -> dict:
    import polars as pl

    from lakehouse.storage import Lake, S3Settings
    from ml.pipeline import read_table

    lake = Lake(lake_root, S3Settings.from_env())
    frames = {n: read_table(lake, "gold", n).df for n in GOLD}
    fs = lake.filesystem()
    truth = lake.fs_path(lake.uri("landing", "_truth", "failures.parquet"))
    if fs.exists(truth):
        with fs.open(truth, "rb") as fh:
            frames["truth_failures"] = pl.read_parquet(fh)
    return frames


def run(
    lake: str | None = None, days: int = 365, bioreactors: int = 4, seed: int = 7, cache_dir: str | None = None
) -> dict:
    import numpy as np
    import polars as pl

    from ml.config import load_pdm_config, load_softsensor_config
    from ml.evaluation import alert_event_metrics
    from ml.features import build_equipment_health_features, build_softsensor_features
    from ml.train import train_harvest, train_pdm, train_titer

    t_all = time.perf_counter()
    timings: dict = {}
    cache = Path(
        cache_dir or os.environ.get("LAKEHOUSE_BENCH_CACHE") or Path(tempfile.gettempdir()) / "bioprocess-bench-ml"
    )
    g = _frames_from_lake(lake) if lake else _frames_from_twin(days, bioreactors, seed, cache, timings)
    ss, pdm = load_softsensor_config(), load_pdm_config()

    t = time.perf_counter()
    feats = build_softsensor_features(g["fct_process_readings"], g["dim_batches"], ss.features, g["fct_assay_results"])
    timings["softsensor_features_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    titer = train_titer(feats, ss)
    timings["titer_train_s"] = round(time.perf_counter() - t, 1)
    m = titer.metrics
    out: dict = {
        "source": f"lake:{lake}" if lake else f"twin:{days}d,{bioreactors}br,seed{seed}",
        "n_batches": int(feats["batch_id"].n_unique()),
        "titer_rmse": m["test"]["rmse"],
        "titer_rmse_baseline": m["baseline_test"]["rmse"],
        "titer_improvement_vs_baseline": m["improvement_vs_baseline"],
        "titer_mae": m["test"]["mae"],
        "titer_r2": m["test"]["r2"],
        "titer_interval_coverage": m["interval"]["coverage_test"],
        "titer_interval_nominal": 1 - m["interval"]["alpha"],
        "titer_n_test_batches": m["n_test_batches"],
        "titer_n_test_samples": m["n_test_rows"],
        "titer_rmse_by_culture_day": {d: round(v["rmse"], 4) for d, v in m["test_by_culture_day"].items()},
        "titer_rmse_mean_trajectory": m["baseline_mean_trajectory_test"]["rmse"],
        "titer_selected_estimator": m["selection"]["chosen"],
    }
    # the product default: fault batches (status not complete, recorded deviations) never train and are
    # scored apart (same features; the test set is the later normal batches)
    from ml.batches import batch_conditions

    t = time.perf_counter()
    cond = batch_conditions(g["dim_batches"], None, ss.batches)
    mf = train_titer(feats, ss, conditions=cond).metrics
    out["titer_normal_batches"] = {
        "rmse": mf["test"]["rmse"],
        "rmse_carry_forward": mf["baseline_test"]["rmse"],
        "rmse_mean_trajectory": mf["baseline_mean_trajectory_test"]["rmse"],
        "interval_coverage": mf["interval"]["coverage_test"],
        "n_test_batches": mf["n_test_batches"],
        "n_fault_batches": mf["n_fault_batches"],
        "fault_rmse": mf.get("fault", {}).get("model", {}).get("rmse"),
        "fault_interval_coverage": mf.get("fault", {}).get("coverage"),
    }
    timings["titer_normal_train_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    for target in ss.harvest.targets:
        h = train_harvest(feats, ss, target)
        out[f"harvest_{target}_rmse"] = h.metrics["test"]["rmse"]
        out[f"harvest_{target}_rmse_baseline"] = h.metrics["baseline_test"]["rmse"]
        out[f"harvest_{target}_interval_coverage"] = h.metrics["interval"]["coverage_test"]
    out["harvest_feature_day"] = ss.harvest.day
    out["harvest_n_test_batches"] = h.metrics["n_test_batches"]
    timings["harvest_train_s"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    eq = build_equipment_health_features(g["fct_equipment_health_daily"], g["fct_work_orders"], pdm.features)
    model = train_pdm(eq, g["fct_work_orders"], pdm)
    timings["pdm_s"] = round(time.perf_counter() - t, 1)
    ev = pdm.evaluation
    hold = model.holdout
    period = (hold["date"].min(), hold["date"].max())
    if "truth_failures" in g:
        failures = g["truth_failures"].select("equipment_id", pl.col("failure_time").dt.date().alias("failure_date"))
        src = "twin _truth/failures.parquet"
    else:
        from ml.features import failure_events

        failures = failure_events(g["fct_work_orders"], pdm.features).select(
            "equipment_id", pl.col("failure_time").dt.date().alias("failure_date")
        )
        src = "CMMS corrective work orders (no _truth found)"
    em = alert_event_metrics(hold, failures, window_days=ev.alert_window_days, lead_days=ev.lead_days, period=period)
    bm = alert_event_metrics(
        hold.with_columns(alert=pl.col("baseline_alert")),
        failures,
        window_days=ev.alert_window_days,
        lead_days=ev.lead_days,
        period=period,
    )
    lead_key = f"recall_{ev.lead_days}d"
    out |= {
        "pdm_recall_7d": em[lead_key],
        "pdm_precision_7d": em["precision"],
        "pdm_median_lead_days": em["median_lead_days"],
        "pdm_recall_any": em["recall_any"],
        "pdm_n_test_failures": em["n_failures"],
        "pdm_alert_days": em["n_alert_days"],
        "pdm_pr_auc": model.metrics["test"]["pr_auc"],
        "pdm_horizon_days": pdm.features.horizon_days,
        "pdm_baseline_recall_7d": bm[lead_key],
        "pdm_baseline_precision_7d": bm["precision"],
        "pdm_baseline_median_lead_days": bm["median_lead_days"],
        "pdm_baseline_pr_auc": model.metrics["baseline_test"]["pr_auc"],
        "pdm_evaluated_against": src,
        "pdm_test_period": [str(period[0]), str(period[1])],
        "pdm_leads_days": em["leads"],
    }
    timings["total_s"] = round(time.perf_counter() - t_all, 1)
    out["timings"] = timings

    def clean(v):
        if isinstance(v, float):
            return None if not np.isfinite(v) else round(v, 4)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return clean(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lake", default=None, help="lake root with gold tables (default: simulate a twin site)")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--bioreactors", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache-dir", default=None)
    a = ap.parse_args(argv)
    print(json.dumps(run(a.lake, a.days, a.bioreactors, a.seed, a.cache_dir), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
