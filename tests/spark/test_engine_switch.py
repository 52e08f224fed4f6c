"""Engine switch: the feature assets and the titer model asset under ``SparkResource()`` vs
``SparkResource(engine="spark")`` on the same gold lake (SeaweedFS S3) give the same feature
tables and a Spark-trained model in the same registry, format and tolerance (docs/spark.md)."""

from __future__ import annotations

import os

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from tests.ml.conftest import FAST_PARAMS, write_gold

pytestmark = [pytest.mark.spark, pytest.mark.s3]

SS_KEYS = ["batch_id", "ts", "row_type", "sample_id"]
EQ_KEYS = ["equipment_id", "date"]


@pytest.fixture(scope="module")
def site():
    from tests.support.ml_site import make_site

    return make_site(
        n_batches=12, n_units=3, grid_minutes=10, seed=3, health_days=150
    )  # tests/ml: 300 days of health data


@pytest.fixture
def ml_env(monkeypatch, tmp_path):
    """config/ml/*.yaml with the fast models of tests/ml (same features)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "config" / "ml"
    ss = yaml.safe_load((root / "softsensor.yaml").read_text())
    # no row/column subsampling: the documented Spark-vs-single-node tolerance (docs/spark.md)
    ss["titer"]["params"] = FAST_PARAMS | {"subsample": 1.0, "colsample_bytree": 1.0}
    ss["validation"]["n_splits"] = 2
    ss["features"]["step_minutes"] = 120
    pdm = yaml.safe_load((root / "pdm.yaml").read_text())
    (tmp_path / "softsensor.yaml").write_text(yaml.safe_dump(ss))
    (tmp_path / "pdm.yaml").write_text(yaml.safe_dump(pdm))
    monkeypatch.setenv("LAKEHOUSE_ML_SOFTSENSOR_CONFIG", str(tmp_path / "softsensor.yaml"))
    monkeypatch.setenv("LAKEHOUSE_ML_PDM_CONFIG", str(tmp_path / "pdm.yaml"))


def _run(lake, engine: str, with_gate: bool) -> dg.ExecuteInProcessResult:
    import assets.features
    import assets.models
    from assets.resources import LakeResource, SparkResource

    models = assets.models.build_defs()
    titer_key = dg.AssetKey(["models", "titer_softsensor"])
    model_titer = models.get_assets_def(titer_key)
    titer_gate = next(c for c in models.asset_checks if any(k.asset_key == titer_key for k in c.check_keys))

    s3 = lake.s3
    res = LakeResource(
        root_uri=lake.root,
        s3_endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        aws_region=s3.region,
    )
    checks = [*assets.features.defs.asset_checks, *([titer_gate] if with_gate else [])]
    return dg.materialize(
        [assets.features.features_softsensor, assets.features.features_equipment_health, model_titer, *checks],
        resources={"lake": res, "spark": SparkResource(engine=engine)},
    )


def _features(lake, name: str, keys: list[str]) -> tuple[pl.DataFrame, int, dict]:
    from ml.pipeline import read_table

    t = read_table(lake, "features", name)
    hist = lake.delta_table(lake.uri("features", name)).history(1)[0]
    return t.df.sort(keys), t.version, hist


def _checks(result) -> dict[str, bool]:
    return {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}


def _md(result, node: str) -> dict:
    return result.asset_materializations_for_node(node)[0].metadata


def test_features_and_titer_model_same_on_both_engines(spark, lake_s3, site, ml_env):
    from ml.config import load_softsensor_config
    from ml.pipeline import features_config_mismatch
    from ml.registry import ModelRegistry
    from ml.train import matrix, predict

    write_gold(lake_s3, site)

    # ---- default engine (polars + xgboost.train)
    r1 = _run(lake_s3, "default", with_gate=False)
    assert r1.success and all(_checks(r1).values()), _checks(r1)
    assert _md(r1, "features__softsensor")["engine"].value == "default"
    ss1, ss1_v, ss1_h = _features(lake_s3, "softsensor", SS_KEYS)
    eq1, eq1_v, _ = _features(lake_s3, "equipment_health", EQ_KEYS)

    # ---- Spark engine (bridge reads, applyInArrow kernels, bridge writes, xgboost.spark)
    r2 = _run(lake_s3, "spark", with_gate=True)
    checks = _checks(r2)
    assert r2.success and all(checks.values()), checks  # pandera checks + promotion gate
    assert {"softsensor_features_schema", "equipment_features_schema", "promotion_gate"} <= set(checks)
    for node in ("features__softsensor", "features__equipment_health", "models__titer_softsensor"):
        assert _md(r2, node)["engine"].value == "spark"
    md1, md2 = _md(r1, "features__softsensor"), _md(r2, "features__softsensor")
    for k in ("dagster/row_count", "step_rows", "sample_rows", "batches", "n_features", "input_versions"):
        assert md2[k] == md1[k], k
    for k in ("dagster/row_count", "equipment", "positive_rows"):
        assert _md(r2, "features__equipment_health")[k] == _md(r1, "features__equipment_health")[k], k

    # identical feature tables: same rows, schema, values within 1e-9, same lineage metadata
    ss2, ss2_v, ss2_h = _features(lake_s3, "softsensor", SS_KEYS)
    eq2, eq2_v, eq2_h = _features(lake_s3, "equipment_health", EQ_KEYS)
    assert (ss2_v, eq2_v) == (ss1_v + 1, eq1_v + 1)
    for ref, got in ((ss1, ss2), (eq1, eq2)):
        assert got.height == ref.height > 0
        assert got.schema == ref.schema
        assert_frame_equal(ref, got, abs_tol=1e-9, rel_tol=1e-9)
    assert ss2_h["compute_engine"] == eq2_h["compute_engine"] == "spark"
    assert ss2_h["features_config"] == ss1_h["features_config"] and ss2_h["inputs"] == ss1_h["inputs"]
    cfg = load_softsensor_config(os.environ["LAKEHOUSE_ML_SOFTSENSOR_CONFIG"])
    assert features_config_mismatch(lake_s3, "features", "softsensor", cfg.features) is None

    # the Spark-trained titer model: same registry, UBJ artefact, same split/features, documented tolerance
    reg = ModelRegistry(lake_s3)
    name = cfg.titer.name
    b1, meta1, rec1 = reg.load(name, 1)
    b2, meta2, rec2 = reg.load(name, 2)
    assert "/titer_softsensor/2-" in rec2.artifact_uri and "/titer_softsensor/1-" in rec1.artifact_uri
    with lake_s3.filesystem().open(lake_s3.fs_path(rec2.artifact_uri), "rb") as fh:
        assert fh.read(1) == b"{"  # UBJSON object, not a pickle
    assert rec2.params["engine"] == "spark" and "engine" not in rec1.params
    assert rec2.training_data == {**rec1.training_data, "features/softsensor": ss2_v}
    assert meta2["features"] == meta1["features"] and meta2["split"] == meta1["split"]
    assert reg.champion(name).version == 2
    hold = ss2.filter(
        (pl.col("row_type") == "sample")
        & pl.col("batch_id").is_in(meta1["split"]["test_batches"])
        & pl.col(f"label__{meta1['target']}").is_not_null()
    )
    X = matrix(hold, meta1["features"])
    y = hold[f"label__{meta1['target']}"].to_numpy().astype(float)
    p1, p2 = predict(b1, X, meta1["features"]), predict(b2, X, meta2["features"])
    rmse1, rmse2 = (float(np.sqrt(np.mean((p - y) ** 2))) for p in (p1, p2))
    assert len(y) >= 10
    assert rmse2 <= 1.05 * rmse1, (rmse1, rmse2)
    assert np.corrcoef(p1, p2)[0, 1] > 0.995
