"""The golden-batch and twin assets, materialized in-process on a local lake.

Gold tables are written directly from twin-built frames (no ingestion/dbt), plus the
simulator truth that the evaluation asset reads.
"""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

import ml.golden as gb
from assets.resources import LakeResource

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _write(lake, layer, name, df):
    lake.write_delta(lake.uri(layer, name), pa.Table.from_pandas(df, preserve_index=False), mode="overwrite")


@pytest.fixture
def small_config(tmp_path, monkeypatch, cfg):
    c = json.loads(json.dumps(cfg))
    c["doe"].update(
        n_runs=250,
        n_candidates=2000,
        verify_replicates=12,
        surrogate={"n_estimators": 60, "max_depth": 4, "learning_rate": 0.15, "folds": 2},
    )
    c["calibration"].update(max_batches=6, max_nfev=4, dt_h=1.0)
    path = tmp_path / "golden.yaml"
    path.write_text(yaml.safe_dump(c))
    monkeypatch.setattr(gb, "CONFIG_PATH", path)
    return c


@pytest.fixture
def gold_lake(lake_local, history, running):
    keep = set(history["truth"]["batch_id"][:30])  # a smaller history keeps the test quick
    hist = {k: v[v["batch_id"].isin(keep)] for k, v in history.items() if isinstance(v, pd.DataFrame)}
    frames = [hist, running]
    batches = pd.concat([f["batches"] for f in frames], ignore_index=True)
    truth = pd.concat([f["truth"] for f in frames], ignore_index=True)
    batches["n_deviation_work_orders"] = truth["deviation_type"].eq("feed_pump_failure").astype(int).to_numpy()
    start = {b: T0 + pd.Timedelta(days=16 * i) for i, b in enumerate(batches["batch_id"])}
    batches["inoculation_ts"] = batches["batch_id"].map(start)
    _write(lake_local, "gold", "dim_batches", batches)
    readings = pd.concat([f["readings"] for f in frames], ignore_index=True)
    _write(lake_local, "gold", "fct_process_readings", readings)
    assays = pd.concat([f["assays"] for f in frames], ignore_index=True)
    st = assays["batch_id"].map(start)
    assays["sample_time"] = st + pd.to_timedelta(assays["culture_age_h"], unit="h")
    assays["result_time"] = st + pd.to_timedelta(assays["result_age_h"], unit="h")
    _write(lake_local, "gold", "fct_assay_results", assays.drop(columns=["result_age_h"]))
    inoc = truth["batch_id"].map(start)
    tr = pd.DataFrame(
        {
            "batch_id": truth["batch_id"],
            "inoculation": inoc,
            "culture_end": inoc + pd.to_timedelta(truth["end_h"], unit="h"),
            "deviation_type": truth["deviation_type"].replace("", None),
            "deviation_onset": inoc + pd.to_timedelta(truth["onset_h"], unit="h"),
            "lost": truth["lost"],
        }
    )
    fs = lake_local.filesystem()
    d = lake_local.fs_path(lake_local.uri("landing", "_truth"))
    fs.makedirs(d, exist_ok=True)
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(tr, preserve_index=False), d + "/batches.parquet")
    return lake_local


def test_golden_and_twin_assets_materialize(gold_lake, small_config):
    from assets.golden import defs as golden_defs
    from assets.twin import defs as twin_defs

    assets = [*golden_defs.assets, *twin_defs.assets]
    checks = [*golden_defs.asset_checks, *twin_defs.asset_checks]
    res = dg.materialize(
        [*assets, *checks],
        resources={"lake": LakeResource(root_uri=gold_lake.root)},
        run_config=dg.RunConfig(
            ops={
                "twin__insilico_doe": {"config": {"n_runs": 250}},
                "twin__calibration": {"config": {"max_batches": 5, "max_nfev": 3}},
            }
        ),
    )
    assert res.success
    mat = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in res.get_asset_materialization_events()
    }
    assert {
        "golden/batch_qualification",
        "golden/profile",
        "golden/mspc_model",
        "golden/deviation_scores",
        "golden/alarms",
        "golden/mspc_evaluation",
        "twin/calibration",
        "twin/insilico_doe",
        "twin/setpoint_recommendation",
    } <= set(mat)
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in res.get_asset_check_evaluations()}
    assert checks[("twin/setpoint_recommendation", "recommendation_inside_design_space")]
    assert checks[("golden/mspc_model", "cv_false_alarm_within_target")]
    assert checks[("golden/profile", "enough_golden_batches")]
    assert ("golden/mspc_evaluation", "alarm_goals_met") in checks  # evaluated: the lake has the truth
    # the lake holds what the contract says
    lake = gold_lake
    for layer, name in [
        ("golden", "batch_qualification"),
        ("golden", "profile"),
        ("scores", "mspc_deviation"),
        ("golden", "alarms"),
        ("golden", "mspc_evaluation"),
        ("insilico", "calibration"),
        ("insilico", "doe_runs"),
        ("insilico", "setpoint_recommendation"),
    ]:
        assert lake.delta_exists(lake.uri(layer, name)), (layer, name)
    scores = lake.read_delta(lake.uri("scores", "mspc_deviation")).to_pandas()
    assert {"model_name", "model_version", "t2", "spe", "t2_limit", "spe_limit", "alarm"} <= set(scores.columns)
    assert lake.read_delta(lake.uri("insilico", "doe_runs")).num_rows == 250
    ev = mat["golden/mspc_evaluation"]
    assert ev["evaluated"].value is True
    assert ev["detected_fraction"].value >= 0.8
    assert "data:image/png;base64," in mat["golden/profile"]["plot"].value
    assert "data:image/png;base64," in mat["twin/setpoint_recommendation"]["response_surface"].value
    fs = lake.filesystem()
    assert fs.exists(lake.fs_path(lake.uri("models", "mspc_bem", "latest.json")))
    rec = lake.read_delta(lake.uri("insilico", "setpoint_recommendation")).to_pandas().iloc[-1]
    assert bool(rec["inside_design_space"])
    assert np.isfinite(rec["verified_titer_mean"])
    # a real plant: no truth -> nothing to evaluate -> the goals check is skipped (no result), never passed
    fs.rm(lake.fs_path(lake.uri("landing", "_truth", "batches.parquet")))
    fs.rm(lake.fs_path(lake.uri("golden", "mspc_evaluation")), recursive=True)
    again = dg.materialize(
        [*assets, *golden_defs.asset_checks],
        selection=[dg.AssetKey(["golden", "mspc_evaluation"])],
        resources={"lake": LakeResource(root_uri=gold_lake.root)},
    )
    assert again.success
    ev2 = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in again.get_asset_materialization_events()
    }["golden/mspc_evaluation"]
    assert ev2["evaluated"].value is False
    assert not [c for c in again.get_asset_check_evaluations() if c.check_name == "alarm_goals_met"]
