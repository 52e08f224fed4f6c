"""MLflow is the model registry: a real SQLite tracking store in the lake, the xgboost flavour in
UBJ, the alias ``champion``, and score rows an ML user reproduces bit for bit from MLflow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from ml import pipeline
from ml.registry import ModelRegistry
from ml.train import matrix


def _mlflow_env(monkeypatch, reg: ModelRegistry) -> str:
    uri = reg.tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    return uri


def test_champion_in_mlflow_reproduces_score_rows_bit_for_bit(gold_lake_local, ss_cfg, monkeypatch):
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb

    lake = gold_lake_local
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    ((model, rec),) = pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"]).values()
    assert pipeline.gate(lake, "titer_softsensor")["promoted"]
    scores, _ = pipeline.score_titer_table(lake, ss_cfg, explain="none")
    reg = ModelRegistry(lake)
    uri = _mlflow_env(monkeypatch, reg)
    assert uri == f"sqlite:///{lake.root}/mlflow/mlflow.db" and Path(lake.root, "mlflow", "mlflow.db").exists()

    # what an ML user does: load the champion by alias and predict the feature rows
    booster = mlflow.xgboost.load_model("models:/titer_softsensor@champion")
    assert isinstance(booster, xgb.Booster) and booster.attr("model_version") == str(rec.version)
    feats = pipeline.read_table(lake, "features", "softsensor").df
    names = booster.feature_names
    assert names == model.meta["features"]
    X = np.asarray(matrix(feats, names), np.float32)
    mine = booster.predict(xgb.DMatrix(X, feature_names=names, missing=np.nan))
    assert mine.shape[0] == scores.height > 0
    assert np.array_equal(mine.astype(np.float64), scores["prediction"].to_numpy())  # bit for bit

    # score rows name the MLflow model version and the data they read
    assert scores["model_uri"].unique().to_list() == [f"models:/titer_softsensor/{rec.version}"]
    inputs = json.loads(scores["input_versions_json"][0])
    assert (
        set(inputs)
        == {
            "features/softsensor",
            "gold/fct_process_readings",
            "gold/dim_batches",
            "gold/fct_assay_results",
        }
        and inputs["features/softsensor"] == pipeline.read_table(lake, "features", "softsensor").version
    )

    # the run: params, CV/test metrics and baseline, training data versions, git SHA, features
    client = reg.client
    mv = client.get_model_version_by_alias("titer_softsensor", "champion")
    run = client.get_run(mv.run_id)
    assert run.data.metrics["cv.rmse"] == model.metrics["cv"]["rmse"]
    assert run.data.metrics["test.rmse"] == model.metrics["test"]["rmse"]
    assert run.data.metrics["baseline_test.rmse"] == model.metrics["baseline_test"]["rmse"]
    assert run.data.params["max_depth"] == str(model.params["max_depth"])
    assert run.data.tags["mlflow.source.git.commit"] == rec.code_version
    assert json.loads(run.data.tags["lakehouse.features"]) == model.meta["features"]
    assert json.loads(run.data.tags["lakehouse.training_data"]) == rec.training_data
    assert rec.training_data["features/softsensor"] >= 0 and "gold/fct_assay_results" in rec.training_data
    # the logged model: xgboost flavour, UBJ file, no pickle anywhere in the artifacts
    art = Path(run.info.artifact_uri.removeprefix("file://"))
    mlmodel = yaml.safe_load((art / "model" / "MLmodel").read_text())
    assert mlmodel["flavors"]["xgboost"]["model_format"] == "ubj"
    assert (art / "model" / "model.ubj").read_bytes()[:1] == b"{"
    assert str(art).startswith(str(Path(lake.root, "mlflow", "artifacts")))  # artifacts in the lake
    assert not [p for p in art.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]

    # registry/models is a view of MLflow's registry, with paths relative to the lake root
    view = pl.from_arrow(lake.read_delta(lake.uri("registry", "models")))
    assert view.select("model_name", "version", "status").sort("version").to_dicts() == (
        reg.table().select("model_name", "version", "status").sort("version").to_dicts()
    )
    assert view["status"].to_list() == ["champion"] and not view["artifact_uri"][0].startswith("/")
    assert view["artifact_uri"][0].startswith("models/titer_softsensor/")


def test_a_json_model_is_registered_without_pickle(lake_local):
    reg = ModelRegistry(lake_local)
    doc = {"type": "ridge", "coef": [0.5, -1.25], "intercept": 2.0}
    rec = reg.register(
        "ridge_titer",
        doc,
        {"features": ["a", "b"], "kind": "regression"},
        params={"alpha": 1.0},
        metrics={"cv": {"rmse": 0.3}},
        training_data={"features/softsensor": 3},
        kind="regression",
        target="titer",
    )
    loaded, meta, again = reg.load("ridge_titer", rec.version)
    assert loaded == doc and meta["features"] == ["a", "b"] and again.model_format == "json"
    assert re.fullmatch(rf"models/ridge_titer/{rec.version}-[0-9a-f]{{8}}\.json", rec.artifact_path)
    run = reg.client.get_run(rec.run_id)
    art = Path(run.info.artifact_uri.removeprefix("file://"))
    assert json.loads((art / "model" / "model.json").read_text()) == doc
    assert run.data.metrics["cv.rmse"] == 0.3 and run.data.params["alpha"] == "1.0"
