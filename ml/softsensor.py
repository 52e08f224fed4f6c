"""Soft-sensor estimators for any assay target: XGBoost, a regularised linear model (ridge), PLS
and a blend, chosen by batch-grouped cross-validation; the mean-trajectory baseline; the gate.

* **Linear models** (ridge, PLS) are fitted on features imputed with the training medians and
  standardised with the training means/SDs — all computed from the rows they are fitted on
  (inside each CV fold; never on held-out rows). At prediction an input is clipped to the
  training range of its feature (a linear model does not extrapolate beyond what it saw, e.g. a
  chilled-water temperature during a chiller trip). A fitted linear model is plain JSON
  (:func:`fit_linear`): ``impute, lo, hi, mean, scale, coef, intercept`` — never pickled.
* **Selection** (:func:`select_estimator`): out-of-fold predictions of every candidate on the same
  batch-grouped folds (no batch in a fold's training and test part); ridge's ``alpha`` and PLS'
  component count are picked on those folds, the blend weight ``w`` of ``w·xgboost + (1-w)·best
  linear`` too; the candidate with the lowest out-of-fold RMSE wins. Its out-of-fold residuals
  calibrate the prediction intervals (split-conformal per culture day, :mod:`ml.evaluation`).
* **Mean-trajectory baseline** (:func:`fit_mean_trajectory`): the training batches' mean result
  per culture-age bin, interpolated — "knowing nothing but the culture age". Reported next to
  the carry-forward baseline (last result visible).
* **Gate** (optional): a SQL condition over the feature columns (e.g. time in the induction
  state > 0) and a minimum culture age. Before the gate the model does not predict: rows are
  neither trained on nor scored by it; their published value is the mean trajectory, flagged
  ``gated``.

An estimator is described by ``meta["estimator"]`` (``kind`` ∈ ``xgboost | ridge | pls | blend``,
``weight_xgboost``, ``linear``); :func:`predict_rows` / :func:`estimator_contributions` apply it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.config import CANDIDATES, SelectionConfig
from ml.evaluation import group_kfold


# ----------------------------------------------------------------------------- linear models
def fit_linear(X: np.ndarray, y: np.ndarray, family: str, param: float) -> dict:
    """Ridge (``param`` = alpha) or PLS (``param`` = components) on median-imputed, standardised
    features; returns the model as JSON-able ``{family, param, impute, mean, scale, coef, intercept}``
    (every statistic from ``X``'s rows only)."""
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import Ridge

    X = np.asarray(X, float)
    y = np.asarray(y, float)
    fin = np.isfinite(X)
    with np.errstate(all="ignore"):
        cnt = fin.sum(axis=0)
        med = np.array([np.median(X[fin[:, j], j]) if cnt[j] else 0.0 for j in range(X.shape[1])])
    Xi = np.where(fin, X, med)
    mean = Xi.mean(axis=0) if len(Xi) else np.zeros(X.shape[1])
    scale = Xi.std(axis=0) if len(Xi) else np.ones(X.shape[1])
    live = scale > 1e-12
    scale = np.where(live, scale, 1.0)
    Z = (Xi - mean) / scale
    coef = np.zeros(X.shape[1])
    if family == "ridge":
        m = Ridge(alpha=float(param)).fit(Z[:, live], y)
        coef[live], intercept = m.coef_.ravel(), float(m.intercept_)
    elif family == "pls":
        k = int(max(1, min(int(param), int(live.sum()), len(y) - 1)))
        m = PLSRegression(n_components=k, scale=False).fit(Z[:, live], y)
        # effective linear map, whatever the sklearn version's internal centring
        zero = m.predict(np.zeros((1, int(live.sum())))).ravel()[0]
        coef[live] = m.predict(np.eye(int(live.sum()))).ravel() - zero
        intercept, param = float(zero), k
    else:
        raise ValueError(f"unknown linear family {family!r}")
    lo = Xi.min(axis=0) if len(Xi) else np.zeros(X.shape[1])
    hi = Xi.max(axis=0) if len(Xi) else np.zeros(X.shape[1])
    return {
        "family": family,
        "param": float(param),
        "impute": med.tolist(),
        "lo": lo.tolist(),
        "hi": hi.tolist(),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": coef.tolist(),
        "intercept": float(intercept),
    }


def _standardised(lin: dict, X: np.ndarray) -> np.ndarray:
    """Imputed, clipped to the training range (no linear extrapolation beyond what was seen), scaled."""
    med, lo, hi, mean, scale = (np.asarray(lin[k], float) for k in ("impute", "lo", "hi", "mean", "scale"))
    X = np.clip(np.where(np.isfinite(np.asarray(X, float)), X, med), lo, hi)
    return (X - mean) / scale


def linear_predict(lin: dict, X: np.ndarray) -> np.ndarray:
    """Predictions of a :func:`fit_linear` model."""
    return _standardised(lin, X) @ np.asarray(lin["coef"], float) + float(lin["intercept"])


def linear_contributions(lin: dict, X: np.ndarray) -> np.ndarray:
    """(n, n_features + 1): ``coef_j · z_j`` per feature and the intercept last (rows sum to the
    prediction; a missing value contributes 0 — it is imputed with the training median)."""
    C = _standardised(lin, X) * np.asarray(lin["coef"], float)[None, :]
    return np.concatenate([C, np.full((C.shape[0], 1), float(lin["intercept"]))], axis=1)


# ----------------------------------------------------------------------------- selection
def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    ok = np.isfinite(p)
    return float(np.sqrt(np.mean((p[ok] - y[ok]) ** 2))) if ok.any() else float("inf")


@dataclass
class Selection:
    """Outcome of :func:`select_estimator`."""

    estimator: dict  # kind, weight_xgboost, linear family/param (refit on all rows later)
    oof: np.ndarray  # out-of-fold predictions of the chosen estimator
    cv_rmse: dict[str, float]  # per candidate (ridge/pls: at their best parameter)
    folds: list[dict]  # per fold: train/test batches and the linear models' training means


def select_estimator(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    n_splits: int,
    cfg: SelectionConfig,
    fit_xgb: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
) -> Selection:
    """Batch-grouped CV over the candidates; see the module docstring.

    Parameters
    ----------
    X, y, groups
        Training rows, target and batch id per row.
    n_splits
        Folds (``GroupKFold`` by batch; fewer when there are fewer batches).
    cfg
        Candidates and grids.
    fit_xgb
        ``fit_xgb(X, y)`` returns a predict function (the XGBoost fitter of the caller, e.g. Spark).
    """
    unknown = set(cfg.candidates) - set(CANDIDATES)
    if unknown or not cfg.candidates:
        raise ValueError(f"titer.selection.candidates must be a non-empty subset of {CANDIDATES}, got {cfg.candidates}")
    want = set(cfg.candidates)
    use_xgb = bool(want & {"xgboost", "blend"})
    use_ridge = bool(want & {"ridge", "blend"})
    use_pls = bool(want & {"pls", "blend"})
    splits = group_kfold(groups, n_splits)
    n = len(y)
    oof: dict[str, np.ndarray] = {}

    def slot(key: str) -> np.ndarray:
        return oof.setdefault(key, np.full(n, np.nan))

    folds = []
    for tr, te in splits:
        info = {"train_batches": sorted(set(groups[tr].tolist())), "test_batches": sorted(set(groups[te].tolist()))}
        if use_xgb:
            slot("xgboost")[te] = fit_xgb(X[tr], y[tr])(X[te])
        for a in cfg.ridge_alphas if use_ridge else ():
            lin = fit_linear(X[tr], y[tr], "ridge", a)
            slot(f"ridge:{a:g}")[te] = linear_predict(lin, X[te])
            info.setdefault("linear_mean", lin["mean"])
        for k in cfg.pls_components if use_pls else ():
            lin = fit_linear(X[tr], y[tr], "pls", k)
            slot(f"pls:{k:g}")[te] = linear_predict(lin, X[te])
            info.setdefault("linear_mean", lin["mean"])
        folds.append(info)
    cv: dict[str, float] = {}
    choice: dict[str, tuple[dict, np.ndarray]] = {}
    if use_xgb:
        cv["xgboost"] = _rmse(y, oof["xgboost"])
        choice["xgboost"] = ({"kind": "xgboost", "weight_xgboost": 1.0}, oof["xgboost"])
    for fam in ("ridge", "pls"):
        keys = [k for k in oof if k.startswith(fam + ":")]
        if keys:
            best = min(keys, key=lambda k: _rmse(y, oof[k]))
            cv[fam] = _rmse(y, oof[best])
            choice[fam] = (
                {"kind": fam, "weight_xgboost": 0.0, "family": fam, "param": float(best.split(":")[1])},
                oof[best],
            )
    if "blend" in want and "xgboost" in choice and ({"ridge", "pls"} & set(choice)):
        lin_fam = min((f for f in ("ridge", "pls") if f in choice), key=lambda f: cv[f])
        lin_spec, lin_oof = choice[lin_fam]
        w = min(cfg.blend_weights, key=lambda w: _rmse(y, w * oof["xgboost"] + (1 - w) * lin_oof))
        blend = w * oof["xgboost"] + (1 - w) * lin_oof
        cv["blend"] = _rmse(y, blend)
        choice["blend"] = (
            {"kind": "blend", "weight_xgboost": float(w), "family": lin_spec["family"], "param": lin_spec["param"]},
            blend,
        )
    ranked = sorted((k for k in choice if k in want), key=lambda k: cv[k])
    if not ranked:
        raise ValueError("no estimator could be evaluated (too few batches for cross-validation?)")
    spec, best_oof = choice[ranked[0]]
    return Selection(spec, best_oof, cv, folds)


# ----------------------------------------------------------------------------- baselines
def fit_mean_trajectory(age_h: np.ndarray, y: np.ndarray, bin_h: float) -> dict:
    """Mean of ``y`` per culture-age bin of width ``bin_h`` (training batches); predicted by linear
    interpolation between bin centres, constant beyond the first/last bin."""
    age_h, y = np.asarray(age_h, float), np.asarray(y, float)
    ok = np.isfinite(age_h) & np.isfinite(y)
    b = np.floor(age_h[ok] / bin_h).astype(int)
    keys = np.unique(b)
    means = [float(np.mean(y[ok][b == k])) for k in keys]
    return {"bin_h": float(bin_h), "centres_h": ((keys + 0.5) * bin_h).tolist(), "means": means}


def mean_trajectory(traj: dict, age_h: np.ndarray) -> np.ndarray:
    """The mean-trajectory baseline at culture ages ``age_h``."""
    if not traj or not traj.get("centres_h"):
        return np.full(len(age_h), np.nan)
    return np.interp(np.asarray(age_h, float), np.asarray(traj["centres_h"]), np.asarray(traj["means"]))


# ----------------------------------------------------------------------------- gate and prediction
def gate_mask(df: pl.DataFrame, gate: str | None, min_culture_age_h: float = 0.0) -> np.ndarray:
    """True where the model predicts: ``culture_age_h >= min_culture_age_h`` and the SQL ``gate``
    (null counts as closed)."""
    n = df.height
    ok = np.ones(n, bool)
    if min_culture_age_h and "culture_age_h" in df.columns:
        ok &= df["culture_age_h"].fill_null(-np.inf).to_numpy() >= float(min_culture_age_h)
    if gate:
        if n == 0:
            return ok
        try:
            g = df.select(pl.sql_expr(gate).cast(pl.Boolean).fill_null(False).alias("_g"))["_g"].to_numpy()
        except Exception as exc:
            raise ValueError(f"titer.gate {gate!r} cannot be evaluated on the feature table: {exc}") from exc
        ok &= g
    return ok


def matrix(df: pl.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The feature matrix of ``df`` (float64, columns in ``feature_names`` order, missing → NaN)."""
    cols = [
        pl.col(c).cast(pl.Float64) if c in df.columns else pl.lit(None, dtype=pl.Float64).alias(c)
        for c in feature_names
    ]
    return df.select(cols).to_numpy().astype(np.float64)


def predict(booster, X: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """Predictions of an XGBoost ``booster`` for ``X`` (columns named ``feature_names``)."""
    import xgboost as xgb

    dm = xgb.DMatrix(np.asarray(X, np.float32), feature_names=feature_names, missing=np.nan)
    return booster.predict(dm)


def _xgb_part(booster, X: np.ndarray, names: list[str]) -> np.ndarray:
    return predict(booster, X, names).astype(float)


def estimator_predict(booster, meta: dict, X: np.ndarray) -> np.ndarray:
    """Raw predictions of the model ``meta["estimator"]`` describes (no gate)."""
    names = meta["features"]
    est = meta.get("estimator") or {"kind": "xgboost", "weight_xgboost": 1.0}
    if len(X) == 0:
        return np.array([], float)
    w = float(est.get("weight_xgboost", 1.0))
    out = np.zeros(len(X))
    if w > 0:
        out += w * _xgb_part(booster, X, names)
    if w < 1:
        out += (1 - w) * linear_predict(est["linear"], X)
    return out


def predict_rows(booster, meta: dict, df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predictions for the rows of a feature table and the gate (True = the model predicted;
    gated rows carry the mean-trajectory baseline)."""
    X = matrix(df, meta["features"])
    pred = estimator_predict(booster, meta, X)
    open_ = gate_mask(df, meta.get("gate"), float(meta.get("min_culture_age_h") or 0.0))
    if (~open_).any():
        base = mean_trajectory(meta.get("mean_trajectory") or {}, df["culture_age_h"].to_numpy())
        pred = np.where(open_, pred, base)
    return pred, open_


def estimator_contributions(booster, meta: dict, X: np.ndarray, *, approx: bool = False) -> np.ndarray:
    """(n, n_features + 1) contributions of the estimator (bias last): TreeSHAP for XGBoost,
    ``coef·z`` for the linear part, weighted like the predictions for a blend."""
    import xgboost as xgb

    names = meta["features"]
    est = meta.get("estimator") or {"kind": "xgboost", "weight_xgboost": 1.0}
    w = float(est.get("weight_xgboost", 1.0))
    C = np.zeros((len(X), len(names) + 1))
    if w > 0:
        dm = xgb.DMatrix(np.asarray(X, np.float32), feature_names=names, missing=np.nan)
        C += w * booster.predict(dm, pred_contribs=True, approx_contribs=approx)
    if w < 1:
        C += (1 - w) * linear_contributions(est["linear"], X)
    return C
