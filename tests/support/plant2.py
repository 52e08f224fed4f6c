"""The second plant's export (``twin.microbial_site.export_microbial_plant``) as gold-shaped frames.

STAND-IN FOR THE PIPELINE: until the open signal catalog (branch ``catalog``: tag map + catalog,
import config, dbt model over the catalog) lands, this module parses the foreign export and aligns
it on the grid so that the ML layer can be proven on a plant that is not the twin. It uses the
contract's reference alignment (:func:`lakehouse.transforms.alignment.align_readings`, the
semantics the dbt model and the Spark port are tested against) with the plant's own parameter
names, so the frames are what ``gold/fct_process_readings`` will hold; only the parsing (local
time → UTC, tag → parameter, wide LIMS sheet → long assays) is hand-written here. When merging,
switch :func:`load_plant2` to the real import → dbt path and keep the callers.

Units are the plant's own (°F, psig, SLPM, kg/h, g/h, gpm, mg/L DO): models do not care, the
catalog branch converts them. The state signal ``KS-100.STEP`` is ``step_code`` (``phase`` is the
gold column of the MES phase).

Never a product import (``tests/`` only): the truth (``_truth/``) is read here for the evaluation
and is returned separately from anything a model reads.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from twin.microbial_site import BATCH_TS_FMT, HIST_TS_FMT, LIMS_TS_FMT, SIGNALS, TIMEZONE

UTC_US = pl.Datetime("us", "UTC")
GOOD_QUALITY = 192
#: export key -> parameter name in the plant's catalog (``phase`` is a gold key column)
RENAME = {"phase": "step_code"}
#: the export's kind words -> catalog kinds
KINDS = {
    "process value": "process_value",
    "setpoint": "setpoint",
    "flow": "flow",
    "totaliser": "totaliser",
    "rate": "rate",
    "state": "state",
}
#: LIMS column -> analyte
ANALYTES = {
    "OD600": "od600",
    "DCW (g/L)": "dcw",
    "Glycerol (g/L)": "glycerol",
    "Methanol (g/L)": "methanol",
    "Ethanol (g/L)": "ethanol",
    "Titer (mg/L)": "titer",
}
STATE_RANGE = (0.0, 5.0)


@dataclass(frozen=True)
class CatalogSignal:
    """A catalog entry as the ML layer sees it (``name``, ``unit``, ``kind``; duck-typed like
    ``lakehouse.catalog.Signal``)."""

    name: str
    unit: str
    kind: str
    description: str = ""
    valid_range: tuple[float, float] | None = None


def plant2_catalog() -> list[CatalogSignal]:
    """The plant's 26 historian signals as catalog entries (names of :data:`RENAME` applied)."""
    return [
        CatalogSignal(RENAME.get(k, k), s.unit, KINDS[s.kind], s.meaning, STATE_RANGE if s.kind == "state" else None)
        for k, s in SIGNALS.items()
    ]


