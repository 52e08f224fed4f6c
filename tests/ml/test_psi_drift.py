"""Batch-aware PSI drift: recipe variation between batches is not drift, a shifted probe is.

Soft-sensor rows are grid steps of a batch; every batch has its own DO and temperature setpoint
(recipe variation), tightly controlled within the batch. Row-wise PSI of a few such batches against
the pooled training rows is far above 0.25 although nothing drifted; the verification compares it
with the PSI that resampled whole training batches give (ml.domain.psi_null_distribution).
Plain numpy/polars, no Dagster, no lake.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from ml.config import VerificationConfig
from ml.domain import dumps, fit_psi_reference, psi_by_feature, psi_null_quantile
from ml.train import matrix
from ml.verification import verify

NAMES = ["dissolved_oxygen", "temperature", "ph"]
DO_SP_MEAN, DO_SP_SD = 40.0, 6.0  # % air saturation: per-batch recipe setpoint and its spread
T_SP_MEAN, T_SP_SD = 36.8, 0.4  # degC
WINDOW = 5  # batches the verification looks at
CFG = VerificationConfig(psi_recent_batches=WINDOW)
NO_SCORES = pl.DataFrame({"model_version": [], "actual": [], "prediction": []})


def _batches(
    rng: np.random.Generator, n: int, first: int, *, do_offset: float = 0.0, t_offset: float = 0.0, rows: int = 150
) -> pl.DataFrame:
    """``n`` batches with recipe setpoints drawn per batch, tight control around them; DO starts at
    air saturation and is pulled down to its setpoint in the first 12 steps. Offsets: a probe bias."""
    out = []
    for b in range(first, first + n):
        do_sp, t_sp = rng.normal(DO_SP_MEAN, DO_SP_SD), rng.normal(T_SP_MEAN, T_SP_SD)
        do = do_sp + 1.5 * rng.standard_normal(rows)
        do[:12] = np.linspace(95.0, do_sp, 12)
        out.append(
            pl.DataFrame(
                {
                    "batch_id": f"B{b:03d}",
                    "row_type": "step",
                    "ts": 1000.0 * b + np.arange(rows),
                    "dissolved_oxygen": do + do_offset,
                    "temperature": t_sp + 0.05 * rng.standard_normal(rows) + t_offset,
                    "ph": 7.0 + 0.03 * rng.standard_normal(rows),
                }
            )
        )
    return pl.concat(out)


def _model(seed: int = 7) -> tuple[dict, np.random.Generator]:
    """Meta of a model trained on 20 batches (only what verification reads), and the generator to
    draw later batches of the same plant from. (The drift level is family-wise over the features:
    with only 10 reference batches the far tail of the batch bootstrap is too wide to resolve a
    4-SD probe offset of a 5-batch window; from 15 batches on it is.)"""
    rng = np.random.default_rng(seed)
    train = _batches(rng, 20, 0)
    ref = fit_psi_reference(
        matrix(train, NAMES),
        NAMES,
        NAMES,
        CFG.psi_bins,
        train["batch_id"].to_numpy(),
        window_batches=CFG.psi_recent_batches,
        null_draws=CFG.psi_null_draws,
        null_quantile=CFG.psi_null_quantile,
    )
    meta = {"kind": "regression", "features": NAMES, "psi_reference": ref}
    return json.loads(dumps(meta)), rng  # as the registry stores and loads it


def _legacy(meta: dict) -> dict:
    """Metadata of a model registered before the batch null existed."""
    ref = {n: {"edges": r["edges"], "expected": r["expected"]} for n, r in meta["psi_reference"].items()}
    return meta | {"psi_reference": ref}


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_recipe_variation_between_batches_is_not_drift(seed):
    meta, rng = _model(seed)
    recent = _batches(rng, WINDOW, 100)  # normal batches, same recipe distribution
    old = psi_by_feature(meta["psi_reference"], matrix(recent, NAMES), NAMES)
    # the case is meaningful: the row-wise rule (PSI > 0.25) would raise a drift alarm
    assert old["dissolved_oxygen"] > CFG.psi_limit or old["temperature"] > CFG.psi_limit
    assert not verify(NO_SCORES, _legacy(meta), recent, CFG, check_error=False)["passed"]

    r = verify(NO_SCORES, meta, recent, CFG, check_error=False)
    assert r["passed"], r["failures"]
    assert r["psi_drifted"] == [] and r["psi_rule"] == "batch-resampled null"
    assert r["psi"] == pytest.approx(old)  # the PSI itself is unchanged, only the decision
    over = sorted(n for n, v in old.items() if v > CFG.psi_limit)
    assert r["psi_within_batch_variation"] == over
    assert r["psi_window_batches"] == dict.fromkeys(NAMES, WINDOW)
    for n in over:
        assert r["psi"][n] <= r["psi_null_q"][n] == r["psi_threshold"][n]
    # a stable, recipe-independent signal has a small null: it can still raise an alarm at psi_limit
    assert r["psi_null_q"]["ph"] < CFG.psi_limit == r["psi_threshold"]["ph"]


@pytest.mark.parametrize(
    ("feature", "offset"),
    [
        ("dissolved_oxygen", {"do_offset": 4 * DO_SP_SD}),
        ("dissolved_oxygen", {"do_offset": -4 * DO_SP_SD}),
        ("temperature", {"t_offset": 4 * T_SP_SD}),
    ],
)
def test_probe_offset_outside_the_recipe_range_is_drift(feature, offset):
    meta, rng = _model()
    shifted = _batches(rng, WINDOW, 100, **offset)  # e.g. DO probe reading 24 %-points high
    r = verify(NO_SCORES, meta, shifted, CFG, check_error=False)
    assert not r["passed"]
    assert r["psi_drifted"] == [feature]
    assert r["psi"][feature] > r["psi_threshold"][feature] == max(CFG.psi_limit, r["psi_null_q"][feature])
    assert r["psi_null_q"][feature] > CFG.psi_limit  # the null did matter: it raised the bar
    assert len(r["failures"]) == 1 and feature in r["failures"][0] and "batch-null q99" in r["failures"][0]


def test_a_stable_signal_still_alarms_at_psi_limit():
    meta, rng = _model()
    recent = _batches(rng, WINDOW, 100).with_columns(pl.col("ph") + 0.05)  # pH probe off by 0.05
    r = verify(NO_SCORES, meta, recent, CFG, check_error=False)
    assert r["psi_drifted"] == ["ph"] and not r["passed"]


def test_model_metadata_without_the_null_keeps_the_psi_limit_rule():
    meta, rng = _model()
    old = _legacy(meta)
    recent = _batches(rng, WINDOW, 100)
    r = verify(NO_SCORES, old, recent, CFG, check_error=False)
    assert r["psi_rule"] == "psi_limit only (no batch null in model metadata)"
    assert r["psi_null_q"] == dict.fromkeys(NAMES) and r["psi_null_q_max"] is None
    assert r["psi_threshold"] == dict.fromkeys(NAMES, CFG.psi_limit)
    assert r["psi_drifted"] == sorted((n for n, v in r["psi"].items() if v > CFG.psi_limit), key=lambda n: -r["psi"][n])
    assert not r["passed"] and r["failures"][0].startswith("PSI drift for ")
    # partly new metadata (a feature with too few batches for a null) mixes both rules
    mixed = meta | {"psi_reference": meta["psi_reference"] | {"ph": old["psi_reference"]["ph"]}}
    assert verify(NO_SCORES, mixed, recent, CFG, check_error=False)["psi_rule"] == "mixed"
    # no reference at all, or an empty window: nothing to judge, nothing crashes
    assert verify(NO_SCORES, {"kind": "regression", "features": NAMES}, recent, CFG, check_error=False)["passed"]
    assert verify(NO_SCORES, meta, recent.head(0), CFG, check_error=False)["psi"] == {}


def test_null_follows_the_window_size():
    meta, rng = _model()
    ref = meta["psi_reference"]["dissolved_oxygen"]
    null = ref["null"]
    assert null["k"] == WINDOW and null["n_batches"] == 20 and len(ref["batch_counts"]) == 20
    stored = psi_null_quantile(ref, None, CFG.psi_null_quantile, CFG.psi_null_draws)
    assert stored == null["psi_q"] == psi_null_quantile(ref, WINDOW, CFG.psi_null_quantile, CFG.psi_null_draws)
    q = {k: psi_null_quantile(ref, k, CFG.psi_null_quantile, CFG.psi_null_draws) for k in (2, WINDOW, 20)}
    assert q[2] > q[WINDOW] > q[20]  # fewer batches in the window: wider null
    # verification uses the batches actually in the window, and the stored size without batch ids,
    # at the family-wise level over the 3 monitored features
    from ml.verification import family_wise_quantile

    fw = family_wise_quantile(CFG.psi_null_quantile, len(NAMES))
    recent = _batches(rng, 2, 100)
    r = verify(NO_SCORES, meta, recent, CFG, check_error=False)
    assert r["psi_null_quantile_per_feature"] == fw
    assert r["psi_window_batches"]["dissolved_oxygen"] == 2
    assert r["psi_null_q"]["dissolved_oxygen"] == psi_null_quantile(ref, 2, fw, CFG.psi_null_draws) > q[2]
    r = verify(NO_SCORES, meta, recent.drop("batch_id"), CFG, check_error=False)
    assert r["psi_window_batches"]["dissolved_oxygen"] == WINDOW
    assert r["psi_null_q"]["dissolved_oxygen"] == psi_null_quantile(ref, WINDOW, fw, CFG.psi_null_draws) > stored
    # another configured quantile is recomputed from the stored batch counts
    q95 = dataclasses.replace(CFG, psi_null_quantile=0.95)
    assert verify(NO_SCORES, meta, recent, q95, check_error=False)["psi_null_q"]["dissolved_oxygen"] < q[2]


def test_training_stores_the_batch_null(ss_features, ss_cfg):
    from ml.train import train_titer

    model = train_titer(ss_features, ss_cfg)
    ref = model.meta["psi_reference"]
    assert set(ref) == set(ss_cfg.verification.psi_features) & set(model.meta["features"])
    for r in ref.values():  # step rows of the training batches, grouped by batch
        assert r["null"]["k"] == ss_cfg.verification.psi_recent_batches
        assert r["null"]["quantile"] == ss_cfg.verification.psi_null_quantile
        assert r["null"]["n_batches"] == len(r["batch_counts"]) == model.metrics["n_train_batches"]
        assert np.isfinite(r["null"]["psi_q"]) and r["null"]["psi_q"] >= 0
    json.loads(dumps(model.meta))


def test_drift_level_is_family_wise_over_the_monitored_features():
    """12 monitored features of normal batches (no drift): a window fails the verification at most
    ~1 - psi_null_quantile of the time, not ~12 times that (each feature at q99)."""
    from ml.verification import family_wise_quantile

    assert family_wise_quantile(0.99, 12) == pytest.approx(1 - 0.01 / 12)
    rng = np.random.default_rng(3)
    names = [f"x{i}" for i in range(12)]

    def batches(n: int, first: int) -> pl.DataFrame:
        level = rng.normal(0.0, 1.0, (n, len(names)))  # per-batch level of each signal
        rows = [
            pl.DataFrame({"batch_id": f"B{first + b:03d}", "row_type": "step"}).join(
                pl.DataFrame({n_: level[b, j] + 0.3 * rng.standard_normal(40) for j, n_ in enumerate(names)}),
                how="cross",
            )
            for b in range(n)
        ]
        return pl.concat(rows)

    train = batches(40, 0)
    cfg = VerificationConfig(psi_recent_batches=WINDOW, psi_null_draws=2000)
    ref = fit_psi_reference(
        matrix(train, names), names, names, cfg.psi_bins, train["batch_id"].to_numpy(), window_batches=WINDOW
    )
    meta = json.loads(dumps({"kind": "regression", "features": names, "psi_reference": ref}))
    failed = [
        not verify(NO_SCORES, meta, batches(WINDOW, 100 + 10 * w), cfg, check_error=False)["passed"] for w in range(60)
    ]
    assert sum(failed) <= 3, sum(failed)  # family-wise 1 %: ~0.6 expected of 60; per-feature q99: ~7
