"""Golden batch domain: golden profile and batch evolution monitoring (MSPC) on the gold marts.

Asset keys (group ``golden_batch``), all reading/writing the lake (resource ``lake``):

* ``["golden", "batch_qualification"]`` → Delta ``golden/batch_qualification``: one row per
  batch of ``gold/dim_batches``: qualified / in spec / reason (spec limits: config/golden.yaml).
* ``["golden", "profile"]`` → Delta ``golden/profile``: per-signal envelope (median, 5–95 %,
  ±3σ) of the golden batches on culture age and % maturity; plot of the latest batch.
* ``["golden", "mspc_model"]`` → ``models/mspc_bem/<version>.npz`` + ``.json`` (no pickle) and
  ``models/mspc_bem/latest.json``; trained on in-spec batches without deviation work orders.
* ``["golden", "deviation_scores"]`` → Delta ``scores/mspc_deviation``: T², SPE, limits and
  alarm state per batch and culture-age bin, model name + version on every row.
* ``["golden", "alarms"]`` → Delta ``golden/alarms``: one row per alarm (batch, culture age,
  statistic, signals to blame with contribution shares).
* ``["golden", "mspc_evaluation"]`` → Delta ``golden/mspc_evaluation``: alarms against the
  simulator ground truth (``landing/_truth/batches.parquet``, evaluation only) — detection,
  lead time, false alarms; skipped (empty) when the lake has no truth (a real plant).

Library code: ``ml/golden.py``, ``ml/mspc.py``, ``lakehouse/tables.py`` (plain Python); goals and
thresholds: ``config/golden.yaml``. Docs: docs/golden-batch.md.
"""

from datetime import UTC, datetime

import dagster as dg

from assets.resources import LakeResource
from assets.support import md_table, skipped

GROUP = "golden_batch"
DIM_BATCHES = dg.AssetKey(["gold", "dim_batches"])
READINGS = dg.AssetKey(["gold", "fct_process_readings"])
ASSAYS = dg.AssetKey(["gold", "fct_assay_results"])
QUALIFICATION = dg.AssetKey(["golden", "batch_qualification"])
PROFILE = dg.AssetKey(["golden", "profile"])
MODEL = dg.AssetKey(["golden", "mspc_model"])
SCORES = dg.AssetKey(["golden", "deviation_scores"])
ALARMS = dg.AssetKey(["golden", "alarms"])
EVALUATION = dg.AssetKey(["golden", "mspc_evaluation"])


def now_utc() -> datetime:
    """The time stamp of a materialization (UTC)."""
    return datetime.now(UTC)


def _golden_cfg(lake: LakeResource) -> dict:
    """The golden-batch / MSPC config of the lake's plant (its bundle's ``golden.yaml``; the
    default plant's is ``config/golden.yaml``)."""
    from ml.plant import golden_config

    return golden_config(lake.get_plant())


def read_gold(lake, mart: str, columns: list[str] | None = None):
    """``gold/<mart>`` as polars (requested columns the mart lacks are left out)."""
    from lakehouse.tables import read_table

    return read_table(lake, "gold", mart, columns=columns, only_existing_columns=True).df


def _read(lake, layer: str, name: str):
    from lakehouse.tables import read_table

    return read_table(lake, layer, name).df


# ----------------------------------------------------------------------------- assets
@dg.asset(
    key=QUALIFICATION,
    deps=[DIM_BATCHES],
    group_name=GROUP,
    kinds={"delta", "python"},
    description="Which historical batches qualify as golden (CQAs in spec, top titer) and why.",
)
def batch_qualification(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    from lakehouse.tables import write_table
    from ml import golden as gb

    the_lake = lake.get_lake()
    cfg = _golden_cfg(lake)
    batches = read_gold(the_lake, "dim_batches").to_pandas()
    qual = gb.qualify_batches(batches, cfg)
    qual["evaluated_at"] = now_utc()
    version = write_table(the_lake, "golden", "batch_qualification", qual)
    n_q = int(qual["qualified"].sum())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(qual),
            "golden_batches": n_q,
            "in_spec_batches": int(qual["in_spec"].sum()),
            "titer_cut_g_l": float(qual["titer_cut_g_l"].iloc[0]) if len(qual) else float("nan"),
            "cqa_specs": dg.MetadataValue.json(cfg["cqa_specs"]),
            "delta_version": version,
            "preview": dg.MetadataValue.md(
                md_table(qual[["batch_id", "qualified", "in_spec", "harvest_titer_g_l", "reason"]])
            ),
        }
    )


