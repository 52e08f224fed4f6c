"""Configuration for the ML layer, loaded from YAML (``config/ml/*.yaml``).

Everything plant-specific — which online signals exist, which assay is the target, which
windows and horizons to use — lives in these dataclasses, so a plant's own historian export
(mapped to canonical parameters by the ingestion tag map) trains with no code change.

The same config objects are the contract with the Spark engine: every feature function in
:mod:`ml.features` is a pure function of (DataFrame, config).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Protocol

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
    """Soft-sensor feature definition (see ``docs/ml.md`` for the exact semantics).

    The signal lists name catalog signals (columns of ``fct_process_readings``). A plant's
    ``softsensor.yaml`` may leave them out: :func:`features_from_catalog` fills every list the
    YAML does not give from the plant's signal catalog, by signal kind.
    """

    signals: tuple[str, ...] = ()  # value, rolling statistics, rate of change
    windows_minutes: tuple[int, ...] = (60, 360)
    rolling_stats: tuple[str, ...] = ("mean", "std")
    rate_of_change: bool = True
    derived: tuple[DerivedSignal, ...] = ()
    integrals: tuple[str, ...] = ()  # flows and rates: time integral since inoculation
    totalisers: tuple[str, ...] = ()  # counters: amount added since inoculation
    states: tuple[str, ...] = ()  # state codes: time in state, time spent in each code
    state_codes: dict[str, tuple[float, ...]] = field(default_factory=dict)  # state signal -> codes
    setpoints: tuple[str, ...] = ()  # recipe setpoints of dim_batches
    phases: tuple[str, ...] = ()  # MES phases (one-hot)
    maturity_from: str | None = None  # dim_batches column: planned culture duration [h]
    step_minutes: int = 60
    label_analytes: tuple[str, ...] = ("titer",)
    baseline_analytes: tuple[str, ...] = ("titer",)
    asof_tolerance_minutes: int = 120

    @property
    def all_signals(self) -> tuple[str, ...]:
        """Raw + derived signals: the ones that get value/rolling/rate-of-change features."""
        return tuple(self.signals) + tuple(d.name for d in self.derived)


class SignalLike(Protocol):
    """What the ML layer needs of a catalog signal (``lakehouse.catalog.Signal`` duck-typed):
    its column ``name`` in ``fct_process_readings``, its ``kind`` (``process_value | setpoint |
    flow | totaliser | rate | state``) and ``unit``; ``valid_range`` is optional."""

    name: str
    kind: str
    unit: str


#: catalog kind -> the feature lists a signal of that kind joins by default
KIND_FEATURES: dict[str, tuple[str, ...]] = {
    "process_value": ("signals",),
    "setpoint": ("signals",),
    "flow": ("signals", "integrals"),
    "rate": ("signals", "integrals"),
    "totaliser": ("signals", "totalisers"),
    "state": ("states",),
}
MAX_DEFAULT_STATE_CODES = 16
CATALOG_LISTS = ("signals", "integrals", "totalisers", "states", "state_codes")


def catalog_signals(catalog: Any) -> list[SignalLike]:
    """The signals of a catalog: a ``SignalCatalog`` (``.signals`` or iterable) or a list."""
    sigs = getattr(catalog, "signals", catalog)
    if isinstance(sigs, dict):
        sigs = sigs.values()
    return list(sigs)


def features_from_catalog(catalog: Any, exclude: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Default feature lists for a plant, generated from its signal catalog by kind.

    Parameters
    ----------
    catalog
        The plant's signals (objects with ``name``, ``kind``, optional ``valid_range``).
    exclude
        Signal names to leave out (e.g. a signal known to be unreliable).

    Returns
    -------
    dict
        ``signals`` (process values, setpoints, flows, rates, totalisers: value, rolling
        statistics, rate of change), ``integrals`` (flows and rates: cumulative amount since
        inoculation — the mass-balance features), ``totalisers`` (amount since inoculation),
        ``states`` and ``state_codes`` (state signals: time in the current state, hours spent in
        each integer code of the signal's ``valid_range`` when it spans at most
        :data:`MAX_DEFAULT_STATE_CODES` codes).
    """
    out: dict[str, Any] = {k: [] for k in CATALOG_LISTS if k != "state_codes"}
    codes: dict[str, tuple[float, ...]] = {}
    skip = set(exclude)
    for s in catalog_signals(catalog):
        if s.name in skip:
            continue
        kind = str(s.kind)
        if kind not in KIND_FEATURES:
            raise ValueError(f"signal {s.name!r}: unknown kind {kind!r} (one of {sorted(KIND_FEATURES)})")
        for lst in KIND_FEATURES[kind]:
            out[lst].append(s.name)
        rng = getattr(s, "valid_range", None)
        if kind == "state" and rng is not None and rng[0] is not None and rng[1] is not None:
            lo, hi = math.ceil(rng[0]), math.floor(rng[1])
            if 0 <= hi - lo < MAX_DEFAULT_STATE_CODES:
                codes[s.name] = tuple(float(c) for c in range(lo, hi + 1))
    return {**{k: tuple(v) for k, v in out.items()}, "state_codes": codes}


