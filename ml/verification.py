"""Continuous verification of a champion: rolling error of its past predictions against assay
results that arrived since, and input drift (PSI per feature) of recent data vs training.

Drift is batch-aware: a feature drifted when its PSI exceeds ``psi_limit`` *and* the
``psi_null_quantile`` of the PSI that the same number of whole, normal training batches gives
(the batch-resampled null stored with the model, see :mod:`ml.domain`). Models registered before
that null existed (or trained on too few batches, or PdM) keep the plain ``psi_limit`` rule."""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.config import VerificationConfig
from ml.domain import equipment_week_blocks, psi_by_feature, psi_null_quantile
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
    """PSI per feature of ``recent`` rows against the model's training reference (``{}`` without one)."""
    names = meta["features"]
    if recent.height == 0 or not meta.get("psi_reference"):
        return {}
    return psi_by_feature(meta["psi_reference"], matrix(recent, names), names)


def _window_batches(recent: pl.DataFrame, name: str, group_col: str = "batch_id") -> int | None:
    """Distinct batches (or the model's other resampling blocks, ``group_col``) with a value of
    ``name`` in the window (None: rows carry no such id)."""
    if group_col not in recent.columns or name not in recent.columns:
        return None
    vals = recent.select(pl.col(group_col), pl.col(name).cast(pl.Float64))
    return int(vals.filter(pl.col(name).is_finite())[group_col].n_unique())


def family_wise_quantile(quantile: float, m: int) -> float:
    """The per-test quantile that keeps ``m`` tests at the family-wise level ``quantile``
    (Bonferroni: ``1 - (1 - quantile) / m``)."""
    return 1.0 - (1.0 - float(quantile)) / max(int(m), 1)


def drift_evidence(meta: dict, recent: pl.DataFrame, cfg: VerificationConfig) -> dict:
    """PSI per feature and the drift decision with what it was based on.

    ``psi_null_q``: the batch-resampled null quantile per feature for a window of
    ``psi_window_batches`` batches (None: model metadata without a null, plain limit rule);
    ``psi_threshold``: what the PSI had to exceed, ``max(psi_limit, psi_null_q)``;
    ``psi_drifted``: features over their threshold, largest PSI first;
    ``psi_within_batch_variation``: over ``psi_limit`` but within what normal batches give.

    ``psi_null_quantile`` is the family-wise level over the ``m`` features tested: each feature's
    null quantile is taken at ``1 - (1 - psi_null_quantile) / m`` (Bonferroni), so a window of
    normal data fails the check with probability at most ``1 - psi_null_quantile`` however many
    features the model monitors (tested one by one at q99, 14 independent features would alarm
    on up to 1 - 0.99**14 ~ 13 % of normal windows)."""
    psi = {k: v for k, v in drift(meta, recent).items() if np.isfinite(v)}
    ref = meta.get("psi_reference") or {}
    null_q: dict[str, float | None] = {}
    k_used: dict[str, int | None] = {}
    per_feature_q = family_wise_quantile(cfg.psi_null_quantile, len(psi))
    for name in psi:
        k = _window_batches(recent, name, meta.get("psi_group_col") or "batch_id")
        q = psi_null_quantile(ref[name], k, per_feature_q, cfg.psi_null_draws)
        null_q[name] = q
        if k is None and q is not None:  # no batch ids in the window: the null's own window size
            k = int(ref[name]["null"]["k"])
        k_used[name] = k
    threshold = {n: max(cfg.psi_limit, q) if q is not None else cfg.psi_limit for n, q in null_q.items()}
    drifted = sorted((n for n, v in psi.items() if v > threshold[n]), key=lambda n: -psi[n])
    explained = sorted(n for n, v in psi.items() if cfg.psi_limit < v <= threshold[n])
    with_null = [n for n, q in null_q.items() if q is not None]
    rule = (
        "batch-resampled null"
        if psi and len(with_null) == len(psi)
        else "psi_limit only (no batch null in model metadata)"
        if not with_null
        else "mixed"
    )
    finite_nulls = [q for q in null_q.values() if q is not None]
    return {
        "psi": psi,
        "psi_max": max(psi.values()) if psi else None,
        "psi_limit": cfg.psi_limit,
        "psi_rule": rule if psi else None,
        "psi_null_quantile": cfg.psi_null_quantile,
        "psi_null_quantile_per_feature": per_feature_q,
        "psi_null_q": null_q,
        "psi_null_q_max": max(finite_nulls) if finite_nulls else None,
        "psi_window_batches": k_used,
        "psi_threshold": threshold,
        "psi_drifted": drifted,
        "psi_within_batch_variation": explained,
    }


