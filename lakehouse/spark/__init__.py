"""Spark engine: the scale-out path for the heavy transforms (see docs/spark.md).

- :mod:`lakehouse.spark.session` — ``SparkResource`` (Dagster resource ``spark``, engine
  switch) and ``get_spark_session()``.
- :mod:`lakehouse.spark.delta_bridge` — ``read_delta`` / ``write_delta``: Delta tables on Spark
  through delta-rs (no delta-spark jars needed).
- :mod:`lakehouse.spark.transforms` — ``align_readings_spark`` (contract alignment semantics).
- :mod:`lakehouse.spark.features` — feature tables identical to ``ml.features``.
- :mod:`lakehouse.spark.train` — distributed XGBoost (``xgboost.spark``) → UBJ boosters, scoring.

Importing these modules never starts a JVM; the session starts on the first
``get_session()`` / ``get_spark_session()``.
"""
