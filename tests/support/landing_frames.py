"""Gold-shaped frames straight from a landing zone (the twin's or a plant export), in polars —
benchmark scaffolding (bench/bench_ml.py), not product code.

A development/benchmark shortcut for the ML layer only: it aligns with the reference
implementation of the contract's alignment semantics (``lakehouse.transforms.alignment``) and
follows the column names of the dbt marts ``fct_process_readings``, ``dim_batches`` (setpoints), ``fct_assay_results``,
``fct_equipment_health_daily`` and ``fct_work_orders``. The production path is
ingest → bronze → dbt → ``gold/*`` Delta; use this only when those tables are not at hand
(``bench/bench_ml.py`` prefers gold tables when given a lake that has them).
"""

from __future__ import annotations

import glob
import json
import os

import polars as pl

UTC_US = pl.Datetime("us", "UTC")
TAG_SUFFIX = {
    "TEMP.PV": "temperature",
    "TEMP.SP": "temperature_sp",
    "PH.PV": "ph",
    "DO.PV": "dissolved_oxygen",
    "AGIT.PV": "agitation",
    "AIR.FLOW": "air_flow",
    "O2.FLOW": "o2_flow",
    "CO2.FLOW": "co2_flow",
    "OFFGAS.O2": "offgas_o2",
    "OFFGAS.CO2": "offgas_co2",
    "CAP.PV": "capacitance",
    "BASE.TOT": "base_total",
    "FEED.FLOW.SP": "feed_flow_sp",
    "FEED.FLOW.PV": "feed_flow",
    "FEED.TOT": "feed_total",
    "WEIGHT.PV": "weight",
    "PRESS.PV": "pressure",
    "AGIT.VIB": "vibration",
    "AGIT.CURRENT": "motor_current",
}
PARAMETERS = list(TAG_SUFFIX.values())
SETPOINTS = (
    "temperature_c",
    "temp_shift_day",
    "temp_shift_c",
    "ph",
    "do_pct",
    "feed_rate_pct_per_day",
    "seed_density_e6_per_ml",
    "working_volume_l",
)


def _ts(col: str) -> pl.Expr:
    return (
        pl.col(col).str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.fZ", strict=False).dt.replace_time_zone("UTC")
    )


