"""Scoring running batches from their partial data, through the public functions of ``ml``.

For each running batch (``silver/live_process_readings``, ``lakehouse.live.running``):

* :func:`softsensor_rows` — soft-sensor predictions with intervals, applicability domain and
  top signal at every new grid step (titer champion) and, when the batch crosses the harvest
  models' day D, each harvest-CQA champion (:func:`ml.scoring.predict_frame`);
* :func:`mspc_rows` — batch-evolution MSPC on the partial batch (:func:`ml.mspc.score`): T², SPE,
  their limits, over-limit / alarm flags and the top contributing signals of every completed
  step, plus the alarm events (:func:`ml.mspc.alarm_events`);
* :func:`forecast_rows` — the twin mirror (:func:`ml.mirror.mirror_batches`): harvest titer,
  viability and CQA forecasts with 80/95 % bands, warm-started from the previous posterior;
* :func:`new_alerts` — one alert per condition (an MSPC alarm event of a batch, keyed by the
  step its over-limit run started), with the evidence (statistic, ratios, contributions) and the
  twin's ranked corrective scenarios (:func:`twin.mirror.recommend`) as the recommendation.

Plain Python (no Dagster); the lake I/O is in :mod:`lakehouse.live`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ml.config import HarvestModelConfig, SoftSensorConfig
from ml.features import build_harvest_dataset, build_softsensor_features
from ml.scoring import predict_frame

UTC_US = pl.Datetime("us", "UTC")
#: MSPC alarm severity by the larger statistic/limit ratio at firing
SEVERITY_RATIO: tuple[tuple[float, str], ...] = ((3.0, "high"), (1.5, "medium"), (0.0, "low"))


def batches_frame(run: pl.DataFrame) -> pl.DataFrame:
    """``dim_batches``-like rows of running batches (:func:`lakehouse.live.context.running_batches`):
    ``batch_id, unit_id, inoculation_ts, duration_h`` and the recipe setpoints."""
    out = run.rename({"culture_start": "inoculation_ts"})
    if "duration_days" in out.columns:
        out = out.with_columns((pl.col("duration_days") * 24.0).alias("duration_h"))
    return out


def as_of_hours(aligned: pl.DataFrame, grid_s: float) -> dict[str, float]:
    """Culture age [h] up to which each batch's data are complete (end of its last grid step)."""
    if aligned.height == 0:
        return {}
    last = aligned.group_by("batch_id").agg(pl.col("culture_age_h").max())
    return {b: float(a) + grid_s / 3600.0 for b, a in last.iter_rows()}


# ------------------------------------------------------------------------------ soft sensors
def softsensor_rows(
    aligned: pl.DataFrame,
    batches: pl.DataFrame,
    cfg: SoftSensorConfig,
    models: Sequence[tuple[Any, dict, Any]],
    harvest_models: Sequence[tuple[Any, dict, Any]] = (),
    assays: pl.DataFrame | None = None,
    since: Mapping[str, datetime] | None = None,
    grid_minutes: int = 1,
) -> pl.DataFrame:
    """Predictions of the grid steps newer than ``since[batch]`` (all steps without one).

    Parameters
    ----------
    aligned : polars.DataFrame
        Aligned rows of the running batches (``batch_id, unit_id, ts, culture_age_h, phase`` +
        signals), the whole partial batch (rolling windows and integrals need its history).
    batches : polars.DataFrame
        :func:`batches_frame`.
    cfg : SoftSensorConfig
        Features (the models' own feature names are taken from their metadata).
    models, harvest_models : sequence of (booster, meta, RegisteredModel)
        Champions of the trajectory soft sensor(s) and of the harvest CQAs.
    assays : polars.DataFrame, optional
        Released lab results (``sample_id, batch_id, analyte, value, sample_time, result_time``):
        the carry-forward baselines.
    since : Mapping, optional
        Per batch the newest step already scored.
    grid_minutes : int
        The aligned grid; every grid step is scored.

    Returns
    -------
    polars.DataFrame
        ``batch_id, unit_id, ts, culture_age_h, target, prediction, pi_lower, pi_upper,
        out_of_domain, ood_reason, top_signal, model_name, model_version``.
    """
    if aligned.height == 0 or not (models or harvest_models):
        return pl.DataFrame()
    fcfg = dataclasses.replace(cfg.features, step_minutes=int(grid_minutes))
    feats = build_softsensor_features(aligned, batches, fcfg, assays)
    feats = feats.filter(pl.col("row_type") == "step")
    new = _newer(feats, since)
    parts = [_predict(new, m) for m in models if new.height]
    for booster, meta, rec in harvest_models:
        ds = build_harvest_dataset(feats, HarvestModelConfig(targets=(meta["target"],), day=cfg.harvest.day))
        ds = _newer(ds, since)  # only when the day-D step is new: once per batch
        if ds.height:
            parts.append(_predict(ds, (booster, meta, rec)))
    parts = [p for p in parts if p.height]
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame()


