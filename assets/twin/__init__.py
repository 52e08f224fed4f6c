"""Twin domain: calibration to the site, in-silico DoE and setpoint recommendation.

Asset keys (group ``twin``), resource ``lake``:

* ``["twin", "calibration"]`` → Delta ``insilico/calibration`` (appended, one row per fitted
  parameter with ``calibration_id``): ``KineticParams`` fitted to the titer and VCD assays of
  the complete batches in ``gold/dim_batches`` + ``gold/fct_assay_results``; RMSE before/after.
* ``["twin", "insilico_doe"]`` → Delta ``insilico/doe_runs`` (appended with ``doe_id``):
  ≥ 1,000 twin batches over a Latin hypercube inside ``twin.bioreactor.DESIGN_SPACE``, run with
  the latest calibration and the site's batch-to-batch variability.
* ``["twin", "setpoint_recommendation"]`` → Delta ``insilico/setpoint_recommendation``
  (appended) + surrogate models ``models/insilico_surrogate/<doe_id>/*.ubj``: XGBoost
  surrogate of titer and CQAs, constrained optimum inside the design space, verified by
  running it through the twin; response-surface plot in the metadata.

Library code: ``twin/calibration.py``, ``ml/doe.py`` (also the lake's latest calibration / DoE);
config: ``config/golden.yaml``. Docs: docs/golden-batch.md.
"""

import json
import uuid

import dagster as dg

from assets.golden import ASSAYS, DIM_BATCHES, now_utc, read_gold
from assets.resources import LakeResource
from assets.support import md_table, skip_on_insufficient_data

GROUP = "twin"
CALIBRATION = dg.AssetKey(["twin", "calibration"])
DOE = dg.AssetKey(["twin", "insilico_doe"])
RECOMMENDATION = dg.AssetKey(["twin", "setpoint_recommendation"])


class DoeConfig(dg.Config):
    """Run-time overrides of ``doe`` in config/golden.yaml (null = the YAML value)."""

    n_runs: int | None = None
    seed: int | None = None


class CalibrationConfig(dg.Config):
    """Run-time overrides of ``calibration`` in config/golden.yaml (null = the YAML value)."""

    max_batches: int | None = None
    max_nfev: int | None = None


@dg.asset(
    key=CALIBRATION,
    deps=[DIM_BATCHES, ASSAYS],
    group_name=GROUP,
    kinds={"delta", "scipy"},
    description="Twin kinetics fitted to the site's titer and VCD assays (RMSE before/after).",
    output_required=False,  # skipped with the reason on insufficient data
)
@skip_on_insufficient_data
def twin_calibration(context: dg.AssetExecutionContext, config: CalibrationConfig, lake: LakeResource):
    import pandas as pd

    from lakehouse.tables import write_table
    from ml import golden as gb
    from twin.calibration import calibrate

    the_lake = lake.get_lake()
    cfg = gb.load_config()
    c = cfg.get("calibration") or {}
    batches = read_gold(the_lake, "dim_batches").to_pandas()
    batches = batches[batches["status"] == "complete"]
    if "n_deviation_work_orders" in batches:
        batches = batches[pd.to_numeric(batches["n_deviation_work_orders"], errors="coerce").fillna(0) == 0]
    assays = read_gold(the_lake, "fct_assay_results", ["batch_id", "analyte", "value", "culture_age_h"]).to_pandas()
    fit = {k: tuple(v) for k, v in (c.get("fit") or {}).items()} or None
    res = calibrate(
        batches,
        assays,
        fit=fit,
        analytes=tuple(c.get("analytes", ("titer", "vcd"))),
        scales=c.get("scales"),
        dt_h=float(c.get("dt_h", 1.0)),
        max_batches=config.max_batches or c.get("max_batches", 24),
        max_nfev=config.max_nfev or int(c.get("max_nfev", 20)),
    )
    df = res.to_frame()
    cid = now_utc().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    improved = res.rmse_after["scaled_total"] <= res.rmse_before["scaled_total"] + 1e-9
    df["calibration_id"] = cid
    df["use_for_twin"] = bool(improved)
    df["created_at"] = now_utc()
    v = write_table(the_lake, "insilico", "calibration", df, mode="append")
    return dg.MaterializeResult(
        metadata={
            "calibration_id": cid,
            "delta_version": v,
            "n_batches": res.n_batches,
            "n_points": dg.MetadataValue.json(res.n_points),
            "n_twin_runs": res.n_evaluations,
            "params": dg.MetadataValue.json(res.params),
            "initial": dg.MetadataValue.json(res.initial),
            "rmse_before": dg.MetadataValue.json(res.rmse_before),
            "rmse_after": dg.MetadataValue.json(res.rmse_after),
            "titer_rmse_before_g_l": res.rmse_before.get("titer", float("nan")),
            "titer_rmse_after_g_l": res.rmse_after.get("titer", float("nan")),
            "use_for_twin": bool(improved),
            "message": res.message,
        }
    )


