"""Metrics and validation splits (framework-free)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.model_selection import GroupKFold


# ----------------------------------------------------------------------------- regression
def regression_metrics(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and the number of rows of predictions ``yhat`` against ``y`` (NaN-aware)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    n = len(y)
    if n == 0:
        return {"n": 0, "rmse": float("nan"), "mae": float("nan"), "r2": float("nan")}
    err = yhat - y
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "n": int(n),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
    }


def error_by_group(groups: np.ndarray, y: np.ndarray, yhat: np.ndarray) -> dict[str, dict[str, float]]:
    """RMSE/MAE per group value (e.g. culture day)."""
    out: dict[str, dict[str, float]] = {}
    groups = np.asarray(groups)
    for g in sorted(set(groups.tolist())):
        m = groups == g
        r = regression_metrics(np.asarray(y)[m], np.asarray(yhat)[m])
        out[str(g)] = {"n": r["n"], "rmse": r["rmse"], "mae": r["mae"]}
    return out


# ----------------------------------------------------------------------------- splits
def forward_split(batch_times: pl.DataFrame, test_fraction: float, min_test: int = 1) -> tuple[list[str], list[str]]:
    """Train on earlier batches, test on later ones (by ``start`` time). Returns (train, test) ids."""
    order = batch_times.sort(["start", "batch_id"])["batch_id"].to_list()
    n_test = max(int(min_test), int(round(len(order) * test_fraction)))
    n_test = min(n_test, max(len(order) - 1, 0))
    return order[: len(order) - n_test], order[len(order) - n_test :]


def group_kfold(groups: Sequence[str], n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold by batch: no batch appears in both the train and test part of any fold."""
    groups = np.asarray(groups)
    k = min(n_splits, len(set(groups.tolist())))
    if k < 2:
        return []
    splits = list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups))
    for tr, te in splits:
        assert not set(groups[tr]) & set(groups[te]), "batch leak across CV folds"
    return splits


# ----------------------------------------------------------------------------- intervals
def conformal_quantile(abs_residuals: np.ndarray, alpha: float) -> float:
    """Split-conformal quantile of absolute residuals for miscoverage ``alpha`` (finite-sample corrected)."""
    r = np.sort(np.asarray(abs_residuals, float))
    n = len(r)
    if n == 0:
        return float("nan")
    k = int(np.ceil((n + 1) * (1 - alpha))) - 1
    return float(r[min(max(k, 0), n - 1)])


def mondrian_conformal(groups: np.ndarray, abs_residuals: np.ndarray, alpha: float, min_count: int = 15) -> dict:
    """Split-conformal half-widths per group (culture day), global fallback for small groups."""
    groups = np.asarray(groups)
    out = {"global": conformal_quantile(abs_residuals, alpha), "by_group": {}, "alpha": alpha}
    for g in sorted(set(groups.tolist())):
        m = groups == g
        if m.sum() >= min_count:
            out["by_group"][str(g)] = conformal_quantile(np.asarray(abs_residuals)[m], alpha)
    return out


def for_true_value(conformal: dict, groups: np.ndarray, y: np.ndarray, sd_relative: float, sd_absolute: float) -> dict:
    """Half-widths for the TRUE value instead of the next assay result.

    The conformal residuals are prediction − assay result = (prediction − truth) + assay error, so
    their quantiles cover a *measurement*. With the assay's known precision (SD = ``sd_relative``·y
    + ``sd_absolute`` in quadrature, from the method validation) each group's half-width ``h`` becomes
    ``sqrt(h² − z²·mean(σ²))`` (``z`` the normal quantile of the interval), never below ``h/2``.
    """
    if sd_relative <= 0 and sd_absolute <= 0:
        return conformal
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - conformal["alpha"] / 2)
    groups = np.asarray(groups)
    var = (sd_relative * np.asarray(y, float)) ** 2 + sd_absolute**2

    def adjust(h: float, v: np.ndarray) -> float:
        return float(np.sqrt(max(h * h - z * z * float(np.mean(v)), 0.25 * h * h))) if len(v) else h

    out = dict(conformal)
    out["global"] = adjust(conformal["global"], var)
    out["by_group"] = {g: adjust(h, var[groups.astype(str) == g]) for g, h in conformal["by_group"].items()}
    out["covers"] = "true value"
    out["assay_sd"] = {"relative": sd_relative, "absolute": sd_absolute}
    return out