@dg.asset(
    key=PROFILE,
    deps=[QUALIFICATION, READINGS],
    group_name=GROUP,
    kinds={"delta", "python"},
    output_required=False,  # skipped with the reason when no batch qualifies
    description="Golden-batch trajectory envelope per signal on culture age and % maturity.",
)
def golden_profile(context: dg.AssetExecutionContext, lake: LakeResource):
    import numpy as np
    import pandas as pd
    import polars as pl

    from lakehouse.tables import write_table
    from ml import golden as gb

    the_lake = lake.get_lake()
    cfg = _golden_cfg(lake)
    qual = _read(the_lake, "golden", "batch_qualification").to_pandas()
    golden_ids = qual.loc[qual["qualified"], "batch_id"].tolist()
    if not golden_ids:
        yield skipped(
            context,
            PROFILE,
            "insufficient data: no batch qualifies as golden (qualification, cqa_specs in golden.yaml)",
        )
        return
    p = cfg["profile"]
    cols = ["batch_id", "culture_age_h", "maturity_pct", *p["signals"]]
    readings = read_gold(the_lake, "fct_process_readings", cols)
    frames = []
    for axis, step in (
        ("culture_age_h", float(p["culture_age_step_h"])),
        ("maturity_pct", float(p["maturity_step_pct"])),
    ):
        n_steps = int(np.ceil(100.0 / step)) + 1 if axis == "maturity_pct" else None
        al = gb.align(
            readings.filter(pl.col("batch_id").is_in(golden_ids)),
            p["signals"],
            axis=axis,
            step=step,
            n_steps=n_steps,
            batch_ids=golden_ids,
        )
        frames.append(
            gb.golden_profile(
                al, band_pct=p["band_pct"], sigma=float(p.get("sigma", 3.0)), min_batches=min(3, len(golden_ids))
            )
        )
    profile = pd.concat(frames, ignore_index=True)
    profile["n_golden_batches"] = len(golden_ids)
    profile["built_at"] = now_utc()
    version = write_table(the_lake, "golden", "profile", profile)
    # plot: the most recent batch against the envelope
    latest = readings.group_by("batch_id").agg(pl.col("culture_age_h").max()).sort("batch_id")["batch_id"][-1]
    al_b = gb.align(
        readings.filter(pl.col("batch_id") == latest),
        p["signals"],
        axis="culture_age_h",
        step=float(p["culture_age_step_h"]),
        batch_ids=[latest],
    )
    png = gb.plot_envelope(
        profile,
        al_b,
        signals=list(p.get("plot_signals") or p["signals"][:9]),
        title=f"{latest} against the golden envelope ({len(golden_ids)} golden batches)",
        units=lake.get_plant().catalog.units(),
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(profile),
            "golden_batches": len(golden_ids),
            "golden_batch_ids": dg.MetadataValue.json(golden_ids[:200]),
            "delta_version": version,
            "plot": dg.MetadataValue.md(gb.png_markdown(png, f"{latest} vs golden envelope")),
        }
    )