@dg.asset(
    key=DOE,
    deps=[CALIBRATION],
    group_name=GROUP,
    kinds={"delta", "numpy"},
    description="In-silico DoE: Latin hypercube of recipes inside DESIGN_SPACE run through the twin.",
)
def insilico_doe(context: dg.AssetExecutionContext, config: DoeConfig, lake: LakeResource) -> dg.MaterializeResult:
    import time

    import numpy as np

    from lakehouse.tables import write_table
    from ml import doe
    from ml import golden as gb

    the_lake = lake.get_lake()
    d = gb.load_config().get("doe") or {}
    n_runs = int(config.n_runs or d.get("n_runs", 1200))
    seed = int(config.seed if config.seed is not None else d.get("seed", 2026))
    params, cid = doe.latest_calibration(the_lake)
    space = doe.design_space(d.get("factors"))
    design = doe.latin_hypercube(n_runs, space, seed=seed)
    t0 = time.perf_counter()
    runs = doe.simulate_design(
        design,
        params=doe.kinetic_params(params),
        seed=seed,
        dt_h=float(d.get("dt_h", 0.25)),
        chunk_size=int(d.get("chunk_size", 600)),
        n_jobs=int(d.get("n_jobs", 1)),
    )
    secs = time.perf_counter() - t0
    assert doe.inside(runs, space).all(), "a DoE run left the design space"
    doe_id = now_utc().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    runs.insert(0, "run", np.arange(len(runs), dtype=np.int64))
    runs.insert(0, "doe_id", doe_id)
    runs["calibration_id"] = cid
    runs["created_at"] = now_utc()
    v = write_table(the_lake, "insilico", "doe_runs", runs, mode="append")
    return dg.MaterializeResult(
        metadata={
            "doe_id": doe_id,
            "dagster/row_count": len(runs),
            "delta_version": v,
            "seconds": secs,
            "insilico_batches_per_s": len(runs) / max(secs, 1e-9),
            "calibration_id": cid or "none (twin defaults)",
            "design_space": dg.MetadataValue.json({k: list(v_) for k, v_ in space.items()}),
            "titer_g_l": dg.MetadataValue.json(runs["harvest_titer_g_l"].describe().round(3).to_dict()),
        }
    )


