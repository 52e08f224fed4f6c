"""Per-prediction explanations: XGBoost SHAP contributions (``pred_contribs=True``) summed by signal."""

from __future__ import annotations

import json

import numpy as np
import xgboost as xgb

from ml.features import feature_signal


def contributions(booster: xgb.Booster, X: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """(n, n_features + 1) contributions; the last column is the bias. Rows sum to the margin."""
    dm = xgb.DMatrix(np.asarray(X, np.float32), feature_names=feature_names, missing=np.nan)
    return booster.predict(dm, pred_contribs=True)


def by_signal(contribs: np.ndarray, feature_names: list[str]) -> tuple[list[str], np.ndarray]:
    """Sum feature contributions per signal → (signal names, (n, n_signals) matrix). Bias excluded."""
    signals = sorted({feature_signal(f) for f in feature_names})
    idx = {s: i for i, s in enumerate(signals)}
    M = np.zeros((contribs.shape[0], len(signals)))
    for j, f in enumerate(feature_names):
        M[:, idx[feature_signal(f)]] += contribs[:, j]
    return signals, M


def contribution_json_rows(
    signals: list[str], M: np.ndarray, bias: np.ndarray, top: int = 8
) -> tuple[list[str], list[str]]:
    """Per row: JSON ``{signal: contribution}`` of the ``top`` largest |contributions| (+ ``_bias``),
    and the single top signal."""
    out, tops = [], []
    order = np.argsort(-np.abs(M), axis=1)[:, :top]
    for i in range(M.shape[0]):
        d = {signals[j]: round(float(M[i, j]), 5) for j in order[i]}
        d["_bias"] = round(float(bias[i]), 5)
        out.append(json.dumps(d, separators=(",", ":")))
        tops.append(signals[order[i][0]] if len(order[i]) else "")
    return out, tops


def mean_abs_by_signal(signals: list[str], M: np.ndarray) -> dict[str, float]:
    """Mean absolute contribution per source signal (feature contributions ``M`` summed over the
    features derived from each signal).
    """
    vals = np.abs(M).mean(axis=0) if M.size else np.zeros(len(signals))
    return dict(sorted(((s, float(v)) for s, v in zip(signals, vals, strict=True)), key=lambda kv: -kv[1]))
