"""The second plant (``twin.microbial_site.export_microbial_plant``, the Pichia fed-batch) judged
against its ground truth, which no model reads: helpers for ``tests/ml/test_plant2_end_to_end.py``
and ``bench/bench_plant2.py``.

Two ways from the export to the ML layer, both with the shipped bundle ``config/plants/pichia/``:

* :func:`run_plant` — the real path: the bundle's import → bronze → dbt → gold → features →
  model → promotion gate → ``scores/titer`` → golden batch / MSPC, in the Dagster run
  ``lakehouse run --plant`` makes (the benchmark; the integration test on a small export);
* :func:`gold_frames_from_bronze` — the bundle's real import into bronze, then gold-shaped frames
  built by the REFERENCE alignment (:func:`lakehouse.transforms.alignment.align_readings`, the
  contract the dbt model is tested against) instead of the dbt build: a STAND-IN for dbt only,
  so that the judgement on a full campaign stays a test of minutes (the dbt build of 60 batches
  takes longer than a test may).

Only the evaluation reads the truth (``_truth/``), here, separately from anything a model reads.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

UTC_US = pl.Datetime("us", "UTC")
PLANT = "pichia"


def read_truth(export_dir: str | Path) -> dict[str, pl.DataFrame]:
    """Ground truth (evaluation only): ``batches`` (true fault kind and onset age) and
    ``trajectories`` (true titer etc. at every logging step, ``batch_id, ts``)."""
    t = Path(export_dir) / "_truth"
    tb = pl.read_csv(t / "batches.csv", infer_schema_length=10000).rename({"lot": "batch_id"})
    tr = pl.read_parquet(t / "trajectories.parquet").rename({"lot": "batch_id", "timestamp_utc": "ts"})
    return {"batches": tb, "trajectories": tr.with_columns(pl.col("ts").cast(UTC_US))}


def run_plant(export_dir: str | Path, lake_root: str | Path, warehouse: str | Path, plant: str = PLANT):
    """What ``lakehouse run --plant <bundle> --data-dir <export>`` does, in process: the bundle's
    import into bronze, then the plant job (dbt, features, models, gates, scores, golden batch,
    MSPC) in one Dagster run. Returns ``(defs, result)``."""
    import dagster as dg

    from assets.resources import LakeResource, SiteResource
    from lakehouse.ingest.foreign import run_import_config
    from lakehouse.plant import load_plant
    from lakehouse.storage import Lake
    from orchestration.build import PLANT_JOB, build_defs
    from orchestration.settings import Settings

    bundle = load_plant(plant)
    run_import_config(bundle.import_path, Lake(str(lake_root)), data_dir=export_dir)
    settings = Settings(  # source external: the plant's files, no twin simulation in the landing zone
        lake=LakeResource(root_uri=str(lake_root), duckdb_path=str(warehouse), plant=str(bundle.root)),
        site=SiteResource(source="external"),
    )
    defs = build_defs(settings)
    start, end = settings.partition_range()
    result = defs.resolve_job_def(PLANT_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        raise_on_error=False,
    )
    return defs, result


def gold_frames_from_bronze(lake, plant: str = PLANT) -> dict[str, pl.DataFrame]:
    """Gold-shaped frames from the bronze tables the bundle's import wrote (STAND-IN for the dbt
    build, see the module docstring): ``readings`` (``fct_process_readings``: the catalog's signal
    columns on the plant's grid, phases from its state signal), ``batches`` (``dim_batches``:
    window, status, recorded deviations), ``assays`` (``fct_assay_results``) and ``deviations``."""
    from lakehouse.plant import load_plant
    from lakehouse.transforms.alignment import align_readings, batch_windows

    bundle = load_plant(plant)

    def bronze(name: str) -> pl.DataFrame:
        return pl.read_delta(lake.uri("bronze", name))

    windows = pl.from_arrow(batch_windows(bronze("mes_batches"), bronze("mes_phases")))
    readings = pl.from_arrow(
        align_readings(
            bronze("historian_readings"),
            windows,
            grid_seconds=bundle.grid_seconds,
            parameters=bundle.catalog.names(),
            state_parameters=[s.name for s in bundle.catalog.of_kind("state")],
            phase_signal=bundle.phase_signal,
        )
    )
    dev = (
        bronze("mes_deviations")
        .group_by("batch_id")
        .agg(pl.len().alias("n_recorded_deviations"), pl.col("onset_ts").min().alias("first_deviation_onset_ts"))
    )
    batches = (
        windows.join(bronze("mes_batches").select("batch_id", "status", "recipe_id"), on="batch_id", how="left")
        .join(dev, on="batch_id", how="left")
        .with_columns(
            pl.col("n_recorded_deviations").fill_null(0),
            ((pl.col("harvest_ts") - pl.col("inoculation_ts")).dt.total_seconds() / 3600.0).alias("duration_h"),
        )
        .sort("inoculation_ts")
    )
    assays = (
        bronze("lims_results")
        .select("batch_id", "sample_id", "analyte", "value", "unit", "sample_time", "result_time")
        .join(windows.select("batch_id", "inoculation_ts"), on="batch_id", how="inner")
        .with_columns(
            ((pl.col("sample_time") - pl.col("inoculation_ts")).dt.total_seconds() / 3600.0).alias("culture_age_h")
        )
        .drop("inoculation_ts")
    )
    deviations = dev.select("batch_id", pl.col("first_deviation_onset_ts").alias("recorded_onset_ts"))
    return {"readings": readings, "batches": batches, "assays": assays, "deviations": deviations}


def model_truth_figures(model, truth_batches: pl.DataFrame, truth_trajectories: pl.DataFrame) -> dict:
    """A trained titer model's held-out trajectories (``model.trajectories``: prediction, interval,
    gate, mean-trajectory baseline) against the TRUE titer, on the batches it never trained on —
    as :func:`softsensor_truth_figures` judges the published scores."""
    tr = model.trajectories.join(
        truth_trajectories.select("batch_id", "ts", (pl.col("titer_mg_l") / 1000.0).alias("truth")),
        on=["batch_id", "ts"],
        how="inner",
    ).rename({"pred": "prediction", "lo": "pi_lower", "hi": "pi_upper", "baseline_mean_trajectory": "baseline"})
    return _truth_figures(tr, model.meta["split"]["test_batches"], truth_batches)


def _truth_figures(tr: pl.DataFrame, test_batches: list[str], truth_batches: pl.DataFrame) -> dict:
    """RMSE / baseline RMSE / interval coverage against ``truth`` on held-out normal batches and
    on fault batches after the true onset; gated rows left out."""
    import numpy as np

    faulty = truth_batches.filter(pl.col("faulty") == 1).select("batch_id", "fault_onset_age_h")
    normal = tr.filter(pl.col("batch_id").is_in(test_batches) & ~pl.col("batch_id").is_in(faulty["batch_id"].to_list()))
    post = tr.join(faulty, on="batch_id").filter(pl.col("culture_age_h") >= pl.col("fault_onset_age_h"))

    def figures(part: pl.DataFrame) -> dict:
        o = part.filter(~pl.col("gated"))
        if o.height == 0:
            return {"n_batches": 0, "n_rows": 0}
        y = o["truth"].to_numpy()

        def err(col: str) -> float:
            return float(np.sqrt(np.mean((o[col].to_numpy().astype(float) - y) ** 2)))

        inside = (y >= o["pi_lower"].to_numpy()) & (y <= o["pi_upper"].to_numpy())
        return {
            "n_batches": o["batch_id"].n_unique(),
            "n_rows": o.height,
            "gated_rows": part.height - o.height,
            "rmse": err("prediction"),
            "baseline_mean_trajectory_rmse": err("baseline"),
            "pi90_coverage": float(inside.mean()),
        }

    return {"normal": figures(normal), "fault_post_onset": figures(post)}


def softsensor_truth_figures(lake, cfg, truth_batches: pl.DataFrame, truth_trajectories: pl.DataFrame) -> dict:
    """The titer champion's published scores (``scores/titer`` step rows) against the TRUE titer on
    the batches it never trained on: held-out normal batches (truly fault-free) and fault batches
    after the true onset. Gated rows (before the early-culture gate: the sensor publishes the mean
    trajectory there) are left out; the mean-trajectory baseline (the model's own, from its
    training batches) is scored on the same rows. Titer: g/L in gold, mg/L in the truth."""
    from lakehouse.tables import read_table
    from ml.registry import ModelRegistry
    from ml.softsensor import mean_trajectory

    _, meta, rec = ModelRegistry(lake).load(cfg.titer.name)
    scores = read_table(lake, "scores", "titer").df.filter(pl.col("row_type") == "step")
    if set(scores["model_version"].unique()) != {rec.version}:
        raise AssertionError("scores/titer is not by the champion")
    tr = scores.join(
        truth_trajectories.select("batch_id", "ts", (pl.col("titer_mg_l") / 1000.0).alias("truth")),
        on=["batch_id", "ts"],
        how="inner",
    )
    tr = tr.with_columns(
        pl.Series("baseline", mean_trajectory(meta.get("mean_trajectory") or {}, tr["culture_age_h"].to_numpy()))
    )
    return _truth_figures(tr, meta["split"]["test_batches"], truth_batches) | {"meta": meta, "metrics": rec.metrics}


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


def gold_frames(lake) -> dict[str, pl.DataFrame]:
    """What MSPC reads: ``gold/fct_process_readings``, ``gold/dim_batches`` and the recorded deviations."""
    from lakehouse.tables import read_table
    from ml.pipeline import lake_deviations

    return {
        "readings": read_table(lake, "gold", "fct_process_readings").df,
        "batches": read_table(lake, "gold", "dim_batches").df,
        "deviations": lake_deviations(lake),
    }


def evaluate_plant2(
    lake, export_dir: str | Path, plant: str = PLANT, *, mspc_folds: int = 5, mspc_seed: int = 0
) -> dict:
    """Soft sensor (the champion the plant run published) and MSPC (K-fold over the plant's gold
    batches, its bundle's golden.yaml) judged against the truth of the export."""
    from ml.plant import load_plant_ml

    ml = load_plant_ml(plant)
    truth = read_truth(export_dir)
    ss = softsensor_truth_figures(lake, ml.softsensor, truth["batches"], truth["trajectories"])
    g = gold_frames(lake)
    ms = mspc_truth_figures(
        g["readings"], g["batches"], g["deviations"], truth["batches"], ml.golden, folds=mspc_folds, seed=mspc_seed
    )
    return {"softsensor": ss, "mspc": ms, "frames": g, "golden": ml.golden, "truth": truth}
