"""Model assets: train XGBoost models, register them as candidates, and gate promotion.

Each model asset trains on the current feature table, writes ``models/<name>/<version>-<token>.ubj``
and a ``registry/models`` row (status ``candidate``). Its blocking ``promotion_gate`` check
promotes the candidate to champion only if it beats the champion (when there is one) and the
baseline on the same held-out set, and appends the decision to ``registry/promotions``. A
rejected candidate is the gate doing its job, not a broken run: the check fails with severity
WARN and the reason with its figures (e.g. "PR-AUC 0.376 vs baseline 0.603"), the step and the
run succeed, and scoring keeps the champion in service — or, with none, scores nothing and says
so (``assets/scoring``).

The model names come from the soft-sensor config (``config/ml/softsensor.yaml``), so the assets
are made by :func:`build_defs` (nothing is read at import).
"""

import dagster as dg

from assets.resources import LakeResource, SparkResource
from assets.support import MLConfig, by_day_markdown, js, num, skipped
from ml.config import SoftSensorConfig, load_softsensor_config

SOFTSENSOR_KEY = dg.AssetKey(["features", "softsensor"])
EQUIPMENT_KEY = dg.AssetKey(["features", "equipment_health"])
PDM_NAME = "pdm"


def titer_name(cfg: SoftSensorConfig) -> str:
    """Registry/asset name of the titer soft sensor of a soft-sensor config."""
    return cfg.titer.name


def harvest_names(cfg: SoftSensorConfig) -> dict[str, str]:
    """Harvest CQA target -> registry/asset name, of a soft-sensor config."""
    return {t: f"{cfg.harvest.name_prefix}{t}" for t in cfg.harvest.targets}


def _regression_metadata(model, version: int, with_trajectories: bool, lake: LakeResource) -> dict:
    """Metadata of a trained regression model (:class:`ml.train.TrainedModel`): metrics and plots
    (axes in the unit the lab reports the target in)."""
    from ml import plots
    from ml.pipeline import analyte_unit

    unit = analyte_unit(lake.get_lake(), model.meta["target"])

    m = model.metrics
    md = {
        "model_version": version,
        "test_rmse": num(m["test"]["rmse"]),
        "test_mae": num(m["test"]["mae"]),
        "test_r2": num(m["test"]["r2"]),
        "baseline_rmse": num(m.get("baseline_test", {}).get("rmse")),
        "mean_trajectory_rmse": num(m.get("baseline_mean_trajectory_test", {}).get("rmse")),
        "selected_estimator": m.get("selection", {}).get("chosen", "xgboost"),
        "n_fault_batches": m.get("n_fault_batches", 0),
        "improvement_vs_baseline": num(m.get("improvement_vs_baseline")),
        "cv_rmse": num(m["cv"]["rmse"]),
        "interval_coverage_test": num(m["interval"]["coverage_test"]),
        "interval_alpha": m["interval"]["alpha"],
        "n_train_batches": m["n_train_batches"],
        "n_test_batches": m["n_test_batches"],
        "metrics": js(m),
        "top_signals": dg.MetadataValue.md(plots.top_signals(m.get("top_signals", {}))),
        "predicted_vs_actual": dg.MetadataValue.md(
            plots.predicted_vs_actual(model.holdout, model.meta["target"], unit)
        ),
    }
    if "test_by_culture_day" in m:
        md["error_by_culture_day"] = dg.MetadataValue.md(
            by_day_markdown(m["test_by_culture_day"], m.get("baseline_test_by_culture_day"))
        )
    if with_trajectories:
        md["titer_trajectories"] = dg.MetadataValue.md(
            plots.titer_trajectories(model.trajectories, model.holdout, unit=unit)
        )
    return md


METRIC_LABELS = {"rmse": "RMSE", "pr_auc": "PR-AUC", "mae": "MAE"}


def gate_reason(d: dict) -> str:
    """One line with the gate's figures: ``"PR-AUC 0.376 vs baseline 0.603: does not beat the baseline"``."""

    def f(v) -> str:
        return "n/a" if v is None else f"{v:.3g}"

    metric = METRIC_LABELS.get(str(d.get("metric")), str(d.get("metric") or "metric"))
    figures = f"{metric} {f(d.get('candidate_value'))} vs baseline {f(d.get('baseline_value'))}"
    if d.get("champion_value") is not None:
        figures += f", champion {f(d.get('champion_value'))}"
    return f"{figures}: {d.get('reason', '')}" if d.get("metric") else str(d.get("reason", ""))


def _gate_result(lake: LakeResource, name: str) -> dg.AssetCheckResult:
    from ml import pipeline

    d = pipeline.gate(lake.get_lake(), name)
    if d.get("status") == "awaiting_approval":  # what the signer reviews (the report asset waits for a champion)
        from ml.validation_report import write_model_report

        d["validation_report"] = write_model_report(lake.get_lake(), name, d["candidate_version"])
    promoted = bool(d.get("promoted"))
    has_champion = bool(d.get("has_champion_after"))
    # a rejection never fails the step (WARN): the run succeeds and the check shows the reason
    return dg.AssetCheckResult(
        passed=promoted,
        severity=dg.AssetCheckSeverity.WARN,
        description=gate_reason(d),
        metadata={
            "decision": d.get("decision", ""),
            "reason": gate_reason(d),
            "evidence": js(d),
            "champion_in_service": has_champion,
            "status": d.get("status", ""),  # champion | awaiting_approval | candidate (rejected)
        },
    )


