"""dg.materialize of the feature, model and scoring assets (with their checks) on a small lake."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from assets.resources import LakeResource, SparkResource
from ml import pipeline
from ml.registry import ModelRegistry


def _defs():
    import assets.features
    import assets.models
    import assets.scoring

    return dg.Definitions.merge(assets.features.defs, assets.models.build_defs(), assets.scoring.build_defs())


@pytest.fixture
def ml_env(monkeypatch, config_paths):
    monkeypatch.setenv("LAKEHOUSE_ML_SOFTSENSOR_CONFIG", str(config_paths[0]))
    monkeypatch.setenv("LAKEHOUSE_ML_PDM_CONFIG", str(config_paths[1]))


def _resource(lake) -> LakeResource:
    s3 = lake.s3
    return LakeResource(
        root_uri=lake.root,
        s3_endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        aws_region=s3.region,
    )


@pytest.mark.parametrize("lake_kind", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_materialize_features_models_scores(request, lake_kind, site, gold_writer, ml_env, ss_cfg):
    lake = request.getfixturevalue(f"lake_{lake_kind}")
    gold_writer(lake, site)
    defs = _defs()
    asset_defs = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(
        [*asset_defs, *defs.asset_checks],
        resources={"lake": _resource(lake), "spark": SparkResource()},
        raise_on_error=False,
    )
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    checks = {
        e.asset_check_key.name + "@" + e.asset_check_key.asset_key.to_user_string(): e
        for e in result.get_asset_check_evaluations()
    }
    # every step ran and none failed: a rejected candidate is a WARN check result, not a failure
    failed_steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed_steps == [] and result.success
    for key in (
        "features/softsensor",
        "features/equipment_health",
        "models/titer_softsensor",
        "models/pdm",
        "models/harvest_g0f",
        "models/harvest_hmw",
        "models/harvest_afucosylation",
        "scores/titer",
    ):
        assert key in done, key
    assert checks["softsensor_features_schema@features/softsensor"].passed
    assert checks["equipment_features_schema@features/equipment_health"].passed
    assert checks["promotion_gate@models/titer_softsensor"].passed
    assert checks["traceable_to_registry@scores/titer"].passed
    # a rejection is WARN with its figures, never a failed step
    for model in ("harvest_g0f", "harvest_hmw", "harvest_afucosylation", "pdm"):
        ev = checks[f"promotion_gate@models/{model}"]
        assert " vs baseline " in ev.metadata["reason"].value
        assert ev.passed or ev.severity == dg.AssetCheckSeverity.WARN
    # a score asset with no champion among the run config's models scores nothing and says so
    reg = ModelRegistry(lake)
    harvest = [f"{ss_cfg.harvest.name_prefix}{t}" for t in ss_cfg.harvest.targets]
    for models, score in ((harvest, "harvest_cqa"), (["pdm"], "pdm")):
        assert f"scores/{score}" in done
        md = result.asset_materializations_for_node(f"scores__{score}")[0].metadata
        champions = [m for m in models if reg.champion(m) is not None]
        assert ("scored" in md and md["scored"].value is False) == (not champions)
        assert lake.delta_exists(lake.uri("scores", score)) == bool(champions)
    reg = ModelRegistry(lake)
    assert reg.champion("titer_softsensor") is not None
    scores = pipeline.read_table(lake, "scores", "titer").df
    assert scores["model_version"].unique().to_list() == [reg.champion("titer_softsensor").version]
    assert {"titer_softsensor", "pdm", "harvest_g0f", "harvest_hmw"} <= set(reg.promotions()["model_name"].to_list())
    md = result.asset_materializations_for_node("models__titer_softsensor")[0].metadata
    assert md["titer_trajectories"].value.startswith("![titer trajectories](data:image/png;base64,")
    assert pl.from_arrow(lake.read_delta(lake.uri("registry", "models"))).height >= 4