@dg.asset(
    key=RECOMMENDATION,
    deps=[DOE, DIM_BATCHES],
    group_name=GROUP,
    kinds={"delta", "xgboost"},
    description="Setpoints maximising titer with CQAs in spec (XGBoost surrogate, inside the design "
    "space), verified by running them through the twin.",
)
def setpoint_recommendation(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    import numpy as np
    import pandas as pd

    from lakehouse.tables import write_table
    from ml import doe
    from ml import golden as gb

    the_lake = lake.get_lake()
    cfg = gb.load_config()
    d = cfg.get("doe") or {}
    specs = gb.spec_limits(cfg)
    runs = doe.latest_doe(the_lake)
    doe_id = str(runs["doe_id"].iloc[0])
    cid = runs["calibration_id"].iloc[0]
    params, _ = doe.latest_calibration(the_lake)
    space = doe.design_space(d.get("factors"))
    factors = list(space)
    outcomes = [d.get("objective", "harvest_titer_g_l")] + [k for k in specs if k in runs.columns]
    s = d.get("surrogate") or {}
    sur = doe.Surrogate.fit(
        runs,
        factors,
        outcomes,
        n_estimators=int(s.get("n_estimators", 200)),
        max_depth=int(s.get("max_depth", 4)),
        learning_rate=float(s.get("learning_rate", 0.08)),
        folds=int(s.get("folds", 4)),
        seed=int(d.get("seed", 2026)),
    )
    rec = doe.recommend(
        sur,
        space,
        specs,
        objective=d.get("objective", "harvest_titer_g_l"),
        margin=float(d.get("margin", 0.05)),
        kappa=float(d.get("kappa", 1.0)),
        n_candidates=int(d.get("n_candidates", 20000)),
        seed=int(d.get("seed", 2026)),
    )
    ver = doe.verify(
        rec["setpoints"],
        specs,
        n_replicates=int(d.get("verify_replicates", 24)),
        params=doe.kinetic_params(params),
        dt_h=float(d.get("dt_h", 0.25)),
    )
    hist = read_gold(the_lake, "dim_batches").to_pandas()
    hist = hist[hist["status"] == "complete"]
    hist_median = float(pd.to_numeric(hist["harvest_titer_g_l"], errors="coerce").median())
    # surrogate models in XGBoost's own format
    fs = the_lake.filesystem()
    mdir = the_lake.fs_path(the_lake.uri("models", "insilico_surrogate", doe_id))
    fs.makedirs(mdir, exist_ok=True)
    for name, blob in sur.to_ubj().items():
        fs.pipe(f"{mdir}/{name}", blob)
    inside = bool(doe.inside(pd.DataFrame([rec["setpoints"]]), space)[0])
    row = {
        "recommendation_id": doe_id,
        "doe_id": doe_id,
        "calibration_id": cid,
        "created_at": now_utc(),
        **{f"sp_{k}": v for k, v in rec["setpoints"].items()},
        "inside_design_space": inside,
        "feasible": rec["feasible"],
        "pred_titer_q05": rec["predicted"][rec["objective"]]["q05"],
        "pred_titer_q50": rec["predicted"][rec["objective"]]["q50"],
        "pred_titer_q95": rec["predicted"][rec["objective"]]["q95"],
        "pred_titer_ensemble_sd": rec["predicted"][rec["objective"]]["std"],
        "pred_titer_spread_sd": rec["predicted"][rec["objective"]]["spread"],
        "verified_titer_mean": ver["titer_mean"],
        "verified_titer_sd": ver["titer_sd"],
        "verified_titer_p05": ver["titer_p05"],
        "verified_cqa_pass_fraction": ver["cqa_pass_fraction"],
        "historical_median_titer": hist_median,
        "n_historical_batches": len(hist),
        "beats_historical_median": bool(ver["titer_mean"] > hist_median),
        "predicted_json": json.dumps(rec["predicted"]),
        "verified_cqa_json": json.dumps(ver["cqa"]),
        "surrogate_cv_json": json.dumps(sur.cv_metrics),
        "design_space_json": json.dumps(rec["design_space"]),
        "specs_json": json.dumps({k: list(v) for k, v in specs.items()}),
        "n_doe_runs": len(runs),
        "margin": rec["margin"],
        "kappa": rec["kappa"],
        "surrogate_path": mdir,
    }
    v = write_table(the_lake, "insilico", "setpoint_recommendation", pd.DataFrame([row]), mode="append")
    fx, fy = doe.top_factors(sur, rec["objective"], 2)
    png = doe.plot_response_surface(
        sur, rec, fx, fy, specs, runs=runs, objective=rec["objective"], margin=rec["margin"]
    )
    sp_table = pd.DataFrame(
        {
            "setpoint": list(rec["setpoints"]),
            "recommended": list(rec["setpoints"].values()),
            "low": [space[k][0] for k in rec["setpoints"]],
            "high": [space[k][1] for k in rec["setpoints"]],
        }
    )
    cqa_table = pd.DataFrame(
        [
            {
                "outcome": o,
                "pred_q05": p["q05"],
                "pred_q50": p["q50"],
                "pred_q95": p["q95"],
                "verified_mean": ver["cqa"]
                .get(o, {})
                .get("mean", ver["titer_mean"] if o == rec["objective"] else np.nan),
                "spec_min": specs.get(o, (None, None))[0],
                "spec_max": specs.get(o, (None, None))[1],
            }
            for o, p in rec["predicted"].items()
        ]
    )
    return dg.MaterializeResult(
        metadata={
            "recommendation_id": doe_id,
            "delta_version": v,
            "inside_design_space": inside,
            "setpoints": dg.MetadataValue.md(md_table(sp_table, 20)),
            "predicted_vs_verified": dg.MetadataValue.md(md_table(cqa_table, 20)),
            "predicted_titer_g_l": rec["predicted"][rec["objective"]]["q50"],
            "verified_titer_g_l": ver["titer_mean"],
            "historical_median_titer_g_l": hist_median,
            "verified_cqa_pass_fraction": ver["cqa_pass_fraction"],
            "surrogate_cv": dg.MetadataValue.json(sur.cv_metrics),
            "response_surface": dg.MetadataValue.md(gb.png_markdown(png, "DoE response surface")),
        }
    )


@dg.asset_check(asset=RECOMMENDATION, description="The recommended setpoints lie inside the declared design space.")
def recommendation_inside_design_space(lake: LakeResource) -> dg.AssetCheckResult:
    import polars as pl

    the_lake = lake.get_lake()
    df = pl.from_arrow(the_lake.read_delta(the_lake.uri("insilico", "setpoint_recommendation"))).sort("created_at")
    last = df.row(-1, named=True)
    space = json.loads(last["design_space_json"])
    bad = {k: last[f"sp_{k}"] for k, (lo, hi) in space.items() if not (lo - 1e-9 <= last[f"sp_{k}"] <= hi + 1e-9)}
    return dg.AssetCheckResult(
        passed=not bad, metadata={"outside": dg.MetadataValue.json(bad), "recommendation_id": last["recommendation_id"]}
    )


@dg.asset_check(
    asset=RECOMMENDATION,
    description="Run through the twin, the recommendation beats the historical "
    "median titer and meets the CQA specs (>= 90 % of replicates).",
)
def recommendation_verified_in_twin(lake: LakeResource) -> dg.AssetCheckResult:
    import polars as pl

    the_lake = lake.get_lake()
    df = pl.from_arrow(the_lake.read_delta(the_lake.uri("insilico", "setpoint_recommendation"))).sort("created_at")
    last = df.row(-1, named=True)
    ok = bool(last["beats_historical_median"]) and last["verified_cqa_pass_fraction"] >= 0.9
    return dg.AssetCheckResult(
        passed=ok,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "verified_titer_mean": last["verified_titer_mean"],
            "historical_median_titer": last["historical_median_titer"],
            "verified_cqa_pass_fraction": last["verified_cqa_pass_fraction"],
        },
    )


defs = dg.Definitions(
    assets=[twin_calibration, insilico_doe, setpoint_recommendation],
    asset_checks=[recommendation_inside_design_space, recommendation_verified_in_twin],
)
