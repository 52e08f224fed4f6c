"""Feature assets (the ML team's contract): ``features/softsensor`` and ``features/equipment_health``.

Resource ``spark`` (:class:`SparkResource`) picks the engine: ``default`` builds the tables with
polars on one machine, ``spark`` with the same kernels on Spark (``lakehouse.spark.features``);
same Delta table either way, metadata ``engine`` says which one ran.
"""

import dagster as dg

from assets.resources import LakeResource, SparkResource
from assets.support import MLConfig, js, skipped


def GOLD(name: str) -> dg.AssetKey:
    """Key of the gold mart ``name``."""
    return dg.AssetKey(["gold", name])


SOFTSENSOR_KEY = dg.AssetKey(["features", "softsensor"])
EQUIPMENT_KEY = dg.AssetKey(["features", "equipment_health"])


@dg.asset(
    key=SOFTSENSOR_KEY,
    group_name="features",
    kinds={"polars", "delta"},
    deps=[GOLD("fct_process_readings"), GOLD("dim_batches"), GOLD("fct_assay_results")],
    description="Soft-sensor features per batch and culture-age step from online signals, plus sample "
    "rows with assay labels (features as of sample_time) and the carry-forward baseline.",
)
def features_softsensor(
    context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig, spark: SparkResource
) -> dg.MaterializeResult:
    from ml import pipeline

    cfg = config.softsensor(lake.get_plant())
    if spark.is_spark:  # same table, built on Spark (gold read / features written through the Delta bridge)
        summary, version, inputs = pipeline.materialize_softsensor_features_spark(
            lake.get_lake(), cfg, spark.get_session()
        )
        counts, columns = summary["row_types"], summary["columns"]
        rows, batches = summary["rows"], summary["batches"]
    else:
        df, version, inputs = pipeline.materialize_softsensor_features(lake.get_lake(), cfg)
        counts, columns = dict(df.group_by("row_type").len().iter_rows()), df.columns
        rows, batches = df.height, df["batch_id"].n_unique()
    return dg.MaterializeResult(
        metadata={
            "delta_version": version,
            "dagster/row_count": rows,
            "step_rows": counts.get("step", 0),
            "sample_rows": counts.get("sample", 0),
            "batches": batches,
            "n_features": len([c for c in columns if "__" in c or c == "culture_age_h"]),
            "input_versions": js(inputs),
            "step_minutes": cfg.features.step_minutes,
            "signals": js(list(cfg.features.all_signals)),
            "engine": spark.engine,
        }
    )


@dg.asset_check(asset=SOFTSENSOR_KEY, blocking=True, description="pandera schema of features/softsensor")
def softsensor_features_schema(lake: LakeResource, config: MLConfig) -> dg.AssetCheckResult:
    from ml import pipeline
    from ml.schemas import softsensor_schema

    cfg = config.softsensor(lake.get_plant())
    df = pipeline.read_table(lake.get_lake(), "features", "softsensor").df
    return _validate(softsensor_schema(cfg.features), df)


@dg.asset(
    key=EQUIPMENT_KEY,
    group_name="features",
    kinds={"polars", "delta"},
    deps=[GOLD("fct_equipment_health_daily"), GOLD("fct_work_orders")],
    output_required=False,  # skipped with the reason when PdM cannot run for the plant (ml.pipeline.pdm_skip_reason)
    description="Equipment-health features per equipment per day (rolling stats, slopes, own-baseline "
    "deviation, maintenance history) and the CMMS label: failure within H days.",
)
def features_equipment_health(
    context: dg.AssetExecutionContext, lake: LakeResource, config: MLConfig, spark: SparkResource
):
    from ml import pipeline

    cfg = config.pdm(lake.get_plant())
    reason = pipeline.pdm_skip_reason(lake.get_lake(), cfg)
    if reason:
        yield skipped(context, EQUIPMENT_KEY, reason)
        return
    if spark.is_spark:
        summary, version, inputs = pipeline.materialize_equipment_features_spark(
            lake.get_lake(), cfg, spark.get_session()
        )
    else:
        df, version, inputs = pipeline.materialize_equipment_features(lake.get_lake(), cfg)
        summary = {
            "rows": df.height,
            "equipment": df["equipment_id"].n_unique(),
            "positive_rows": int(df["label__failure_within_h"].sum()),
        }
    yield dg.MaterializeResult(
        metadata={
            "delta_version": version,
            "dagster/row_count": summary["rows"],
            "equipment": summary["equipment"],
            "positive_rows": summary["positive_rows"],
            "horizon_days": cfg.features.horizon_days,
            "input_versions": js(inputs),
            "engine": spark.engine,
        }
    )


@dg.asset_check(asset=EQUIPMENT_KEY, blocking=True, description="pandera schema of features/equipment_health")
def equipment_features_schema(lake: LakeResource, config: MLConfig) -> dg.AssetCheckResult:
    from ml import pipeline
    from ml.schemas import equipment_health_schema

    cfg = config.pdm(lake.get_plant())
    df = pipeline.read_table(lake.get_lake(), "features", "equipment_health").df
    return _validate(equipment_health_schema(cfg.features), df)


def _validate(schema, df) -> dg.AssetCheckResult:
    import pandera.errors as pe

    try:
        schema.validate(df, lazy=True)
        return dg.AssetCheckResult(passed=True, metadata={"rows": df.height, "columns": df.width})
    except (pe.SchemaErrors, pe.SchemaError) as exc:
        return dg.AssetCheckResult(
            passed=False, metadata={"error": dg.MetadataValue.md(f"```\n{str(exc)[:3000]}\n```")}
        )


defs = dg.Definitions(
    assets=[features_softsensor, features_equipment_health],
    asset_checks=[softsensor_features_schema, equipment_features_schema],
)
