"""One DuckDB warehouse file, two lakes: the incremental marts must not keep the other lake's
batches (the README's walkthroughs point `make run` and a plant import at the same default
warehouse). A build from another lake is a full refresh; the next build from the same lake is
incremental again."""

from __future__ import annotations

import datetime as dt

import bronze_fixture as bf
import duckdb
from transform_helpers import FIRST_DAY, materialize_transform

from lakehouse.storage import Lake


def _write(lake: Lake, plant: bf.Plant, days: range) -> None:
    for i in days:
        for name, table in bf.day_tables(plant, FIRST_DAY + dt.timedelta(days=i)).items():
            kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
            lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)


def _ok(result) -> None:
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    bad = [
        f"{c.asset_key.to_user_string()}::{c.check_name}" for c in result.get_asset_check_evaluations() if not c.passed
    ]
    assert result.success and not failures and not bad, (failures, bad)


def _units(warehouse, table: str) -> set[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {r[0] for r in con.execute(f"select distinct unit_id from {table}").fetchall()}
    finally:
        con.close()


def _refresh_needed(warehouse, lake: Lake) -> dict[str, bool]:
    from lakehouse.warehouse import needs_full_refresh

    return {
        step: bool(needs_full_refresh(warehouse, step, lake.root))
        for step in ("dbt_process_model", "dbt_aligned_readings")
    }


def test_switching_lakes_rebuilds_the_incremental_models(tmp_path, warehouse):
    big = Lake(str(tmp_path / "plant-a"))
    small = Lake(str(tmp_path / "plant-b"))
    _write(big, bf.Plant(n_units=3, culture_days=1.5, turnaround_h=10.0), range(4))
    _write(small, bf.Plant(n_units=2, culture_days=1.5, turnaround_h=10.0, seed=8), range(4))

    assert _refresh_needed(warehouse, big) == {"dbt_process_model": False, "dbt_aligned_readings": False}  # new file
    _ok(materialize_transform(big, warehouse))
    assert "BR-103" in _units(warehouse, "marts.fct_process_readings")
    assert _refresh_needed(warehouse, big) == {"dbt_process_model": False, "dbt_aligned_readings": False}

    # the same warehouse file, another lake: full refresh, no BR-103 batches left behind
    assert _refresh_needed(warehouse, small) == {"dbt_process_model": True, "dbt_aligned_readings": True}
    _ok(materialize_transform(small, warehouse))  # includes the relationships test fct_process_readings → dim_batches
    assert _units(warehouse, "marts.fct_process_readings") == {"BR-101", "BR-102"}
    assert _units(warehouse, "staging.stg_historian__readings") == {"BR-101", "BR-102"}

    # one more day on the same lake: incremental again
    _write(small, bf.Plant(n_units=2, culture_days=1.5, turnaround_h=10.0, seed=8), range(4, 5))
    assert _refresh_needed(warehouse, small) == {"dbt_process_model": False, "dbt_aligned_readings": False}
    _ok(materialize_transform(small, warehouse))
    assert _units(warehouse, "marts.fct_process_readings") == {"BR-101", "BR-102"}
