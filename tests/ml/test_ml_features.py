"""Feature semantics: time windows, rates, integrals, as-of label joins, config-driven signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.config import DerivedSignal, EquipmentFeatureConfig, FeatureConfig
from ml.features import (
    build_equipment_health_features,
    build_harvest_dataset,
    compute_online_features,
    softsensor_feature_names,
)
from ml.schemas import equipment_health_schema, softsensor_schema

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _readings(n=180, grid=1, **signals):
    ts = [T0 + timedelta(minutes=grid * i) for i in range(n)]
    data = {
        "batch_id": "B1",
        "unit_id": "U1",
        "ts": ts,
        "culture_age_h": [grid * i / 60 for i in range(n)],
        "phase": ["Batch"] * n,
    }
    data.update({k: v for k, v in signals.items()})
    return pl.DataFrame(data).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_rolling_rate_and_integral_semantics():
    n = 180
    x = np.arange(n, dtype=float) * 0.5  # slope 0.5 per minute = 30 per hour
    cfg = FeatureConfig(signals=("x",), windows_minutes=(60,), integrals=("x",), setpoints=(), phases=("Batch",))
    f = compute_online_features(_readings(n, x=x), pl.DataFrame({"batch_id": ["B1"]}), cfg)
    row = f.row(120, named=True)
    # window (t - 60 min, t] holds rows 61..120
    assert row["x__mean_60m"] == pytest.approx(np.mean(x[61:121]))
    assert row["x__std_60m"] == pytest.approx(np.std(x[61:121], ddof=1))
    assert row["x__roc_60m"] == pytest.approx(30.0)  # exact slope per hour for a linear signal
    # right-Riemann cumulative integral in value x hours
    assert row["x__integral"] == pytest.approx(np.sum(x[1:121]) / 60)
    assert f.row(0, named=True)["x__roc_60m"] is None  # one value: no rate
    assert f["phase__Batch"].to_list() == [1.0] * n


def test_missing_signal_and_derived_signal_are_config_driven():
    """A plant without some signals (and with a derived one) needs no code change."""
    cfg = FeatureConfig(
        signals=("a", "not_in_this_plant"),
        derived=(DerivedSignal("twice_a", "2 * a"),),
        windows_minutes=(30,),
        setpoints=("temperature_c",),
        phases=("Batch",),
    )
    batches = pl.DataFrame({"batch_id": ["B1"], "temperature_c": [36.5]})
    f = compute_online_features(_readings(60, a=np.linspace(0, 1, 60)), batches, cfg)
    assert f["not_in_this_plant__mean_30m"].null_count() == f.height
    assert f["twice_a"].to_list() == pytest.approx((2 * np.linspace(0, 1, 60)).tolist())
    assert f["sp__temperature_c"].unique().to_list() == [36.5]
    assert "twice_a__roc_30m" in softsensor_feature_names(cfg)


def test_label_rows_use_features_at_sample_time_and_baseline_by_result_time(site, ss_cfg, ss_features):
    f = ss_features
    softsensor_schema(ss_cfg.features).validate(f)
    samples = f.filter(pl.col("row_type") == "sample")
    assert samples.height > 0
    # features as of the sample: the grid row is at or before sample_time, within tolerance
    assert (samples["ts"] <= samples["sample_time"]).all()
    assert ((samples["sample_time"] - samples["ts"]).dt.total_minutes() <= ss_cfg.features.asof_tolerance_minutes).all()
    # carry-forward baseline: only results approved (result_time) before the row's time are visible
    titers = site.fct_assay_results.filter(pl.col("analyte") == "titer")
    for r in samples.filter(pl.col("label__titer").is_not_null()).head(40).iter_rows(named=True):
        visible = titers.filter((pl.col("batch_id") == r["batch_id"]) & (pl.col("result_time") <= r["sample_time"]))
        expected = visible.sort("result_time")["value"][-1] if visible.height else None
        assert r["baseline__titer"] == (pytest.approx(expected) if expected is not None else None)
        own = titers.filter(pl.col("sample_id") == r["sample_id"])["value"][0]
        assert r["label__titer"] == pytest.approx(own)


def test_step_rows_every_step_minutes(ss_cfg, ss_features):
    steps = ss_features.filter(pl.col("row_type") == "step").sort("batch_id", "ts")
    gaps = steps.group_by("batch_id").agg(pl.col("ts").diff().dt.total_minutes().drop_nulls().unique())
    assert all(set(g) == {ss_cfg.features.step_minutes} for g in gaps["ts"].to_list())


def test_harvest_dataset_uses_data_by_day_d(ss_cfg, ss_features):
    ds = build_harvest_dataset(ss_features, ss_cfg.harvest)
    assert ds["batch_id"].n_unique() == ds.height
    assert (ds["culture_age_h"] <= ss_cfg.harvest.day * 24).all()
    assert ds["label__g0f"].null_count() == 0


def test_equipment_labels_and_causal_features():
    days = [T0.date() + timedelta(days=i) for i in range(40)]
    health = pl.DataFrame(
        {
            "equipment_id": ["E1"] * 40,
            "equipment_type": ["agitator"] * 40,
            "date": days,
            "vib": [1.0 + 0.1 * i for i in range(40)],
        }
    )
    wo = pl.DataFrame(
        {
            "work_order_id": ["W1"],
            "equipment_id": ["E1"],
            "equipment_type": ["agitator"],
            "work_type": ["corrective"],
            "failure_mode": ["bearing"],
            "opened_at": [T0 + timedelta(days=30, hours=5)],
            "closed_at": [T0 + timedelta(days=32, hours=1)],
        }
    ).with_columns(pl.col("opened_at", "closed_at").cast(pl.Datetime("us", "UTC")))
    cfg = EquipmentFeatureConfig(signals=("vib",), windows_days=(3,), horizon_days=7, equipment_types=("agitator",))
    f = build_equipment_health_features(health, wo, cfg)
    equipment_health_schema(cfg).validate(f)
    lab = dict(zip(f["date"].to_list(), f["label__failure_within_h"].to_list(), strict=True))
    assert lab[days[22]] == 0 and lab[days[23]] == 1 and lab[days[29]] == 1 and lab[days[30]] == 0
    rep = dict(zip(f["date"].to_list(), f["in_repair"].to_list(), strict=True))
    assert rep[days[30]] and rep[days[31]] and not rep[days[32]] and not rep[days[29]]
    slope = f.filter(pl.col("date") == days[10])["vib__slope_3d"][0]
    assert slope == pytest.approx(0.1)
    # causal: changing the future does not change today's features
    f2 = build_equipment_health_features(
        health.with_columns(pl.when(pl.col("date") > days[20]).then(99.0).otherwise(pl.col("vib")).alias("vib")),
        wo,
        cfg,
    )
    cols = [c for c in f.columns if c.startswith("vib")]
    assert f.filter(pl.col("date") <= days[20]).select(cols).equals(f2.filter(pl.col("date") <= days[20]).select(cols))


def test_equipment_features_schema(pdm_cfg, eq_features):
    equipment_health_schema(pdm_cfg.features).validate(eq_features)
    assert eq_features["label__failure_within_h"].sum() > 0


def test_softsensor_features_built_in_batch_chunks_equal_the_whole(site, ss_cfg):
    """The table is built a few batches at a time (memory); every feature is within a batch, so
    the chunked build gives exactly the table built at once."""
    from polars.testing import assert_frame_equal

    from ml.features import build_softsensor_features

    args = (site.fct_process_readings, site.dim_batches, ss_cfg.features, site.fct_assay_results)
    whole = build_softsensor_features(*args, batches_per_chunk=None)
    assert site.fct_process_readings["batch_id"].n_unique() > 3
    assert_frame_equal(build_softsensor_features(*args, batches_per_chunk=2), whole)
    assert whole.filter(pl.col("row_type") == "sample").height > 0
