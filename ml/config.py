"""Configuration for the ML layer, loaded from YAML (``config/ml/*.yaml``).

Everything plant-specific — which online signals exist, which assay is the target, which
windows and horizons to use — lives in these dataclasses, so a plant's own historian export
(mapped to canonical parameters by the ingestion tag map) trains with no code change.

The same config objects are the contract with the Spark engine: every feature function in
:mod:`ml.features` is a pure function of (DataFrame, config).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from lakehouse.identifiers import check_identifier

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOFTSENSOR_CONFIG = PROJECT_ROOT / "config" / "ml" / "softsensor.yaml"
DEFAULT_PDM_CONFIG = PROJECT_ROOT / "config" / "ml" / "pdm.yaml"


# --------------------------------------------------------------------------- soft sensor
@dataclass(frozen=True)
class DerivedSignal:
    """A signal computed row-wise from other signals with a SQL expression.

    The expression is evaluated by ``polars.sql_expr`` (and ``pyspark.sql.functions.expr`` in
    the Spark engine); e.g. an OUR proxy from gas flows and off-gas O2.
    """

    name: str
    expr: str


@dataclass(frozen=True)
class FeatureConfig:
    """Soft-sensor feature definition (see ``docs/ml.md`` for the exact semantics)."""

    signals: tuple[str, ...] = (
        "temperature",
        "ph",
        "dissolved_oxygen",
        "agitation",
        "air_flow",
        "o2_flow",
        "co2_flow",
        "offgas_o2",
        "offgas_co2",
        "capacitance",
        "base_total",
        "feed_flow",
        "feed_total",
        "weight",
        "pressure",
    )
    windows_minutes: tuple[int, ...] = (60, 360)
    rolling_stats: tuple[str, ...] = ("mean", "std")
    rate_of_change: bool = True
    derived: tuple[DerivedSignal, ...] = ()
    integrals: tuple[str, ...] = ()
    setpoints: tuple[str, ...] = ()
    phases: tuple[str, ...] = ("Inoculate", "Batch", "Fed-Batch", "Production", "Harvest")
    step_minutes: int = 60
    label_analytes: tuple[str, ...] = ("titer",)
    baseline_analytes: tuple[str, ...] = ("titer",)
    asof_tolerance_minutes: int = 120

    @property
    def all_signals(self) -> tuple[str, ...]:
        """Raw + derived signals: the ones that get value/rolling/rate-of-change features."""
        return tuple(self.signals) + tuple(d.name for d in self.derived)


@dataclass(frozen=True)
class XGBParams:
    """XGBoost hyperparameters of one model (``params`` in the ML config)."""

    n_estimators: int = 400
    max_depth: int = 5
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 3.0
    reg_lambda: float = 1.0
    n_jobs: int = 1
    seed: int = 0

    def booster_params(self, objective: str = "reg:squarederror") -> dict[str, Any]:
        """The ``xgboost.train`` parameter dict for ``objective`` (number of rounds excluded)."""
        return {
            "objective": objective,
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "nthread": self.n_jobs,
            "seed": self.seed,
            "tree_method": "hist",
        }


@dataclass(frozen=True)
class ValidationConfig:
    """How models are validated: grouped-by-batch CV folds and the forward-in-time test split."""

    n_splits: int = 5  # GroupKFold by batch on the training part
    test_fraction: float = 0.25  # forward split: the latest batches (by inoculation) held out
    interval_alpha: float = 0.1  # 90% prediction intervals (split-conformal, per culture day)
    min_test_batches: int = 2


@dataclass(frozen=True)
class DomainConfig:
    """Applicability domain: how far (in training-data terms) a scored row may lie before it is flagged."""

    quantile_low: float = 0.005
    quantile_high: float = 0.995
    range_margin: float = 0.1  # fraction of the training (q_hi - q_lo) allowed outside
    mahalanobis_quantile: float = 0.995
    max_features_out: int = 0  # rows with more than this many out-of-range features are flagged


@dataclass(frozen=True)
class VerificationConfig:
    """Verification of a champion in service: rolling-error window and PSI drift limits."""

    window_results: int = 20  # rolling error over the last N assay results
    max_rmse_ratio: float = 2.0  # fail if rolling RMSE > ratio x held-out RMSE of the model
    max_rmse_abs: float | None = None  # or an absolute limit (target units)
    psi_limit: float = 0.25  # fail if any monitored feature has PSI above this ...
    psi_null_quantile: float = 0.99  # ... and above this quantile of its batch-resampled null PSI
    psi_null_draws: int = 500  # bootstrap draws of whole training batches for that null
    psi_bins: int = 10
    psi_recent_batches: int = 10  # compare the latest N batches to the training distribution
    psi_features: tuple[str, ...] = ()  # empty: every signal's current-value feature


@dataclass(frozen=True)
class TiterModelConfig:
    """The titer soft sensor: registry name, target analyte and XGBoost parameters."""

    name: str = "titer_softsensor"
    target: str = "titer"
    min_culture_age_h: float = 0.0
    params: XGBParams = field(default_factory=XGBParams)


@dataclass(frozen=True)
class HarvestModelConfig:
    """Harvest CQA models: targets, the culture day their features are taken at, name prefix."""

    targets: tuple[str, ...] = ("g0f", "hmw")
    day: float = 7.0  # features from data available by culture day D
    name_prefix: str = "harvest_"
    params: XGBParams = field(default_factory=lambda: XGBParams(n_estimators=300, max_depth=3))


@dataclass(frozen=True)
class SoftSensorConfig:
    """A soft-sensor config file (``config/ml/softsensor.yaml``): features, models, validation,
    domain and verification.
    """

    features: FeatureConfig = field(default_factory=FeatureConfig)
    titer: TiterModelConfig = field(default_factory=TiterModelConfig)
    harvest: HarvestModelConfig = field(default_factory=HarvestModelConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)


# --------------------------------------------------------------------------- PdM
@dataclass(frozen=True)
class BaselineRule:
    """Threshold rule for the PdM baseline: alert when ``column`` is beyond its threshold.

    The threshold is fitted on training rows without an upcoming failure as the
    ``quantile`` (direction ``above``) or ``1 - quantile`` (``below``) of the column.
    """

    column: str
    direction: str = "above"
    quantile: float = 0.99


@dataclass(frozen=True)
class EquipmentFeatureConfig:
    """Equipment-health features: daily signals, derived signals, rolling windows, own-baseline
    window, equipment types and the failure label (horizon, work types, failure modes)."""

    signals: tuple[str, ...] = (
        "vibration_mean_mm_s",
        "vibration_max_mm_s",
        "vibration_p95_mm_s",
        "motor_current_mean_a",
        "motor_current_max_a",
        "feed_flow_dev_mean_ml_min",
        "feed_flow_dev_abs_max_ml_min",
        "do_offset_mean_pct",
        "column_max_pressure_bar",
        "column_cycle",
        "tff_mean_tmp_bar",
        "tff_mean_flux_lmh",
        "membrane_use",
    )
    derived: tuple[DerivedSignal, ...] = ()  # row-wise SQL expressions, e.g. abs(do_offset_mean_pct)
    windows_days: tuple[int, ...] = (3, 7, 14)
    baseline_days: int = 30  # equipment's own baseline: rolling median over this many days,
    baseline_lag_days: int = 14  # ... lagged this many days
    equipment_types: tuple[str, ...] = ("agitator", "feed_pump", "do_probe", "chromatography_column", "tff_membrane")
    horizon_days: int = 7  # label: corrective work order within (d, d + H]
    failure_work_types: tuple[str, ...] = ("corrective",)
    failure_modes: tuple[str, ...] = ()  # empty: every failure mode of those work types

    @property
    def all_signals(self) -> tuple[str, ...]:
        """The configured signals followed by the derived ones (config order)."""
        return tuple(self.signals) + tuple(d.name for d in self.derived)


@dataclass(frozen=True)
class PdMEvaluationConfig:
    """How the PdM model is evaluated: time-ordered split fractions, alert lead time, threshold choice."""

    alert_window_days: int = 21  # an alert day is true when a failure follows within W days
    lead_days: int = 7  # "alerted >= lead_days ahead"
    target_precision: float = 0.7  # threshold chosen on validation for this precision
    validation_fraction: float = 0.2  # time-ordered: train | validation | test
    test_fraction: float = 0.3
    threshold_folds: int = 4  # forward-chaining folds over train+validation for the threshold
    per_type_thresholds: bool = True  # one threshold per equipment type (global for types with few failures)
    min_failures_per_type: int = 2


@dataclass(frozen=True)
class PdMModelConfig:
    """The PdM classifier: registry name and XGBoost parameters."""

    name: str = "pdm"
    params: XGBParams = field(default_factory=lambda: XGBParams(n_estimators=300, max_depth=4))
    baseline_rules: tuple[BaselineRule, ...] = (
        BaselineRule("vibration_mean_mm_s__rel_base", "above"),
        BaselineRule("feed_flow_dev_mean_ml_min__rel_base", "below"),
    )


@dataclass(frozen=True)
class PdMConfig:
    """A PdM config file (``config/ml/pdm.yaml``): features, model, evaluation, verification."""

    features: EquipmentFeatureConfig = field(default_factory=EquipmentFeatureConfig)
    model: PdMModelConfig = field(default_factory=PdMModelConfig)
    evaluation: PdMEvaluationConfig = field(default_factory=PdMEvaluationConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)


# --------------------------------------------------------------------------- YAML
def _build(cls, data: Any):
    """Build a (nested, frozen) dataclass from plain YAML data; lists become tuples."""
    if data is None:
        return cls()
    if not is_dataclass(cls):
        return data
    kwargs: dict[str, Any] = {}
    hints = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(hints)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    for name, value in data.items():
        f = hints[name]
        default = f.default_factory() if f.default_factory is not MISSING else f.default  # type: ignore[misc]
        kwargs[name] = _coerce(f.type, default, value)
        if name in ("name", "name_prefix"):  # names end up in lake paths: plain identifiers only
            check_identifier(kwargs[name], f"{cls.__name__}.{name}")
    return cls(**kwargs)


def _coerce(type_hint: Any, default: Any, value: Any):
    if is_dataclass(default) and isinstance(value, dict):
        return _build(type(default), value)
    if isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, dict):
                cls = DerivedSignal if "expr" in item else BaselineRule
                items.append(cls(**item))
            else:
                items.append(item)
        return tuple(items)
    return value


def load_softsensor_config(path: str | Path | None = None) -> SoftSensorConfig:
    """Load a soft-sensor config (default ``config/ml/softsensor.yaml``).

    Parameters
    ----------
    path
        YAML file; ``None`` for the project default.

    Returns
    -------
    SoftSensorConfig
    """
    path = Path(path) if path else DEFAULT_SOFTSENSOR_CONFIG
    with open(path) as fh:
        return _build(SoftSensorConfig, yaml.safe_load(fh) or {})


def load_pdm_config(path: str | Path | None = None) -> PdMConfig:
    """Load a PdM config (default ``config/ml/pdm.yaml``).

    Parameters
    ----------
    path
        YAML file; ``None`` for the project default.

    Returns
    -------
    PdMConfig
    """
    path = Path(path) if path else DEFAULT_PDM_CONFIG
    with open(path) as fh:
        return _build(PdMConfig, yaml.safe_load(fh) or {})


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass (nested) as plain dicts/lists, e.g. to store it with a model."""
    return asdict(cfg)