@dataclass(frozen=True)
class BatchConditionConfig:
    """How a plant's batch list and deviation records tell normal batches from fault batches.

    Attributes
    ----------
    normal_statuses
        ``dim_batches.status`` values of a normal batch (case-insensitive); empty: any status.
    exclude_recorded_deviations
        A batch with a recorded deviation is a fault batch.
    deviation_count_column
        ``dim_batches`` column counting recorded deviations (used when present).
    """

    normal_statuses: tuple[str, ...] = ()
    exclude_recorded_deviations: bool = True
    deviation_count_column: str | None = "n_deviation_work_orders"


CANDIDATES = ("xgboost", "ridge", "pls", "blend")


@dataclass(frozen=True)
class SelectionConfig:
    """Which estimators compete and their small hyper-parameter grids (``titer.selection``).

    Attributes
    ----------
    candidates
        Subset of ``xgboost, ridge, pls, blend`` (``blend`` needs ``xgboost`` and a linear one).
    ridge_alphas
        Ridge penalties tried (on standardised features).
    pls_components
        PLS component counts tried (capped at the number of features and rows - 1).
    blend_weights
        XGBoost weights tried for the blend.
    """

    candidates: tuple[str, ...] = CANDIDATES
    ridge_alphas: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
    pls_components: tuple[int, ...] = (2, 3, 4, 6, 8, 10, 12, 16, 20)
    blend_weights: tuple[float, ...] = (0.2, 0.35, 0.5, 0.65, 0.8)


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
    trajectory_bin_h: float = 4.0  # culture-age bin of the mean-trajectory baseline
    # known precision of the target assay (method validation); > 0: intervals for the TRUE value
    # (the residual variance net of the assay's), 0: intervals for the next assay result
    assay_sd_relative: float = 0.0
    assay_sd_absolute: float = 0.0


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
    # ... and above this quantile of its batch-resampled null PSI — a family-wise level over the
    # monitored features (Bonferroni: each feature at 1 - (1 - q) / m; ml.verification)
    psi_null_quantile: float = 0.99
    psi_null_draws: int = 2000  # bootstrap draws of whole training batches (the per-feature quantile is far out)
    psi_bins: int = 10
    psi_recent_batches: int = 10  # compare the latest N batches to the training distribution
    psi_features: tuple[str, ...] = ()  # empty: every signal's current-value feature


@dataclass(frozen=True)
class TiterModelConfig:
    """The online soft sensor of one assay target (the section keeps its historic name ``titer``;
    ``target`` is any analyte of ``label_analytes``)."""

    name: str = "titer_softsensor"
    target: str = "titer"
    min_culture_age_h: float = 0.0  # early-culture gate: the model predicts from this age on ...
    gate: str | None = None  # ... and where this SQL condition over feature columns holds
    params: XGBParams = field(default_factory=XGBParams)
    selection: SelectionConfig = field(default_factory=SelectionConfig)


