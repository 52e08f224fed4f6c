"""Soft sensors for any assay target: model selection by batch-grouped CV without leakage, linear
models as JSON, the gate, intervals on held-out batches, fault batches kept out of training."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.batches import BatchConditionConfig, batch_conditions, normal_batch_ids
from ml.config import softsensor_config_from_dict
from ml.evaluation import for_true_value, mondrian_conformal
from ml.softsensor import (
    SelectionConfig,
    fit_linear,
    fit_mean_trajectory,
    linear_contributions,
    linear_predict,
    mean_trajectory,
    select_estimator,
)
from ml.train import InsufficientData, fit_booster, predict, train_titer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FAST = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.2, "n_jobs": 1, "seed": 0}


def _xgb_fitter(names):
    from ml.config import XGBParams

    p = XGBParams(**FAST)

    def fit(X, y):
        b = fit_booster(X, y, names, p)
        return lambda Xp: predict(b, Xp, names)

    return fit


def _batches(n_batches=12, rows=30, seed=0, nonlinear=False):
    rng = np.random.default_rng(seed)
    X, y, g = [], [], []
    for b in range(n_batches):
        offset = rng.normal(0, 1)  # between-batch shift of every feature
        x = rng.normal(offset, 1.0, (rows, 4))
        t = (np.where(np.abs(x[:, 0]) > 1.0, 3.0, -3.0) if nonlinear else 2.0 * x[:, 0] - x[:, 1]) + rng.normal(
            0, 0.1, rows
        )
        X.append(x)
        y.append(t)
        g += [f"B{b:02d}"] * rows
    return np.vstack(X), np.concatenate(y), np.array(g)


def test_cv_folds_never_share_a_batch_and_linear_models_are_fitted_inside_folds():
    X, y, g = _batches()
    X[g == "B03"] += 50.0  # one batch far off: a scaler fitted on all rows would move its mean
    sel = select_estimator(X, y, g, 4, SelectionConfig(candidates=("ridge", "pls")), _xgb_fitter(["a", "b", "c", "d"]))
    assert len(sel.folds) == 4
    seen = []
    for f in sel.folds:
        assert not set(f["train_batches"]) & set(f["test_batches"])
        seen += f["test_batches"]
        rows = np.isin(g, f["train_batches"])
        # the scaler/PLS of the fold saw its training rows only
        np.testing.assert_allclose(f["linear_mean"], X[rows].mean(axis=0), rtol=1e-9)
    assert sorted(seen) == sorted(set(g))  # every batch held out exactly once
    assert np.isfinite(sel.oof).all()


def test_selection_prefers_the_model_family_that_fits():
    names = ["a", "b", "c", "d"]
    lin = select_estimator(
        *_batches(seed=1), 4, SelectionConfig(candidates=("xgboost", "ridge", "pls")), _xgb_fitter(names)
    )
    assert lin.estimator["kind"] in ("ridge", "pls") and lin.cv_rmse[lin.estimator["kind"]] < 0.2
    step = select_estimator(
        *_batches(seed=2, nonlinear=True), 4, SelectionConfig(candidates=("xgboost", "ridge")), _xgb_fitter(names)
    )
    assert step.estimator["kind"] == "xgboost" and step.cv_rmse["xgboost"] < 0.6 * step.cv_rmse["ridge"]
    blend = select_estimator(*_batches(seed=3), 4, SelectionConfig(), _xgb_fitter(names))
    assert set(blend.cv_rmse) == {"xgboost", "ridge", "pls", "blend"}
    assert blend.cv_rmse[blend.estimator["kind"]] == min(blend.cv_rmse.values())


def test_linear_model_is_json_and_does_not_extrapolate():
    from sklearn.linear_model import Ridge

    X, y, _ = _batches(seed=4)
    lin = fit_linear(X, y, "ridge", 1.0)
    import json

    lin = json.loads(json.dumps(lin))  # plain JSON, no pickle
    Z = (X - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(linear_predict(lin, X), Ridge(alpha=1.0).fit(Z, y).predict(Z), rtol=1e-8, atol=1e-8)
    C = linear_contributions(lin, X)
    np.testing.assert_allclose(C.sum(axis=1), linear_predict(lin, X), rtol=1e-9)
    far = X[:1] * 0 + 1e6  # far outside the training range: clipped to it
    assert abs(linear_predict(lin, far)[0]) < np.abs(y).max() * 3
    nan = np.full((1, 4), np.nan)  # missing: training median
    assert np.isfinite(linear_predict(lin, nan)).all()
    pls = fit_linear(X, y, "pls", 3)
    assert pls["param"] == 3 and np.corrcoef(linear_predict(pls, X), y)[0, 1] > 0.99


def test_conformal_intervals_cover_held_out_batches_and_the_true_value_variant():
    rng = np.random.default_rng(5)
    res_cal = np.abs(rng.normal(0, 1.0, 2000))
    groups = rng.integers(0, 4, 2000)
    c = mondrian_conformal(groups, res_cal, 0.1)
    test = rng.normal(0, 1.0, 5000)
    assert 0.87 <= np.mean(np.abs(test) <= c["global"]) <= 0.93
    # residuals = model error (SD 0.6) + assay noise (SD 0.8): intervals for the truth get narrower
    y = np.full(2000, 10.0)
    model_err, noise = rng.normal(0, 0.6, 2000), rng.normal(0, 0.8, 2000)
    c2 = for_true_value(mondrian_conformal(groups, np.abs(model_err + noise), 0.1), groups, y, 0.08, 0.0)
    cover = np.mean(np.abs(rng.normal(0, 0.6, 5000)) <= c2["global"])
    assert 0.86 <= cover <= 0.94 and c2["covers"] == "true value"


def test_mean_trajectory_baseline():
    traj = fit_mean_trajectory(np.array([1, 2, 5, 6, 9]), np.array([10.0, 20.0, 50.0, 70.0, 90.0]), 4.0)
    assert traj["centres_h"] == [2.0, 6.0, 10.0] and traj["means"] == [15.0, 60.0, 90.0]
    np.testing.assert_allclose(mean_trajectory(traj, np.array([0.0, 4.0, 20.0])), [15.0, 37.5, 90.0])


def _site(n_batches=14, seed=6):
    """Gold-shaped features of a toy plant: titer grows with a cumulative feed; two fault batches."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_batches):
        rate = rng.uniform(0.8, 1.2)
        start = T0 + timedelta(days=3 * b)
        for h in range(0, 96, 4):
            fed = rate * max(h - 24, 0)
            rows.append(
                {
                    "batch_id": f"B{b:02d}",
                    "unit_id": "U1",
                    "ts": start + timedelta(hours=h),
                    "culture_age_h": float(h),
                    "culture_day": h // 24,
                    "phase": None,
                    "row_type": "sample",
                    "sample_id": f"B{b:02d}-{h}",
                    "sample_time": start + timedelta(hours=h),
                    "result_time": start + timedelta(hours=h + 8),
                    "fed__integral": fed,
                    "induced": float(h >= 24),
                    "label__titer": 3.0 * fed + rng.normal(0, 2) + (500.0 if b in (4, 9) and h > 48 else 0.0),
                    "baseline__titer": None,
                }
            )
    df = pl.DataFrame(rows).with_columns(
        pl.col("ts", "sample_time", "result_time").cast(pl.Datetime("us", "UTC")),
        pl.col("baseline__titer").cast(pl.Float64),
        pl.col("phase").cast(pl.String),
        pl.col("culture_day").cast(pl.Int32),
    )
    steps = df.with_columns(
        pl.lit("step").alias("row_type"),
        pl.lit(None, dtype=pl.String).alias("sample_id"),
        pl.lit(None, dtype=pl.Float64).alias("label__titer"),
    )
    batches = pl.DataFrame(
        {
            "batch_id": [f"B{b:02d}" for b in range(n_batches)],
            "status": ["Deviation" if b in (4, 9) else "Completed" for b in range(n_batches)],
        }
    )
    return pl.concat([df, steps]), batches


