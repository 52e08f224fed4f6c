"""Batch-scoring assets: champion predictions to ``scores/<name>`` with model name + version and
the scored feature-table version on every row, applicability-domain flags and per-signal
contributions; verification checks against fresh assay results and input drift (PSI).

With no champion in service (the first candidate was rejected by its promotion gate) a score
asset scores nothing, leaves ``scores/<name>`` as it was and says so in its metadata
(``scored: false`` and the reason); its checks then report that nothing was scored (WARN).

The scores depend on model assets named in the soft-sensor config: :func:`build_defs`."""

import dagster as dg

from assets.models import PDM_NAME, harvest_names, titer_name
from assets.resources import LakeResource
from assets.support import MLConfig, js, num
from ml.config import SoftSensorConfig, load_softsensor_config

SOFTSENSOR_KEY = dg.AssetKey(["features", "softsensor"])
EQUIPMENT_KEY = dg.AssetKey(["features", "equipment_health"])


def _pipeline():
    """:mod:`ml.pipeline`, imported when an asset runs (not when the code location loads)."""
    from ml import pipeline

    return pipeline


def _no_champion(lake: LakeResource, names: list[str]) -> dg.MaterializeResult | None:
    """The materialization of a score asset none of whose ``names`` has a champion (else None)."""
    from ml.registry import ModelRegistry

    reg = ModelRegistry(lake.get_lake())
    if any(reg.champion(n) is not None for n in names):
        return None
    return dg.MaterializeResult(
        metadata={
            "scored": False,
            "reason": f"no champion in service for {', '.join(names)} (promotion gate rejected the candidate): "
            "nothing scored, the table is unchanged",
        }
    )


def _score_metadata(df, version: int) -> dict:
    versions = df.select("model_name", "model_version").unique().to_dicts() if df.height else []
    return {
        "delta_version": version,
        "dagster/row_count": df.height,
        "models": js(versions),
        "out_of_domain_rows": int(df["out_of_domain"].sum()) if df.height else 0,
        "out_of_domain_pct": num(100 * df["out_of_domain"].mean()) if df.height else num(0.0),
    }


def _score_assets(titer: str, harvest: dict[str, str]):
    @dg.asset(
        key=["scores", "titer"],
        group_name="scoring",
        kinds={"xgboost", "delta"},
        deps=[dg.AssetKey(["models", titer]), SOFTSENSOR_KEY],
        description="Titer soft-sensor trajectory for every batch step (and at every sample time) by the champion.",
    )
    def scores_titer(context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig) -> dg.MaterializeResult:
        # the run's config names the models (it may differ from the one the assets were built with)
        if (skipped := _no_champion(lake, [titer_name(config.softsensor())])) is not None:
            return skipped
        df, version = _pipeline().score_titer_table(lake.get_lake(), config.softsensor(), explain=config.explain)
        return dg.MaterializeResult(metadata=_score_metadata(df, version))

    @dg.asset(
        key=["scores", "harvest_cqa"],
        group_name="scoring",
        kinds={"xgboost", "delta"},
        deps=[*[dg.AssetKey(["models", n]) for n in harvest.values()], SOFTSENSOR_KEY],
        description="Harvest CQA predictions per batch from data available by day D, by each champion.",
    )
    def scores_harvest_cqa(
        context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig
    ) -> dg.MaterializeResult:
        if (skipped := _no_champion(lake, list(harvest_names(config.softsensor()).values()))) is not None:
            return skipped
        df, version = _pipeline().score_harvest_table(lake.get_lake(), config.softsensor(), explain=config.explain)
        return dg.MaterializeResult(metadata=_score_metadata(df, version))

    return scores_titer, scores_harvest_cqa


@dg.asset(
    key=["scores", "pdm"],
    group_name="scoring",
    kinds={"xgboost", "delta"},
    deps=[dg.AssetKey(["models", PDM_NAME]), EQUIPMENT_KEY],
    description="Probability of failure within H days per equipment-day and the alert flag, by the champion.",
)
def scores_pdm(context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig) -> dg.MaterializeResult:
    import polars as pl

    if (skipped := _no_champion(lake, [config.pdm().model.name])) is not None:
        return skipped
    df, version = _pipeline().score_pdm_table(lake.get_lake(), config.pdm(), explain=config.explain)
    md = _score_metadata(df, version)
    latest = df.filter(pl.col("date") == df["date"].max()) if df.height else df
    md["alerts_latest_day"] = js(latest.filter(pl.col("alert"))["equipment_id"].to_list() if latest.height else [])
    return dg.MaterializeResult(metadata=md)


