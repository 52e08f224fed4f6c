"""pandera schemas of the ML feature and score tables (built from the config, since the
feature columns are config-driven). Used by the feature assets' blocking asset checks and by
the model assets before training."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from ml.config import EquipmentFeatureConfig, FeatureConfig
from ml.features import (
    SS_KEY_COLUMNS,
    equipment_feature_names,
    softsensor_feature_names,
)

UTC_US = pl.Datetime("us", "UTC")


def _float_cols(names) -> dict[str, pa.Column]:
    return {n: pa.Column(pl.Float64, nullable=True) for n in names}


def softsensor_schema(config: FeatureConfig) -> pa.DataFrameSchema:
    """pandera schema of ``features/softsensor`` for a feature config (keys, types, label ranges)."""
    cols: dict[str, pa.Column] = {
        "batch_id": pa.Column(pl.String, nullable=False),
        "unit_id": pa.Column(pl.String, nullable=True),
        "ts": pa.Column(UTC_US, nullable=False),
        # the first grid step may precede inoculation by less than one grid step
        "culture_age_h": pa.Column(pl.Float64, pa.Check.ge(-1.0), nullable=False),
        "culture_day": pa.Column(pl.Int32, pa.Check.ge(0), nullable=False),
        "phase": pa.Column(pl.String, nullable=True),
        "row_type": pa.Column(pl.String, pa.Check.isin(["step", "sample"]), nullable=False),
        "sample_id": pa.Column(pl.String, nullable=True),
        "sample_time": pa.Column(UTC_US, nullable=True),
        "result_time": pa.Column(UTC_US, nullable=True),
    }
    cols |= _float_cols(n for n in softsensor_feature_names(config) if n not in SS_KEY_COLUMNS)
    cols |= _float_cols(f"label__{a}" for a in config.label_analytes)
    for a in config.baseline_analytes:
        cols |= _float_cols([f"baseline__{a}", f"baseline__{a}_age_h"])

    def steps_unique(data) -> bool:
        steps = data.lazyframe.filter(pl.col("row_type") == "step")
        counts = steps.group_by(["batch_id", "ts"]).len().filter(pl.col("len") > 1).collect()
        return counts.height == 0

    def samples_have_id(data) -> bool:
        bad = data.lazyframe.filter((pl.col("row_type") == "sample") & pl.col("sample_id").is_null()).collect()
        return bad.height == 0

    return pa.DataFrameSchema(
        cols,
        strict=True,
        name="features_softsensor",
        checks=[
            pa.Check(steps_unique, error="duplicate (batch_id, ts) step rows"),
            pa.Check(samples_have_id, error="sample row without sample_id"),
        ],
    )


def equipment_health_schema(config: EquipmentFeatureConfig) -> pa.DataFrameSchema:
    """pandera schema of ``features/equipment_health`` for an equipment feature config."""
    cols: dict[str, pa.Column] = {
        "equipment_id": pa.Column(pl.String, nullable=False),
        "equipment_type": pa.Column(pl.String, nullable=True),
        "date": pa.Column(pl.Date, nullable=False),
        "in_repair": pa.Column(pl.Boolean, nullable=False),
        "label__failure_within_h": pa.Column(pl.Int8, pa.Check.isin([0, 1]), nullable=False),
        "days_to_failure": pa.Column(pl.Float64, pa.Check.gt(0), nullable=True),
    }
    cols |= _float_cols(equipment_feature_names(config))

    def unique_key(data) -> bool:
        return data.lazyframe.group_by(["equipment_id", "date"]).len().filter(pl.col("len") > 1).collect().height == 0

    return pa.DataFrameSchema(
        cols,
        strict=True,
        name="features_equipment_health",
        checks=[pa.Check(unique_key, error="duplicate (equipment_id, date) rows")],
    )


SCORE_KEY_COLUMNS = {"model_name": pl.String, "model_version": pl.Int64, "feature_table_version": pl.Int64}


def score_schema(extra: dict[str, pl.DataType] | None = None) -> pa.DataFrameSchema:
    """Every score row names its model version and the feature table version it scored."""
    cols = {k: pa.Column(t, nullable=False) for k, t in SCORE_KEY_COLUMNS.items()}
    cols |= {
        "prediction": pa.Column(pl.Float64, nullable=False),
        "out_of_domain": pa.Column(pl.Boolean, nullable=False),
    }
    for k, t in (extra or {}).items():
        cols[k] = pa.Column(t, nullable=True)
    return pa.DataFrameSchema(cols, strict=False, name="scores")