@dataclass(frozen=True)
class HarvestModelConfig:
    """Harvest CQA models: targets, the culture day their features are taken at, name prefix."""

    targets: tuple[str, ...] = ()
    day: float = 7.0  # features from data available by culture day D
    name_prefix: str = "harvest_"
    params: XGBParams = field(default_factory=lambda: XGBParams(n_estimators=300, max_depth=3))
    selection: SelectionConfig = field(default_factory=lambda: SelectionConfig(candidates=("xgboost",)))


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
    batches: BatchConditionConfig = field(default_factory=BatchConditionConfig)


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
    """Equipment-health features (columns of ``gold/fct_equipment_health_daily``; the plant's
    ``pdm.yaml`` lists them — config/ml/pdm.yaml for the CHO twin site)."""

    signals: tuple[str, ...] = ()
    derived: tuple[DerivedSignal, ...] = ()  # row-wise SQL expressions, e.g. abs(do_offset_mean_pct)
    windows_days: tuple[int, ...] = (3, 7, 14)
    baseline_days: int = 30  # equipment's own baseline: rolling median over this many days,
    baseline_lag_days: int = 14  # ... lagged this many days
    equipment_types: tuple[str, ...] = ()
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
    min_failures: int = 3  # fewer failures (CMMS corrective work orders) in the data: skipped
    min_days: int = 60  # fewer days of equipment-health rows: skipped


@dataclass(frozen=True)
class PdMModelConfig:
    """The PdM classifier: registry name and XGBoost parameters."""

    name: str = "pdm"
    params: XGBParams = field(default_factory=lambda: XGBParams(n_estimators=300, max_depth=4))
    baseline_rules: tuple[BaselineRule, ...] = ()  # pdm.yaml (threshold rules on health features)


@dataclass(frozen=True)
class PdMConfig:
    """Predictive maintenance; ``enabled: false`` (a plant without CMMS data or equipment-health
    signals) skips it with that reason."""

    enabled: bool = True
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


def load_softsensor_config(path: str | Path | None = None, catalog: Any = None) -> SoftSensorConfig:
    """The soft-sensor configuration of a YAML file (default ``config/ml/softsensor.yaml``).

    Parameters
    ----------
    path
        YAML file (a plant bundle's ``softsensor.yaml``).
    catalog
        The plant's signal catalog (see :class:`SignalLike`). Every feature list of
        :data:`CATALOG_LISTS` the YAML's ``features`` section does not give is generated from
        it (:func:`features_from_catalog`, minus ``features.exclude``). Without a catalog the
        YAML's lists are used as they are.

    Returns
    -------
    SoftSensorConfig
    """
    path = Path(path) if path else DEFAULT_SOFTSENSOR_CONFIG
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    return softsensor_config_from_dict(data, catalog)


def softsensor_config_from_dict(data: dict, catalog: Any = None) -> SoftSensorConfig:
    """:func:`load_softsensor_config` on already parsed YAML data."""
    data = dict(data or {})
    feats = dict(data.get("features") or {})
    exclude = tuple(feats.pop("exclude", ()) or ())
    if catalog is not None:
        defaults = features_from_catalog(catalog, exclude)
        for key in CATALOG_LISTS:
            if key not in feats:
                feats[key] = defaults[key]
    elif exclude:
        raise ValueError("features.exclude needs the plant's signal catalog")
    if feats.get("state_codes"):
        feats["state_codes"] = {str(k): tuple(float(c) for c in v) for k, v in feats["state_codes"].items()}
    data["features"] = {k: list(v) if isinstance(v, tuple) else v for k, v in feats.items()}
    return _build(SoftSensorConfig, data)


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
