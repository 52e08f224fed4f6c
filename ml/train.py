"""Training with honest validation: grouped by batch and forward in time.

* :func:`train_titer`   — titer soft sensor at any culture time (sample rows of ``features/softsensor``).
* :func:`train_harvest` — one harvest CQA from the features available by culture day D.
* :func:`train_pdm`     — probability of a failure within H days per equipment-day.

Each returns a :class:`TrainedModel`: the XGBoost booster, JSON-able metadata (features,
split, prediction-interval calibration, applicability domain, PSI reference, threshold) and
held-out metrics next to the baseline. Nothing here touches the lake or Dagster.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import xgboost as xgb

from lakehouse.errors import InsufficientData
from ml.config import PdMConfig, SoftSensorConfig, XGBParams
from ml.domain import fit_domain, fit_psi_reference
from ml.evaluation import (
    alert_event_metrics,
    coverage,
    error_by_group,
    forward_split,
    group_kfold,
    interval_halfwidth,
    mondrian_conformal,
    pr_auc,
    regression_metrics,
)
from ml.explain import by_signal, contributions, mean_abs_by_signal
from ml.features import (
    build_harvest_dataset,
    equipment_feature_names,
    failure_events,
    softsensor_feature_names,
    softsensor_training_rows,
)


@dataclass
class TrainedModel:
    """A trained booster with its metadata, metrics, held-out predictions and (soft sensor) trajectories."""

    name: str
    kind: str  # "regression" | "classifier"
    booster: xgb.Booster
    meta: dict
    metrics: dict
    params: dict
    holdout: pl.DataFrame = field(default_factory=pl.DataFrame)  # held-out rows with predictions
    trajectories: pl.DataFrame = field(default_factory=pl.DataFrame)  # for plots


# ----------------------------------------------------------------------------- helpers
def matrix(df: pl.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The feature matrix of ``df`` (float64, columns in ``feature_names`` order, missing → NaN)."""
    cols = [
        pl.col(c).cast(pl.Float64) if c in df.columns else pl.lit(None, dtype=pl.Float64).alias(c)
        for c in feature_names
    ]
    return df.select(cols).to_numpy().astype(np.float64)


def fit_booster(
    X: np.ndarray,
    y: np.ndarray,
    feature_names: list[str],
    params: XGBParams,
    objective: str = "reg:squarederror",
    extra: dict | None = None,
) -> xgb.Booster:
    """Train an XGBoost booster on ``X``/``y`` with ``params`` (optionally with sample weights)."""
    dm = xgb.DMatrix(
        np.asarray(X, np.float32), label=np.asarray(y, np.float32), feature_names=feature_names, missing=np.nan
    )
    p = params.booster_params(objective) | (extra or {})
    return xgb.train(p, dm, num_boost_round=params.n_estimators)


