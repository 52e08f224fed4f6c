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
from sklearn.covariance import LedoitWolf

from ml.config import DomainConfig


def fit_domain(X: np.ndarray, feature_names: list[str], cfg: DomainConfig) -> dict:
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
    out = {"features": feature_names, "lo": _nan_to_none(lo), "hi": _nan_to_none(hi), "md_cols": md_cols,
           "mean": _nan_to_none(mean), "std": _nan_to_none(std), "max_features_out": cfg.max_features_out}
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
        below = np.isfinite(X) & np.isfinite(lo) & (X < lo)
        above = np.isfinite(X) & np.isfinite(hi) & (X > hi)
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
    return {"out_of_domain": ood, "n_features_out": n_out.astype(np.int64), "ood_reason": np.array(reasons, dtype=object),
            "mahalanobis": md}


# ----------------------------------------------------------------------------- PSI
def fit_psi_reference(X: np.ndarray, feature_names: list[str], monitored: list[str], bins: int) -> dict:
    ref = {}
    for name in monitored:
        if name not in feature_names:
            continue
        col = np.asarray(X[:, feature_names.index(name)], float)
        col = col[np.isfinite(col)]
        if len(col) < bins:
            continue
        edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1))[1:-1])
        counts = np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1)
        ref[name] = {"edges": edges.tolist(), "expected": (counts / counts.sum()).tolist()}
    return ref


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
    return {name: psi(np.asarray(r["expected"]), X[:, feature_names.index(name)], np.asarray(r["edges"]))
            for name, r in reference.items() if name in feature_names}


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), default=float)
