"""The main job end to end on the real S3 server: twin site → landing → bronze → dbt → gold →
features → models → scores, golden batch and twin experiments, in ONE Dagster run.

This is what `make run` does on the embedded default, on a smaller site and on S3.
"""

from __future__ import annotations

import json
import re

import dagster as dg
import polars as pl
import pytest

from orchestration.run import failed_steps
from orchestration.summary import CAPABILITIES, planned_checks, print_summary
from tests.support.main_site import SITE

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def _delta(lake, *parts) -> pl.DataFrame:
    return pl.from_arrow(lake.read_delta(lake.uri(*parts)))


def test_the_run_succeeds_whatever_the_gates_decide(main_run):
    _, result, _ = main_run
    # a rejected candidate is a check result (WARN) with its reason, never a failed step
    assert failed_steps(result) == set()
    assert result.success
    gates = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "promotion_gate"
    ]
    assert len(gates) == 5  # titer, three harvest CQAs, PdM
    for ev in gates:
        reason = ev.metadata["reason"].value
        assert re.match(r"(RMSE|PR-AUC) \d[\d.e+-]* vs baseline \d", reason), reason
        assert ev.passed == reason.endswith(("beats baseline (no champion)", "beats champion and baseline")), reason
        if not ev.passed:
            assert ev.severity == dg.AssetCheckSeverity.WARN
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
    quarantine = _delta(lake, "bronze", "_quarantine")
    q_hist = quarantine.filter(pl.col("table") == "historian_readings").height
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


def test_summary_gives_gates_checks_not_run_and_capabilities(main_run, capsys):
    defs, result, _ = main_run
    print_summary(defs, result, 1.0)
    out = capsys.readouterr().out
    evaluated = {
        e.event_specific_data.asset_check_key
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    planned = planned_checks(defs, result)
    assert evaluated and evaluated <= planned
    not_run = planned - evaluated
    assert f"{len(not_run)} did not run" in out
    for key in not_run:
        assert f"DID NOT RUN: {key.asset_key.to_user_string()} / {key.name}" in out
    gates = out.split("Promotion gates:")[1].split("Asset checks:")[0]
    assert gates.count(" vs baseline ") == 5
    caps = out.split("Capabilities (headline figure vs its baseline):")[1]
    for label in dict.fromkeys(c.label for c in CAPABILITIES):
        assert f"  {label}:" in caps, label
    assert re.search(r"PdM: +PR-AUC \d\S* vs baseline \d\S* \((beats|DOES NOT beat) it\)", caps)
    assert re.search(r"soft sensor: +titer RMSE \d\S* vs baseline \d\S* \(beats it\)", caps)