def verify(
    scores: pl.DataFrame,
    meta: dict,
    recent_features: pl.DataFrame,
    cfg: VerificationConfig,
    *,
    check_error: bool = True,
) -> dict:
    """Passed unless the rolling error crosses its limit or a feature drifted (see
    :func:`drift_evidence`: PSI above ``psi_limit`` and above its batch-resampled null quantile)."""
    out: dict = {"model_version": int(scores["model_version"][0]) if scores.height else None}
    failures: list[str] = []
    if check_error and meta["kind"] == "regression":
        err = rolling_error(scores, cfg.window_results)
        ref = meta.get("test_rmse")
        limit = (
            cfg.max_rmse_abs
            if cfg.max_rmse_abs is not None
            else (cfg.max_rmse_ratio * ref if ref is not None and np.isfinite(ref) else None)
        )
        out |= {
            "rolling_rmse": err["rmse"],
            "rolling_mae": err["mae"],
            "n_results": err["n"],
            "rmse_limit": limit,
            "heldout_rmse": ref,
        }
        if err["n"] and limit is not None and err["rmse"] > limit:
            failures.append(f"rolling RMSE {err['rmse']:.4g} > limit {limit:.4g}")
    ev = drift_evidence(meta, recent_features, cfg)
    out |= ev
    if ev["psi_drifted"]:
        q = f"q{100 * cfg.psi_null_quantile:g} family-wise over {len(ev['psi'])} features"
        detail = ", ".join(
            f"{n} ({ev['psi'][n]:.3g} > {ev['psi_threshold'][n]:.3g}"
            + (f" = max(limit, batch-null {q})" if ev["psi_null_q"][n] is not None else "")
            + ")"
            for n in ev["psi_drifted"]
        )
        failures.append(f"PSI drift for {detail}")
    out["passed"] = not failures
    out["failures"] = failures
    return with_state(out)


def with_state(result: dict) -> dict:
    """Add ``state`` (``passed | failed | not_evaluated``), ``reason`` and ``not_evaluated`` (the parts
    with nothing to judge) to a verification result: with no arrived result to compare and no
    feature to test for drift there was nothing to verify — that is never a pass."""
    parts = []
    error_judged = bool(result.get("n_results"))
    drift_judged = bool(result.get("psi"))
    if "n_results" in result and not error_judged:
        parts.append("rolling error (no arrived results of unseen batches)")
    if not drift_judged:
        parts.append("drift (no recent feature rows with a PSI reference)")
    result["not_evaluated"] = parts
    if result["failures"]:
        result["state"], result["reason"] = "failed", "; ".join(result["failures"])
    elif not error_judged and not drift_judged:
        result["state"], result["reason"] = "not_evaluated", "nothing to verify: " + "; ".join(parts)
    else:
        result["state"] = "passed"
        result["reason"] = "verified" + (f" (not evaluated: {'; '.join(parts)})" if parts else "")
    return result


def recent_batches(features: pl.DataFrame, n: int) -> pl.DataFrame:
    """Step rows of the latest ``n`` batches (by first timestamp)."""
    steps = features.filter(pl.col("row_type") == "step")
    latest = steps.group_by("batch_id").agg(pl.col("ts").min().alias("s")).sort("s").tail(n)["batch_id"]
    return steps.filter(pl.col("batch_id").is_in(latest.to_list()))


def recent_days(eq_features: pl.DataFrame, days: int = 30) -> pl.DataFrame:
    """Equipment-days of the last ``days`` days of the table, without days in repair, with their
    PSI resampling block (:func:`ml.domain.equipment_week_blocks`)."""
    end = eq_features["date"].max()
    recent = eq_features.filter((pl.col("date") > pl.lit(end) - pl.duration(days=days)) & ~pl.col("in_repair"))
    return recent.with_columns(equipment_week_blocks(recent))
