"""Bring your own data, end to end, with commands and config only (docs/bring-your-own-data.md).

A foreign plant's exports (``lakehouse export-plant``: own tag names and units, local time
without offset, a batch list, a wide LIMS sheet with the titer as ``IgG_HPLC`` in mg/mL) →
``lakehouse import`` with the shipped ``config/imports/demo-plant.yaml`` + tag map → the dbt
graph up to gold (Dagster, in process) → ``lakehouse train`` with the shipped
``config/ml/demo-plant-softsensor.yaml``. The shipped config files are used unchanged (copied
into the same relative layout, so their relative paths point to the test's export).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from lakehouse.storage import Lake

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("config/imports/demo-plant.yaml", "config/tagmaps/demo-plant.yaml")
ML_CONFIG = ROOT / "config" / "ml" / "demo-plant-softsensor.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("clean_dbt_run_targets")]


def _json_out(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def _lines(path) -> int:
    with open(path) as fh:
        return sum(1 for _ in fh)


def _count(lake: Lake, table: str) -> int:
    return lake.delta_table(lake.uri("bronze", table)).to_pyarrow_table(columns=["_source_file"]).num_rows


def _materialize_to_gold(lake: Lake, warehouse: Path):
    import dagster as dg

    from assets.resources import LakeResource, SparkResource
    from assets.transform import build_defs, dbt_cli_resource

    defs = build_defs()
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources={
            "lake": LakeResource(root_uri=lake.root, duckdb_path=str(warehouse)),
            "dbt": dbt_cli_resource(),
            "spark": SparkResource(),
        },
        raise_on_error=False,
    )


def test_demo_plant_export_import_gold_train(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    for rel in CONFIGS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    export = tmp_path / "data" / "demo-plant-export"
    lake = Lake(str(tmp_path / "data" / "demo-plant"))

    # 1. the plant's exports ----------------------------------------------------------------
    from bioprocess_cli.main import COMMANDS
    from bioprocess_cli.main import main as lakehouse

    assert {"export-plant", "import", "train"} <= set(COMMANDS)
    assert (
        lakehouse(
            [
                "export-plant",
                "--out",
                str(export),
                "--bioreactors",
                "2",
                "--days",
                "60",
                "--interval",
                "300",
                "--seed",
                "11",
            ]
        )
        == 0
    )
    exp = _json_out(capsys)
    day_files = sorted((export / "historian").glob("historian_*.csv"))
    with open(day_files[5], newline="") as fh:
        header, first = next(csv.reader(fh, delimiter=";")), next(csv.reader(fh, delimiter=";"))
    assert header == ["TagName", "TimeStamp", "Value", "Units", "Quality"]
    assert first[0].startswith("FERM-0") and "T" not in first[1] and "+" not in first[1]  # local, no offset
    hist_rows = sum(_lines(f) - 1 for f in day_files)
    assert hist_rows == exp["historian_rows"] > 100_000
    sheet = pl.read_csv(export / "lims_results.csv", infer_schema=False)
    assert "IgG_HPLC" in sheet.columns and "titer" not in sheet.columns
    analyte_cols = [c for c in sheet.columns if c not in ("SampleNo", "Batch", "Sampled", "Approved", "TestMethod")]
    assay_values = sum(sheet[c].is_not_null().sum() for c in analyte_cols)
    assert assay_values == exp["assay_values"]
    n_batches = _lines(export / "batches.csv") - 1
    assert n_batches == exp["batches"] >= 6

    # 2. import (config only) ------------------------------------------------------------------
    config = str(tmp_path / CONFIGS[0])
    assert lakehouse(["import", "--config", config, "--lake", lake.root]) == 0
    rep = _json_out(capsys)
    assert not rep["files_rejected"]
    read = rep["rows_read"]
    # reconcile with the export: every exported row / LIMS value / batch was read ...
    assert read["historian_readings"] == hist_rows
    assert read["lims_results"] == assay_values
    assert read["mes_batches"] == n_batches and read["mes_phases"] == 3 * n_batches
    # ... and is in bronze or in quarantine, nowhere else
    q_uri = lake.uri("bronze", "_quarantine")
    quarantined = Counter(
        lake.delta_table(q_uri).to_pyarrow_table(columns=["table"]).column("table").to_pylist()
        if lake.delta_exists(q_uri)
        else []
    )
    for table, n in read.items():
        assert n == _count(lake, table) + quarantined.get(table, 0), table
    assert quarantined.get("historian_readings", 0) < 0.01 * hist_rows  # the twin's injected NaN readings
    # exactly once: a second import adds nothing
    assert lakehouse(["import", "--config", config, "--lake", lake.root]) == 0
    again = _json_out(capsys)
    assert again["files_ingested"] == 0 and not any(again["rows_written"].values())
    assert _count(lake, "historian_readings") == read["historian_readings"] - quarantined.get("historian_readings", 0)

    # 3. bronze -> dbt -> gold (the same Dagster assets as `lakehouse run`) --------------------
    result = _materialize_to_gold(lake, tmp_path / "warehouse.duckdb")
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failed
    readings = pl.from_arrow(
        lake.delta_table(lake.uri("gold", "fct_process_readings")).to_pyarrow_table(
            columns=["unit_id", "temperature", "dissolved_oxygen", "feed_flow", "capacitance", "offgas_o2"]
        )
    )
    assert set(readings["unit_id"].unique()) == {"BR-301", "BR-302"}  # the tag map's unit ids
    assert 30 < readings["temperature"].median() < 40  # K -> degC
    assert 5 < readings["dissolved_oxygen"].median() < 100  # fraction -> %
    assert readings["capacitance"].null_count() == readings.height == readings["offgas_o2"].null_count()
    assays = pl.from_arrow(lake.delta_table(lake.uri("gold", "fct_assay_results")).to_pyarrow_table())
    igg = assays.filter(pl.col("analyte") == "igg_hplc")
    assert igg.height == sheet["IgG_HPLC"].is_not_null().sum() > 20  # the plant's own analyte
    assert abs(igg["value"].max() - sheet["IgG_HPLC"].cast(pl.Float64).max()) < 1e-9  # mg/mL == g/L
    assert assays.filter(pl.col("analyte") == "vcd")["value"].max() < 100  # 1e5 -> 1e6 cells/mL

    # 4. train the plant's soft sensor (config only) and read its held-out evaluation ----------
    assert lakehouse(["train", "--lake", lake.root, "--config", str(ML_CONFIG), "--models", "igg_hplc"]) == 0
    out = _json_out(capsys)
    m = out["models"]["igg_softsensor"]["held_out"]
    assert m["target"] == "igg_hplc" and m["n_test_batches"] >= 2
    assert 0 < m["test"]["rmse"] < m["baseline_test"]["rmse"], m
    assert out["models"]["igg_softsensor"]["registered_version"] == 1

    # 5. nothing in the code knows this plant: its names live in config (and the exporter) only
    tokens = ("demo-plant", "demo_plant", "igg_softsensor", "o2_supply", "FERM-0")
    code = [p for d in ("lakehouse", "ml", "assets", "orchestration") for p in (ROOT / d).rglob("*.py")]
    code += list((ROOT / "dbt_project" / "models").rglob("*.sql")) + list(
        (ROOT / "dbt_project" / "macros").rglob("*.sql")
    )
    hits = [
        (str(p.relative_to(ROOT)), t)
        for p in code
        for t in tokens
        if t in p.read_text(errors="ignore") and not (t == "FERM-0" and "ingest" in p.parts)
    ]
    assert not hits, hits