@dg.asset(
    key=MODEL,
    deps=[QUALIFICATION, READINGS, DIM_BATCHES],
    group_name=GROUP,
    kinds={"numpy", "python"},
    output_required=False,  # skipped with the reason with fewer than 4 reference batches
    description="Batch evolution monitoring model (PCA on per-time-step scaled good batches) with "
    "cross-validated time-varying T²/SPE limits; stored as npz + JSON.",
)
def mspc_model(context: dg.AssetExecutionContext, lake: LakeResource):
    import polars as pl

    from lakehouse.jsonsafe import clean
    from ml import golden as gb
    from ml import mspc

    the_lake = lake.get_lake()
    cfg = _golden_cfg(lake)
    mcfg = mspc.MSPCConfig.from_dict(cfg["mspc"])
    qual = _read(the_lake, "golden", "batch_qualification").to_pandas()
    batches = read_gold(the_lake, "dim_batches").to_pandas()
    from ml.pipeline import lake_deviations

    train_ids = gb.mspc_reference_ids(qual, batches, lake_deviations(the_lake), cfg)
    if len(train_ids) < 4:
        yield skipped(
            context,
            MODEL,
            f"insufficient data: MSPC needs >= 4 reference batches (in spec, normal status, nothing recorded), "
            f"found {len(train_ids)}",
        )
        return
    readings = read_gold(the_lake, "fct_process_readings").filter(pl.col("batch_id").is_in(train_ids))
    al = mspc.align_for(mcfg, readings, batch_ids=train_ids)
    model = mspc.fit_mspc(al, mcfg)
    version = now_utc().strftime("%Y%m%dT%H%M%SZ")
    readings_version = int(the_lake.delta_table(the_lake.uri("gold", "fct_process_readings")).version())
    model.info["training_data"] = {"gold/fct_process_readings": readings_version}
    base = mspc.save_to_lake(the_lake, model, version)
    yield dg.MaterializeResult(
        metadata={
            "model_name": mspc.MODEL_NAME,
            "model_version": version,
            "path": base + ".npz",
            "n_train_batches": len(train_ids),
            "n_components": model.n_components,
            "n_steps": model.n_steps,
            "signals": dg.MetadataValue.json(model.signals),
            "limit_scale": model.limit_scale,
            "cv_batch_alarm_fraction": model.info["cv_batch_alarm_fraction"],
            "explained_variance": model.info["cumulative_explained_variance"],
            "info": dg.MetadataValue.json(clean(model.info)),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SCORES,
            deps=[MODEL, READINGS],
            group_name=GROUP,
            kinds={"delta"},
            description="Per batch and culture-age bin: T², SPE, their limits and the alarm state.",
        ),
        dg.AssetSpec(
            ALARMS,
            deps=[MODEL, READINGS],
            group_name=GROUP,
            kinds={"delta"},
            description="MSPC alarms: batch, culture age, statistic, signals to blame.",
        ),
    ],
    name="mspc_monitoring",
)
def mspc_monitoring(context: dg.AssetExecutionContext, lake: LakeResource):
    from lakehouse.tables import write_table
    from ml import golden as gb
    from ml import mspc

    the_lake = lake.get_lake()
    model, version = mspc.load_latest_from_lake(the_lake)
    readings = read_gold(the_lake, "fct_process_readings")
    al = mspc.align_for(model, readings)
    sc = mspc.score(model, al)
    scored_at = now_utc()
    frame = sc.to_frame()
    frame["model_name"], frame["model_version"], frame["scored_at"] = mspc.MODEL_NAME, version, scored_at
    frame["in_training"] = frame["batch_id"].isin(model.train_batches)
    v1 = write_table(the_lake, "scores", "mspc_deviation", frame)
    ev = mspc.alarm_events(sc)
    ev["model_name"], ev["model_version"], ev["raised_at"] = mspc.MODEL_NAME, version, scored_at
    v2 = write_table(the_lake, "golden", "alarms", ev)
    alarmed = sorted(ev["batch_id"].unique().tolist())
    # chart: the latest alarmed batch (else the latest batch)
    show = alarmed[-1] if alarmed else al.batch_ids[-1]
    png = mspc.plot_control_charts(sc, show)
    yield dg.MaterializeResult(
        asset_key=SCORES,
        metadata={
            "dagster/row_count": len(frame),
            "batches_scored": len(al.batch_ids),
            "model_version": version,
            "delta_version": v1,
            "chart": dg.MetadataValue.md(gb.png_markdown(png, f"T2/SPE {show}")),
        },
    )
    first = ev.groupby("batch_id").first().reset_index() if len(ev) else ev
    yield dg.MaterializeResult(
        asset_key=ALARMS,
        metadata={
            "dagster/row_count": len(ev),
            "batches_alarmed": len(alarmed),
            "model_version": version,
            "delta_version": v2,
            "first_alarm_per_batch": dg.MetadataValue.md(
                md_table(first[["batch_id", "culture_age_h", "statistic", "top_signals"]], 20)
                if len(ev)
                else "no alarms"
            ),
        },
    )