def _newer(df: pl.DataFrame, since: Mapping[str, datetime] | None) -> pl.DataFrame:
    if not since:
        return df
    cut = pl.DataFrame(
        {"batch_id": list(since), "_since": list(since.values())}, schema={"batch_id": pl.String, "_since": UTC_US}
    )
    return (
        df.join(cut, on="batch_id", how="left")
        .filter(pl.col("_since").is_null() | (pl.col("ts") > pl.col("_since")))
        .drop("_since")
    )


def _predict(df: pl.DataFrame, model: tuple[Any, dict, Any]) -> pl.DataFrame:
    booster, meta, rec = model
    pred = predict_frame(booster, meta, df, explain="approx")
    base = df.select("batch_id", "unit_id", pl.col("ts").cast(UTC_US), pl.col("culture_age_h").cast(pl.Float64))
    out = pl.concat([base, pred], how="horizontal")
    return out.select(
        "batch_id",
        "unit_id",
        "ts",
        "culture_age_h",
        pl.lit(meta["target"]).alias("target"),
        "prediction",
        "pi_lower",
        "pi_upper",
        "out_of_domain",
        "ood_reason",
        "top_signal",
        pl.lit(rec.name).alias("model_name"),
        pl.lit(int(rec.version), dtype=pl.Int64).alias("model_version"),
    )


