"""Spark Connect: the delta-rs bridge and the alignment through a Connect client session.

Opt-in (a second JVM: the local Connect server, ~10–30 s): ``LAKEHOUSE_TEST_SPARK_CONNECT=1``.
Needs ``pyspark[connect]`` (grpcio-status, googleapis-common-protos, zstandard).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("LAKEHOUSE_TEST_SPARK_CONNECT") != "1", reason="opt-in: LAKEHOUSE_TEST_SPARK_CONNECT=1"
    ),
]

SCRIPT = textwrap.dedent("""
    import os, sys, warnings
    warnings.filterwarnings("ignore")
    sys.path.insert(0, os.environ["PROJECT_ROOT"])
    from lakehouse.spark.session import get_spark_session, is_connect_session
    from lakehouse.spark.delta_bridge import read_delta, write_delta
    from tests.support.spark_site import synthetic_site
    from lakehouse.transforms.alignment import align_readings
    spark = get_spark_session(connect_url="local[2]")
    assert is_connect_session(spark)
    site = synthetic_site(2, 0.3, batch_hours=3, turnaround_hours=1)
    uri = os.environ["TABLE_URI"]
    res = write_delta(spark.createDataFrame(site.readings), uri, None, partition_by=["date"])
    assert res.num_records == site.readings.num_rows, res
    df = read_delta(spark, uri, None, columns=["ts", "unit_id", "parameter", "value", "quality", "date"])
    import datetime as dt
    jan1 = sum(1 for d in site.readings["date"].to_pylist() if d == dt.date(2026, 1, 1))
    assert df.where("date = date'2026-01-01'").count() == jan1  # partition pruning over Connect
    al = align_readings(df, spark.createDataFrame(site.windows), 1, engine="spark", spark=spark,
                        phases=spark.createDataFrame(site.phases)).toArrow()
    ref = align_readings(site.readings, site.windows, 1, phases=site.phases)
    assert al.num_rows == ref.num_rows > 0
    print("CONNECT_OK", flush=True)
    spark.stop()
""")


def test_bridge_and_alignment_over_spark_connect(tmp_path):
    env = {
        **os.environ,
        "PROJECT_ROOT": str(Path(__file__).resolve().parents[2]),
        "TABLE_URI": str(tmp_path / "readings"),
    }
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "CONNECT_OK" in proc.stdout, proc.stderr[-3000:]
