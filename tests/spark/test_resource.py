"""The Spark resource: engine switch, one lazily started session, UTC, Arrow."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.resources import SparkResource
from lakehouse.spark.session import get_spark_session


def test_default_engine_never_starts_a_jvm():
    res = SparkResource()
    assert res.engine == "default" and not res.is_spark
    assert res.session_or_none() is None
    with pytest.raises(Exception, match="engine"):
        SparkResource(engine="flink")


@pytest.mark.spark
def test_session_is_shared_utc_and_arrow(spark):
    assert get_spark_session() is spark  # one session per process
    assert SparkResource(engine="spark").get_session() is spark
    conf = spark.conf
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert conf.get("spark.sql.shuffle.partitions") == "4"
    assert spark.sparkContext.getConf().get("spark.ui.enabled") == "false"
    row = spark.sql("SELECT timestamp'2026-01-01 00:00:00' AS ts, current_timezone() AS tz").collect()[0]
    assert row.tz == "UTC"
    assert spark.sparkContext.defaultParallelism == 2  # local[2]


@pytest.mark.spark
def test_resource_in_a_dagster_asset(spark):
    @dg.asset
    def doubled(spark: SparkResource) -> dg.MaterializeResult:
        s = spark.session_or_none()
        total = s.range(10).selectExpr("sum(id * 2) AS t").collect()[0].t
        return dg.MaterializeResult(metadata={"total": total})

    result = dg.materialize([doubled], resources={"spark": SparkResource(engine="spark")})
    assert result.success
    mat = result.asset_materializations_for_node("doubled")[0]
    assert mat.metadata["total"].value == 90


def test_engine_from_environment_variable(monkeypatch):
    """``LAKEHOUSE_ENGINE=spark make run``: the resource holds a dg.EnvVar, resolved when the run starts."""
    from orchestration.settings import spark_resource

    monkeypatch.setenv("LAKEHOUSE_ENGINE", "spark")
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "1g")
    res = spark_resource()
    with dg.build_resources({"spark": res}) as built:
        assert built.spark.engine == "spark" and built.spark.is_spark
        assert built.spark.driver_memory == "1g"
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "Spark!")
    with pytest.raises(dg.DagsterResourceFunctionError) as err, dg.build_resources({"spark": spark_resource()}):
        pass  # a wrong value fails when the run starts, naming the allowed engines
    assert "engine must be one of" in str(err.value.__cause__)
    with pytest.raises(ValueError, match="engine must be one of"):
        SparkResource(engine="gpu")
    monkeypatch.delenv("LAKEHOUSE_ENGINE")
    assert spark_resource().engine == "default"
