"""Continuous verification of a champion: rolling error of its past predictions against assay
results that arrived since, and input drift (PSI per feature) of recent data vs training."""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.config import VerificationConfig
from ml.domain import psi_by_feature
from ml.evaluation import regression_metrics
from ml.train import matrix


def rolling_error(scores: pl.DataFrame, window: int) -> dict:
    """RMSE/MAE of the last ``window`` predictions that have an actual, ordered by when the actual
    became known (``result_time``, else the row time)."""
    order_col = "result_time" if "result_time" in scores.columns else ("ts" if "ts" in scores.columns else None)
    done = scores.filter(pl.col("actual").is_not_null())
    if order_col:
        done = done.sort(order_col)
    last = done.tail(window)
    m = regression_metrics(last["actual"].to_numpy().astype(float), last["prediction"].to_numpy().astype(float))
    return m | {"window": window, "n_with_actual": done.height}


def drift(meta: dict, recent: pl.DataFrame) -> dict[str, float]:
    names = meta["features"]
    if recent.height == 0 or not meta.get("psi_reference"):
        return {}
    return psi_by_feature(meta["psi_reference"], matrix(recent, names), names)


def verify(scores: pl.DataFrame, meta: dict, recent_features: pl.DataFrame, cfg: VerificationConfig,
           *, check_error: bool = True) -> dict:
    """Passed unless the rolling error or any feature's PSI crosses its configured limit."""
    out: dict = {"model_version": int(scores["model_version"][0]) if scores.height else None}
    failures: list[str] = []
    if check_error and meta["kind"] == "regression":
        err = rolling_error(scores, cfg.window_results)
        ref = meta.get("test_rmse")
        limit = cfg.max_rmse_abs if cfg.max_rmse_abs is not None else (
            cfg.max_rmse_ratio * ref if ref is not None and np.isfinite(ref) else None)
        out |= {"rolling_rmse": err["rmse"], "rolling_mae": err["mae"], "n_results": err["n"], "rmse_limit": limit,
                "heldout_rmse": ref}
        if err["n"] and limit is not None and err["rmse"] > limit:
            failures.append(f"rolling RMSE {err['rmse']:.4g} > limit {limit:.4g}")
    psi = {k: v for k, v in drift(meta, recent_features).items() if np.isfinite(v)}
    out["psi"] = psi
    out["psi_max"] = max(psi.values()) if psi else None
    out["psi_limit"] = cfg.psi_limit
    drifted = sorted((k for k, v in psi.items() if v > cfg.psi_limit), key=lambda k: -psi[k])
    if drifted:
        failures.append(f"PSI > {cfg.psi_limit} for {', '.join(drifted)}")
    out["passed"] = not failures
    out["failures"] = failures
    return out


def recent_batches(features: pl.DataFrame, n: int) -> pl.DataFrame:
    """Step rows of the latest ``n`` batches (by first timestamp)."""
    steps = features.filter(pl.col("row_type") == "step")
    latest = steps.group_by("batch_id").agg(pl.col("ts").min().alias("s")).sort("s").tail(n)["batch_id"]
    return steps.filter(pl.col("batch_id").is_in(latest.to_list()))


def recent_days(eq_features: pl.DataFrame, days: int = 30) -> pl.DataFrame:
    end = eq_features["date"].max()
    return eq_features.filter((pl.col("date") > pl.lit(end) - pl.duration(days=days)) & ~pl.col("in_repair"))
