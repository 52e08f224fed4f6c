"""Wiring only: assets, checks, jobs, sensors and resources of one code location, built from
explicit :class:`~orchestration.settings.Settings` (nothing is read from the environment here)."""

from __future__ import annotations

import dagster as dg

from assets import features, golden, ingest, landing, models, reports, scoring, transform
from assets import twin as twin_assets
from assets.transform.dbt_models import dbt_cli_resource
from ml.config import load_softsensor_config
from orchestration.settings import Settings

FULL_JOB = "full_pipeline"
PLANT_JOB = "plant_pipeline"
# Groups trained on the twin's defaults (targets, CQA specs, equipment fleet). A plant's own
# data goes through landing → bronze → dbt → gold → features, then `lakehouse train` with the
# plant's config: its target and signals are the plant's. The batch reports read those models'
# scores, so they come with them.
TWIN_TRAINED_GROUPS = ("models", "scoring", "golden_batch", "twin", "reports")


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    """The whole code location for one lake, one site and one engine (default: :class:`Settings`()).

    Prepares the dbt manifest on first use (``dbt parse`` only when it is missing or stale) and
    reads the soft-sensor config for the model asset names; nothing else is loaded.
    """
    settings = settings or Settings()
    full_pipeline = dg.define_asset_job(
        FULL_JOB,
        selection=dg.AssetSelection.all(),
        description="Landing → bronze → dbt model → gold → features → models → scores, golden "
        "batch and twin experiments, in one run (daily partitions handed over as one range).",
    )
    plant_pipeline = dg.define_asset_job(
        PLANT_JOB,
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups(*TWIN_TRAINED_GROUPS),
        description="A plant's own data: landing → bronze → dbt model → gold → features "
        "(models are trained with the plant's config: `lakehouse train`).",
    )
    softsensor = load_softsensor_config()
    return dg.Definitions.merge(
        landing.defs,
        # the historian's daily partitions start where the site's data starts and, for the
        # simulated site, end where its data ends (a plant's run on to today)
        ingest.build_ingest_defs(
            historian_start_date=settings.site.start_date, historian_end_date=settings.partition_end_exclusive()
        ),
        transform.build_defs(),
        features.defs,
        models.build_defs(softsensor),
        scoring.build_defs(softsensor),
        golden.defs,
        twin_assets.defs,
        reports.defs,
        dg.Definitions(
            jobs=[full_pipeline, plant_pipeline],
            resources={
                "lake": settings.lake,
                "site": settings.site,
                "dbt": dbt_cli_resource(),
                "spark": settings.spark,
            },
        ),
    )