def read_mes(landing: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, phases = [], []
    for path in sorted(glob.glob(os.path.join(landing, "mes", "*.json"))):
        with open(path) as fh:
            rec = json.load(fh)
        if rec.get("record_type") != "bioreactor":
            continue
        ph = {p["phase"]: p for p in rec.get("procedure", [])}
        for p in rec.get("procedure", []):
            phases.append(
                {"batch_id": rec["batch_id"], "phase": p["phase"], "start_ts": p["start"], "end_ts": p["end"]}
            )
        inoc = ph.get("Inoculate", {}).get("start")
        harvest = ph.get("Harvest", {}).get("start") or rec.get("end")
        sp = rec.get("setpoints", {})
        rows.append(
            {
                "batch_id": rec["batch_id"],
                "unit_id": rec["unit_id"],
                "status": rec["status"],
                "recipe_id": rec.get("recipe_id"),
                "start_ts": rec["start"],
                "end_ts": rec["end"],
                "inoculation_ts": inoc,
                "harvest_ts": harvest,
                **{k: (float(sp[k]) if sp.get(k) is not None else None) for k in SETPOINTS},
            }
        )
    b = pl.DataFrame(rows, schema_overrides={k: pl.Float64 for k in SETPOINTS}).with_columns(
        _ts(c) for c in ("start_ts", "end_ts", "inoculation_ts", "harvest_ts")
    )
    b = b.filter(pl.col("inoculation_ts").is_not_null()).with_columns(
        ((pl.col("harvest_ts") - pl.col("inoculation_ts")).dt.total_seconds() / 3600).alias("duration_h")
    )
    p = pl.DataFrame(phases).with_columns(_ts("start_ts"), _ts("end_ts"))
    return b, p


def read_historian(landing: str) -> pl.LazyFrame:
    files = sorted(glob.glob(os.path.join(landing, "historian", "*", "*.csv")))
    lf = pl.scan_csv(
        files,
        schema={"timestamp": pl.String, "tag": pl.String, "value": pl.Float64, "unit": pl.String, "quality": pl.Int32},
    )
    return (
        lf.filter(pl.col("quality") == 192)
        .with_columns(
            _ts("timestamp").alias("ts"),
            pl.col("tag").str.extract(r"^([^.]+)\.", 1).alias("unit_id"),
            pl.col("tag").str.replace(r"^[^.]+\.", "").replace_strict(TAG_SUFFIX, default=None).alias("parameter"),
        )
        .filter(pl.col("parameter").is_not_null())
        .select("ts", "unit_id", "parameter", "value")
    )


def align_readings(
    readings: pl.LazyFrame, batches: pl.DataFrame, phases: pl.DataFrame, grid_minutes: int = 1
) -> pl.DataFrame:
    """The contract's alignment by its reference implementation (DuckDB,
    :func:`lakehouse.transforms.alignment.align_readings` — what the dbt model and the Spark
    engine are tested against). ``readings`` hold good readings only (:func:`read_historian`)."""
    from lakehouse.transforms.alignment import GOOD_QUALITY
    from lakehouse.transforms.alignment import align_readings as align

    good = readings.with_columns(pl.lit(GOOD_QUALITY, pl.Int32).alias("quality")).collect()
    out = align(
        good,
        batches.select("batch_id", "unit_id", "inoculation_ts", "harvest_ts"),
        grid_minutes,
        phases=phases.select("batch_id", "phase", "start_ts", "end_ts"),
    )
    return (
        pl.from_arrow(out)
        .select("batch_id", "unit_id", "ts", "culture_age_h", "maturity_pct", "phase", *PARAMETERS)
        .sort("batch_id", "ts")
    )


def read_lims(landing: str, batches: pl.DataFrame) -> pl.DataFrame:
    files = sorted(glob.glob(os.path.join(landing, "lims", "*.csv")))
    a = pl.read_csv(files, schema_overrides={"value": pl.Float64, "sample_id": pl.String, "batch_id": pl.String})
    a = a.with_columns(_ts("sample_time"), _ts("result_time"))
    a = a.join(batches.select("batch_id", "inoculation_ts"), on="batch_id", how="left").with_columns(
        ((pl.col("sample_time") - pl.col("inoculation_ts")).dt.total_seconds() / 3600).alias("culture_age_h")
    )
    return a.select("batch_id", "sample_id", "sample_time", "result_time", "analyte", "value", "unit", "culture_age_h")


def read_cmms(landing: str) -> pl.DataFrame:
    files = sorted(glob.glob(os.path.join(landing, "cmms", "*.csv")))
    w = pl.read_csv(files, infer_schema=False)
    return w.with_columns(
        _ts("opened_at"),
        _ts("closed_at"),
        pl.when(pl.col("failure_mode") == "").then(None).otherwise(pl.col("failure_mode")).alias("failure_mode"),
    )


def _equipment_type(col: str = "equipment_id") -> pl.Expr:
    e = pl.col(col)
    return (
        pl.when(e.str.ends_with("-AGT"))
        .then(pl.lit("agitator"))
        .when(e.str.ends_with("-FP"))
        .then(pl.lit("feed_pump"))
        .when(e.str.ends_with("-DO"))
        .then(pl.lit("do_probe"))
        .when(e.str.starts_with("COL-"))
        .then(pl.lit("chromatography_column"))
        .when(e.str.starts_with("MEM-"))
        .then(pl.lit("tff_membrane"))
        .otherwise(pl.lit("unknown"))
    )


def equipment_health_daily(
    landing: str, readings: pl.LazyFrame, aligned: pl.DataFrame, assays: pl.DataFrame, work_orders: pl.DataFrame
) -> pl.DataFrame:
    """Same columns as ``gold/fct_equipment_health_daily`` (wear signals only + work-order counts)."""
    pm = (
        readings.filter(pl.col("parameter").is_in(["vibration", "motor_current", "feed_flow", "feed_flow_sp"]))
        .with_columns(pl.col("ts").dt.truncate("1m").alias("m"))
        .group_by("unit_id", "m")
        .agg(
            [
                pl.col("value").filter(pl.col("parameter") == p).mean().alias(p)
                for p in ("vibration", "motor_current", "feed_flow", "feed_flow_sp")
            ]
        )
        .with_columns(pl.col("m").dt.date().alias("date"))
        .collect()
    )
    agt = (
        pm.group_by("unit_id", "date")
        .agg(
            pl.col("vibration").mean().alias("vibration_mean_mm_s"),
            pl.col("vibration").max().alias("vibration_max_mm_s"),
            pl.col("vibration").quantile(0.95, "linear").alias("vibration_p95_mm_s"),
            pl.col("motor_current").mean().alias("motor_current_mean_a"),
            pl.col("motor_current").max().alias("motor_current_max_a"),
        )
        .with_columns((pl.col("unit_id") + "-AGT").alias("equipment_id"))
        .drop("unit_id")
    )
    fed = pm.filter((pl.col("feed_flow_sp") > 0) & pl.col("feed_flow").is_not_null())
    fp = (
        fed.group_by("unit_id", "date")
        .agg(
            (pl.col("feed_flow") - pl.col("feed_flow_sp")).mean().alias("feed_flow_dev_mean_ml_min"),
            (pl.col("feed_flow") - pl.col("feed_flow_sp")).abs().max().alias("feed_flow_dev_abs_max_ml_min"),
        )
        .with_columns((pl.col("unit_id") + "-FP").alias("equipment_id"))
        .drop("unit_id")
    )
    po2 = assays.filter(pl.col("analyte") == "po2_offline").with_columns(
        pl.col("sample_time").dt.truncate("1m").alias("ts")
    )
    do = (
        po2.join(aligned.select("batch_id", "unit_id", "ts", "dissolved_oxygen"), on=["batch_id", "ts"])
        .filter(pl.col("dissolved_oxygen").is_not_null())
        .group_by(pl.col("unit_id"), pl.col("result_time").dt.date().alias("date"))
        .agg((pl.col("dissolved_oxygen") - pl.col("value")).mean().alias("do_offset_mean_pct"))
        .with_columns((pl.col("unit_id") + "-DO").alias("equipment_id"))
        .drop("unit_id")
    )
    chrom = []
    for path in glob.glob(os.path.join(landing, "chromatography", "*", "*", "run.json")):
        with open(path) as fh:
            r = json.load(fh)
        chrom.append(
            {
                "equipment_id": r["column_id"],
                "end": r["end"],
                "column_max_pressure_bar": float(r["max_pressure_bar"]),
                "column_cycle": float(r["column_cycle"]),
            }
        )
    col = (
        pl.DataFrame(chrom)
        .with_columns(_ts("end").dt.date().alias("date"))
        .group_by("equipment_id", "date")
        .agg(pl.col("column_max_pressure_bar").max(), pl.col("column_cycle").max())
        if chrom
        else None
    )
    mem = []
    for path in glob.glob(os.path.join(landing, "filtration", "*", "*", "run.json")):
        with open(path) as fh:
            r = json.load(fh)
        c = pl.read_csv(os.path.join(os.path.dirname(path), "curves.csv"), columns=["tmp_bar", "permeate_flux_lmh"])
        mem.append(
            {
                "equipment_id": r["membrane_id"],
                "end": r["end"],
                "tff_mean_tmp_bar": float(c["tmp_bar"].mean()),
                "tff_mean_flux_lmh": float(c["permeate_flux_lmh"].mean()),
                "membrane_use": float(r["membrane_use"]),
            }
        )
    tff = (
        pl.DataFrame(mem)
        .with_columns(_ts("end").dt.date().alias("date"))
        .group_by("equipment_id", "date")
        .agg(pl.col("tff_mean_tmp_bar").mean(), pl.col("tff_mean_flux_lmh").mean(), pl.col("membrane_use").max())
        if mem
        else None
    )
    wo = work_orders.group_by("equipment_id", pl.col("opened_at").dt.date().alias("date")).agg(
        pl.len().cast(pl.Int64).alias("n_work_orders_opened"),
        (pl.col("work_type") == "corrective").sum().cast(pl.Int64).alias("n_corrective_opened"),
    )
    parts = [x for x in (agt, fp, do, col, tff) if x is not None]
    spine = pl.concat([p.select("equipment_id", "date") for p in [*parts, wo]]).unique()
    out = spine
    for p in parts:
        out = out.join(p, on=["equipment_id", "date"], how="left")
    out = out.join(wo, on=["equipment_id", "date"], how="left").with_columns(
        pl.col("n_work_orders_opened").fill_null(0), pl.col("n_corrective_opened").fill_null(0)
    )
    return out.with_columns(_equipment_type().alias("equipment_type")).sort("equipment_id", "date")


def gold_frames(landing: str, grid_minutes: int = 1) -> dict[str, pl.DataFrame]:
    """``dim_batches``, ``fct_process_readings``, ``fct_assay_results``, ``fct_equipment_health_daily``,
    ``fct_work_orders`` (+ ``truth_failures`` / ``truth_batches`` when ``_truth`` exists)."""
    batches, phases = read_mes(landing)
    readings = read_historian(landing)
    aligned = align_readings(readings, batches, phases, grid_minutes)
    assays = read_lims(landing, batches)
    wos = read_cmms(landing)
    health = equipment_health_daily(landing, readings, aligned, assays, wos)
    out = {
        "dim_batches": batches,
        "fct_process_readings": aligned,
        "fct_assay_results": assays,
        "fct_equipment_health_daily": health,
        "fct_work_orders": wos,
    }
    truth = os.path.join(landing, "_truth", "failures.parquet")
    if os.path.exists(truth):
        out["truth_failures"] = pl.read_parquet(truth)
        out["truth_batches"] = pl.read_parquet(os.path.join(landing, "_truth", "batches.parquet"))
    return out


__all__ = ["gold_frames"]
