"""Validation reports of the models (HTML + PDF in ``reports/models/<name>/v<version>.*``): one asset
per model (``reports/models/<name>``, after its promotion gate), reporting its champion and its
version awaiting approval — what a QA reviewer signs (:mod:`ml.validation_report`). A gate that
leaves no champion blocks its report asset; the gate check itself writes the report of a version
awaiting approval (``assets/models``). Model names come from the soft-sensor config: :func:`build_defs`."""

import dagster as dg

from assets.models import PDM_NAME, harvest_names, titer_name
from assets.resources import LakeResource
from assets.support import js
from ml.config import SoftSensorConfig, load_softsensor_config


def _report_asset(name: str):
    @dg.asset(
        key=["reports", "models", name],
        group_name="models",
        kinds={"mlflow", "pdf"},
        deps=[dg.AssetKey(["models", name])],
        description=f"Validation report (HTML + PDF) of the {name} champion and of its version awaiting approval: "
        "lineage, batch-grouped CV vs baselines, residuals, intervals, domain, drift, gate decision, approvals.",
    )
    def model_validation_report(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        from ml.registry import ModelRegistry
        from ml.validation_report import write_model_report

        lk = lake.get_lake()
        reg = ModelRegistry(lk)
        written = []
        for rec in [r for r in (reg.champion(name), reg.latest(name, "awaiting_approval")) if r is not None]:
            files = write_model_report(lk, name, rec.version)
            context.log.info(f"validation report of {rec.model_uri} ({rec.status}): {files['pdf']}")
            written.append({"model_uri": rec.model_uri, "status": rec.status, **files})
        lines = ["| model | status | PDF |", "|---|---|---|"] + [
            f"| {w['model_uri']} | {w['status']} | {w['pdf']} |" for w in written
        ]
        return dg.MaterializeResult(
            metadata={
                "n_reports": len(written),
                "reports": js(written),
                "models": dg.MetadataValue.md("\n".join(lines)),
                "mlflow_tracking_uri": reg.tracking_uri,
            }
        )

    return model_validation_report


def build_defs(softsensor: SoftSensorConfig | None = None) -> dg.Definitions:
    """A report asset per model named in ``softsensor`` and PdM."""
    cfg = softsensor or load_softsensor_config()
    names = [titer_name(cfg), *harvest_names(cfg).values(), PDM_NAME]
    return dg.Definitions(assets=[_report_asset(n) for n in names])
