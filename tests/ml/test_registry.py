"""Registry on local disk and the real S3 server: UBJ artifacts, no pickle, promotion gate."""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from ml import pipeline
from ml.registry import ModelRegistry
from ml.train import TrainedModel, fit_booster, matrix, predict, train_titer


def test_model_roundtrip_never_unpickles(lake, ss_features, ss_cfg, monkeypatch):
    model = train_titer(ss_features, ss_cfg)
    reg = ModelRegistry(lake)
    rec = pipeline.register(lake, model, {"features/softsensor": 0})
    assert re.search(rf"models/titer_softsensor/{rec.version}-[0-9a-f]{{8}}\.ubj$", rec.artifact_uri)
    raw = lake.filesystem().cat(lake.fs_path(rec.artifact_uri))
    assert raw[:1] == b"{"  # UBJSON object, not a pickle stream (b"\x80")

    def boom(*a, **k):
        raise AssertionError("unpickling is forbidden")

    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    booster, meta, loaded = reg.load("titer_softsensor", rec.version)
    X = matrix(model.holdout.join(ss_features, on=["batch_id", "ts", "sample_id"], how="left"), meta["features"])
    np.testing.assert_allclose(
        predict(booster, X, meta["features"]), predict(model.booster, X, meta["features"]), rtol=1e-6
    )
    row = reg.table().row(0, named=True)
    assert (
        row["status"] == "candidate"
        and row["code_version"]
        and row["training_data_json"] == '{"features/softsensor":0}'
    )
    assert loaded.metrics["test"]["rmse"] == pytest.approx(model.metrics["test"]["rmse"])


def test_no_pickle_or_joblib_in_ml_code():
    root = Path(__file__).resolve().parents[2]
    files = [
        *root.joinpath("ml").glob("*.py"),
        *root.joinpath("assets").glob("*/__init__.py"),
        root / "bench" / "bench_ml.py",
    ]
    pat = re.compile(r"^\s*(import|from)\s+(pickle|joblib|cloudpickle|dill)\b", re.MULTILINE)
    offenders = [str(f) for f in files if f.exists() and pat.search(f.read_text())]
    assert offenders == []


def _worse(model: TrainedModel, ss_features, ss_cfg) -> TrainedModel:
    """Same features, trained on shuffled labels: clearly worse."""
    from ml.train import softsensor_training_rows

    rows = softsensor_training_rows(ss_features, "titer").filter(
        ~__import__("polars").col("batch_id").is_in(model.meta["split"]["test_batches"])
    )
    y = rows["label__titer"].to_numpy()
    rng = np.random.default_rng(0)
    b = fit_booster(
        matrix(rows, model.meta["features"]),
        rng.permutation(y),
        model.meta["features"],
        dataclasses.replace(ss_cfg.titer.params, n_estimators=5),
    )
    return dataclasses.replace(model, booster=b)


def test_worse_candidate_is_not_promoted(gold_lake_local, ss_cfg):
    lake = gold_lake_local
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    ((good, rec1),) = pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"]).values()
    d1 = pipeline.gate(lake, "titer_softsensor")
    assert d1["promoted"] and ModelRegistry(lake).champion("titer_softsensor").version == rec1.version

    feats = pipeline.read_table(lake, "features", "softsensor")
    bad = _worse(good, feats.df, ss_cfg)
    rec2 = pipeline.register(lake, bad, {"features/softsensor": feats.version})
    d2 = pipeline.gate(lake, "titer_softsensor", rec2.version)
    assert not d2["promoted"] and "does not beat the champion" in d2["reason"]
    assert d2["candidate_value"] > d2["champion_value"]
    reg = ModelRegistry(lake)
    assert reg.champion("titer_softsensor").version == rec1.version
    assert reg.get("titer_softsensor", rec2.version).status == "candidate"
    prom = reg.promotions().sort("decided_at")
    assert prom["decision"].to_list() == ["promoted", "rejected"]
    assert prom["n_eval_rows"][1] > 0 and '"baseline_value"' in prom["evidence_json"][1]


def test_candidate_worse_than_baseline_without_champion_is_rejected(gold_lake_local, ss_cfg):
    lake = gold_lake_local
    pipeline.materialize_softsensor_features(lake, ss_cfg)
    ((good, _),) = pipeline.train_softsensor_models(lake, ss_cfg, targets=["titer"], do_register=False).values()
    feats = pipeline.read_table(lake, "features", "softsensor")
    rec = pipeline.register(lake, _worse(good, feats.df, ss_cfg), {"features/softsensor": feats.version})
    d = pipeline.gate(lake, "titer_softsensor", rec.version)
    assert not d["promoted"] and d["reason"] == "does not beat the baseline" and not d["has_champion_after"]
    assert ModelRegistry(lake).promotions()["decision"].to_list() == ["rejected"]


def test_concurrent_registrations_get_unique_versions_and_files(tmp_path):
    """Four trainings registering the same model at once: versions 1..4, each row pointing at
    its own files (the reviewer saw [1, 1, 2, 2] and overwritten artifacts)."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import xgboost as xgb

    from lakehouse.storage import Lake
    from ml.registry import ModelRegistry

    lake = Lake(str(tmp_path / "lake"))
    reg = ModelRegistry(lake)

    def train_and_register(i: int):
        rng = np.random.default_rng(i)
        x = rng.normal(size=(64, 3))
        booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=x[:, 0] * (i + 1)), num_boost_round=3)
        return reg.register(
            "racy",
            booster,
            {"features": ["a", "b", "c"], "i": i},
            params={},
            metrics={"i": i},
            training_data={},
            kind="regression",
            target="t",
        )

    with ThreadPoolExecutor(4) as pool:
        recs = list(pool.map(train_and_register, range(4)))
    assert sorted(r.version for r in recs) == [1, 2, 3, 4]
    table = reg.table().sort("version")
    assert table["version"].to_list() == [1, 2, 3, 4]
    assert table["artifact_uri"].n_unique() == 4
    for rec in recs:  # every version loads its own model (metrics and meta agree)
        _, meta, loaded = reg.load("racy", rec.version)
        assert meta["i"] == rec.metrics["i"] == loaded.metrics["i"]


def test_a_swapped_artifact_is_refused_at_load_and_names_are_identifiers(tmp_path):
    import numpy as np
    import pytest
    import xgboost as xgb

    from lakehouse.identifiers import InvalidIdentifierError
    from lakehouse.storage import Lake
    from ml.registry import ModelIntegrityError, ModelRegistry

    lake = Lake(str(tmp_path / "lake"))
    reg = ModelRegistry(lake)
    x = np.random.default_rng(0).normal(size=(32, 2))
    boosters = [xgb.train({}, xgb.DMatrix(x, label=x[:, k]), num_boost_round=2) for k in range(2)]
    a = reg.register("m", boosters[0], {}, params={}, metrics={}, training_data={}, kind="regression", target="t")
    b = reg.register("m", boosters[1], {}, params={}, metrics={}, training_data={}, kind="regression", target="t")
    reg.load("m", a.version)
    # someone copies version 2's model file over version 1's
    Path(a.artifact_uri).write_bytes(Path(b.artifact_uri).read_bytes())
    with pytest.raises(ModelIntegrityError, match="does not match its registered sha256"):
        reg.load("m", a.version)
    for bad in ("../../../x", "a/b", "", "x'; drop", ".hidden", "a" * 200):
        with pytest.raises(InvalidIdentifierError):
            reg.register(bad, boosters[0], {}, params={}, metrics={}, training_data={}, kind="regression", target="t")
    assert not (tmp_path / "x").exists()
