"""A plant that is not the twin, with YAML only: the Pichia bundle, export → bronze → dbt → gold.

``twin.microbial_site.export_microbial_plant`` writes a small campaign the way a foreign vendor
would (26 tags of its own, degF / psig / SLPM / gpm / g/h / mg/L DO, text quality, local
America/Chicago time without offset, a batch list with statuses, a deviation list, a wide lab
sheet with units in the column names). The shipped bundle ``config/plants/pichia`` imports it
(the library call behind ``lakehouse import``) and the dbt graph is built through Dagster with
that bundle as the lake's plant. Asserted against the raw export files (never against the
simulator's truth, which no model reads either):

* every historian row of the export lands in bronze — no declared signal quarantined, the
  export's ``Bad`` readings kept with their quality code — in the catalog's canonical units;
* ``fct_process_readings`` has exactly the plant's 26 signal columns in catalog order, on its
  10-minute grid, with values equal to the raw readings converted, and phases from the
  sequence step signal;
* ``dim_batches`` carries the mapped status and the recorded deviations (first onset in UTC).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from lakehouse.storage import Lake

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.usefixtures("clean_dbt_run_targets")]

CHICAGO = ZoneInfo("America/Chicago")
KEYS = ["batch_id", "unit_id", "ts", "culture_age_h", "maturity_pct", "phase"]


def _materialize(lake: Lake, warehouse: Path, plant: str):
    import dagster as dg

    from assets.resources import LakeResource, SparkResource
    from assets.transform import build_defs, dbt_cli_resource

    defs = build_defs()
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources={
            "lake": LakeResource(root_uri=lake.root, duckdb_path=str(warehouse), plant=plant),
            "dbt": dbt_cli_resource(),
            "spark": SparkResource(),
        },
        raise_on_error=False,
    )


def _raw_historian(export: Path) -> pl.DataFrame:
    raw = pl.concat([pl.read_csv(f, infer_schema=False) for f in sorted((export / "historian").glob("HIST_*.csv"))])
    return raw.with_columns(
        pl.col("Value").cast(pl.Float64),
        pl.col("Timestamp")
        .str.strptime(pl.Datetime("us"), "%m/%d/%Y %H:%M:%S")
        .dt.replace_time_zone("America/Chicago", ambiguous="earliest")
        .dt.convert_time_zone("UTC")
        .alias("ts"),
    )


def _local(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%m/%d/%Y %H:%M").replace(tzinfo=CHICAGO).astimezone(dt.UTC)


def test_pichia_bundle_export_import_dbt_gold(tmp_path, monkeypatch):
    from lakehouse.ingest.foreign import run_import_config
    from lakehouse.plant import load_plant
    from twin.microbial_site import export_microbial_plant

    monkeypatch.setenv("LAKEHOUSE_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    export = tmp_path / "plant2-export"
    exp = export_microbial_plant(export, n_batches=6, seed=21, interval_min=10)
    bundle = load_plant("pichia")
    catalog = bundle.catalog
    lake = Lake(str(tmp_path / "lake"))

    # 1. import with the shipped bundle, pointed at this export ---------------------------------
    report = run_import_config(bundle.import_path, lake, run_id="pichia-1", data_dir=export)
    raw = _raw_historian(export)
    assert raw.height == exp.historian_rows > 30_000
    assert report.rows_read["historian_readings"] == raw.height
    assert report.rows_quarantined.get("historian_readings", 0) == 0, report.as_dict()["reasons"]
    assert not report.files_rejected
    hist = pl.from_arrow(lake.read_delta(lake.uri("bronze", "historian_readings")))
    assert hist.height == raw.height
    assert sorted(hist.get_column("parameter").unique()) == sorted(catalog.names())  # every declared signal
    units = dict(hist.group_by("parameter").agg(pl.col("eng_unit").first()).iter_rows())
    assert units == {s.name: s.unit for s in catalog.signals}
    assert hist.filter(pl.col("quality") == 0).height == raw.filter(pl.col("Quality") == "Bad").height > 0
    # canonical units, compared with the raw export row by row for three converted tags
    for loop, signal, f in (
        ("TIC-110.PV", "temperature", lambda v: (v - 32.0) / 1.8),
        ("PIC-160.PV", "back_pressure", lambda v: v * 0.0689475729316836),
        ("FI-200.PV", "cooling_water_flow", lambda v: v * 3.785411784),
    ):
        r = raw.filter(pl.col("Tagname") == f"F-202/{loop}").select("ts", f(pl.col("Value")).alias("expected"))
        b = hist.filter(pl.col("tag") == f"F-202/{loop}").select("ts", "value", "parameter")
        j = r.join(b, on="ts", how="inner")
        assert j.height == r.height == b.height > 500 and set(j["parameter"]) == {signal}
        assert (j["value"] - j["expected"]).abs().max() < 1e-9
    assert report.rows_quarantined.get("lims_results", 0) == 0 and report.rows_valid["mes_deviations"] > 0

    # 2. dbt up to gold, with the bundle as the lake's plant (Dagster, in process) ------------
    warehouse = tmp_path / "warehouse.duckdb"
    result = _materialize(lake, warehouse, "pichia")
    failed = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success and not failed, failed
    checks = {f"{c.asset_key.to_user_string()}::{c.check_name}": c.passed for c in result.get_asset_check_evaluations()}
    assert len(checks) > 40 and all(checks.values()), [k for k, ok in checks.items() if not ok]

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cols = [r[0] for r in con.execute("describe marts.fct_process_readings").fetchall()]
        fct = pl.from_arrow(con.execute("select * from marts.fct_process_readings").fetch_arrow_table())
        dim = pl.from_arrow(con.execute("select * from marts.dim_batches").fetch_arrow_table())
    finally:
        con.close()
    assert cols == [*KEYS, *catalog.names(), "_source_ingested_at", "_loaded_at"]
    gold = pl.read_delta(lake.uri("gold", "fct_process_readings"))
    assert gold.height == fct.height > 1000 and gold.columns[: len(KEYS) + len(catalog)] == [*KEYS, *catalog.names()]

    # the 10-minute grid, values = the mean of the good raw readings of the step (converted)
    assert (fct["ts"].dt.minute() % 10 == 0).all() and (fct["ts"].dt.second() == 0).all()
    batch = dim.sort("batch_id").row(1, named=True)
    steps = fct.filter(pl.col("batch_id") == batch["batch_id"]).sort("ts")
    tag = f"{batch['unit_id']}/TIC-110.PV"
    good = (
        raw.filter((pl.col("Tagname") == tag) & (pl.col("Quality") == "Good"))
        .with_columns(((pl.col("Value") - 32.0) / 1.8).alias("c"), pl.col("ts").dt.truncate("10m").alias("step"))
        .group_by("step")
        .agg(pl.col("c").mean())
    )
    j = steps.join(good, left_on="ts", right_on="step", how="inner")
    assert j.height > 0.9 * steps.height and (j["temperature"] - j["c"]).abs().max() < 1e-9
    in_culture = steps.filter(pl.col("culture_age_h").is_between(12, 48))
    assert in_culture["temperature"].is_between(20, 35).all()  # degC, not degF
    assert in_culture["dissolved_oxygen_mgl"].max() < 15  # mg/L, its own signal
    # phases from the state signal (KS-100.STEP): glycerol batch, then methanol induction
    phases = steps.get_column("phase").unique().drop_nulls().to_list()
    assert {"Batch", "Induction"} <= set(phases) <= {"Prepare", "Batch", "Transition", "Induction", "Harvest", "Idle"}
    code = steps.select(pl.col("process_step").round(0).cast(pl.Int64), "phase").drop_nulls()
    assert code.filter(pl.col("process_step") == 4)["phase"].unique().to_list() == ["Induction"]

    # 3. batch status and recorded deviations --------------------------------------------------
    batch_list = pl.read_csv(export / "batch_list.csv", infer_schema=False)
    devs = pl.read_csv(export / "deviations.csv", infer_schema=False)
    assert dim.height == batch_list.height == 6
    status = {"Completed": "complete", "Deviation": "complete", "Aborted": "aborted"}
    for b in batch_list.iter_rows(named=True):
        row = dim.filter(pl.col("batch_id") == b["Lot"]).row(0, named=True)
        assert row["status"] == status[b["Status"]]
        own = devs.filter(pl.col("Lot") == b["Lot"])
        assert row["has_deviation"] == (own.height > 0) and row["n_recorded_deviations"] == own.height
        if own.height:
            assert row["first_deviation_onset_ts"] == min(_local(t) for t in own["Recorded Onset"])
            assert set(row["deviation_categories"].split("; ")) == set(own["Category"])
        else:
            assert row["first_deviation_onset_ts"] is None
        assert row["inoculation_ts"] == _local(b["Inoculated"]) and row["harvest_ts"] == _local(b["Harvested"])
    assert dim["has_deviation"].sum() >= 1