def _nothing_scored(lake: LakeResource, name: str) -> dg.AssetCheckResult | None:
    """A WARN failure when ``scores/<name>`` does not exist (no champion has ever scored), else None."""
    lk = lake.get_lake()
    if lk.delta_exists(lk.uri("scores", name)):
        return None
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"nothing to check: scores/{name} does not exist (no champion in service)",
        metadata={"evaluated": False},
    )


def _traceable(lake: LakeResource, name: str) -> dg.AssetCheckResult:
    import polars as pl

    from ml.registry import ModelRegistry

    if (none := _nothing_scored(lake, name)) is not None:
        return none
    lk = lake.get_lake()
    df = _pipeline().read_table(lk, "scores", name, columns=["model_name", "model_version"]).df
    pairs = df.unique()
    reg = ModelRegistry(lk).table().select("model_name", pl.col("version").alias("model_version"))
    missing = pairs.join(reg, on=["model_name", "model_version"], how="anti")
    nulls = df.filter(pl.col("model_name").is_null() | pl.col("model_version").is_null()).height
    return dg.AssetCheckResult(
        passed=missing.height == 0 and nulls == 0,
        metadata={"unregistered": js(missing.to_dicts()), "rows_without_model": nulls},
    )


def _verification(result: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=bool(result["passed"]),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "failures": js(result.get("failures", [])),
            "evidence": js(result),
            "rolling_rmse": num(result.get("rolling_rmse")),
            "psi_max": num(result.get("psi_max")),
            # batch-aware drift: PSI must beat what normal batches give
            "psi_null_q_max": num(result.get("psi_null_q_max")),
            "psi_drifted": js(result.get("psi_drifted", [])),
            "psi_rule": result.get("psi_rule") or "n/a",
        },
    )


@dg.asset_check(
    asset=["scores", "titer"],
    name="traceable_to_registry",
    description="Every score row names a registered model version.",
)
def titer_traceable(lake: LakeResource) -> dg.AssetCheckResult:
    return _traceable(lake, "titer")


@dg.asset_check(
    asset=["scores", "titer"],
    name="verification",
    description="Rolling error of the champion's predictions vs arrived titer results, and PSI drift.",
)
def titer_verification(lake: LakeResource, config: MLConfig) -> dg.AssetCheckResult:
    if (none := _nothing_scored(lake, "titer")) is not None:
        return none
    return _verification(_pipeline().verify_titer(lake.get_lake(), config.softsensor()))


@dg.asset_check(asset=["scores", "harvest_cqa"], name="traceable_to_registry")
def harvest_traceable(lake: LakeResource) -> dg.AssetCheckResult:
    return _traceable(lake, "harvest_cqa")


@dg.asset_check(
    asset=["scores", "harvest_cqa"],
    name="verification",
    description="Rolling error vs arrived harvest assays, and PSI drift of the day-D features.",
)
def harvest_verification(lake: LakeResource, config: MLConfig) -> dg.AssetCheckResult:
    if (none := _nothing_scored(lake, "harvest_cqa")) is not None:
        return none
    return _verification(_pipeline().verify_harvest(lake.get_lake(), config.softsensor()))


@dg.asset_check(asset=["scores", "pdm"], name="traceable_to_registry")
def pdm_traceable(lake: LakeResource) -> dg.AssetCheckResult:
    return _traceable(lake, "pdm")


@dg.asset_check(asset=["scores", "pdm"], name="verification", description="PSI drift of the last 30 days' inputs.")
def pdm_verification(lake: LakeResource, config: MLConfig) -> dg.AssetCheckResult:
    if (none := _nothing_scored(lake, "pdm")) is not None:
        return none
    return _verification(_pipeline().verify_pdm(lake.get_lake(), config.pdm()))


def build_defs(softsensor: SoftSensorConfig | None = None) -> dg.Definitions:
    """Score assets and their checks, downstream of the models named in ``softsensor``."""
    cfg = softsensor or load_softsensor_config()
    scores_titer, scores_harvest_cqa = _score_assets(titer_name(cfg), harvest_names(cfg))
    return dg.Definitions(
        assets=[scores_titer, scores_harvest_cqa, scores_pdm],
        asset_checks=[
            titer_traceable,
            titer_verification,
            harvest_traceable,
            harvest_verification,
            pdm_traceable,
            pdm_verification,
        ],
    )
