"""Scores carry a registered model version; out-of-domain inputs are flagged; verification trips."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl

from ml import pipeline
from ml.domain import apply_domain
from ml.registry import ModelRegistry
from ml.train import matrix
from ml.verification import verify


def _trained_lake(lake, site, ss_cfg, write_gold):
    write_gold(lake, site)
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"])
    assert pipeline.gate(lake, "titer_softsensor")["promoted"]
    return lake


def test_every_prediction_row_carries_a_registered_model_version(lake, site, ss_cfg, gold_writer):
    lake = _trained_lake(lake, site, ss_cfg, gold_writer)
    scores, version = pipeline.score_titer_table(lake, ss_cfg)
    stored = pipeline.read_table(lake, "scores", "titer").df
    assert stored.height == scores.height > 0 and version >= 0
    assert stored["model_name"].null_count() == 0 and stored["model_version"].null_count() == 0
    reg = ModelRegistry(lake).table().select("model_name", pl.col("version").alias("model_version"))
    assert (
        stored.select("model_name", "model_version")
        .unique()
        .join(reg, on=["model_name", "model_version"], how="anti")
        .height
        == 0
    )
    feats_version = pipeline.read_table(lake, "features", "softsensor").version
    assert stored["feature_table_version"].unique().to_list() == [feats_version]
    row = stored.filter(pl.col("row_type") == "step").row(0, named=True)
    contribs = json.loads(row["contributions_json"])
    assert row["top_signal"] in contribs and "_bias" in contribs
    assert row["pi_lower"] <= row["prediction"] <= row["pi_upper"]
    # titer is never negative: predictions and interval lower bounds stop at 0 g/L
    assert stored["prediction"].min() >= 0 and stored["pi_lower"].min() >= 0
    assert (stored["pi_lower"] == 0).any()  # early culture: the interval reaches the physical bound


def test_out_of_domain_input_is_flagged(gold_lake_local, ss_cfg, site):
    lake = gold_lake_local
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"])
    pipeline.gate(lake, "titer_softsensor")
    booster, meta, rec = ModelRegistry(lake).load("titer_softsensor")
    feats = pipeline.read_table(lake, "features", "softsensor").df
    train = feats.filter(pl.col("batch_id").is_in(meta["split"]["train_batches"]) & (pl.col("row_type") == "sample"))
    in_dom = apply_domain(matrix(train, meta["features"]), meta["domain"])
    assert in_dom["out_of_domain"].mean() < 0.1
    # one feature far outside the training design space (temperature setpoint 45 degC)
    odd = train.head(5).with_columns(pl.lit(45.0).alias("sp__temperature_c"))
    from ml.scoring import predict_frame

    out = predict_frame(booster, meta, odd)
    assert out["out_of_domain"].all()
    assert all("sp__temperature_c" in r for r in out["ood_reason"].to_list())


def test_verification_fails_on_drift_and_error(gold_lake_local, ss_cfg):
    lake = gold_lake_local
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"])
    pipeline.gate(lake, "titer_softsensor")
    pipeline.score_titer_table(lake, ss_cfg)
    ok = pipeline.verify_titer(lake, ss_cfg)
    assert ok["n_results"] > 0 and ok["rmse_limit"] > 0 and isinstance(ok["psi"], dict)
    _, meta, _ = ModelRegistry(lake).load("titer_softsensor")
    scores = pipeline.read_table(lake, "scores", "titer").df.filter(pl.col("row_type") == "sample")
    feats = pipeline.read_table(lake, "features", "softsensor").df.filter(pl.col("row_type") == "step")
    drifted = feats.with_columns(pl.col("capacitance") * 3 + 10)
    bad = verify(
        scores.with_columns(pl.col("actual") + 5.0),
        meta,
        drifted,
        dataclasses.replace(ss_cfg.verification, psi_features=("capacitance",)),
    )
    assert not bad["passed"]
    assert any("RMSE" in f for f in bad["failures"]) and any("capacitance" in f for f in bad["failures"])
    assert bad["psi"]["capacitance"] > ss_cfg.verification.psi_limit
    assert np.isfinite(bad["rolling_rmse"])