# ----------------------------------------------------------------------------- titer
def _titer_assets(name: str):
    @dg.asset(
        key=["models", name],
        group_name="models",
        kinds={"xgboost"},
        deps=[SOFTSENSOR_KEY],
        output_required=False,  # skipped (with the reason) when the plant has too little data
        description="Titer soft sensor (XGBoost) at any culture time, validated by batch (GroupKFold) and "
        "forward in time, with split-conformal intervals; registered as a candidate.",
    )
    def model_titer(context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig, spark: SparkResource):
        from ml import pipeline
        from ml.train import InsufficientData

        cfg = config.softsensor(lake.get_plant())
        # engine "spark": boosters trained with xgboost.spark (same rows/features/split/params), same UBJ + registry
        try:
            ((model, rec),) = pipeline.train_softsensor_models(
                lake.get_lake(),
                cfg,
                targets=[cfg.titer.target],
                engine=spark.engine,
                spark=spark.session_or_none(),
                num_workers=spark.num_workers,
            ).values()
        except InsufficientData as exc:
            yield skipped(context, ["models", name], str(exc))
            return
        yield dg.MaterializeResult(
            metadata=_regression_metadata(model, rec.version, True, lake)
            | {"artifact": rec.artifact_uri, "training_data": js(rec.training_data), "engine": spark.engine}
        )

    @dg.asset_check(
        asset=["models", name],
        blocking=True,
        name="promotion_gate",
        description="Promote the candidate only if it beats the champion and the carry-forward baseline.",
    )
    def _titer_promotion_gate(lake: LakeResource) -> dg.AssetCheckResult:
        return _gate_result(lake, name)

    return model_titer, _titer_promotion_gate


# ----------------------------------------------------------------------------- harvest CQAs
def _harvest_assets(target: str, name: str):
    @dg.asset(
        key=["models", name],
        group_name="models",
        kinds={"xgboost"},
        deps=[SOFTSENSOR_KEY],
        output_required=False,
        description=f"Harvest {target} from data available by culture day D (config), XGBoost; baseline: "
        "mean of training.",
    )
    def _model(context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig):
        from ml import pipeline
        from ml.train import InsufficientData

        cfg = config.softsensor(lake.get_plant())
        try:
            ((model, rec),) = pipeline.train_softsensor_models(lake.get_lake(), cfg, targets=[target]).values()
        except InsufficientData as exc:
            yield skipped(context, ["models", name], str(exc))
            return
        yield dg.MaterializeResult(
            metadata=_regression_metadata(model, rec.version, False, lake)
            | {"artifact": rec.artifact_uri, "feature_day": cfg.harvest.day}
        )

    @dg.asset_check(
        asset=["models", name],
        blocking=True,
        name="promotion_gate",
        description="Promote only if it beats the champion and the mean-of-training baseline.",
    )
    def _gate(lake: LakeResource) -> dg.AssetCheckResult:
        return _gate_result(lake, name)

    return _model, _gate


# ----------------------------------------------------------------------------- PdM
@dg.asset(
    key=["models", PDM_NAME],
    group_name="models",
    kinds={"xgboost"},
    deps=[EQUIPMENT_KEY, dg.AssetKey(["gold", "fct_work_orders"])],
    output_required=False,  # skipped with the reason: PdM off, no CMMS data, too few failures or days
    description="Predictive maintenance: P(failure within H days) per equipment-day; time-ordered "
    "train/validation/test, scale_pos_weight, alert threshold chosen on validation.",
)
def model_pdm(context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig):
    import numpy as np

    from ml import pipeline, plots
    from ml.train import InsufficientData

    cfg = config.pdm(lake.get_plant())
    try:
        model, rec = pipeline.train_pdm_model(lake.get_lake(), cfg)
    except InsufficientData as exc:
        yield skipped(context, ["models", PDM_NAME], str(exc))
        return
    m = model.metrics
    h = model.holdout
    y = h["label__failure_within_h"].to_numpy()
    ev = m["test"]["events"]
    yield dg.MaterializeResult(
        metadata={
            "model_version": rec.version,
            "test_pr_auc": num(m["test"]["pr_auc"]),
            "baseline_pr_auc": num(m["baseline_test"]["pr_auc"]),
            "threshold": num(m["threshold"]),
            f"recall_{cfg.evaluation.lead_days}d": num(ev.get(f"recall_{cfg.evaluation.lead_days}d")),
            "alert_precision": num(ev.get("precision")),
            "median_lead_days": num(ev.get("median_lead_days")),
            "n_test_failures": ev.get("n_failures", 0),
            "metrics": js(m),
            "pr_curve": dg.MetadataValue.md(
                plots.pr_curve_plot(y, h["probability"].to_numpy(), np.asarray(h["baseline_score"].to_numpy()))
            ),
            "top_signals": dg.MetadataValue.md(plots.top_signals(m.get("top_signals", {}))),
            "artifact": rec.artifact_uri,
            "training_data": js(rec.training_data),
        }
    )


@dg.asset_check(
    asset=["models", PDM_NAME],
    blocking=True,
    name="promotion_gate",
    description="Promote only if PR-AUC beats the champion and the threshold-rule baseline.",
)
def pdm_promotion_gate(lake: LakeResource) -> dg.AssetCheckResult:
    return _gate_result(lake, PDM_NAME)


def build_defs(softsensor: SoftSensorConfig | None = None) -> dg.Definitions:
    """Model assets and their promotion gates, named after ``softsensor`` (default: the
    project's ``config/ml/softsensor.yaml``)."""
    cfg = softsensor or load_softsensor_config()
    titer, titer_gate = _titer_assets(titer_name(cfg))
    harvest = [_harvest_assets(t, n) for t, n in harvest_names(cfg).items()]
    return dg.Definitions(
        assets=[titer, model_pdm, *[a for a, _ in harvest]],
        asset_checks=[titer_gate, pdm_promotion_gate, *[c for _, c in harvest]],
    )
