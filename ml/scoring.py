"""Batch scoring with a registered model: prediction, interval, applicability domain and
explanations on every row, plus the model name/version and the scored feature-table version."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import xgboost as xgb

from ml.domain import apply_domain
from ml.evaluation import interval_halfwidth
from ml.explain import by_signal, contribution_json_rows
from ml.features import build_harvest_dataset
from ml.registry import RegisteredModel
from ml.softsensor import estimator_contributions, predict_rows
from ml.train import matrix, predict

UTC_US = pl.Datetime("us", "UTC")
# physical lower bound of a regression target and its interval: assays (titer g/L, glycan and
# aggregate % shares) are never negative
PHYSICAL_MIN = 0.0


def predict_frame(booster: xgb.Booster, meta: dict, df: pl.DataFrame, *, explain: str = "exact") -> pl.DataFrame:
    """Columns: prediction, pi_lower, pi_upper, gated, out_of_domain, n_features_out, ood_reason, mahalanobis,
    top_signal, contributions_json (``explain``: "exact" TreeSHAP, "approx" Saabas, "none").

    Regression models apply their estimator (XGBoost, linear, blend) and gate: a gated row (before
    the early-culture gate) carries the mean-trajectory baseline, ``gated`` = true and no interval."""
    names = meta["features"]
    X = matrix(df, names)
    n = X.shape[0]
    if meta["kind"] == "regression":
        pred, open_ = predict_rows(booster, meta, df) if n else (np.array([], float), np.array([], bool))
        g = meta.get("interval_group")
        groups = df[g].to_numpy() if g and g in df.columns else None
        hw = interval_halfwidth(meta["conformal"], groups, n)
        pred = np.maximum(pred.astype(float), PHYSICAL_MIN)
        cols: dict[str, object] = {
            "prediction": pred,
            "pi_lower": np.where(open_, np.maximum(pred - hw, PHYSICAL_MIN), np.nan),
            "pi_upper": np.where(open_, pred + hw, np.nan),
            "gated": ~open_,
        }
    else:
        pred = predict(booster, X, names) if n else np.array([], float)
        cols = {
            "prediction": pred.astype(float),
            "pi_lower": np.full(n, np.nan),
            "pi_upper": np.full(n, np.nan),
            "gated": np.zeros(n, bool),
        }
    dom = (
        apply_domain(X, meta["domain"])
        if n
        else {k: np.array([]) for k in ("out_of_domain", "n_features_out", "ood_reason", "mahalanobis")}
    )
    cols |= {
        "out_of_domain": dom["out_of_domain"].astype(bool),
        "n_features_out": dom["n_features_out"].astype(np.int64),
        "ood_reason": [str(x) for x in dom["ood_reason"]],
        "mahalanobis": dom["mahalanobis"].astype(float),
    }
    if explain != "none" and n:
        C = estimator_contributions(booster, meta, X, approx=(explain == "approx"))
        signals, M = by_signal(C[:, :-1], names)
        js, top = contribution_json_rows(signals, M, C[:, -1])
        cols |= {"top_signal": top, "contributions_json": js}
    else:
        cols |= {"top_signal": [None] * n, "contributions_json": [None] * n}
    return pl.DataFrame(
        cols,
        schema_overrides={
            "top_signal": pl.String,
            "contributions_json": pl.String,
            "ood_reason": pl.String,
            "gated": pl.Boolean,
        },
    )


def _stamp(df: pl.DataFrame, rec: RegisteredModel, feature_table_version: int, target: str) -> pl.DataFrame:
    return df.with_columns(
        pl.lit(rec.name).alias("model_name"),
        pl.lit(rec.version, dtype=pl.Int64).alias("model_version"),
        pl.lit(rec.model_uri).alias("model_uri"),
        pl.lit(int(feature_table_version), dtype=pl.Int64).alias("feature_table_version"),
        pl.lit(target).alias("target"),
        pl.lit(datetime.now(UTC)).cast(UTC_US).alias("scored_at"),
    )


def score_softsensor(
    features: pl.DataFrame,
    booster: xgb.Booster,
    meta: dict,
    rec: RegisteredModel,
    feature_table_version: int,
    *,
    explain: str = "exact",
) -> pl.DataFrame:
    """Score every row of ``features/softsensor`` (trajectory = step rows; sample rows carry ``actual``)."""
    target = meta["target"]
    keys = [
        "batch_id",
        "unit_id",
        "ts",
        "culture_age_h",
        "culture_day",
        "phase",
        "row_type",
        "sample_id",
        "sample_time",
        "result_time",
    ]
    lab = f"label__{target}"
    base = features.select(
        *keys, (pl.col(lab) if lab in features.columns else pl.lit(None, dtype=pl.Float64)).alias("actual")
    )
    out = pl.concat([base, predict_frame(booster, meta, features, explain=explain)], how="horizontal")
    return _stamp(out, rec, feature_table_version, target)


def score_harvest(
    features: pl.DataFrame,
    models: list[tuple[xgb.Booster, dict, RegisteredModel]],
    day: float,
    feature_table_version: int,
    *,
    explain: str = "exact",
) -> pl.DataFrame:
    """One row per batch that reached day D and harvest target."""
    from ml.config import HarvestModelConfig

    parts = []
    for booster, meta, rec in models:
        target = meta["target"]
        ds = build_harvest_dataset(features, HarvestModelConfig(targets=(target,), day=day))
        base = ds.select(
            "batch_id",
            "unit_id",
            pl.col("ts").alias("features_ts"),
            "culture_age_h",
            pl.col(f"label__{target}").alias("actual"),
        )
        out = pl.concat([base, predict_frame(booster, meta, ds, explain=explain)], how="horizontal")
        parts.append(_stamp(out, rec, feature_table_version, target))
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame()


def score_pdm(
    eq_features: pl.DataFrame,
    booster: xgb.Booster,
    meta: dict,
    rec: RegisteredModel,
    feature_table_version: int,
    *,
    explain: str = "exact",
) -> pl.DataFrame:
    """Probability of failure within H days per equipment-day and the alert at the model's threshold."""
    base = eq_features.select(
        "equipment_id",
        "equipment_type",
        "date",
        "in_repair",
        pl.col("label__failure_within_h").alias("actual"),
        "days_to_failure",
    )
    out = pl.concat([base, predict_frame(booster, meta, eq_features, explain=explain)], how="horizontal")
    by_type = meta.get("thresholds_by_type") or {}
    thr = (
        pl.col("equipment_type").replace_strict(by_type, default=float(meta["threshold"]), return_dtype=pl.Float64)
        if by_type
        else pl.lit(float(meta["threshold"]))
    )
    out = out.with_columns(
        pl.col("prediction").alias("probability"), thr.fill_null(float(meta["threshold"])).alias("threshold")
    )
    out = out.with_columns(((pl.col("probability") >= pl.col("threshold")) & ~pl.col("in_repair")).alias("alert"))
    return _stamp(out, rec, feature_table_version, meta["target"])
