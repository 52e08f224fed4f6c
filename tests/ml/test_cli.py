"""``lakehouse train`` on a foreign plant: other signals, another target name — config only."""

from __future__ import annotations

import json

import polars as pl
import yaml

from bioprocess_cli.main import main
from ml.registry import ModelRegistry


def test_train_cli_on_foreign_historian_export(lake_local, site, gold_writer, config_paths, tmp_path, capsys):
    # the "foreign" plant: no off-gas analyser, no capacitance probe, a pH-adjusted OUR-free config,
    # and its LIMS calls the titer "igg_conc"
    readings = site.fct_process_readings.drop("offgas_o2", "offgas_co2", "capacitance")
    assays = site.fct_assay_results.with_columns(
        pl.when(pl.col("analyte") == "titer").then(pl.lit("igg_conc")).otherwise(pl.col("analyte")).alias("analyte")
    )
    foreign = type(site)(
        site.dim_batches, readings, assays, site.fct_equipment_health_daily, site.fct_work_orders, site.truth_failures
    )
    gold_writer(lake_local, foreign)
    cfg = yaml.safe_load(config_paths[0].read_text())
    cfg["features"]["signals"] = [
        "temperature",
        "ph",
        "dissolved_oxygen",
        "agitation",
        "air_flow",
        "o2_flow",
        "base_total",
        "feed_flow",
        "feed_total",
        "weight",
    ]
    cfg["features"]["derived"] = [{"name": "o2_demand", "expr": "coalesce(o2_flow, 0) + 0.21 * coalesce(air_flow, 0)"}]
    cfg["features"]["integrals"] = ["o2_demand", "feed_flow"]
    cfg["features"]["label_analytes"] = ["igg_conc", "g0f"]
    cfg["features"]["baseline_analytes"] = ["igg_conc"]
    cfg["titer"] = {"name": "igg_softsensor", "target": "igg_conc", "params": cfg["titer"]["params"]}
    cfg["harvest"]["targets"] = ["g0f"]
    cfg["verification"]["psi_features"] = ["temperature", "o2_demand"]
    path = tmp_path / "plant_softsensor.yaml"
    path.write_text(yaml.safe_dump(cfg))

    assert main(["train", "--lake", lake_local.root, "--config", str(path), "--models", "igg_conc"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = out["models"]["igg_softsensor"]
    assert out["kind"] == "softsensor"
    assert m["held_out"]["test"]["rmse"] > 0 and m["held_out"]["baseline_test"]["rmse"] > 0
    assert "test_by_culture_day" in m["held_out"]
    assert m["registered_version"] == 1 and "promotion" in m
    feats = ModelRegistry(lake_local).load("igg_softsensor", 1)[1]["features"]
    assert "o2_demand__integral" in feats and not any(f.startswith("capacitance") for f in feats)


def test_train_cli_pdm_dry_run(lake_local, site, gold_writer, config_paths, capsys):
    gold_writer(lake_local, site)
    assert main(["train", "--lake", lake_local.root, "--config", str(config_paths[1]), "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "pdm" and "pr_auc" in out["models"]["pdm"]["held_out"]["test"]
    assert "registered_version" not in out["models"]["pdm"]
    assert ModelRegistry(lake_local).table().height == 0
