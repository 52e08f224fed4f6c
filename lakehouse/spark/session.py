"""A lazily started, reused SparkSession (plain Python, no Dagster).

:func:`get_spark_session` starts (or connects to) a session; the Dagster resource that wraps
it and carries the engine switch (``"default"`` = DuckDB/pandas on one machine, ``"spark"``)
is :class:`assets.resources.SparkResource`.

One SparkContext per process: every call with the same settings returns the same session
(tests share one session for the whole test session). Settings of a second call that differ
from the running session's *static* configuration (master, driver memory, jars) cannot be
applied to a running JVM; they are ignored with a warning, like ``getOrCreate()`` does.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

Engine = Literal["default", "spark"]
ENGINES: tuple[str, ...] = ("default", "spark")

# delta-spark artefacts a cluster needs when ``use_delta_spark_jars`` is set (Spark 4.x,
# Scala 2.13). Nothing is downloaded here: the cluster (or spark.jars.packages with a
# reachable Maven) must provide them — see infra/README.md.
DELTA_SPARK_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

_STATIC_SQL_CONF = {"spark.sql.warehouse.dir", "spark.sql.extensions"}

_LOCK = threading.RLock()
_SESSION: SparkSession | None = None
_SESSION_KEY: tuple | None = None


def default_conf(shuffle_partitions: int = 4) -> dict[str, str]:
    """Configuration of a small local session (the bench figures in docs/spark.md use these)."""
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.python.filterPushdown.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.warehouse.dir": os.path.join(tempfile.gettempdir(), "lakehouse-spark-warehouse"),
        # JVM timestamps and python workers in UTC too
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executorEnv.TZ": "UTC",
        # The python data source / mapInArrow workers are reused between tasks
        "spark.python.worker.reuse": "true",
    }


def _settings_key(
    master: str | None, connect_url: str | None, driver_memory: str, use_delta_spark_jars: bool, conf: dict[str, str]
) -> tuple:
    return (master, connect_url, driver_memory, use_delta_spark_jars, tuple(sorted(conf.items())))


def get_spark_session(
    master: str | None = "local[2]",
    *,
    connect_url: str | None = None,
    driver_memory: str = "2g",
    executor_memory: str | None = None,
    shuffle_partitions: int = 4,
    use_delta_spark_jars: bool = False,
    conf: dict[str, Any] | None = None,
    app_name: str = "bioprocess-lakehouse",
    log_level: str = "WARN",
) -> SparkSession:
    """Start (once per process) or return the shared SparkSession.

    - ``connect_url`` (``sc://host:15002``) → a Spark Connect client session (needs
      ``pyspark[connect]``: grpcio-status, googleapis-common-protos, zstandard);
      ``"local[2]"`` starts a local Connect server (tests, development).
    - otherwise ``master``: ``local[2]``/``local[*]`` starts an in-process JVM;
      ``spark://host:7077``, ``yarn``, ``k8s://…`` attach this driver to a cluster.

    The local session runs in UTC (``spark.sql.session.timeZone`` and the JVM default),
    with Arrow on, 4 shuffle partitions, no UI and the executors' Python = this
    interpreter (``PYSPARK_PYTHON``), so that pyarrow, deltalake and s3fs are there.
    """
    global _SESSION, _SESSION_KEY
    extra = {k: str(v) for k, v in (conf or {}).items()}
    key = _settings_key(master, connect_url, driver_memory, use_delta_spark_jars, extra)
    with _LOCK:
        if _SESSION is not None and _session_alive(_SESSION):
            if key != _SESSION_KEY:
                log.warning(
                    "a SparkSession is already running in this process; reusing it "
                    "(static settings of this call are ignored)"
                )
            return _SESSION

        from pyspark.sql import SparkSession

        settings = default_conf(shuffle_partitions)
        if use_delta_spark_jars:
            settings.update(DELTA_SPARK_CONF)
        settings.update(extra)

        # executors must run this interpreter (pyarrow, deltalake, s3fs, xgboost); the same
        # for a local Spark Connect server ("local[2]" as connect_url) started from here
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("TZ", "UTC")
        if connect_url:
            builder = SparkSession.builder.remote(connect_url).appName(app_name)
            # only runtime SQL confs can be set from a Connect client (static ones belong in
            # the server's spark-defaults.conf)
            for k, v in settings.items():
                if k.startswith("spark.sql.") and k not in _STATIC_SQL_CONF and not k.startswith("spark.sql.catalog."):
                    builder = builder.config(k, v)
            session = builder.getOrCreate()
        else:
            os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
            if (master or "").startswith("local"):
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = SparkSession.builder.appName(app_name)
            if master:
                builder = builder.master(master)
            settings.setdefault("spark.driver.memory", driver_memory)
            if executor_memory:
                settings.setdefault("spark.executor.memory", executor_memory)
            for k, v in settings.items():
                builder = builder.config(k, v)
            session = builder.getOrCreate()
            try:
                session.sparkContext.setLogLevel(log_level)
            except Exception:  # pragma: no cover - best effort
                pass
        _SESSION, _SESSION_KEY = session, key
        return session


def _session_alive(session: SparkSession) -> bool:
    try:
        jsc = getattr(session.sparkContext, "_jsc", None)
        return jsc is not None and not jsc.sc().isStopped()
    except Exception:
        # Spark Connect sessions have no SparkContext
        return not getattr(session, "is_stopped", False)


def stop_spark_session() -> None:
    """Stop the shared session (tests call this at the end of the test session)."""
    global _SESSION, _SESSION_KEY
    with _LOCK:
        if _SESSION is not None:
            try:
                _SESSION.stop()
            finally:
                _SESSION, _SESSION_KEY = None, None


def is_connect_session(spark: Any) -> bool:
    """True for a Spark Connect client session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def default_parallelism(spark: Any, fallback: int = 2) -> int:
    """Cores Spark can use (classic sessions), else ``spark.default.parallelism`` or ``fallback``."""
    if not is_connect_session(spark):
        try:
            return int(spark.sparkContext.defaultParallelism)
        except Exception:  # pragma: no cover
            pass
    try:
        return int(spark.conf.get("spark.default.parallelism", str(fallback)))
    except Exception:  # pragma: no cover
        return fallback
