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
from ml.batches import FAULT
from ml.config import PdMConfig, SelectionConfig, SoftSensorConfig, XGBParams
from ml.domain import DRIFT_BLOCK_COL, equipment_week_blocks, fit_domain, fit_psi_reference
from ml.evaluation import (
    alert_event_metrics,
    coverage,
    error_by_group,
    for_true_value,
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
from ml.softsensor import (
    estimator_contributions,
    estimator_predict,
    fit_linear,
    fit_mean_trajectory,
    gate_mask,
    matrix,
    mean_trajectory,
    predict,
    predict_rows,
    select_estimator,
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


def batch_starts(features: pl.DataFrame) -> pl.DataFrame:
    """First time stamp of each batch (``batch_id``, ``start``): the order of the forward split."""
    return features.group_by("batch_id").agg(pl.col("ts").min().alias("start"))


def _usable_features(X: np.ndarray, names: list[str]) -> list[str]:
    """Drop features that are entirely missing in training (a plant lacking the signal)."""
    return [n for j, n in enumerate(names) if np.isfinite(X[:, j]).any()]


def _fit_estimator(
    spec: dict, X: np.ndarray, y: np.ndarray, names: list[str], params: XGBParams, fit=fit_booster
) -> tuple[xgb.Booster, dict]:
    """Final fit of a selected estimator on all training rows: the XGBoost booster (the registry's
    artefact; unused when the linear weight is 1) and the estimator description for ``meta``."""
    booster = fit(X, y, names, params)
    est = {"kind": spec["kind"], "weight_xgboost": float(spec.get("weight_xgboost", 1.0))}
    if est["weight_xgboost"] < 1.0:
        est["linear"] = fit_linear(X, y, spec["family"], spec["param"])
    return booster, est


def _condition_metrics(
    rows: pl.DataFrame, y: np.ndarray, pred: np.ndarray, hw: np.ndarray, baselines: dict[str, np.ndarray]
) -> dict:
    """RMSE/MAE/R², interval coverage and each baseline on a set of held-out rows."""
    out = {
        "model": regression_metrics(y, pred),
        "coverage": coverage(y, pred - hw, pred + hw),
        "n_batches": int(rows["batch_id"].n_unique()) if rows.height else 0,
    }
    for k, b in baselines.items():
        out[k] = regression_metrics(y, b)
    return out


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
    baseline_fn,
    psi_rows: pl.DataFrame | None,
    extra_meta: dict,
    selection: SelectionConfig,
    conditions: pl.DataFrame | None = None,
    trajectory: bool = False,
    fit=fit_booster,
) -> TrainedModel:
    """Split, select, calibrate, fit and evaluate one regression model (titer or harvest CQA).

    ``rows``: labelled rows of every batch; ``conditions`` (:func:`ml.batches.batch_conditions`):
    fault batches never train, they are all held out and reported separately (``fault``, and
    ``fault_post_onset`` = rows at or after the recorded onset). The normal batches are split forward
    in time (the latest ``test_fraction`` held out).
    ``baseline_fn(rows, training_rows)`` gives the reported baseline for any rows;
    ``trajectory`` adds the mean-trajectory baseline (training labels by culture age).
    """
    v = cfg.validation
    labelled = rows.select("batch_id").unique()
    fault_ids: list[str] = []
    if conditions is not None and conditions.height:
        fault_ids = sorted(
            set(conditions.filter(pl.col("condition") == FAULT)["batch_id"].to_list())
            & set(labelled["batch_id"].to_list())
        )
    normal = labelled.filter(~pl.col("batch_id").is_in(fault_ids))
    if normal.height < 3:
        raise InsufficientData(
            f"insufficient data: {name} needs labelled normal batches >= 3 to train and hold "
            f"out, got {normal.height} ({len(fault_ids)} fault batches excluded)"
        )
    train_ids, test_ids = forward_split(starts.join(normal, on="batch_id"), v.test_fraction, v.min_test_batches)
    tr = rows.filter(pl.col("batch_id").is_in(train_ids))
    te = rows.filter(pl.col("batch_id").is_in(test_ids))
    fa = rows.filter(pl.col("batch_id").is_in(fault_ids))
    X_all = matrix(tr, feature_names)
    feature_names = _usable_features(X_all, feature_names)
    Xtr, ytr = matrix(tr, feature_names), tr[target_col].to_numpy().astype(float)
    groups = tr["batch_id"].to_numpy()

    def fit_xgb(X, y):
        b = fit(X, y, feature_names, params)
        return lambda Xp: predict(b, Xp, feature_names)

    # batch-grouped CV on the training part: model selection + OOF residuals → conformal calibration
    sel = select_estimator(Xtr, ytr, groups, v.n_splits, selection, fit_xgb)
    oof = sel.oof
    ok = np.isfinite(oof)
    gtr = tr[group_col].to_numpy() if group_col else None
    cal_groups = gtr[ok] if gtr is not None else np.zeros(ok.sum(), int)
    conformal = mondrian_conformal(cal_groups, np.abs(oof[ok] - ytr[ok]), v.interval_alpha)
    conformal = for_true_value(conformal, cal_groups, ytr[ok], v.assay_sd_relative, v.assay_sd_absolute)
    booster, estimator = _fit_estimator(sel.estimator, Xtr, ytr, feature_names, params, fit)
    traj = None
    if trajectory and "culture_age_h" in tr.columns:
        traj = fit_mean_trajectory(tr["culture_age_h"].to_numpy(), ytr, v.trajectory_bin_h)
    meta_model = {"features": feature_names, "estimator": estimator}

    def evaluate(part: pl.DataFrame):
        X = matrix(part, feature_names)
        y = part[target_col].to_numpy().astype(float)
        pred = estimator_predict(booster, meta_model, X)
        hw = interval_halfwidth(conformal, part[group_col].to_numpy() if group_col else None, len(pred))
        bases = {"baseline": baseline_fn(part, tr)}
        if traj is not None:
            bases["baseline_mean_trajectory"] = mean_trajectory(traj, part["culture_age_h"].to_numpy())
        return X, y, pred, hw, bases

    Xte, yte, pred, hw, bases = evaluate(te)
    base_te = bases["baseline"]
    metrics: dict = {
        "target": target_col.removeprefix("label__"),
        "n_train_rows": len(ytr),
        "n_test_rows": len(yte),
        "n_train_batches": len(train_ids),
        "n_test_batches": len(test_ids),
        "n_fault_batches": len(fault_ids),
        "cv": regression_metrics(ytr[ok], oof[ok]) | {"n_splits": len(group_kfold(groups, v.n_splits))},
        "selection": {
            "chosen": estimator["kind"],
            "weight_xgboost": estimator["weight_xgboost"],
            "linear": {k: sel.estimator[k] for k in ("family", "param") if k in sel.estimator},
            "cv_rmse_by_candidate": sel.cv_rmse,
        },
        "test": regression_metrics(yte, pred),
        "interval": {
            "alpha": v.interval_alpha,
            "coverage_test": coverage(yte, pred - hw, pred + hw),
            "mean_width": float(np.mean(2 * hw)) if len(hw) else float("nan"),
        },
    }
    gte = te[group_col].to_numpy() if group_col else None
    if group_col:
        metrics["test_by_" + group_col] = error_by_group(gte, yte, pred)
    metrics["baseline_test"] = regression_metrics(yte, base_te)
    if group_col:
        metrics["baseline_test_by_" + group_col] = error_by_group(gte, yte, base_te)
    b_rmse = metrics["baseline_test"]["rmse"]
    metrics["improvement_vs_baseline"] = float(1 - metrics["test"]["rmse"] / b_rmse) if b_rmse > 0 else float("nan")
    if traj is not None:
        metrics["baseline_mean_trajectory_test"] = regression_metrics(yte, bases["baseline_mean_trajectory"])
        t_rmse = metrics["baseline_mean_trajectory_test"]["rmse"]
        metrics["improvement_vs_mean_trajectory"] = (
            float(1 - metrics["test"]["rmse"] / t_rmse) if t_rmse > 0 else float("nan")
        )
    if fa.height:
        _, yfa, pfa, hfa, bfa = evaluate(fa)
        metrics["fault"] = _condition_metrics(fa, yfa, pfa, hfa, bfa)
        onset = conditions.select("batch_id", "recorded_onset_ts")
        time_col = "sample_time" if "sample_time" in fa.columns else "ts"
        post = (
            fa.join(onset, on="batch_id", how="left")
            .select(
                (pl.col("recorded_onset_ts").is_not_null() & (pl.col(time_col) >= pl.col("recorded_onset_ts")))
                .fill_null(False)
                .alias("p")
            )["p"]
            .to_numpy()
        )
        if post.any():
            metrics["fault_post_onset"] = _condition_metrics(
                fa.filter(pl.Series(post)), yfa[post], pfa[post], hfa[post], {k: b[post] for k, b in bfa.items()}
            )
    if len(Xte):
        sig, M = by_signal(estimator_contributions(booster, meta_model, Xte)[:, :-1], feature_names)
        metrics["top_signals"] = dict(list(mean_abs_by_signal(sig, M).items())[:10])
    psi_src = psi_rows.filter(pl.col("batch_id").is_in(train_ids)) if psi_rows is not None else tr
    Xpsi = matrix(psi_src, feature_names)
    meta = {
        "name": name,
        "kind": "regression",
        "features": feature_names,
        "target": target_col.removeprefix("label__"),
        "estimator": estimator,
        "conformal": conformal,
        "interval_group": group_col,
        "mean_trajectory": traj,
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
        "split": {
            "train_batches": sorted(train_ids),
            "test_batches": sorted(test_ids),
            "fault_batches": fault_ids,
            "method": "forward-by-start over normal batches; fault batches held out",
        },
        "test_rmse": metrics["test"]["rmse"],
    } | extra_meta
    holdout = te.select(
        [c for c in ("batch_id", "ts", "culture_age_h", "culture_day", "sample_id") if c in te.columns]
    ).with_columns(
        pl.Series("y", yte),
        pl.Series("pred", pred),
        pl.Series("lo", pred - hw),
        pl.Series("hi", pred + hw),
        pl.Series("baseline", base_te),
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


def train_titer(
    features: pl.DataFrame, cfg: SoftSensorConfig, *, fit=fit_booster, conditions: pl.DataFrame | None = None
) -> TrainedModel:
    """The online soft sensor of ``cfg.titer.target`` (any assay of ``label_analytes``).

    Model selection among XGBoost, ridge, PLS and their blend by batch-grouped CV; conformal
    intervals per culture day from the out-of-fold residuals; the optional gate
    (``titer.min_culture_age_h``, ``titer.gate``) restricts training and prediction. ``conditions``
    (:func:`ml.batches.batch_conditions`) keeps fault batches out of training and reports them
    separately. ``fit`` has :func:`fit_booster`'s signature; ``lakehouse.spark.train.spark_booster_fitter``
    trains every booster (CV folds and final model) with ``xgboost.spark`` instead.
    """
    t = cfg.titer
    rows = softsensor_training_rows(features, t.target, t.min_culture_age_h)
    rows = rows.filter(pl.Series(gate_mask(rows, t.gate))) if t.gate else rows
    if rows.select("batch_id").n_unique() < 3:
        raise InsufficientData(
            f"insufficient data: labelled samples of {t.target!r} from "
            f"{rows['batch_id'].n_unique()} batch(es), need >= 3"
        )
    names = softsensor_feature_names(cfg.features)
    starts = batch_starts(features)
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
        baseline_fn=lambda r, _tr: titer_baseline(r, t.target),
        psi_rows=steps,
        extra_meta={"baseline": "last-assay carry-forward", "gate": t.gate, "min_culture_age_h": t.min_culture_age_h},
        selection=t.selection,
        conditions=conditions,
        trajectory=True,
        fit=fit,
    )
    test_ids = model.meta["split"]["test_batches"]
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
    # trajectories of every batch the model did not train on (held-out normal + fault batches), step rows
    unseen = [*test_ids, *model.meta["split"]["fault_batches"]]
    traj = steps.filter(pl.col("batch_id").is_in(unseen)).sort(["batch_id", "ts"])
    if traj.height:
        pred, open_ = predict_rows(model.booster, model.meta, traj)
        hw = interval_halfwidth(model.meta["conformal"], traj["culture_day"].to_numpy(), traj.height)
        model.trajectories = traj.select("batch_id", "ts", "culture_age_h").with_columns(
            pl.Series("pred", pred),
            pl.Series("lo", np.where(open_, pred - hw, np.nan)),
            pl.Series("hi", np.where(open_, pred + hw, np.nan)),
            pl.Series("gated", ~open_),
            pl.Series(
                "baseline_mean_trajectory",
                mean_trajectory(model.meta["mean_trajectory"], traj["culture_age_h"].to_numpy()),
            ),
        )
    return model


# ----------------------------------------------------------------------------- harvest CQAs
def train_harvest(
    features: pl.DataFrame, cfg: SoftSensorConfig, target: str, conditions: pl.DataFrame | None = None
) -> TrainedModel:
    """A harvest CQA from the features available by culture day D (one row per batch)."""
    h = dataclasses.replace(cfg.harvest, targets=(target,))
    ds = build_harvest_dataset(features, h).filter(pl.col(f"label__{target}").is_not_null())
    if ds.height < 5:
        raise InsufficientData(f"insufficient data: {ds.height} harvested batch(es) with {target!r}, need >= 5")
    names = [n for n in softsensor_feature_names(cfg.features) if not n.startswith("phase__")]
    starts = batch_starts(features)
    model = _regression_core(
        f"{h.name_prefix}{target}",
        ds,
        f"label__{target}",
        names,
        starts,
        cfg,
        h.params,
        group_col=None,
        baseline_fn=lambda r, tr: np.full(r.height, tr[f"label__{target}"].mean()),
        psi_rows=None,
        extra_meta={"baseline": "mean of training", "feature_day": h.day},
        selection=h.selection,
        conditions=conditions,
    )
    model.meta["baseline_value"] = float(
        ds.filter(pl.col("batch_id").is_in(model.meta["split"]["train_batches"]))[f"label__{target}"].mean()
    )
    return model


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


def pdm_data_problem(eq_features: pl.DataFrame | None, work_orders: pl.DataFrame | None, cfg: PdMConfig) -> str | None:
    """Why PdM cannot be trained on these tables (None: it can): disabled in the plant's pdm.yaml,
    no equipment-health rows, no CMMS work orders, or fewer failures / days than
    ``evaluation.min_failures`` / ``evaluation.min_days``."""
    if not cfg.enabled:
        return "PdM disabled in the plant's pdm.yaml (enabled: false)"
    if not cfg.features.all_signals:
        return "no equipment-health signals configured (pdm.yaml features.signals is empty)"
    if (
        eq_features is None
        or eq_features.height == 0
        or eq_features.filter(~pl.col("in_repair").fill_null(False)).height == 0
    ):
        return (
            "insufficient data: no equipment-health rows (no historian signals of equipment wear in "
            "gold/fct_equipment_health_daily)"
        )
    if work_orders is None or work_orders.height == 0:
        return (
            "insufficient data: no CMMS work orders, PdM learns from corrective work orders "
            "(gold/fct_work_orders is empty)"
        )
    n_fail = failure_events(work_orders, cfg.features).height
    if n_fail < cfg.evaluation.min_failures:
        return (
            f"insufficient data: {n_fail} failure work order(s) of types {list(cfg.features.failure_work_types)}, "
            f"need >= {cfg.evaluation.min_failures}"
        )
    n_days = eq_features["date"].n_unique()
    if n_days < cfg.evaluation.min_days:
        return f"insufficient data: {n_days} days of equipment-health rows, need >= {cfg.evaluation.min_days}"
    return None


def train_pdm(eq_features: pl.DataFrame, work_orders: pl.DataFrame, cfg: PdMConfig) -> TrainedModel:
    """Time-ordered: development period (train + validation) | test. The alert threshold is chosen
    on forward-chaining out-of-fold predictions over the development period (never on test); the
    final model is fitted on the whole development period (labels purged by H at its end)."""
    fc, ev, mc = cfg.features, cfg.evaluation, cfg.model
    H = fc.horizon_days
    names = equipment_feature_names(fc)
    problem = pdm_data_problem(eq_features, work_orders, cfg)
    if problem:
        raise InsufficientData(problem)
    df = eq_features.filter(~pl.col("in_repair")).sort(["date", "equipment_id"])
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
        # the null resamples whole equipment-weeks (days of one item are not independent draws)
        "psi_reference": fit_psi_reference(
            Xtr,
            names,
            [n for n in names if n in fc.all_signals],
            cfg.verification.psi_bins,
            equipment_week_blocks(dev).to_numpy(),
            window_batches=cfg.verification.psi_recent_batches,
            null_draws=cfg.verification.psi_null_draws,
            null_quantile=cfg.verification.psi_null_quantile,
        ),
        "psi_group_col": DRIFT_BLOCK_COL,
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
