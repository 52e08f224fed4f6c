"""One SparkSession for the whole test session (starting one costs ~6–10 s)."""

from __future__ import annotations

import pytest


def pytest_configure(config):
    # pyspark 4.x warns that pandas >= 3 is not fully supported; the Arrow paths we use are fine
    config.addinivalue_line("filterwarnings", "ignore:PySpark does not yet fully support pandas:FutureWarning")


@pytest.fixture(scope="session")
def spark():
    from lakehouse.spark.session import get_spark_session, stop_spark_session

    session = get_spark_session("local[2]", driver_memory="2g", shuffle_partitions=4)
    try:
        yield session
    finally:
        stop_spark_session()
