"""The live sensor: a run of the running-batch job when bronze moved, none when it did not;
the collector's state in its cursor."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow as pa

from assets.live import live_plant_sensor
from assets.resources import LakeResource
from lakehouse.ingest.writer import ensure_table
from lakehouse.live.collector import STATUS_PATH


def test_sensor_requests_a_run_only_when_bronze_moved(lake_local):
    res = {"lake": LakeResource(root_uri=lake_local.root)}
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=res)
        skip = live_plant_sensor(ctx)
        assert isinstance(skip, dg.SkipReason) and "no bronze" in skip.skip_message
        table = ensure_table(lake_local, "historian_readings")
        fs = lake_local.filesystem()
        path = lake_local.fs_path(lake_local.uri(STATUS_PATH))
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, json.dumps({"state": "running", "max_lag_s": 1.5, "server_time": "t"}).encode())

        ctx = dg.build_sensor_context(instance=instance, resources=res)
        req = live_plant_sensor(ctx)
        assert isinstance(req, dg.RunRequest) and req.run_key == f"live-bronze-v{table.version()}"
        cursor = json.loads(ctx.cursor)
        assert cursor == {
            "bronze_version": table.version(),
            "collector_state": "running",
            "max_lag_s": 1.5,
            "server_time": "t",
        }

        again = live_plant_sensor(dg.build_sensor_context(instance=instance, resources=res, cursor=ctx.cursor))
        assert isinstance(again, dg.SkipReason) and "unchanged" in again.skip_message

        empty = pa.Table.from_pylist([], schema=pa.schema(table.schema().to_arrow()))
        from deltalake import write_deltalake

        write_deltalake(table, empty, mode="append")  # a new bronze version
        moved = live_plant_sensor(dg.build_sensor_context(instance=instance, resources=res, cursor=ctx.cursor))
        now = lake_local.delta_table(lake_local.table_uri("bronze", "historian_readings")).version()
        assert now > cursor["bronze_version"]
        assert isinstance(moved, dg.RunRequest) and moved.run_key == f"live-bronze-v{now}"