def _local_to_utc(col: str, fmt: str) -> pl.Expr:
    return (
        pl.col(col)
        .str.to_datetime(fmt, time_unit="us")
        .dt.replace_time_zone(TIMEZONE, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def read_historian(export_dir: str | Path) -> pl.DataFrame:
    """Long readings ``ts, unit_id, parameter, value, quality`` (UTC; ``Good`` → 192, else 0)."""
    loop_to_name = {s.loop: RENAME.get(k, k) for k, s in SIGNALS.items()}
    files = sorted(glob.glob(str(Path(export_dir) / "historian" / "*.csv")))
    if not files:
        raise FileNotFoundError(f"no historian files under {export_dir}/historian")
    h = pl.read_csv(files, schema={"Tagname": pl.Utf8, "Timestamp": pl.Utf8, "Value": pl.Float64, "Quality": pl.Utf8})
    parts = pl.col("Tagname").str.split_exact("/", 1)
    h = h.with_columns(parts.struct.field("field_0").alias("unit_id"), parts.struct.field("field_1").alias("loop"))
    return h.select(
        _local_to_utc("Timestamp", HIST_TS_FMT).alias("ts"),
        "unit_id",
        pl.col("loop").replace_strict(loop_to_name, default=None).alias("parameter"),
        pl.col("Value").alias("value"),
        pl.when(pl.col("Quality") == "Good").then(GOOD_QUALITY).otherwise(0).cast(pl.Int64).alias("quality"),
    ).filter(pl.col("parameter").is_not_null() & pl.col("ts").is_not_null())


def read_batches(export_dir: str | Path) -> pl.DataFrame:
    """``dim_batches``-like: ``batch_id, unit_id, status, inoculation_ts, harvest_ts, duration_h``."""
    bl = pl.read_csv(Path(export_dir) / "batch_list.csv", infer_schema_length=0)
    return (
        bl.select(
            pl.col("Lot").alias("batch_id"),
            pl.col("Fermenter").alias("unit_id"),
            pl.col("Status").alias("status"),
            pl.col("Recipe").alias("recipe_id"),
            _local_to_utc("Inoculated", BATCH_TS_FMT).alias("inoculation_ts"),
            _local_to_utc("Harvested", BATCH_TS_FMT).alias("harvest_ts"),
        )
        .with_columns(
            ((pl.col("harvest_ts") - pl.col("inoculation_ts")).dt.total_seconds() / 3600.0).alias("duration_h")
        )
        .sort("inoculation_ts")
    )


def read_deviations(export_dir: str | Path) -> pl.DataFrame:
    """Recorded deviations: ``batch_id, deviation_id, category, recorded_onset_ts``."""
    d = pl.read_csv(Path(export_dir) / "deviations.csv", infer_schema_length=0)
    return d.select(
        pl.col("Lot").alias("batch_id"),
        pl.col("Deviation ID").alias("deviation_id"),
        pl.col("Category").alias("category"),
        _local_to_utc("Recorded Onset", BATCH_TS_FMT).alias("recorded_onset_ts"),
    )


def read_assays(export_dir: str | Path, batches: pl.DataFrame) -> pl.DataFrame:
    """``fct_assay_results``-like long frame: ``batch_id, sample_id, analyte, value, sample_time,
    result_time, culture_age_h`` (the wide LIMS sheet, one row per sample, test and analyte)."""
    lab = pl.read_csv(Path(export_dir) / "lab_results.csv", infer_schema_length=10000)
    long = lab.unpivot(
        index=["Sample ID", "Lot", "Sampled", "Reported", "Test"],
        on=list(ANALYTES),
        variable_name="column",
        value_name="value",
    ).filter(pl.col("value").is_not_null())
    out = long.select(
        pl.col("Lot").alias("batch_id"),
        pl.col("Sample ID").alias("sample_id"),
        pl.col("column").replace_strict(ANALYTES).alias("analyte"),
        pl.col("value").cast(pl.Float64),
        _local_to_utc("Sampled", LIMS_TS_FMT).alias("sample_time"),
        _local_to_utc("Reported", LIMS_TS_FMT).alias("result_time"),
    )
    inoc = batches.select("batch_id", "inoculation_ts")
    return (
        out.join(inoc, on="batch_id", how="inner")
        .with_columns(
            ((pl.col("sample_time") - pl.col("inoculation_ts")).dt.total_seconds() / 3600.0).alias("culture_age_h")
        )
        .drop("inoculation_ts")
        .sort("batch_id", "sample_time", "analyte")
    )


def read_truth(export_dir: str | Path) -> dict[str, pl.DataFrame]:
    """Ground truth (evaluation only): ``batches`` (true fault kind and onset age) and
    ``trajectories`` (true titer etc. at every logging step, ``batch_id, ts``)."""
    t = Path(export_dir) / "_truth"
    tb = pl.read_csv(t / "batches.csv", infer_schema_length=10000).rename({"lot": "batch_id"})
    tr = pl.read_parquet(t / "trajectories.parquet").rename({"lot": "batch_id", "timestamp_utc": "ts"})
    return {"batches": tb, "trajectories": tr.with_columns(pl.col("ts").cast(UTC_US))}


def load_plant2(export_dir: str | Path, grid_minutes: int = 10) -> dict[str, pl.DataFrame]:
    """Gold-shaped frames of the export: ``readings`` (``fct_process_readings``: key columns and one
    column per catalog signal, aligned on a ``grid_minutes`` grid from inoculation to harvest),
    ``batches``, ``assays``, ``deviations``; plus ``truth_batches`` / ``truth_trajectories``.
    """
    from lakehouse.transforms.alignment import align_readings

    batches = read_batches(export_dir)
    readings_long = read_historian(export_dir)
    names = tuple(s.name for s in plant2_catalog())
    windows = batches.select("batch_id", "unit_id", "inoculation_ts", "harvest_ts")
    aligned = pl.from_arrow(align_readings(readings_long, windows, grid_minutes=grid_minutes, parameters=names))
    truth = read_truth(export_dir)
    return {
        "readings": aligned,
        "batches": batches,
        "assays": read_assays(export_dir, batches),
        "deviations": read_deviations(export_dir),
        "truth_batches": truth["batches"],
        "truth_trajectories": truth["trajectories"],
    }


# ------------------------------------------------------------------ end-to-end judgement (uses the truth)
def softsensor_truth_figures(model, truth_batches: pl.DataFrame, truth_trajectories: pl.DataFrame) -> dict:
    """The titer soft sensor against the TRUE titer (which no model reads), on the hourly step rows
    of the batches it never trained on: held-out normal batches (truly fault-free) and fault
    batches after the true onset. Rows before the gate are left out (the sensor does not predict
    there); the mean-trajectory baseline is scored on the same rows."""
    tr = model.trajectories.join(
        truth_trajectories.select("batch_id", "ts", "titer_mg_l"), on=["batch_id", "ts"], how="inner"
    )
    faulty = truth_batches.filter(pl.col("faulty") == 1).select("batch_id", "fault_onset_age_h")
    test = set(model.meta["split"]["test_batches"])
    normal = tr.filter(pl.col("batch_id").is_in(list(test)) & ~pl.col("batch_id").is_in(faulty["batch_id"].to_list()))
    post = tr.join(faulty, on="batch_id").filter(pl.col("culture_age_h") >= pl.col("fault_onset_age_h"))

    def figures(part: pl.DataFrame) -> dict:
        o = part.filter(~pl.col("gated"))
        if o.height == 0:
            return {"n_batches": 0, "n_rows": 0}
        y = o["titer_mg_l"].to_numpy()
        err = lambda p: float(((p - y) ** 2).mean() ** 0.5)
        inside = (y >= o["lo"].to_numpy()) & (y <= o["hi"].to_numpy())
        return {
            "n_batches": o["batch_id"].n_unique(),
            "n_rows": o.height,
            "gated_rows": part.height - o.height,
            "rmse": err(o["pred"].to_numpy()),
            "baseline_mean_trajectory_rmse": err(o["baseline_mean_trajectory"].to_numpy()),
            "pi90_coverage": float(inside.mean()),
        }

    return {"normal": figures(normal), "fault_post_onset": figures(post)}


def mspc_truth_figures(
    readings: pl.DataFrame,
    batches: pl.DataFrame,
    deviations: pl.DataFrame,
    truth_batches: pl.DataFrame,
    golden_cfg: dict,
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """MSPC by K-fold over batches: each fold's batches are scored by a model whose reference is the
    normal batches (status, no recorded deviation) of the other folds; alarms judged against the
    truth: a faulty batch is detected by an alarm at or after its true onset, a truly fault-free
    batch false-alarms when it ever alarms."""
    import numpy as np
    import pandas as pd

    from ml import golden as gb
    from ml import mspc

    mcfg = mspc.MSPCConfig.from_dict(golden_cfg["mspc"])
    qual = gb.qualify_batches(batches, golden_cfg)
    ids = sorted(batches["batch_id"].to_list())
    fold_of = dict(zip(ids, np.random.default_rng(seed).permutation(len(ids)) % folds, strict=True))
    alarms, per_fold, excluded = [], [], 0
    for k in range(folds):
        held = [b for b in ids if fold_of[b] == k]
        ref = [b for b in gb.mspc_reference_ids(qual, batches, deviations, golden_cfg) if fold_of[b] != k]
        model = mspc.fit_mspc(mspc.align_for(mcfg, readings.filter(pl.col("batch_id").is_in(ref)), batch_ids=ref), mcfg)
        excluded += len(model.info["phase1_excluded"])
        sc = mspc.score(model, mspc.align_for(model, readings.filter(pl.col("batch_id").is_in(held))))
        ev = mspc.alarm_events(sc)
        alarms.append(ev[["batch_id", "culture_age_h"]])
        per_fold.append(len(model.train_batches))
    t = truth_batches.to_pandas()
    truth = pd.DataFrame(
        {
            "batch_id": t["batch_id"],
            "deviating": t["faulty"] == 1,
            "onset_h": t["fault_onset_age_h"].astype(float),
            "visible_h": np.nan,
            "deviation_type": t["fault_type"].fillna(""),
        }
    )
    metrics, per = mspc.evaluate_alarms(pd.concat(alarms, ignore_index=True), truth)
    dev = per[per["deviating"]]
    return {
        "detected_fraction": metrics["detected_fraction"],
        "false_alarm_fraction": metrics["false_alarm_fraction"],
        "n_faulty": metrics["n_deviating"],
        "n_normal": metrics["n_normal"],
        "median_delay_h": metrics["median_delay_h"],
        "pre_onset_alarm_fraction": metrics["pre_onset_alarm_fraction"],
        "reference_batches_per_fold": per_fold,
        "phase1_excluded": excluded,
        "missed": dev.loc[~dev["detected"], "batch_id"].tolist(),
        "false_alarms": per.loc[~per["deviating"] & per["false_alarm"], "batch_id"].tolist(),
    }


def evaluate_plant2(
    frames: dict[str, pl.DataFrame],
    softsensor_yaml: str | Path,
    golden_yaml: str | Path,
    *,
    titer_estimators: int | None = None,
    mspc_folds: int = 5,
    mspc_seed: int = 0,
) -> dict:
    """Soft sensor + MSPC of plant 2 from its YAML bundle, judged against the truth (see above)."""
    import dataclasses

    from ml import golden as gb
    from ml.batches import batch_conditions
    from ml.config import load_softsensor_config
    from ml.features import build_softsensor_features
    from ml.train import train_titer

    catalog = plant2_catalog()
    cfg = load_softsensor_config(softsensor_yaml, catalog)
    if titer_estimators:
        cfg = dataclasses.replace(
            cfg,
            titer=dataclasses.replace(
                cfg.titer, params=dataclasses.replace(cfg.titer.params, n_estimators=titer_estimators)
            ),
        )
    feats = build_softsensor_features(frames["readings"], frames["batches"], cfg.features, frames["assays"])
    conditions = batch_conditions(frames["batches"], frames["deviations"], cfg.batches)
    model = train_titer(feats, cfg, conditions=conditions)
    ss = softsensor_truth_figures(model, frames["truth_batches"], frames["truth_trajectories"])
    golden_cfg = gb.load_config(golden_yaml, catalog=catalog)
    ms = mspc_truth_figures(
        frames["readings"],
        frames["batches"],
        frames["deviations"],
        frames["truth_batches"],
        golden_cfg,
        folds=mspc_folds,
        seed=mspc_seed,
    )
    return {"softsensor": ss, "softsensor_model": model.metrics, "mspc": ms, "model": model}
