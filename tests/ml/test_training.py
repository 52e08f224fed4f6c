"""Validation honesty: grouped by batch, forward in time; PdM time-ordered with a threshold from
the development period only."""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.evaluation import alert_event_metrics, forward_split, group_kfold
from ml.train import (
    batch_starts,
    softsensor_training_rows,
    train_harvest,
    train_pdm,
    train_titer,
)


def test_no_batch_leaks_across_cv_folds(ss_features):
    rows = softsensor_training_rows(ss_features, "titer")
    groups = rows["batch_id"].to_numpy()
    folds = group_kfold(groups, 3)
    assert len(folds) == 3
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
    covered = np.concatenate([te for _, te in folds])
    assert sorted(covered.tolist()) == list(range(len(groups)))


def test_forward_split_tests_on_later_batches(ss_features):
    starts = batch_starts(ss_features)
    train, test = forward_split(starts, 0.25, 2)
    assert set(train).isdisjoint(test) and len(test) >= 2
    s = dict(starts.iter_rows())
    assert max(s[b] for b in train) <= min(s[b] for b in test)


def test_titer_model_beats_carry_forward_and_reports_everything(ss_features, ss_cfg):
    m = train_titer(ss_features, ss_cfg)
    met = m.metrics
    assert set(m.meta["split"]["train_batches"]).isdisjoint(m.meta["split"]["test_batches"])
    assert met["test"]["rmse"] < met["baseline_test"]["rmse"]
    for k in ("rmse", "mae", "r2"):
        assert np.isfinite(met["test"][k])
    assert met["test_by_culture_day"] and 0 <= met["interval"]["coverage_test"] <= 1
    assert set(m.holdout["batch_id"].unique()) <= set(m.meta["split"]["test_batches"])
    assert "capacitance" in met["top_signals"]


def test_harvest_model_with_mean_baseline(ss_features, ss_cfg):
    m = train_harvest(ss_features, ss_cfg, "g0f")
    assert m.meta["feature_day"] == ss_cfg.harvest.day
    assert np.isfinite(m.metrics["baseline_test"]["rmse"]) and m.metrics["n_test_batches"] >= 2


def test_pdm_time_ordered_and_imbalance_handled(eq_features, site, pdm_cfg):
    m = train_pdm(eq_features, site.fct_work_orders, pdm_cfg)
    met = m.metrics
    assert met["scale_pos_weight"] > 1
    assert m.holdout["date"].min().isoformat() > met["split"]["development_end"]
    assert 0 < met["threshold"] < 1
    assert np.isfinite(met["test"]["pr_auc"])


def test_alert_event_metrics_lead_and_precision():
    d0 = pl.date(2026, 1, 1)
    dates = pl.date_range(pl.date(2026, 1, 1), pl.date(2026, 2, 28), eager=True)
    alerts = pl.DataFrame({"equipment_id": "E1", "date": dates}).with_columns(
        alert=pl.col("date").is_between(pl.date(2026, 1, 20), pl.date(2026, 1, 29))  # 10 alert days
        | (pl.col("date") == pl.date(2026, 2, 20))
    )  # one false alert
    fails = pl.DataFrame({"equipment_id": ["E1"], "failure_date": [pl.select(pl.date(2026, 1, 30)).item()]})
    m = alert_event_metrics(alerts, fails, window_days=21, lead_days=7)
    assert m["leads"] == [10.0] and m["recall_7d"] == 1.0
    assert m["precision"] == 10 / 11
    del d0


def test_pdm_without_failures_says_so_clearly():
    """A plant whose CMMS export has no corrective work orders gets a clear error, not a crash."""
    import polars as pl
    import pytest as _pytest

    from ml.config import load_pdm_config
    from ml.train import train_pdm

    cfg = load_pdm_config()
    eq = pl.DataFrame(
        {"equipment_id": ["X-AGT"], "date": [__import__("datetime").date(2026, 1, 1)], "in_repair": [False]}
    )
    wos = pl.DataFrame(
        schema={
            "equipment_id": pl.Utf8,
            "work_type": pl.Utf8,
            "failure_mode": pl.Utf8,
            "opened_at": pl.Datetime("us", "UTC"),
            "closed_at": pl.Datetime("us", "UTC"),
        }
    )
    with _pytest.raises(ValueError, match="corrective work orders"):
        train_pdm(eq, wos, cfg)
