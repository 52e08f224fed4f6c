"""Features from a plant's signal catalog: defaults by kind, the semantics of the new feature kinds,
and strict causality (no feature row ever sees a later row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.config import (
    DerivedSignal,
    FeatureConfig,
    features_from_catalog,
    load_softsensor_config,
    softsensor_config_from_dict,
)
from ml.features import build_softsensor_features, compute_online_features, softsensor_feature_names

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Sig:
    name: str
    kind: str
    unit: str = "1"
    valid_range: tuple[float, float] | None = None


CATALOG = [
    Sig("t_broth", "process_value", "degC"),
    Sig("t_sp", "setpoint", "degC"),
    Sig("feed", "flow", "kg/h"),
    Sig("our", "rate", "mmol/L/h"),
    Sig("base_tot", "totaliser", "kg"),
    Sig("step", "state", "1", (0, 5)),
]


def test_default_feature_lists_follow_the_signal_kinds():
    d = features_from_catalog(CATALOG)
    assert d["signals"] == ("t_broth", "t_sp", "feed", "our", "base_tot")
    assert d["integrals"] == ("feed", "our")  # flows and rates: mass-balance integrals
    assert d["totalisers"] == ("base_tot",)
    assert d["states"] == ("step",) and d["state_codes"] == {"step": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)}
    assert features_from_catalog(CATALOG, exclude=["our"])["integrals"] == ("feed",)
    with pytest.raises(ValueError, match="unknown kind"):
        features_from_catalog([Sig("x", "mystery")])


def test_yaml_lists_win_over_the_catalog_and_names_stay_expressible():
    cfg = softsensor_config_from_dict({"features": {"integrals": ["feed"], "exclude": ["t_sp"]}}, CATALOG)
    f = cfg.features
    assert f.integrals == ("feed",) and "t_sp" not in f.signals and f.totalisers == ("base_tot",)
    names = softsensor_feature_names(f)
    assert {"feed__integral", "base_tot__since_start", "step__time_in_state_h", "step__hours_in_4"} <= set(names)
    # the CHO twin's configured features (derived OUR/CER proxies and their integrals) stay as they were
    cho = load_softsensor_config(ROOT / "config" / "ml" / "softsensor.yaml")
    assert {"our_proxy", "cer_proxy__integral", "our_proxy__roc_60m"} <= set(softsensor_feature_names(cho.features))
    with pytest.raises(ValueError, match="catalog"):
        softsensor_config_from_dict({"features": {"exclude": ["x"]}})


def _frame(n: int, grid_min: int = 10, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    step = np.repeat([2.0, 3.0, 4.0], [n // 3, n // 3, n - 2 * (n // 3)])
    return pl.DataFrame(
        {
            "batch_id": "B1",
            "unit_id": "U1",
            "phase": None,
            "ts": [T0 + timedelta(minutes=grid_min * i) for i in range(n)],
            "culture_age_h": [grid_min * i / 60 for i in range(n)],
            "t_broth": 30 + rng.normal(0, 0.1, n),
            "t_sp": np.full(n, 30.0),
            "feed": np.abs(rng.normal(2, 0.5, n)),
            "our": np.linspace(5, 50, n),
            "base_tot": 7.0 + np.cumsum(np.abs(rng.normal(0.01, 0.005, n))),
            "step": step,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")), pl.col("phase").cast(pl.String))


def _cfg(**kw) -> FeatureConfig:
    base = softsensor_config_from_dict(
        {
            "features": {
                "windows_minutes": [30, 120],
                "maturity_from": "planned_h",
                "derived": [{"name": "t_err", "expr": "t_broth - t_sp"}],
                "step_minutes": 30,
            }
        },
        CATALOG,
    ).features
    return FeatureConfig(**{**base.__dict__, **kw})


def test_totaliser_state_and_maturity_semantics():
    n = 60
    df = _frame(n)
    f = compute_online_features(df, pl.DataFrame({"batch_id": ["B1"], "planned_h": [20.0]}), _cfg())
    base = df["base_tot"].to_numpy()
    assert f["base_tot__since_start"].to_numpy() == pytest.approx(base - base[0])
    # state 2 for 20 rows, 3 for 20, then 4: time since the last change; hours spent in each code
    r = f.row(45, named=True)
    assert r["step__time_in_state_h"] == pytest.approx((45 - 40) * 10 / 60)
    assert r["step__hours_in_3"] == pytest.approx(20 * 10 / 60)
    assert r["step__hours_in_4"] == pytest.approx((45 - 40 + 1) * 10 / 60)  # right-Riemann, like the integrals
    assert r["step__hours_in_2"] == pytest.approx(19 * 10 / 60)  # the first row contributes 0
    assert r["maturity_planned_pct"] == pytest.approx(100 * 45 * 10 / 60 / 20.0)
    assert r["our__integral"] == pytest.approx(float(np.sum(df["our"].to_numpy()[1:46]) * 10 / 60))
    assert r["t_err"] == pytest.approx(df["t_broth"][45] - 30.0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=1, max_value=58), seed=st.integers(0, 10_000), null_frac=st.floats(0.0, 0.3))
def test_perturbing_future_rows_never_changes_a_feature_row(cut, seed, null_frac):
    """Every feature at row t is a function of rows <= t: rewrite (values, nulls, state codes) every row
    after ``cut`` and no feature row up to ``cut`` may change."""
    n = 60
    df = _frame(n, seed=1)
    rng = np.random.default_rng(seed)
    future = np.arange(n) > cut

    def rewrite(col: str, new: np.ndarray) -> pl.Series:
        new = np.where(rng.random(n) < null_frac, np.nan, new)
        return pl.Series(col, np.where(future, new, df[col].to_numpy())).fill_nan(None)

    changed = df.with_columns(
        *[rewrite(c, rng.normal(0, 100, n)) for c in ("t_broth", "t_sp", "feed", "our", "base_tot")],
        rewrite("step", rng.integers(0, 6, n).astype(float)),
    )
    batches = pl.DataFrame({"batch_id": ["B1"], "planned_h": [20.0]})
    cfg = _cfg()
    a = compute_online_features(df, batches, cfg).head(cut + 1)
    b = compute_online_features(changed, batches, cfg).head(cut + 1)
    assert a.equals(b, null_equal=True)


def test_sample_rows_and_baselines_only_see_the_past():
    """A sample row takes the features of the last grid row at or before the sample and the last result
    approved before it: results approved later and readings after the sample change nothing."""
    n = 60
    df = _frame(n)
    t_sample = T0 + timedelta(minutes=10 * 30 + 5)

    def assays(late_value: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "batch_id": ["B1"] * 3,
                "sample_id": ["S1", "S2", "S3"],
                "analyte": ["titer"] * 3,
                "value": [1.0, 2.0, late_value],
                "sample_time": [T0 + timedelta(hours=1), t_sample, T0 + timedelta(hours=2)],
                "result_time": [
                    T0 + timedelta(hours=2),
                    t_sample + timedelta(hours=6),
                    t_sample + timedelta(minutes=1),
                ],
            }
        ).with_columns(pl.col("sample_time", "result_time").cast(pl.Datetime("us", "UTC")))

    cfg = _cfg()
    batches = pl.DataFrame({"batch_id": ["B1"], "planned_h": [20.0]})
    a = build_softsensor_features(df, batches, cfg, assays(3.0))
    later = df.with_columns(
        pl.when(pl.col("ts") > t_sample).then(pl.lit(-1e6)).otherwise(pl.col(c)).alias(c)
        for c in ("t_broth", "feed", "our")
    )
    b = build_softsensor_features(later, batches, cfg, assays(99.0))
    row = lambda f: f.filter(pl.col("sample_id") == "S2")
    assert row(a).equals(row(b), null_equal=True)
    assert row(a)["baseline__titer"][0] == 1.0  # S1's result (approved at 2 h) — not S3's, approved after
    assert row(a)["ts"][0] <= t_sample


def test_derived_signal_with_catalog_config_is_a_feature():
    cfg = _cfg(derived=(DerivedSignal("t_err", "t_broth - t_sp"),))
    assert "t_err__roc_30m" in softsensor_feature_names(cfg)
