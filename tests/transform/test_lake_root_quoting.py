"""A lake root with a quote in it (``/data/o'brien lake``) reaches every SQL string quoted:
the dbt sources, the change capture, the gold publication — the whole transform runs."""

from __future__ import annotations

import datetime as dt

import bronze_fixture as bf
import duckdb
from transform_helpers import FIRST_DAY, PLANT, materialize_transform

from lakehouse.storage import Lake


def test_a_quote_in_the_lake_root_is_quoted_everywhere(tmp_path):
    lake = Lake(str(tmp_path / "o'brien's lake"))
    for i in range(3):
        for name, table in bf.day_tables(PLANT, FIRST_DAY + dt.timedelta(days=i)).items():
            kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
            lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)
    warehouse = tmp_path / "wh.duckdb"
    result = materialize_transform(lake, warehouse)
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success and not failures, failures
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        n = con.execute("select count(*) from marts.fct_process_readings").fetchone()[0]
    finally:
        con.close()
    assert n > 1000
    assert lake.delta_exists(lake.uri("gold", "fct_process_readings"))
