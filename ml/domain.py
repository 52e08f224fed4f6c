"""Applicability domain (is an input inside the training design space?) and PSI drift.

Fitted on the training matrix and stored as plain JSON in the model's metadata (never pickled):

* per-feature range ``[q_lo - m·(q_hi-q_lo), q_hi + m·(q_hi-q_lo)]`` of the training values;
* Mahalanobis distance of the standardised (training-mean-imputed) feature vector with a
  Ledoit-Wolf shrunk covariance; the limit is the ``mahalanobis_quantile`` of the training
  distances.

A row is out of domain when more than ``max_features_out`` features are out of range, or its
Mahalanobis distance exceeds the limit.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from sklearn.covariance import LedoitWolf

from ml.config import DomainConfig


def fit_domain(X: np.ndarray, feature_names: list[str], cfg: DomainConfig) -> dict:
    """Applicability-domain reference of a training matrix: per-feature ranges/quantiles, the
    training distance distribution and the PSI reference histograms.

    Parameters
    ----------
    X
        Training features (rows × features).
    feature_names
        Column names of ``X``.
    cfg
        Domain settings.

    Returns
    -------
    dict
        JSON-serialisable reference, stored with the model.
    """
    X = np.asarray(X, float)
    usable = [j for j in range(X.shape[1]) if np.isfinite(X[:, j]).sum() >= 2]
    lo_q = np.full(X.shape[1], np.nan)
    hi_q = np.full(X.shape[1], np.nan)
    for j in usable:
        col = X[np.isfinite(X[:, j]), j]
        lo_q[j], hi_q[j] = np.quantile(col, cfg.quantile_low), np.quantile(col, cfg.quantile_high)
    span = hi_q - lo_q
    lo, hi = lo_q - cfg.range_margin * span, hi_q + cfg.range_margin * span
    # Mahalanobis on non-constant usable features
    mean = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0) if X.size else np.zeros(X.shape[1])
    std = np.nanstd(np.where(np.isfinite(X), X, np.nan), axis=0) if X.size else np.ones(X.shape[1])
    md_cols = [j for j in usable if np.isfinite(std[j]) and std[j] > 1e-12]
    out = {
        "features": feature_names,
        "lo": _nan_to_none(lo),
        "hi": _nan_to_none(hi),
        "md_cols": md_cols,
        "mean": _nan_to_none(mean),
        "std": _nan_to_none(std),
        "max_features_out": cfg.max_features_out,
    }
    if len(md_cols) >= 2 and X.shape[0] > len(md_cols):
        Z = _standardise(X[:, md_cols], mean[md_cols], std[md_cols])
        lw = LedoitWolf().fit(Z)
        prec = lw.precision_
        d = _md(Z, prec)
        out["precision"] = prec.tolist()
        out["md_limit"] = float(np.quantile(d, cfg.mahalanobis_quantile))
    return out


def _nan_to_none(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]


def _standardise(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    Z = (X - mean) / std
    return np.where(np.isfinite(Z), Z, 0.0)  # missing → training mean


def _md(Z: np.ndarray, prec: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, prec, Z), 0.0))


def apply_domain(X: np.ndarray, domain: dict) -> dict[str, np.ndarray]:
    """Returns ``out_of_domain`` (bool), ``n_features_out``, ``ood_features`` (comma list), ``mahalanobis``."""
    X = np.asarray(X, float)
    names = domain["features"]
    lo = np.array([np.nan if v is None else v for v in domain["lo"]])
    hi = np.array([np.nan if v is None else v for v in domain["hi"]])
    with np.errstate(invalid="ignore"):
        below = np.isfinite(X) & np.isfinite(lo) & (lo > X)
        above = np.isfinite(X) & np.isfinite(hi) & (hi < X)
    out_mask = below | above
    n_out = out_mask.sum(axis=1)
    ood_names = [",".join(names[j] for j in np.flatnonzero(row)[:10]) for row in out_mask]
    md = np.full(X.shape[0], np.nan)
    md_flag = np.zeros(X.shape[0], bool)
    if "precision" in domain:
        cols = domain["md_cols"]
        mean = np.array([domain["mean"][j] for j in cols], float)
        std = np.array([domain["std"][j] for j in cols], float)
        md = _md(_standardise(X[:, cols], mean, std), np.asarray(domain["precision"]))
        md_flag = md > domain["md_limit"]
    ood = (n_out > domain.get("max_features_out", 0)) | md_flag
    reasons = [
        ";".join(filter(None, [f"range:{names_}" if names_ else "", "mahalanobis" if m else ""]))
        for names_, m in zip(ood_names, md_flag, strict=True)
    ]
    return {
        "out_of_domain": ood,
        "n_features_out": n_out.astype(np.int64),
        "ood_reason": np.array(reasons, dtype=object),
        "mahalanobis": md,
    }


# ----------------------------------------------------------------------------- PSI
# Soft-sensor rows are grid steps of a batch, so they are clustered: ~100 rows of one batch share
# its recipe setpoints, and a window of k batches is k observations of the batch population, not
# k x 100 independent rows. Row-wise PSI of a few batches against the pooled training rows is then
# large although nothing drifted. The reference therefore also keeps each training batch's counts
# on a fine quantile grid, and the drift decision compares the recent PSI with a *null
# distribution*: the PSI that k whole training batches give against a reference of n whole training
# batches, both drawn with replacement (a two-sample cluster bootstrap), the reference's decile
# edges re-derived in each draw as the real reference's were. It is the PSI of k normal batches
# given the between-batch (recipe) variation seen in training and the reference's own uncertainty.
MIN_NULL_BATCHES = 3  # fewer training batches: no null, the plain psi_limit rule applies
NULL_FINE_PER_BIN = 10  # fine quantile grid of the null: this many fine bins per PSI bin


def fit_psi_reference(
    X: np.ndarray,
    feature_names: list[str],
    monitored: list[str],
    bins: int,
    groups: np.ndarray | None = None,
    *,
    window_batches: int = 10,
    null_draws: int = 500,
    null_quantile: float = 0.99,
    seed: int = 0,
) -> dict:
    """Per monitored feature: quantile bin ``edges`` and ``expected`` fractions of the training rows.

    With ``groups`` (batch id per row) and at least :data:`MIN_NULL_BATCHES` batches, also
    ``batch_counts`` (per training batch, its row counts on a fine quantile grid of the training
    rows) and ``null``: the ``null_quantile`` (``psi_q``) of :func:`psi_null_distribution` for a
    window of ``window_batches`` batches, with the parameters it was computed with.
    """
    groups = None if groups is None else np.asarray(groups)
    ref = {}
    for name in monitored:
        if name not in feature_names:
            continue
        raw = np.asarray(X[:, feature_names.index(name)], float)
        ok = np.isfinite(raw)
        col = raw[ok]
        if len(col) < bins:
            continue
        edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1))[1:-1])
        counts = np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1)
        entry: dict = {"edges": edges.tolist(), "expected": (counts / counts.sum()).tolist()}
        if groups is not None:
            fine = np.unique(np.quantile(col, np.linspace(0, 1, bins * NULL_FINE_PER_BIN + 1))[1:-1])
            bc = batch_bin_counts(col, groups[ok], fine)
            if len(bc) >= MIN_NULL_BATCHES:
                dist = psi_null_distribution(bc, bins, window_batches, null_draws, seed)
                entry["batch_counts"] = bc.tolist()
                entry["null"] = {
                    "method": "two-sample batch bootstrap",
                    "bins": int(bins),
                    "k": int(window_batches),
                    "n_batches": len(bc),
                    "draws": int(null_draws),
                    "quantile": float(null_quantile),
                    "seed": int(seed),
                    "psi_q": float(np.quantile(dist, null_quantile)),
                }
        ref[name] = entry
    return ref


DRIFT_BLOCK_COL = "drift_block"  # the resampling unit of a PSI null when rows carry no batch id


def equipment_week_blocks(df: pl.DataFrame, id_col: str = "equipment_id", date_col: str = "date") -> pl.Series:
    """``"<equipment>/<week start>"`` per row: the resampling block of a PSI null for equipment-day
    rows. An item's condition (wear, fouling) carries over from day to day, so single days are not
    independent draws; whole equipment-weeks are (a moving-block bootstrap's blocks), as whole
    batches are for batch data."""
    week = pl.col(date_col).dt.truncate("1w").cast(pl.Utf8)
    return df.select(
        pl.concat_str([pl.col(id_col).cast(pl.Utf8), week], separator="/").alias(DRIFT_BLOCK_COL)
    ).to_series()


def batch_bin_counts(values: np.ndarray, groups: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n_batches, len(edges)+1) bin counts of the finite ``values`` of each group (sorted group order)."""
    values = np.asarray(values, float)
    ok = np.isfinite(values)
    _, inv = np.unique(np.asarray(groups)[ok], return_inverse=True)
    b = np.searchsorted(np.asarray(edges), values[ok], side="right")
    out = np.zeros((int(inv.max()) + 1 if len(inv) else 0, len(edges) + 1), np.int64)
    np.add.at(out, (inv, b), 1)
    return out


def psi_null_distribution(batch_counts, bins: int, k: int, draws: int = 500, seed: int = 0) -> np.ndarray:
    """``draws`` PSI values of ``k`` whole training batches against a reference of ``n`` whole
    training batches, both drawn with replacement from the ``n`` rows of ``batch_counts`` (each
    batch's counts on a fine quantile grid), with a fixed ``seed``; the draws are ``(n-1)/n`` of
    those sizes (the usual small-sample variance correction of the bootstrap).

    As for the real reference, each draw's ``bins`` PSI bins are the deciles (for 10 bins) of its
    reference: a fine bin joins the PSI bin its reference mass centre falls in. Resampling the
    reference too puts its own uncertainty (it was estimated from only ``n`` batches) in the null."""
    C = np.asarray(batch_counts, float)
    n = len(C)
    p = np.full(n, 1.0 / n)
    rng = np.random.default_rng(seed)
    # small-sample correction: n observed batches have (n-1)/n of the population's variance, so draw
    # (n-1)/n as many batches on each side (without it ~3 % false alarms per feature at q99 for n=10)
    recent = rng.multinomial(max(round(int(k) * (n - 1) / n), 1), p, size=draws) @ C  # (draws, fine bins)
    ref = rng.multinomial(n - 1, p, size=draws) @ C
    cum = np.cumsum(ref, axis=1) / ref.sum(axis=1, keepdims=True)
    centre = cum - 0.5 * ref / ref.sum(axis=1, keepdims=True)
    coarse = np.minimum((centre * bins).astype(np.int64), bins - 1) + bins * np.arange(draws)[:, None]
    e = np.bincount(coarse.ravel(), weights=ref.ravel(), minlength=draws * bins).reshape(draws, bins)
    a = np.bincount(coarse.ravel(), weights=recent.ravel(), minlength=draws * bins).reshape(draws, bins)
    return _psi_counts(a, e)


def psi_null_quantile(entry: dict, k: int | None, quantile: float, draws: int) -> float | None:
    """Null quantile of one feature's reference for a window of ``k`` batches: the stored value when
    it was computed with the same ``k``/quantile/draws, else recomputed from the stored per-batch
    counts; ``None`` for references without a null (older models, or too few training batches)."""
    null = entry.get("null")
    if not null:
        return None
    k = int(null["k"]) if k is None else int(k)
    same = k == null["k"] and float(quantile) == null["quantile"] and int(draws) == null["draws"]
    if same or not entry.get("batch_counts"):
        return float(null["psi_q"])
    dist = psi_null_distribution(entry["batch_counts"], int(null["bins"]), k, draws, int(null.get("seed", 0)))
    return float(np.quantile(dist, quantile))


def _psi_counts(actual_counts: np.ndarray, expected: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """PSI along the last axis; both arguments are counts or fractions (normalised here)."""
    a = np.asarray(actual_counts, float)
    e = np.asarray(expected, float)
    a = np.clip(a / a.sum(axis=-1, keepdims=True), eps, None)
    e = np.clip(e / e.sum(axis=-1, keepdims=True), eps, None)
    return np.sum((a - e) * np.log(a / e), axis=-1)


def psi(expected: np.ndarray, actual_values: np.ndarray, edges: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of ``actual_values`` against binned ``expected`` proportions."""
    v = np.asarray(actual_values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan")
    counts = np.bincount(np.searchsorted(np.asarray(edges), v, side="right"), minlength=len(edges) + 1)
    a = np.clip(counts / counts.sum(), eps, None)
    e = np.clip(np.asarray(expected, float), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_by_feature(reference: dict, X: np.ndarray, feature_names: list[str]) -> dict[str, float]:
    """Population stability index of each feature of ``X`` against the training reference."""
    return {
        name: psi(np.asarray(r["expected"]), X[:, feature_names.index(name)], np.asarray(r["edges"]))
        for name, r in reference.items()
        if name in feature_names
    }


def dumps(obj) -> str:
    """Compact JSON of ``obj`` (numpy numbers as floats)."""
    return json.dumps(obj, separators=(",", ":"), default=float)