def interval_halfwidth(conformal: dict, groups: np.ndarray | None, n: int) -> np.ndarray:
    """Half-width of the prediction interval per row: by group (e.g. culture day) where the
    conformal calibration has one, else the global quantile.
    """
    if groups is None or not conformal.get("by_group"):
        return np.full(n, conformal["global"])
    by = conformal["by_group"]
    keys = sorted(int(k) for k in by)
    hw = []
    for g in np.asarray(groups):
        if str(g) in by:
            hw.append(by[str(g)])
        elif keys:  # nearest group with enough data (e.g. a day beyond training)
            nearest = min(keys, key=lambda k: abs(k - int(g)))
            hw.append(by[str(nearest)])
        else:
            hw.append(conformal["global"])
    return np.asarray(hw, float)


def coverage(y, lo, hi) -> float:
    """Fraction of ``y`` inside ``[lo, hi]``."""
    y, lo, hi = (np.asarray(a, float) for a in (y, lo, hi))
    return float(np.mean((y >= lo) & (y <= hi))) if len(y) else float("nan")


# ----------------------------------------------------------------------------- PdM
def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    y = np.asarray(y)
    if y.sum() == 0 or y.sum() == len(y):
        return float("nan")
    return float(average_precision_score(y, score))


def pr_curve(y: np.ndarray, score: np.ndarray):
    """Precision, recall and thresholds of ``score`` against the binary labels ``y``."""
    return precision_recall_curve(np.asarray(y), np.asarray(score))


def alert_event_metrics(
    alerts: pl.DataFrame, failures: pl.DataFrame, *, window_days: int, lead_days: int, period: tuple | None = None
) -> dict:
    """Event-level PdM metrics.

    ``alerts``: ``equipment_id, date, alert`` (bool), one row per scored equipment-day.
    ``failures``: ``equipment_id, failure_date`` (date).
    ``period``: (first_date, last_date) of the evaluation: failures and alert days inside it count.

    * alert-day precision: an alert day d is true when the equipment fails on a day in
      ``(d, d + window_days]``.
    * per failure F: ``lead = F - first alert day in [F - window_days, F)``; detected ≥ lead_days
      when ``lead >= lead_days``; recall_lead = detected / failures.
    """
    a = alerts.select("equipment_id", pl.col("date").cast(pl.Date), pl.col("alert").cast(pl.Boolean))
    f = failures.select("equipment_id", pl.col("failure_date").cast(pl.Date)).unique()
    if period is not None:
        lo, hi = period
        a_eval = a.filter(pl.col("date").is_between(lo, hi))
        f = f.filter(pl.col("failure_date").is_between(lo, hi))
    else:
        a_eval = a
    # precision: next failure after d within the window
    nxt = (
        a_eval.filter(pl.col("alert"))
        .sort("date")
        .join_asof(
            failures.select("equipment_id", pl.col("failure_date").cast(pl.Date)).sort("failure_date"),
            left_on="date",
            right_on="failure_date",
            by="equipment_id",
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
    )
    n_alert = nxt.height
    tp = nxt.filter((pl.col("failure_date") - pl.col("date")).dt.total_days() <= window_days).height if n_alert else 0
    leads: list[float | None] = []
    for eq, fd in f.iter_rows():
        w = a.filter(
            (pl.col("equipment_id") == eq)
            & pl.col("alert")
            & (pl.col("date") >= fd - np.timedelta64(window_days, "D"))
            & (pl.col("date") < fd)
        )
        leads.append(float((fd - w["date"].min()).days) if w.height else None)
    n_f = len(leads)
    detected = [x for x in leads if x is not None]
    return {
        "n_failures": n_f,
        "n_alert_days": n_alert,
        "precision": float(tp / n_alert) if n_alert else float("nan"),
        "recall_any": float(len(detected) / n_f) if n_f else float("nan"),
        f"recall_{lead_days}d": float(sum(x >= lead_days for x in detected) / n_f) if n_f else float("nan"),
        "median_lead_days": float(np.median(detected)) if detected else float("nan"),
        "leads": leads,
    }