def _cfg(**titer):
    # feature names: culture_age_h, induced, fed__integral (the toy table's columns)
    base = {
        "features": {
            "signals": ["induced"],
            "integrals": ["fed"],
            "windows_minutes": [],
            "rate_of_change": False,
            "label_analytes": ["titer"],
            "baseline_analytes": ["titer"],
        },
        "titer": {"params": FAST, "selection": {"candidates": ["xgboost", "ridge"]}, **titer},
        "validation": {"n_splits": 3, "test_fraction": 0.25, "min_test_batches": 2},
        "batches": {"normal_statuses": ["Completed"]},
    }
    return softsensor_config_from_dict(base)


def test_fault_batches_never_train_and_are_reported_apart():
    feats, batches = _site()
    cfg = _cfg(gate="induced > 0")
    cond = batch_conditions(batches, None, cfg.batches)
    assert normal_batch_ids(cond) == sorted(set(batches["batch_id"]) - {"B04", "B09"})
    m = train_titer(feats, cfg, conditions=cond)
    split = m.meta["split"]
    assert split["fault_batches"] == ["B04", "B09"]
    assert not set(split["fault_batches"]) & (set(split["train_batches"]) | set(split["test_batches"]))
    assert m.metrics["n_fault_batches"] == 2 and m.metrics["fault"]["n_batches"] == 2
    # the 500 mg/L fault offset is what the fault figures show, not what the model learnt
    assert m.metrics["fault"]["model"]["rmse"] > 5 * m.metrics["test"]["rmse"]
    assert m.metrics["selection"]["chosen"] in ("ridge", "blend", "xgboost")
    assert {"baseline_test", "baseline_mean_trajectory_test"} <= set(m.metrics)
    # gate: rows before induction are neither trained on nor predicted; they carry the mean trajectory
    assert (m.holdout["culture_age_h"] >= 24).all()
    gated = m.trajectories.filter(pl.col("gated"))
    assert gated.height and (gated["culture_age_h"] < 24).all()
    np.testing.assert_allclose(gated["pred"].to_numpy(), gated["baseline_mean_trajectory"].to_numpy())
    assert gated["lo"].is_nan().all()


