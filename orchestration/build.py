"""Wiring only: assets, checks, jobs, sensors and resources of one code location, built from
explicit :class:`~orchestration.settings.Settings` (nothing is read from the environment here)."""

from __future__ import annotations

import dagster as dg

from assets import features, golden, ingest, landing, live, model_reports, models, reports, scoring, transform
from assets import twin as twin_assets
from assets.transform.dbt_models import dbt_cli_resource
from ml.plant import softsensor_config
from orchestration.settings import Settings

FULL_JOB = "full_pipeline"
PLANT_JOB = "plant_pipeline"
# Groups trained on the twin's defaults (targets, CQA specs, equipment fleet). A plant's own
# data without a plant bundle goes through landing → bronze → dbt → gold → features, then
# `lakehouse train` with the plant's config. With a bundle (`lakehouse run --plant`,
# LakeResource.plant) the models, scoring and golden-batch groups run too, on the bundle's
# softsensor / golden / pdm yamls; only the twin's own experiments stay out.
TWIN_TRAINED_GROUPS = ("models", "scoring", "golden_batch", "twin", "reports")  # reports read those scores
TWIN_ONLY_GROUPS = ("twin",)


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """The whole code location for one lake, one site and one engine (default: :class:`Settings`()).

    Prepares the dbt manifest on first use (``dbt parse`` only when it is missing or stale) and
    reads the soft-sensor config for the model asset names; nothing else is loaded.
    """
    settings = settings or Settings()
    full_pipeline = dg.define_asset_job(
        FULL_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups(live.GROUP),
        description="Landing → bronze → dbt model → gold → features → models → scores, golden "
        "batch and twin experiments, in one run (daily partitions handed over as one range).",
    )
    with_bundle = settings.lake.plant is not None
    plant_pipeline = dg.define_asset_job(
        PLANT_JOB,
        selection=dg.AssetSelection.all()
        - dg.AssetSelection.groups(*(TWIN_ONLY_GROUPS if with_bundle else TWIN_TRAINED_GROUPS), live.GROUP),
        description="A plant's own data: landing → bronze → dbt model → gold → features; with a plant "
        "bundle also models, promotion gates, scores, golden batch and MSPC on its yamls "
        "(without one: `lakehouse train` with the plant's config).",
    )
    # the model asset names come from the plant's soft-sensor config (default plant: config/ml/softsensor.yaml)
    softsensor = softsensor_config(settings.lake.get_plant())
    return dg.Definitions.merge(
        landing.defs,
        # the historian's daily partitions start where the site's data starts
        # the historian's daily partitions end where the simulated site's data ends
        ingest.build_ingest_defs(
            historian_start_date=settings.site.start_date, historian_end_date=settings.partition_end_exclusive()
        ),
        transform.build_defs(),
        features.defs,
        models.build_defs(softsensor),
        scoring.build_defs(softsensor),
        model_reports.build_defs(softsensor),
        golden.defs,
        twin_assets.defs,
        reports.defs,
        live.defs,
        dg.Definitions(
            jobs=[full_pipeline, plant_pipeline],
            resources={
                "lake": settings.lake,
                "site": settings.site,
                "dbt": dbt_cli_resource(),
                "spark": settings.spark,
                "alerts": settings.alerts,
            },
        ),
    )