# ------------------------------------------------------------------------------ MSPC
def mspc_rows(
    model, aligned: pl.DataFrame, as_of_h: Mapping[str, float], top_n: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MSPC of the partial batches: completed steps and alarm events.

    Parameters
    ----------
    model : ml.mspc.MSPCModel
    aligned : polars.DataFrame
        Aligned rows of the running batches.
    as_of_h : Mapping
        Culture age up to which each batch's data are complete (:func:`as_of_hours`): a step is
        reported once its bin has ended.
    top_n : int
        Contributing signals kept per step.

    Returns
    -------
    tuple of pandas.DataFrame
        Steps (``ml.mspc.MSPCScores.to_frame`` columns + ``top_signals``, ``contributions``) and
        alarm events (``ml.mspc.alarm_events``) known by ``as_of_h``.
    """
    from ml.mspc import alarm_events, align_for, score

    if aligned.height == 0:
        return pd.DataFrame(), pd.DataFrame()
    al = align_for(model, aligned.to_pandas(), batch_ids=sorted(as_of_h))
    sc = score(model, al)
    steps = sc.to_frame()
    # per-step contributions (SPE share + positive T² share, as ml.mspc.alarm_events weighs them)
    spe = sc.contrib_spe / np.maximum(sc.contrib_spe.sum(axis=2, keepdims=True), 1e-12)
    t2 = np.clip(sc.contrib_t2, 0, None)
    t2 = t2 / np.maximum(t2.sum(axis=2, keepdims=True), 1e-12)
    c = spe + t2
    c = c / np.maximum(c.sum(axis=2, keepdims=True), 1e-12)
    rows = {b: i for i, b in enumerate(sc.batch_ids)}
    tops, contribs = [], []
    for b, k in zip(steps["batch_id"], steps["step"]):
        v = c[rows[b], int(k)]
        order = np.argsort(-v)[:top_n]
        tops.append(",".join(sc.signals[j] for j in order if v[j] > 0))
        contribs.append(json.dumps({sc.signals[j]: round(float(v[j]), 4) for j in order if v[j] > 0}))
    steps["top_signals"], steps["contributions"] = tops, contribs
    limit = steps["batch_id"].map(as_of_h).astype(float)
    steps = steps[steps["culture_age_h"] <= limit + 1e-9].reset_index(drop=True)
    events = alarm_events(sc, top_n=top_n)
    if len(events):
        events = events[events["culture_age_h"] <= events["batch_id"].map(as_of_h).astype(float) + 1e-9]
    return steps, events.reset_index(drop=True)


# ------------------------------------------------------------------------------ twin mirror
def forecast_rows(
    batches: pl.DataFrame,
    aligned: pl.DataFrame,
    assays: pl.DataFrame | None,
    as_of_h: Mapping[str, float],
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    n_draws: int = 100,
):
    """The twin mirror's forecast of each running batch at ``as_of_h``.

    Returns
    -------
    tuple
        (posteriors, forecasts, frame): the frame has one row per batch and forecast key
        (:meth:`twin.mirror.Forecast.summary`) plus ``as_of_h`` and the posterior as JSON
        (``posterior_json``: the next update's warm start).
    """
    from ml.mirror import mirror_batches

    ids = [b for b in batches["batch_id"].to_list() if b in as_of_h]
    if not ids:
        return [], [], pd.DataFrame()
    b = batches.filter(pl.col("batch_id").is_in(ids)).to_pandas()
    r = aligned.filter(pl.col("batch_id").is_in(ids)).to_pandas()
    a = assays.to_pandas() if assays is not None and assays.height else _no_assays()
    posts, fcs, frame = mirror_batches(b, r, a, [as_of_h[x] for x in b["batch_id"]], previous=previous, n_draws=n_draws)
    by_id = {p.batch_id: p for p in posts}
    frame["as_of_h"] = frame["batch_id"].map(as_of_h)
    frame["posterior_json"] = frame["batch_id"].map(lambda x: json.dumps(by_id[x].to_dict()))
    return posts, fcs, frame


def _no_assays() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch_id": pd.Series([], dtype=str),
            "analyte": pd.Series([], dtype=str),
            "value": pd.Series([], dtype=float),
            "culture_age_h": pd.Series([], dtype=float),
            "result_delay_h": pd.Series([], dtype=float),
        }
    )


# ------------------------------------------------------------------------------ alerts
def alert_id(batch_id: str, kind: str, key: str) -> str:
    """Stable id of one alert condition: the same condition always gets the same id."""
    return hashlib.sha256(f"{batch_id}|{kind}|{key}".encode()).hexdigest()[:24]


def severity(ratio: float) -> str:
    """Severity of an MSPC alarm from its statistic/limit ratio (:data:`SEVERITY_RATIO`)."""
    for lo, name in SEVERITY_RATIO:
        if ratio >= lo:
            return name
    return "low"


def new_alerts(
    events: pd.DataFrame,
    known_ids: set[str],
    posteriors: Mapping[str, Any],
    specs: Mapping[str, tuple[float | None, float | None]],
    context: Mapping[str, Mapping[str, Any]],
    n_recommendations: int = 3,
) -> list[dict[str, Any]]:
    """Alert rows for the MSPC alarm events whose condition has no alert yet.

    Parameters
    ----------
    events : pandas.DataFrame
        :func:`mspc_rows` events (``batch_id, culture_age_h, first_over_h, statistic,
        t2_ratio, spe_ratio, top_signals, contributions``).
    known_ids : set of str
        Ids of the alerts already raised (the alerts table).
    posteriors : Mapping
        ``batch_id -> twin.mirror.Posterior`` at the current data (for the scenarios).
    specs : Mapping
        CQA specs by twin harvest key (:func:`ml.mirror.twin_specs`).
    context : Mapping
        ``batch_id -> {unit_id, model_version, data_until, ...}`` copied into the evidence.
    n_recommendations : int
        Ranked corrective scenarios kept.

    Returns
    -------
    list of dict
        ``alert_id, batch_id, unit_id, kind, what, culture_age_h, severity, evidence_json,
        recommendation, recommendations_json, raised_at``. A condition = (batch, MSPC alarm whose
        over-limit run started at ``first_over_h``): the next refresh sees the same event and
        raises nothing.
    """
    from twin.mirror import recommend

    out = []
    now = datetime.now(UTC)
    for e in events.to_dict("records"):
        bid = str(e["batch_id"])
        aid = alert_id(bid, "mspc_alarm", f"{float(e['first_over_h']):.3f}")
        if aid in known_ids:
            continue
        known_ids.add(aid)
        recs: list[dict[str, Any]] = []
        best = "no twin posterior for this batch: no scenario evaluated"
        post = posteriors.get(bid)
        if post is not None:
            ranked = recommend(post, specs)[:n_recommendations]
            recs = [r.to_record() for r in ranked]
            best = ranked[0].rationale if ranked else "no corrective action inside the design space"
        ctx = dict(context.get(bid, {}))
        ratio = max(float(e["t2_ratio"]), float(e["spe_ratio"]))
        evidence = {
            "statistic": e["statistic"],
            "t2_ratio": round(float(e["t2_ratio"]), 3),
            "spe_ratio": round(float(e["spe_ratio"]), 3),
            "first_over_h": round(float(e["first_over_h"]), 3),
            "top_signals": e["top_signals"],
            "contributions": json.loads(e["contributions"]),
            **{k: v for k, v in ctx.items() if k != "unit_id"},
        }
        out.append(
            {
                "alert_id": aid,
                "batch_id": bid,
                "unit_id": ctx.get("unit_id"),
                "kind": "mspc_alarm",
                "what": f"MSPC {e['statistic']} alarm at culture age {float(e['culture_age_h']):.1f} h "
                f"(mostly {e['top_signals'] or 'n/a'})",
                "culture_age_h": float(e["culture_age_h"]),
                "severity": severity(ratio),
                "evidence_json": json.dumps(evidence, default=str),
                "recommendation": best,
                "recommendations_json": json.dumps(recs, default=str),
                "raised_at": now,
            }
        )
    return out


# ------------------------------------------------------------------------------ one refresh
@dataclasses.dataclass
class RefreshReport:
    """What one running-batch refresh did (asset metadata; timings in seconds)."""

    batches: list[str]
    aligned: dict[str, Any]
    predictions: int = 0
    mspc_steps: int = 0
    forecasts: int = 0
    alerts_new: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    webhook_delivered: int = 0
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)  # part -> why
    versions: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    latest: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # per batch, newest figures


def _released_assays(lake, batches: pl.DataFrame) -> pl.DataFrame | None:
    """Bronze LIMS results of the running batches, with culture age and result delay [h]."""
    uri = lake.table_uri("bronze", "lims_results")
    if batches.height == 0 or not lake.delta_exists(uri):
        return None
    from lakehouse.live.context import read_rows

    df = read_rows(lake, uri, batches["batch_id"].to_list())
    if df.height == 0:
        return None
    inoc = batches.select("batch_id", pl.col("inoculation_ts").cast(UTC_US))
    df = df.join(inoc, on="batch_id").with_columns(
        pl.col("sample_time").cast(UTC_US), pl.col("result_time").cast(UTC_US)
    )
    return df.with_columns(
        ((pl.col("sample_time") - pl.col("inoculation_ts")).dt.total_seconds() / 3600.0).alias("culture_age_h"),
        ((pl.col("result_time") - pl.col("sample_time")).dt.total_seconds() / 3600.0).alias("result_delay_h"),
    )


def refresh_running(
    lake,
    cfg: SoftSensorConfig,
    *,
    grid_s: float = 60.0,
    webhook_url: str | None = None,
    n_draws: int = 100,
    forecast: bool = True,
    max_steps: int | None = None,
) -> RefreshReport:
    """Align the new data of the running batches and score them (one call = one increment).

    Writes ``silver/live_process_readings`` and ``scores/live_softsensor``, ``live_mspc``,
    ``live_forecast``, ``live_alerts``; every row carries the data it was computed from
    (``data_until``: the newest complete grid step, ``aligned_version``, ``bronze_version``) and
    the model versions. A part whose model is missing is skipped with the reason in
    :attr:`RefreshReport.skipped` (never a silent zero).
    """
    import time

    from lakehouse.live import alerts as live
    from lakehouse.live.context import read_context, running_batches
    from lakehouse.live.running import read_aligned, refresh_aligned

    t = {"start": time.perf_counter()}
    res = refresh_aligned(lake, grid_s=grid_s, max_steps=max_steps)
    t["align"] = time.perf_counter()
    run = running_batches(read_context(lake))
    batches = batches_frame(run)
    report = RefreshReport(batches=batches["batch_id"].to_list() if batches.height else [], aligned=res.as_dict())
    report.versions = {"bronze": res.bronze_version, "aligned": res.aligned_version}
    if not report.batches:
        report.skipped["all"] = "no running batch in the batch context"
        return report
    aligned = read_aligned(lake, report.batches)
    if aligned.height == 0:
        report.skipped["all"] = "no aligned data for the running batches yet"
        return report
    aligned_version = lake.delta_table(lake.table_uri("silver", "live_process_readings")).version()
    report.versions["aligned"] = aligned_version
    as_of = as_of_hours(aligned, grid_s)
    until = aligned.group_by("batch_id").agg((pl.col("ts").max() + pl.duration(seconds=grid_s)).alias("data_until"))
    assays = _released_assays(lake, batches)
    now = datetime.now(UTC)

    def stamp(df: pl.DataFrame) -> pl.DataFrame:
        return df.join(until, on="batch_id", how="left").with_columns(
            pl.lit(aligned_version, dtype=pl.Int64).alias("aligned_version"),
            pl.lit(res.bronze_version, dtype=pl.Int64).alias("bronze_version"),
            pl.lit(now).cast(UTC_US).alias("scored_at"),
        )

    # soft sensors ----------------------------------------------------------------------
    from ml.registry import ModelRegistry

    reg = ModelRegistry(lake)
    models, harvest = [], []
    if reg.champion(cfg.titer.name) is not None:
        models.append(reg.load(cfg.titer.name))
    else:
        report.skipped["softsensor"] = f"no champion {cfg.titer.name!r} in the registry"
    for target in cfg.harvest.targets:
        name = f"{cfg.harvest.name_prefix}{target}"
        if reg.champion(name) is not None:
            harvest.append(reg.load(name))
    done = live.read_live(lake, live.SOFTSENSOR, report.batches)
    since = dict(done.group_by("batch_id").agg(pl.col("ts").max()).iter_rows()) if done.height else None
    preds = softsensor_rows(
        aligned, batches, cfg, models, harvest, assays, since=since, grid_minutes=max(1, int(round(grid_s / 60)))
    )
    if preds.height:
        live.append_live(lake, live.SOFTSENSOR, stamp(preds))
    report.predictions = preds.height
    report.versions["models"] = sorted({f"{m[2].name} v{m[2].version}" for m in (*models, *harvest)})
    t["softsensor"] = time.perf_counter()

    # MSPC ------------------------------------------------------------------------------
    from ml.mspc import load_latest_from_lake

    events = pd.DataFrame()
    try:
        mspc_model, mspc_version = load_latest_from_lake(lake)
    except FileNotFoundError as exc:
        report.skipped["mspc"] = str(exc)
        mspc_model = None
    if mspc_model is not None:
        steps, events = mspc_rows(mspc_model, aligned, as_of)
        seen = live.read_live(lake, live.MSPC, report.batches)
        if seen.height and len(steps):
            last = dict(seen.group_by("batch_id").agg(pl.col("step").max()).iter_rows())
            steps = steps[steps["step"] > steps["batch_id"].map(last).fillna(-1)]
        if len(steps):
            df = pl.from_pandas(steps).with_columns(pl.lit(mspc_version).alias("model_version"))
            live.append_live(lake, live.MSPC, stamp(df))
        report.mspc_steps = len(steps)
        report.versions["mspc"] = mspc_version
    t["mspc"] = time.perf_counter()

    # twin mirror -----------------------------------------------------------------------
    posts: dict[str, Any] = {}
    if forecast:
        prev_rows = live.read_live(lake, live.FORECAST, report.batches)
        previous = None
        if prev_rows.height:
            latest = prev_rows.sort("as_of_h").group_by("batch_id").last()
            previous = {b: json.loads(p) for b, p in latest.select("batch_id", "posterior_json").iter_rows()}
        post_list, _, frame = forecast_rows(batches, aligned, assays, as_of, previous, n_draws=n_draws)
        posts = {p.batch_id: p for p in post_list}
        if len(frame):
            live.append_live(lake, live.FORECAST, stamp(pl.from_pandas(frame)))
        report.forecasts = len(frame)
    else:
        report.skipped["forecast"] = "disabled"
    t["forecast"] = time.perf_counter()

    # alerts ----------------------------------------------------------------------------
    if len(events):
        from ml.golden import load_config
        from ml.mirror import twin_specs

        units = dict(batches.select("batch_id", "unit_id").iter_rows())
        ctx = {
            b: {
                "unit_id": units.get(b),
                "mspc_model_version": report.versions.get("mspc"),
                "aligned_version": aligned_version,
                "bronze_version": res.bronze_version,
            }
            for b in report.batches
        }
        rows = new_alerts(events, live.known_alert_ids(lake), posts, twin_specs(load_config()), ctx)
        if rows:
            live.append_alerts(lake, rows)  # MERGE on alert_id: a racing refresh cannot store one twice
            report.alerts_new = rows
            if webhook_url and report.alerts_new:
                report.webhook_delivered = live.post_webhook(webhook_url, report.alerts_new)
    t["alerts"] = time.perf_counter()
    keys = ["align", "softsensor", "mspc", "forecast", "alerts"]
    prev = t["start"]
    for k in keys:
        report.seconds[k] = round(t[k] - prev, 3)
        prev = t[k]
    report.seconds["total"] = round(t["alerts"] - t["start"], 3)
    report.latest = _latest(preds, posts, as_of, cfg.titer.target)
    return report


def _latest(preds: pl.DataFrame, posts: Mapping[str, Any], as_of: Mapping[str, float], target: str) -> list[dict]:
    out = []
    last = (
        preds.filter(pl.col("target") == target).sort("ts").group_by("batch_id").last()
        if preds.height
        else pl.DataFrame()
    )
    for b, age in sorted(as_of.items()):
        row: dict[str, Any] = {"batch_id": b, "culture_age_h": round(age, 2)}
        if last.height and b in last["batch_id"].to_list():
            r = last.filter(pl.col("batch_id") == b).row(0, named=True)
            row |= {"titer_now": r["prediction"], "titer_pi": [r["pi_lower"], r["pi_upper"]]}
        out.append(row)
    return out