def test_too_few_batches_is_a_state_not_a_crash():
    feats, batches = _site(n_batches=4)
    cfg = _cfg()
    cond = batch_conditions(batches.with_columns(pl.lit("Deviation").alias("status")), None, cfg.batches)
    with pytest.raises(InsufficientData, match="insufficient data"):
        train_titer(feats, cfg, conditions=cond)


def test_batch_conditions_from_status_and_recorded_deviations():
    b = pl.DataFrame(
        {
            "batch_id": ["A", "B", "C", "D"],
            "status": ["Completed", "Aborted", "completed", "Completed"],
            "n_deviation_work_orders": [0, 0, 0, 2],
        }
    )
    dev = pl.DataFrame({"batch_id": ["C"], "recorded_onset_ts": [T0]}).with_columns(
        pl.col("recorded_onset_ts").cast(pl.Datetime("us", "UTC"))
    )
    c = batch_conditions(b, dev, BatchConditionConfig(normal_statuses=("Completed",)))
    assert c["condition"].to_list() == ["normal", "fault", "fault", "fault"]
    assert c.filter(pl.col("batch_id") == "C")["recorded_onset_ts"][0] == T0
    assert "status Aborted" in c.filter(pl.col("batch_id") == "B")["reason"][0]
    lenient = batch_conditions(b, None, dataclasses.replace(BatchConditionConfig(), exclude_recorded_deviations=False))
    assert lenient["condition"].to_list() == ["normal"] * 4