def predict(booster: xgb.Booster, X: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """Predictions of ``booster`` for ``X`` (columns named ``feature_names``)."""
    dm = xgb.DMatrix(np.asarray(X, np.float32), feature_names=feature_names, missing=np.nan)
    return booster.predict(dm)


def batch_starts(features: pl.DataFrame) -> pl.DataFrame:
    """First time stamp of each batch (``batch_id``, ``start``): the order of the forward split."""
    return features.group_by("batch_id").agg(pl.col("ts").min().alias("start"))


def _usable_features(X: np.ndarray, names: list[str]) -> list[str]:
    """Drop features that are entirely missing in training (a plant lacking the signal)."""
    return [n for j, n in enumerate(names) if np.isfinite(X[:, j]).any()]


def _regression_core(
    name: str,
    rows: pl.DataFrame,
    target_col: str,
    feature_names: list[str],
    starts: pl.DataFrame,
    cfg: SoftSensorConfig,
    params: XGBParams,
    *,
    group_col: str | None,
    baseline: np.ndarray | None,
    psi_rows: pl.DataFrame | None,
    extra_meta: dict,
    fit=fit_booster,
) -> TrainedModel:
    v = cfg.validation
    labelled = rows.select("batch_id").unique()
    train_ids, test_ids = forward_split(starts.join(labelled, on="batch_id"), v.test_fraction, v.min_test_batches)
    tr = rows.filter(pl.col("batch_id").is_in(train_ids))
    te = rows.filter(pl.col("batch_id").is_in(test_ids))
    X_all = matrix(tr, feature_names)
    feature_names = _usable_features(X_all, feature_names)
    Xtr, ytr = matrix(tr, feature_names), tr[target_col].to_numpy().astype(float)
    Xte, yte = matrix(te, feature_names), te[target_col].to_numpy().astype(float)
    groups = tr["batch_id"].to_numpy()

    # grouped CV on the training part: OOF predictions → CV metrics + conformal calibration
    oof = np.full(len(ytr), np.nan)
    for f_tr, f_te in group_kfold(groups, v.n_splits):
        b = fit(Xtr[f_tr], ytr[f_tr], feature_names, params)
        oof[f_te] = predict(b, Xtr[f_te], feature_names)
    ok = np.isfinite(oof)
    gtr = tr[group_col].to_numpy() if group_col else None
    conformal = mondrian_conformal(
        gtr[ok] if gtr is not None else np.zeros(ok.sum(), int), np.abs(oof[ok] - ytr[ok]), v.interval_alpha
    )
    booster = fit(Xtr, ytr, feature_names, params)
    pred = predict(booster, Xte, feature_names)
    gte = te[group_col].to_numpy() if group_col else None
    hw = interval_halfwidth(conformal, gte, len(pred))
    metrics: dict = {
        "target": target_col.removeprefix("label__"),
        "n_train_rows": len(ytr),
        "n_test_rows": len(yte),
        "n_train_batches": len(train_ids),
        "n_test_batches": len(test_ids),
        "cv": regression_metrics(ytr[ok], oof[ok]) | {"n_splits": len(group_kfold(groups, v.n_splits))},
        "test": regression_metrics(yte, pred),
        "interval": {
            "alpha": v.interval_alpha,
            "coverage_test": coverage(yte, pred - hw, pred + hw),
            "mean_width": float(np.mean(2 * hw)) if len(hw) else float("nan"),
        },
    }
    if group_col:
        metrics["test_by_" + group_col] = error_by_group(gte, yte, pred)
    if baseline is not None:
        base_te = baseline
        metrics["baseline_test"] = regression_metrics(yte, base_te)
        if group_col:
            metrics["baseline_test_by_" + group_col] = error_by_group(gte, yte, base_te)
        b_rmse = metrics["baseline_test"]["rmse"]
        metrics["improvement_vs_baseline"] = float(1 - metrics["test"]["rmse"] / b_rmse) if b_rmse > 0 else float("nan")
    if len(Xte):
        sig, M = by_signal(contributions(booster, Xte, feature_names), feature_names)
        metrics["top_signals"] = dict(list(mean_abs_by_signal(sig, M).items())[:10])
    psi_src = psi_rows.filter(pl.col("batch_id").is_in(train_ids)) if psi_rows is not None else tr
    Xpsi = matrix(psi_src, feature_names)
    meta = {
        "name": name,
        "kind": "regression",
        "features": feature_names,
        "target": target_col.removeprefix("label__"),
        "conformal": conformal,
        "interval_group": group_col,
        "domain": fit_domain(Xtr, feature_names, cfg.domain),
        "psi_reference": fit_psi_reference(
            Xpsi,
            feature_names,
            list(cfg.verification.psi_features) or [f for f in feature_names if "__" not in f],
            cfg.verification.psi_bins,
            psi_src["batch_id"].to_numpy(),
            window_batches=cfg.verification.psi_recent_batches,
            null_draws=cfg.verification.psi_null_draws,
            null_quantile=cfg.verification.psi_null_quantile,
        ),
        "split": {"train_batches": sorted(train_ids), "test_batches": sorted(test_ids), "method": "forward-by-start"},
        "test_rmse": metrics["test"]["rmse"],
    } | extra_meta
    holdout = te.select(
        [c for c in ("batch_id", "ts", "culture_age_h", "culture_day", "sample_id") if c in te.columns]
    ).with_columns(
        pl.Series("y", yte),
        pl.Series("pred", pred),
        pl.Series("lo", pred - hw),
        pl.Series("hi", pred + hw),
        pl.Series("baseline", baseline if baseline is not None else np.full(len(yte), np.nan)),
    )
    return TrainedModel(name, "regression", booster, meta, metrics, params.booster_params(), holdout)


# ----------------------------------------------------------------------------- titer
def titer_baseline(rows: pl.DataFrame, target: str) -> np.ndarray:
    """Last-assay carry-forward: the last ``target`` result visible at the row's time; before any
    result is visible the titer at inoculation (0) is carried."""
    col = f"baseline__{target}"
    if col not in rows.columns:
        return np.zeros(rows.height)
    return rows[col].fill_null(0.0).to_numpy().astype(float)


def train_titer(features: pl.DataFrame, cfg: SoftSensorConfig, *, fit=fit_booster) -> TrainedModel:
    """``fit`` has :func:`fit_booster`'s signature; ``lakehouse.spark.train.spark_booster_fitter``
    trains every booster (CV folds and final model) with ``xgboost.spark`` instead."""
    t = cfg.titer
    rows = softsensor_training_rows(features, t.target, t.min_culture_age_h)
    if rows.select("batch_id").n_unique() < 3:
        raise InsufficientData(
            f"insufficient data: {t.target!r} needs labelled samples from >= 3 batches, got {rows['batch_id'].n_unique()}"
        )
    names = softsensor_feature_names(cfg.features)
    starts = batch_starts(features)
    # split once to know the test rows for the baseline, then hand the baseline for those rows
    labelled = rows.select("batch_id").unique()
    _, test_ids = forward_split(
        starts.join(labelled, on="batch_id"), cfg.validation.test_fraction, cfg.validation.min_test_batches
    )
    base = titer_baseline(rows.filter(pl.col("batch_id").is_in(test_ids)), t.target)
    steps = features.filter(pl.col("row_type") == "step")
    model = _regression_core(
        t.name,
        rows,
        f"label__{t.target}",
        names,
        starts,
        cfg,
        t.params,
        group_col="culture_day",
        baseline=base,
        psi_rows=steps,
        extra_meta={"baseline": "last-assay carry-forward"},
        fit=fit,
    )
    # baseline restricted to rows where a previous result is visible (the honest comparison too)
    te = rows.filter(pl.col("batch_id").is_in(test_ids))
    vis = (
        te[f"baseline__{t.target}"].is_not_null().to_numpy()
        if f"baseline__{t.target}" in te.columns
        else np.zeros(te.height, bool)
    )
    h = model.holdout
    model.metrics["test_with_visible_result"] = regression_metrics(h["y"].to_numpy()[vis], h["pred"].to_numpy()[vis])
    model.metrics["baseline_test_with_visible_result"] = regression_metrics(
        h["y"].to_numpy()[vis], h["baseline"].to_numpy()[vis]
    )
    # trajectories of the held-out batches (step rows) for plots
    traj = steps.filter(pl.col("batch_id").is_in(test_ids)).sort(["batch_id", "ts"])
    if traj.height:
        Xt = matrix(traj, model.meta["features"])
        model.trajectories = traj.select("batch_id", "ts", "culture_age_h").with_columns(
            pl.Series("pred", predict(model.booster, Xt, model.meta["features"]))
        )
    return model


# ----------------------------------------------------------------------------- harvest CQAs
def train_harvest(features: pl.DataFrame, cfg: SoftSensorConfig, target: str) -> TrainedModel:
    """Train the harvest CQA model for ``target`` from features available by the configured culture day."""
    h = dataclasses.replace(cfg.harvest, targets=(target,))
    ds = build_harvest_dataset(features, h).filter(pl.col(f"label__{target}").is_not_null())
    if ds.height < 5:
        raise InsufficientData(f"insufficient data: {ds.height} harvested batch(es) with {target!r}, need >= 5")
    names = [n for n in softsensor_feature_names(cfg.features) if not n.startswith("phase__")]
    starts = batch_starts(features)
    _, test_ids = forward_split(
        starts.join(ds.select("batch_id"), on="batch_id"), cfg.validation.test_fraction, cfg.validation.min_test_batches
    )
    train_mean = float(ds.filter(~pl.col("batch_id").is_in(test_ids))[f"label__{target}"].mean())
    base = np.full(ds.filter(pl.col("batch_id").is_in(test_ids)).height, train_mean)
    return _regression_core(
        f"{h.name_prefix}{target}",
        ds,
        f"label__{target}",
        names,
        starts,
        cfg,
        h.params,
        group_col=None,
        baseline=base,
        psi_rows=None,
        extra_meta={"baseline": "mean of training", "baseline_value": train_mean, "feature_day": h.day},
    )


# ----------------------------------------------------------------------------- PdM
def _baseline_rule_scores(df: pl.DataFrame, rules: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Alert when any rule fires; continuous score = max over rules of the signed exceedance / scale."""
    n = df.height
    alert = np.zeros(n, bool)
    score = np.full(n, -np.inf)
    for r in rules:
        if r["column"] not in df.columns or r["threshold"] is None:
            continue
        x = df[r["column"]].cast(pl.Float64).to_numpy().astype(float)
        s = (x - r["threshold"]) if r["direction"] == "above" else (r["threshold"] - x)
        s = s / (r["scale"] or 1.0)
        s = np.where(np.isfinite(s), s, -np.inf)
        alert |= s > 0
        score = np.maximum(score, s)
    score = np.where(np.isfinite(score), score, -1e9)
    return alert, score


def _choose_threshold(scores: pl.DataFrame, failures: pl.DataFrame, period, ev) -> tuple[float, dict]:
    p = scores["probability"].to_numpy()
    cands = np.unique(np.quantile(p, np.linspace(0.5, 0.999, 120)))
    best, best_key = None, None
    for thr in cands:
        m = alert_event_metrics(
            scores.with_columns(alert=pl.col("probability") >= thr),
            failures,
            window_days=ev.alert_window_days,
            lead_days=ev.lead_days,
            period=period,
        )
        prec = m["precision"] if np.isfinite(m["precision"]) else 0.0
        rec = m[f"recall_{ev.lead_days}d"] if np.isfinite(m[f"recall_{ev.lead_days}d"]) else 0.0
        ok = prec >= ev.target_precision
        # feasible first; then the most failures alerted >= lead_days ahead; then the most precise
        # among equals (the middle of the feasible band, not its edge: the final model, fitted on the
        # whole development period, scores more confidently than the OOF models the threshold is chosen
        # on, so an edge threshold alerts far more on test); then the lowest; infeasible: the most precise
        key = (ok, rec, prec, -thr) if ok else (ok, prec, rec, thr)
        if best_key is None or key > best_key:
            best, best_key = (float(thr), m), key
    return best if best else (0.5, {})


def _alerts(df: pl.DataFrame, thresholds: dict[str, float], default: float) -> np.ndarray:
    """Alert = probability >= the equipment type's threshold (the global one when the type has none)."""
    thr = (
        df["equipment_type"].replace_strict(thresholds, default=default, return_dtype=pl.Float64)
        if thresholds and "equipment_type" in df.columns
        else pl.Series([default] * df.height, dtype=pl.Float64)
    )
    return df["probability"].to_numpy() >= thr.fill_null(default).to_numpy()


def pdm_split_dates(df: pl.DataFrame, ev) -> tuple:
    """Time split of the PdM data: (end of training, end of validation, first date, last date)."""
    dates = np.array(sorted(df["date"].unique().to_list()), dtype="datetime64[D]")
    n = len(dates)
    t_train_end = dates[int(n * (1 - ev.test_fraction - ev.validation_fraction)) - 1]
    t_val_end = dates[int(n * (1 - ev.test_fraction)) - 1]
    return t_train_end.astype(object), t_val_end.astype(object), dates[0].astype(object), dates[-1].astype(object)


def _known_label(d_end, H: int) -> pl.Expr:
    """Right-censoring: a row without a failure ahead is only a known negative when H days of data follow it."""
    return (pl.col("label__failure_within_h") == 1) | (pl.col("date") <= pl.lit(d_end) - pl.duration(days=H))


def _pdm_oof(
    df: pl.DataFrame, names: list[str], params: XGBParams, H: int, dev_start, dev_end, folds: int
) -> pl.DataFrame:
    """Forward-chaining out-of-fold probabilities over the later part of the development period:
    for each block, train on rows whose label window closes before the block starts (purged by H)."""
    dates = np.array(sorted(df.filter(pl.col("date") <= dev_end)["date"].unique().to_list()), dtype="datetime64[D]")
    if len(dates) < 10 or folds < 1:
        return pl.DataFrame()
    first = int(len(dates) * 0.45)
    edges = np.linspace(first, len(dates), folds + 1).astype(int)
    parts = []
    for b0, b1 in itertools.pairwise(edges):
        if b1 <= b0:
            continue
        lo, hi = dates[b0].astype(object), dates[b1 - 1].astype(object)
        tr = df.filter(
            (pl.col("date") <= pl.lit(lo) - pl.duration(days=H + 1))
            & _known_label(lo - np.timedelta64(1, "D").astype(object), H)
        )
        if tr.height == 0 or tr["label__failure_within_h"].sum() == 0:
            continue
        y = tr["label__failure_within_h"].to_numpy().astype(float)
        b = fit_booster(
            matrix(tr, names),
            y,
            names,
            params,
            "binary:logistic",
            {"scale_pos_weight": float((len(y) - y.sum()) / max(y.sum(), 1.0))},
        )
        blk = df.filter(pl.col("date").is_between(lo, hi))
        parts.append(
            blk.select("equipment_id", "date", "label__failure_within_h").with_columns(
                pl.Series("probability", predict(b, matrix(blk, names), names))
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame()


def train_pdm(eq_features: pl.DataFrame, work_orders: pl.DataFrame, cfg: PdMConfig) -> TrainedModel:
    """Time-ordered: development period (train + validation) | test. The alert threshold is chosen
    on forward-chaining out-of-fold predictions over the development period (never on test); the
    final model is fitted on the whole development period (labels purged by H at its end)."""
    fc, ev, mc = cfg.features, cfg.evaluation, cfg.model
    H = fc.horizon_days
    names = equipment_feature_names(fc)
    df = eq_features.filter(~pl.col("in_repair")).sort(["date", "equipment_id"])
    if df.height == 0:
        raise InsufficientData(
            "insufficient data: PdM needs equipment-health feature rows; the table is empty "
            "(no historian signals of equipment wear in gold/fct_equipment_health_daily)"
        )
    if failure_events(work_orders, fc).height == 0:
        raise InsufficientData(
            "insufficient data: PdM needs corrective work orders (failures) to learn from; gold/fct_work_orders has none"
        )
    _, t_val_end, d0, d_end = pdm_split_dates(df, ev)
    dev = df.filter((pl.col("date") <= pl.lit(t_val_end) - pl.duration(days=H)) & _known_label(d_end, H))
    te_all = df.filter(pl.col("date") > t_val_end)
    names = _usable_features(matrix(dev, names), names)
    Xtr, ytr = matrix(dev, names), dev["label__failure_within_h"].to_numpy().astype(float)
    spw = float((len(ytr) - ytr.sum()) / max(ytr.sum(), 1.0))
    fails = failure_events(work_orders, fc).select(
        "equipment_id", pl.col("failure_time").dt.date().alias("failure_date")
    )

    oof = _pdm_oof(df, names, mc.params, H, d0, t_val_end, ev.threshold_folds)
    thresholds: dict[str, float] = {}
    if oof.height:
        period = (oof["date"].min(), t_val_end)
        threshold, val_event = _choose_threshold(oof, fails, period, ev)
        if ev.per_type_thresholds:
            types = df.select("equipment_id", "equipment_type").unique("equipment_id")
            oof_t = oof.join(types, on="equipment_id", how="left")
            for t in oof_t["equipment_type"].drop_nulls().unique().to_list():
                part = oof_t.filter(pl.col("equipment_type") == t)
                f_t = fails.filter(
                    pl.col("equipment_id").is_in(part["equipment_id"].unique().to_list())
                    & pl.col("failure_date").is_between(*period)
                )
                if f_t.height >= ev.min_failures_per_type:
                    thresholds[t], _ = _choose_threshold(part, f_t, period, ev)
            alert = _alerts(oof_t, thresholds, threshold)
            val_event = alert_event_metrics(
                oof_t.with_columns(alert=pl.Series(alert)),
                fails,
                window_days=ev.alert_window_days,
                lead_days=ev.lead_days,
                period=period,
            )
    else:
        threshold, val_event = 0.5, {}
    booster = fit_booster(
        Xtr, ytr, names, mc.params, "binary:logistic", {"scale_pos_weight": spw, "eval_metric": "aucpr"}
    )
    te = te_all.select("equipment_id", "date", "label__failure_within_h").with_columns(
        pl.Series("probability", predict(booster, matrix(te_all, names), names) if te_all.height else np.array([]))
    )

    # threshold-rule baseline: thresholds from development rows with no failure ahead
    normal = dev.filter(pl.col("label__failure_within_h") == 0)
    rules = []
    for r in mc.baseline_rules:
        col = normal[r.column].drop_nulls() if r.column in normal.columns else pl.Series([], dtype=pl.Float64)
        if col.len() == 0:
            rules.append({"column": r.column, "direction": r.direction, "threshold": None, "scale": None})
            continue
        q = r.quantile if r.direction == "above" else 1 - r.quantile
        rules.append(
            {
                "column": r.column,
                "direction": r.direction,
                "threshold": float(col.quantile(q)),
                "scale": float(col.std() or 1.0),
            }
        )
    b_alert, b_score = _baseline_rule_scores(te_all, rules)
    test_period = (te_all["date"].min(), d_end)
    ymask = te_all.select(_known_label(d_end, H)).to_series().to_numpy()
    yte = te["label__failure_within_h"].to_numpy()[ymask]
    pte = te["probability"].to_numpy()[ymask]
    alert_te = _alerts(te.with_columns(te_all["equipment_type"]), thresholds, threshold)

    def row_metrics(y, alert):
        tp = float(np.sum(alert & (y == 1)))
        return {"precision": tp / max(float(alert.sum()), 1.0), "recall": tp / max(float((y == 1).sum()), 1.0)}

    ev_model = alert_event_metrics(
        te.with_columns(alert=pl.Series(alert_te)),
        fails,
        window_days=ev.alert_window_days,
        lead_days=ev.lead_days,
        period=test_period,
    )
    ev_base = alert_event_metrics(
        te.with_columns(alert=pl.Series(b_alert)),
        fails,
        window_days=ev.alert_window_days,
        lead_days=ev.lead_days,
        period=test_period,
    )
    drop = lambda m: {k: v for k, v in m.items() if k != "leads"}
    metrics = {
        "horizon_days": H,
        "threshold": threshold,
        "thresholds_by_type": thresholds,
        "scale_pos_weight": spw,
        "n_train_rows": len(ytr),
        "n_train_pos": int(ytr.sum()),
        "n_test_rows": int(te.height),
        "split": {"development_end": str(t_val_end), "test_end": str(d_end), "threshold_oof_rows": int(oof.height)},
        "test": {"pr_auc": pr_auc(yte, pte), **row_metrics(yte, alert_te[ymask]), "events": drop(ev_model)},
        "baseline_test": {
            "pr_auc": pr_auc(yte, b_score[ymask]),
            **row_metrics(yte, b_alert[ymask]),
            "events": drop(ev_base),
        },
        "threshold_selection_events": drop(val_event) if val_event else {},
    }
    if te_all.height:
        sig, M = by_signal(contributions(booster, matrix(te_all, names), names), names)
        metrics["top_signals"] = dict(list(mean_abs_by_signal(sig, M).items())[:10])
    meta = {
        "name": mc.name,
        "kind": "classifier",
        "features": names,
        "target": "failure_within_h",
        "horizon_days": H,
        "threshold": threshold,
        "thresholds_by_type": thresholds,
        "baseline_rules": rules,
        "domain": fit_domain(Xtr, names, cfg.domain),
        "psi_reference": fit_psi_reference(
            Xtr, names, [n for n in names if n in fc.all_signals], cfg.verification.psi_bins
        ),
        "split": {
            "validation_end": str(t_val_end),
            "test_start": str(test_period[0]),
            "test_end": str(d_end),
            "method": "time-ordered; threshold on forward-chaining OOF of the development period; purged by H",
        },
        "test_pr_auc": metrics["test"]["pr_auc"],
    }
    holdout = te.with_columns(
        pl.Series("alert", alert_te), pl.Series("baseline_alert", b_alert), pl.Series("baseline_score", b_score)
    )
    return TrainedModel(
        mc.name,
        "classifier",
        booster,
        meta,
        metrics,
        mc.params.booster_params("binary:logistic") | {"scale_pos_weight": spw},
        holdout,
    )
