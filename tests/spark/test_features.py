"""Spark feature engine = the ML team's single-node feature builders (ml/features.py), full tables."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def site():
    from tests.support.ml_site import make_site

    return make_site(n_batches=6, n_units=3, grid_minutes=10, seed=3, health_days=120)


def _assert_same(ref: pl.DataFrame, got: pl.DataFrame, keys: list[str]) -> None:
    got = got.sort(keys)
    ref = ref.sort(keys)
    assert got.columns == ref.columns
    assert got.height == ref.height > 0
    for c in ref.columns:  # same types (Spark hands back Int32, Int8, Date, µs UTC datetimes …)
        assert got.schema[c] == ref.schema[c] or (got.schema[c] == pl.String and ref.schema[c] == pl.String), c
    assert_frame_equal(ref, got, check_dtypes=False, abs_tol=1e-9, rel_tol=1e-9)


def test_softsensor_features_match_ml_features(spark, site):
    from lakehouse.spark.features import build_softsensor_features_spark
    from ml.config import load_softsensor_config
    from ml.features import build_softsensor_features

    cfg = load_softsensor_config().features  # config/ml/softsensor.yaml: derived signals, integrals …
    ref = build_softsensor_features(site.fct_process_readings, site.dim_batches, cfg, site.fct_assay_results)
    got = build_softsensor_features_spark(
        site.fct_process_readings, site.dim_batches, cfg, site.fct_assay_results, spark=spark
    )
    _assert_same(ref, pl.from_arrow(got.toArrow()), ["batch_id", "ts", "row_type", "sample_id"])
    assert ref.filter(pl.col("row_type") == "sample").height > 0


def test_equipment_health_features_match_ml_features(spark, site):
    from lakehouse.spark.features import build_equipment_health_features_spark
    from ml.config import load_pdm_config
    from ml.features import build_equipment_health_features

    cfg = load_pdm_config().features
    health = site.fct_equipment_health_daily
    ref = build_equipment_health_features(health, site.fct_work_orders, cfg)
    got = build_equipment_health_features_spark(health, site.fct_work_orders, cfg, spark=spark)
    _assert_same(ref, pl.from_arrow(got.toArrow()), ["equipment_id", "date"])
    assert ref["label__failure_within_h"].sum() > 0
