"""The main job end to end on the real S3 server: twin site → landing → bronze → dbt → gold →
features → models → scores, golden batch and twin experiments, in ONE Dagster run.

This is what `make run` does on the embedded default, on a smaller site and on S3.
"""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from orchestration.run import failed_steps
from tests.support.main_site import SITE

pytestmark = [pytest.mark.s3, pytest.mark.slow]

# the run is the folder's shared session run (tests/integration/conftest.py: ``main_run``)


def _delta(lake, *parts) -> pl.DataFrame:
    return pl.from_arrow(lake.read_delta(lake.uri(*parts)))


def test_no_step_fails(main_run):
    # a rejected candidate is a WARN check result, not a failed step: the run is green
    _, result, _ = main_run
    assert failed_steps(result) == set() and result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    for key in (
        "landing/site",
        "bronze/historian_readings",
        "gold/fct_process_readings",
        "features/softsensor",
        "models/titer_softsensor",
        "golden/profile",
        "twin/insilico_doe",
    ):
        assert key in materialized, key
    # the historian's daily partitions all ran inside this one run
    hist = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["bronze", "historian_readings"])
    ]
    assert len(hist) == SITE.days


def test_bronze_reconciles_with_the_landing_files(main_run):
    _, _, lake = main_run
    fs = lake.filesystem()
    landing = lake.fs_path(lake.uri("landing", "historian"))
    files = sorted(p for p in fs.find(landing) if p.endswith(".csv"))
    assert len(files) == SITE.bioreactors * SITE.days
    rows_in_files = sum(fs.cat(p).count(b"\n") - 1 for p in files)
    bronze = _delta(lake, "bronze", "historian_readings")
    # the quarantine table exists once a row was set aside (the twin writes clean files: usually none)
    q_uri = lake.uri("bronze", "_quarantine")
    quarantine = _delta(lake, "bronze", "_quarantine") if lake.delta_exists(q_uri) else None
    q_hist = 0 if quarantine is None else quarantine.filter(pl.col("table") == "historian_readings").height
    assert bronze.height + q_hist == rows_in_files
    assert bronze.select(["_source_file", "ts", "tag"]).is_duplicated().sum() == 0


def test_gold_model_and_scores_trace_back(main_run):
    _, _, lake = main_run
    batches = _delta(lake, "gold", "dim_batches")
    truth = pl.read_parquet(lake.filesystem().cat(lake.fs_path(lake.uri("landing", "_truth", "batches.parquet"))))
    closed = truth.filter(pl.col("closed_in_window"))
    assert set(closed["batch_id"]) <= set(batches["batch_id"])
    readings = _delta(lake, "gold", "fct_process_readings")
    assert readings.select(["batch_id", "ts"]).is_duplicated().sum() == 0
    registry = _delta(lake, "registry", "models")
    scores = _delta(lake, "scores", "titer")
    assert scores.height > 0
    registered = set(zip(registry["model_name"], registry["version"]))
    used = set(zip(scores["model_name"], scores["model_version"]))
    assert used <= registered
    # the titer soft sensor beats carry-forward on this site, so it is the champion
    champion = registry.filter((pl.col("model_name") == "titer_softsensor") & (pl.col("status") == "champion"))
    assert champion.height == 1
    metrics = json.loads(champion["metrics_json"][0])
    assert metrics  # metrics recorded with the model


def test_champions_are_in_mlflow_with_a_validation_report_each(main_run):
    from lakehouse.audit import AuditLog
    from ml.registry import ModelRegistry

    _, result, lake = main_run
    reg = ModelRegistry(lake)
    view = _delta(lake, "registry", "models")  # the Delta view agrees with MLflow's registry
    assert sorted(zip(view["model_name"], view["version"], view["status"])) == sorted(
        zip(*reg.table().select("model_name", "version", "status").to_dict(as_series=False).values())
    )
    champions = view.filter(pl.col("status") == "champion")
    assert "titer_softsensor" in champions["model_name"].to_list()
    fs = lake.filesystem()
    for r in champions.iter_rows(named=True):
        assert int(reg.client.get_model_version_by_alias(r["model_name"], "champion").version) == r["version"]
        pdf = fs.cat(lake.fs_path(lake.uri("reports", "models", r["model_name"], f"v{r['version']}.pdf")))
        assert pdf[:5] == b"%PDF-"
    reported = {
        e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key.path[:2] == ["reports", "models"]
    }
    for name in champions["model_name"]:  # one report asset per model with a champion
        assert reported[name]["n_reports"].value >= 1, name
    promotions = [e for e in AuditLog(lake).entries() if e.action == "promotion"]
    assert {e.subject for e in promotions} >= {
        f"model:{n}:{v}" for n, v in zip(champions["model_name"], champions["version"])
    }
    assert AuditLog(lake).verify().ok