@dg.asset(
    key=EVALUATION,
    deps=[ALARMS, SCORES, ASSAYS],
    group_name=GROUP,
    kinds={"delta", "python"},
    description="MSPC alarms against the twin's deviation truth (detection, lead time, false alarms).",
)
def mspc_evaluation(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    import numpy as np
    import pandas as pd

    from lakehouse.tables import write_table
    from ml import golden as gb
    from ml import mspc

    the_lake = lake.get_lake()
    cfg = _golden_cfg(lake)
    truth = gb.deviation_truth(the_lake)
    if truth is None:
        return dg.MaterializeResult(
            metadata={"evaluated": False, "reason": "no landing/_truth (a real plant): nothing to evaluate"}
        )
    model, version = mspc.load_latest_from_lake(the_lake)
    scores = _read(the_lake, "scores", "mspc_deviation").to_pandas()
    steps = scores[scores["alarm"]][["batch_id", "culture_age_h"]]
    assays = read_gold(the_lake, "fct_assay_results").to_pandas()
    assays["result_age_h"] = (
        assays["culture_age_h"]
        + (
            pd.to_datetime(assays["result_time"], utc=True) - pd.to_datetime(assays["sample_time"], utc=True)
        ).dt.total_seconds()
        / 3600.0
    )
    # honest evaluation: batches the model did not train on, that it scored
    truth = truth[truth["batch_id"].isin(scores["batch_id"].unique()) & ~truth["batch_id"].isin(model.train_batches)]
    truth = truth[truth["end_h"].notna()].copy()
    vis = mspc.visibility(truth, assays, model.train_batches, z=float(cfg["mspc"]["evaluation"]["visible_z"]))
    truth["visible_h"] = truth["batch_id"].map(vis)
    metrics, per = mspc.evaluate_alarms(steps, truth)
    per["model_version"] = version
    per["evaluated_at"] = now_utc()
    v = write_table(the_lake, "golden", "mspc_evaluation", per)
    by_type = (
        per[per["deviating"]]
        .groupby("deviation_type")[["detected", "lead_h", "delay_h"]]
        .agg({"detected": "mean", "lead_h": "median", "delay_h": "median"})
        .reset_index()
        if metrics["n_deviating"]
        else pd.DataFrame()
    )
    return dg.MaterializeResult(
        metadata={
            "evaluated": True,
            "model_version": version,
            "delta_version": v,
            **{k: (float(v_) if isinstance(v_, (float, np.floating)) else v_) for k, v_ in metrics.items()},
            "by_deviation_type": dg.MetadataValue.md(md_table(by_type) if len(by_type) else "no deviating batches"),
        }
    )


# ------------------------------------------------------------------------ asset checks
@dg.asset_check(asset=PROFILE, description="At least qualification.min_golden_batches golden batches.")
def enough_golden_batches(lake: LakeResource) -> dg.AssetCheckResult:
    cfg = _golden_cfg(lake)
    qual = _read(lake.get_lake(), "golden", "batch_qualification").to_pandas()
    n = int(qual["qualified"].sum())
    need = int(cfg["qualification"]["min_golden_batches"])
    return dg.AssetCheckResult(
        passed=n >= need, metadata={"golden_batches": n, "required": need}, severity=dg.AssetCheckSeverity.WARN
    )


@dg.asset_check(asset=MODEL, description="Cross-validated good batches alarm at most at the target rate.")
def cv_false_alarm_within_target(lake: LakeResource) -> dg.AssetCheckResult:
    from ml import mspc

    model, version = mspc.load_latest_from_lake(lake.get_lake())
    target = float(model.config["batch_false_alarm_target"])
    got = float(model.info["cv_batch_alarm_fraction"])
    return dg.AssetCheckResult(
        passed=got <= target + 1e-9,
        metadata={"cv_batch_alarm_fraction": got, "target": target, "model_version": version},
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "alarm_goals_met",
            asset=EVALUATION,
            description="Goals (config mspc.evaluation.goals): >= 80 % of deviating batches "
            "alarmed, median lead >= 24 h, <= 5 % of normal batches ever alarmed. "
            "Skipped (not evaluated) when there is no evaluation to judge.",
        )
    ],
    can_subset=True,
)
def alarm_goals_met(context: dg.AssetCheckExecutionContext, lake: LakeResource):
    from ml import mspc

    the_lake = lake.get_lake()
    uri = the_lake.uri("golden", "mspc_evaluation")
    per = _read(the_lake, "golden", "mspc_evaluation").to_pandas() if the_lake.delta_exists(uri) else None
    out = mspc.alarm_goal_outcome(per, _golden_cfg(lake)["mspc"].get("evaluation", {}).get("goals"))
    if out["state"] == "not_evaluated":  # no result: Dagster records the check as skipped, never passed
        context.log.warning(f"alarm_goals_met not evaluated: {out['reason']}")
        return
    yield dg.AssetCheckResult(
        check_name="alarm_goals_met",
        asset_key=EVALUATION,
        passed=out["state"] == "passed",
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            k: (dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v) for k, v in out.items() if k != "state"
        },
    )


defs = dg.Definitions(
    assets=[batch_qualification, golden_profile, mspc_model, mspc_monitoring, mspc_evaluation],
    asset_checks=[enough_golden_batches, cv_false_alarm_within_target, alarm_goals_met],
)
