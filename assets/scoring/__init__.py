"""Batch-scoring assets: champion predictions to ``scores/<name>`` with model name + version and
the scored feature-table version on every row, applicability-domain flags and per-signal
contributions; verification checks against fresh assay results and input drift (PSI).

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
    """The materialization of a score asset none of whose ``names`` has a champion (the promotion
    gate rejected every candidate): nothing is scored, the table stays as it was; else None."""
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


def _missing(context, lake: LakeResource, name: str) -> bool:
    """True (and logged: the check is skipped) when ``scores/<name>`` does not exist: no champion has scored."""
    lk = lake.get_lake()
    if lk.delta_exists(lk.uri("scores", name)):
        return False
    context.log.warning(f"scores/{name} does not exist (no champion in service): nothing to check")
    return True


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
        if (skipped := _no_champion(lake, [config.softsensor(lake.get_plant()).titer.name])) is not None:
            return skipped
        df, version = _pipeline().score_titer_table(
            lake.get_lake(), config.softsensor(lake.get_plant()), explain=config.explain
        )
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
        cfg = config.softsensor(lake.get_plant())
        names = [f"{cfg.harvest.name_prefix}{t}" for t in cfg.harvest.targets]
        if (skipped := _no_champion(lake, names)) is not None:
            return skipped
        df, version = _pipeline().score_harvest_table(
            lake.get_lake(), config.softsensor(lake.get_plant()), explain=config.explain
        )
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

    if (skipped := _no_champion(lake, [config.pdm(lake.get_plant()).model.name])) is not None:
        return skipped
    df, version = _pipeline().score_pdm_table(lake.get_lake(), config.pdm(lake.get_plant()), explain=config.explain)
    md = _score_metadata(df, version)
    latest = df.filter(pl.col("date") == df["date"].max()) if df.height else df
    md["alerts_latest_day"] = js(latest.filter(pl.col("alert"))["equipment_id"].to_list() if latest.height else [])
    return dg.MaterializeResult(metadata=md)


def _traceable(context, lake: LakeResource, name: str):
    """Every score row names a registered model version; skipped (no result) without score rows."""
    import polars as pl

    from ml.registry import ModelRegistry

    if _missing(context, lake, name):
        return
    lk = lake.get_lake()
    df = _pipeline().read_table(lk, "scores", name, columns=["model_name", "model_version"]).df
    if df.height == 0:  # nothing to trace: skipped, never passed
        context.log.warning(f"traceable_to_registry not evaluated: scores/{name} has no rows")
        return
    pairs = df.unique()
    reg = ModelRegistry(lk).table().select("model_name", pl.col("version").alias("model_version"))
    missing = pairs.join(reg, on=["model_name", "model_version"], how="anti")
    nulls = df.filter(pl.col("model_name").is_null() | pl.col("model_version").is_null()).height
    yield dg.AssetCheckResult(
        asset_key=dg.AssetKey(["scores", name]),
        check_name="traceable_to_registry",
        passed=missing.height == 0 and nulls == 0,
        metadata={"unregistered": js(missing.to_dicts()), "rows_without_model": nulls},
    )


def _in_service(lake: LakeResource, name: str, result: dict) -> dict:
    """``result`` with the envelope's verdict on the champion in service (drift limits; a breach
    demotes it through the audit trail when the envelope says so: :func:`ml.approvals.check_in_service`).
    A result with nothing evaluated is returned as it is."""
    if result.get("state") == "not_evaluated":
        return result
    from ml.approvals import check_in_service
    from ml.envelope import load_envelope

    return result | {"envelope": check_in_service(lake.get_lake(), name, result, load_envelope())}


def _verification(context, result: dict, name: str):
    """The verification result as a check result; skipped (no result, the reason logged) when there was
    nothing to verify (``ml.verification.with_state``)."""
    if result.get("state") == "not_evaluated":
        context.log.warning(f"verification of scores/{name} not evaluated: {result.get('reason')}")
        return
    yield dg.AssetCheckResult(
        asset_key=dg.AssetKey(["scores", name]),
        check_name="verification",
        passed=bool(result["passed"]),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "failures": js(result.get("failures", [])),
            "evidence": js(result),
            "reason": result.get("reason", ""),
            "not_evaluated": js(result.get("not_evaluated", [])),
            "rolling_rmse": num(result.get("rolling_rmse")),
            "psi_max": num(result.get("psi_max")),
            # batch-aware drift: PSI must beat what normal batches give
            "psi_null_q_max": num(result.get("psi_null_q_max")),
            "psi_drifted": js(result.get("psi_drifted", [])),
            "psi_rule": result.get("psi_rule") or "n/a",
            "envelope_breaches": js((result.get("envelope") or {}).get("breaches", [])),
            "demoted": bool((result.get("envelope") or {}).get("demoted")),
        },
    )


def _check(name: str, check: str, description: str):
    """A check that may have nothing to judge: it then yields no result (Dagster: skipped)."""
    return dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(check, asset=["scores", name], description=description)],
        can_subset=True,
        name=f"{name}_{check}",
    )


TRACE = "Every score row names a registered model version."


@_check("titer", "traceable_to_registry", TRACE)
def titer_traceable(context: dg.AssetCheckExecutionContext, lake: LakeResource):
    yield from _traceable(context, lake, "titer")


@_check("titer", "verification", "Rolling error of the champion's predictions vs arrived titer results, and PSI drift.")
def titer_verification(context: dg.AssetCheckExecutionContext, lake: LakeResource, config: MLConfig):
    if _missing(context, lake, "titer"):
        return
    cfg = config.softsensor(lake.get_plant())
    yield from _verification(
        context, _in_service(lake, cfg.titer.name, _pipeline().verify_titer(lake.get_lake(), cfg)), "titer"
    )


@_check("harvest_cqa", "traceable_to_registry", TRACE)
def harvest_traceable(context: dg.AssetCheckExecutionContext, lake: LakeResource):
    yield from _traceable(context, lake, "harvest_cqa")


@_check("harvest_cqa", "verification", "Rolling error vs arrived harvest assays, and PSI drift of the day-D features.")
def harvest_verification(context: dg.AssetCheckExecutionContext, lake: LakeResource, config: MLConfig):
    if _missing(context, lake, "harvest_cqa"):
        return
    yield from _verification(
        context, _pipeline().verify_harvest(lake.get_lake(), config.softsensor(lake.get_plant())), "harvest_cqa"
    )


@_check("pdm", "traceable_to_registry", TRACE)
def pdm_traceable(context: dg.AssetCheckExecutionContext, lake: LakeResource):
    yield from _traceable(context, lake, "pdm")


@_check("pdm", "verification", "PSI drift of the last 30 days' inputs.")
def pdm_verification(context: dg.AssetCheckExecutionContext, lake: LakeResource, config: MLConfig):
    if _missing(context, lake, "pdm"):
        return
    cfg = config.pdm(lake.get_plant())
    yield from _verification(
        context, _in_service(lake, cfg.model.name, _pipeline().verify_pdm(lake.get_lake(), cfg)), "pdm"
    )


def build_defs(softsensor: SoftSensorConfig | None = None) -> dg.Definitions:
    """Score assets and their checks, downstream of the models named in ``softsensor`` (no harvest
    scores for a plant without harvest targets)."""
    cfg = softsensor or load_softsensor_config()
    harvest = harvest_names(cfg)
    scores_titer, scores_harvest_cqa = _score_assets(titer_name(cfg), harvest)
    with_harvest = [scores_harvest_cqa] if harvest else []
    return dg.Definitions(
        assets=[scores_titer, *with_harvest, scores_pdm],
        asset_checks=[
            titer_traceable,
            titer_verification,
            *([harvest_traceable, harvest_verification] if harvest else []),
            pdm_traceable,
            pdm_verification,
        ],
    )
