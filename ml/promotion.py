"""Promotion gate: a candidate becomes champion only if it beats the champion (when there is
one) AND the baseline on the same held-out rows. The decision and its evidence are appended to
``registry/promotions``.

Held-out rows = the candidate's forward-in-time test set (later batches / later days), rebuilt
from the feature table version the candidate was trained on. Rows the champion was trained on
(its training batches, or days up to its validation end) are removed before comparing, so the
comparison is fair to both.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from ml.evaluation import pr_auc, regression_metrics
from ml.registry import ModelRegistry
from ml.softsensor import gate_mask, predict_rows
from ml.train import _baseline_rule_scores, matrix, predict


def _reg_eval(booster, meta, rows: pl.DataFrame) -> float:
    y = rows[f"label__{meta['target']}"].to_numpy().astype(float)
    pred, open_ = predict_rows(booster, meta, rows)
    return regression_metrics(y[open_], pred[open_])["rmse"]


def _cls_eval(booster, meta, rows: pl.DataFrame) -> float:
    y = rows["label__failure_within_h"].to_numpy()
    return pr_auc(y, predict(booster, matrix(rows, meta["features"]), meta["features"]))


def decide(
    registry: ModelRegistry,
    name: str,
    candidate_version: int,
    holdout: pl.DataFrame,
    baseline: np.ndarray | None = None,
    *,
    min_improvement: float = 0.0,
    record: bool = True,
) -> dict:
    """Compare candidate vs champion vs baseline on ``holdout`` (the candidate's held-out rows, with
    the label column) and promote when it wins. Returns the decision with evidence.

    ``baseline``: baseline predictions (regression) or scores (classifier) aligned with ``holdout``;
    ``min_improvement``: relative margin the candidate must win by.
    """
    cand_booster, cand_meta, _ = registry.load(name, candidate_version)
    kind = cand_meta["kind"]
    higher_better = kind == "classifier"
    metric = "pr_auc" if higher_better else "rmse"
    champ_rec = registry.champion(name)
    rows = holdout
    excluded = 0
    champ_booster = champ_meta = None
    if champ_rec is not None and champ_rec.version != candidate_version:
        champ_booster, champ_meta, _ = registry.load(name, champ_rec.version)
        if kind == "regression":
            seen = set(champ_meta["split"]["train_batches"])
            keep = ~pl.col("batch_id").is_in(list(seen))
        else:
            seen_until = date.fromisoformat(champ_meta["split"]["validation_end"])
            keep = pl.col("date") > seen_until
        mask = rows.select(keep.alias("k"))["k"].to_numpy()
        excluded = int((~mask).sum())
        rows = rows.filter(pl.Series(mask))
        baseline = baseline[mask] if baseline is not None else None
    evaluate = _cls_eval if higher_better else _reg_eval
    cand_v = evaluate(cand_booster, cand_meta, rows) if rows.height else float("nan")
    champ_v = evaluate(champ_booster, champ_meta, rows) if champ_booster is not None and rows.height else None
    base_v = None
    if baseline is not None and rows.height:
        if higher_better:
            base_v = pr_auc(rows["label__failure_within_h"].to_numpy(), baseline)
        else:
            base_v = regression_metrics(rows[f"label__{cand_meta['target']}"].to_numpy().astype(float), baseline)[
                "rmse"
            ]

    def beats(a, b) -> bool:
        if b is None or not np.isfinite(b):
            return True
        if a is None or not np.isfinite(a):
            return False
        return a > b * (1 + min_improvement) if higher_better else a < b * (1 - min_improvement)

    beats_baseline = beats(cand_v, base_v)
    beats_champion = beats(cand_v, champ_v) if champ_booster is not None else True
    promoted = bool(rows.height > 0 and np.isfinite(cand_v) and beats_baseline and beats_champion)
    if promoted:
        reason = "beats " + ("champion and baseline" if champ_booster is not None else "baseline (no champion)")
    elif rows.height == 0:
        reason = "no held-out rows to compare on"
    else:
        reason = "; ".join(
            r
            for r, bad in (
                ("does not beat the champion", not beats_champion),
                ("does not beat the baseline", not beats_baseline),
            )
            if bad
        )
    decision = {
        "model_name": name,
        "candidate_version": candidate_version,
        "champion_version": champ_rec.version if champ_booster is not None else None,
        "decision": "promoted" if promoted else "rejected",
        "promoted": promoted,
        "metric": metric,
        "candidate_value": _f(cand_v),
        "champion_value": _f(champ_v),
        "baseline_value": _f(base_v),
        "n_eval_rows": int(rows.height),
        "reason": reason,
        "excluded_rows_seen_by_champion": excluded,
        "higher_is_better": higher_better,
    }
    if record:
        if promoted:
            registry.promote(name, candidate_version)
        import json

        registry.record_promotion(
            {
                k: decision[k]
                for k in (
                    "model_name",
                    "candidate_version",
                    "champion_version",
                    "decision",
                    "promoted",
                    "metric",
                    "candidate_value",
                    "champion_value",
                    "baseline_value",
                    "n_eval_rows",
                )
            }
            | {"evidence_json": json.dumps(decision, default=str), "decided_at": None}
        )
    decision["has_champion_after"] = registry.champion(name) is not None
    return decision


def _f(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


# ----------------------------------------------------------------------------- held-out sets
def softsensor_holdout(
    features: pl.DataFrame, meta: dict, min_culture_age_h: float = 0.0
) -> tuple[pl.DataFrame, np.ndarray]:
    """Held-out sample rows of a soft-sensor model (its test batches, from ``min_culture_age_h``) and
    their carry-forward baseline predictions.
    """
    from ml.train import titer_baseline

    t = meta["target"]
    rows = features.filter(
        (pl.col("row_type") == "sample")
        & pl.col(f"label__{t}").is_not_null()
        & pl.col("batch_id").is_in(meta["split"]["test_batches"])
        & (pl.col("culture_age_h") >= min_culture_age_h)
    )
    rows = rows.filter(
        pl.Series(gate_mask(rows, meta.get("gate"), float(meta.get("min_culture_age_h") or 0.0)), dtype=pl.Boolean)
    )
    return rows, titer_baseline(rows, t)


def harvest_holdout(features: pl.DataFrame, meta: dict) -> tuple[pl.DataFrame, np.ndarray]:
    """Held-out batches of a harvest CQA model and their mean-of-training baseline predictions."""
    from ml.config import HarvestModelConfig
    from ml.features import build_harvest_dataset

    t = meta["target"]
    ds = build_harvest_dataset(features, HarvestModelConfig(targets=(t,), day=meta["feature_day"]))
    rows = ds.filter(pl.col(f"label__{t}").is_not_null() & pl.col("batch_id").is_in(meta["split"]["test_batches"]))
    return rows, np.full(rows.height, meta["baseline_value"])


def pdm_holdout(eq_features: pl.DataFrame, meta: dict) -> tuple[pl.DataFrame, np.ndarray]:
    """Held-out equipment-days of the PdM model (its test period) and the threshold-rule baseline scores."""
    H = meta["horizon_days"]
    test_start = date.fromisoformat(meta["split"]["test_start"])
    test_end = date.fromisoformat(meta["split"]["test_end"])
    d_end = eq_features["date"].max()
    known = (pl.col("label__failure_within_h") == 1) | (pl.col("date") <= pl.lit(d_end) - pl.duration(days=H))
    rows = eq_features.filter(
        ~pl.col("in_repair") & (pl.col("date") >= test_start) & (pl.col("date") <= test_end) & known
    )
    _, score = _baseline_rule_scores(rows, meta["baseline_rules"])
    return rows, score
