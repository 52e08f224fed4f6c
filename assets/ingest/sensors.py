"""landing_files_sensor: new or changed landing files → ingestion runs (with run keys)."""

import datetime as dt
import time

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.ingest._common import bronze_key
from assets.resources import LakeResource
from lakehouse.ingest.pending import dumps_cursor, loads_cursor, plan_runs, prune_inflight
from lakehouse.ingest.readers import SYSTEM_TABLES

RELAUNCH_AFTER_S = 6 * 3600  # a launched file set not ingested after this is requested again


def build_landing_sensor(partitions: dg.DailyPartitionsDefinition, assets: list) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files_sensor",
        minimum_interval_seconds=60,
        target=assets,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Lists landing/, compares with bronze/_ingest_log (path + size/mtime/ETag) and "
        "requests one run per source system (historian: per contiguous day range) for "
        "new or changed files. run_key = hash of the file set; the cursor remembers "
        "only what it launched until the ingest log shows it done.",
    )
    def landing_files_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        the_lake = lake.get_lake()
        inflight, launched_at = loads_cursor(context.cursor)
        now = time.time()
        # forget launches that are done (in the ingest log) or that look abandoned
        inflight = prune_inflight(the_lake, inflight)
        inflight = {k: v for k, v in inflight.items() if now - launched_at.get(k, now) < RELAUNCH_AFTER_S}
        launched_at = {k: launched_at[k] for k in inflight if k in launched_at}
        keys = partitions.get_partition_keys(dynamic_partitions_store=None, current_time=dt.datetime.now(dt.UTC))
        runs, skipped = plan_runs(
            the_lake, inflight, min_day=keys[0] if keys else None, max_day=keys[-1] if keys else None
        )
        if skipped:
            context.log.warning("%d historian files outside the partition range: %s", len(skipped), skipped[:10])
        requests = []
        for run in runs:
            tags = {"lakehouse/system": run.system, "lakehouse/files": str(len(run.files))}
            selection = [bronze_key(t) for t in SYSTEM_TABLES[run.system]]
            if run.partition_range:
                a, b = run.partition_range
                if a == b:
                    requests.append(
                        dg.RunRequest(run_key=run.run_key, asset_selection=selection, partition_key=a, tags=tags)
                    )
                else:
                    requests.append(
                        dg.RunRequest(
                            run_key=run.run_key,
                            asset_selection=selection,
                            tags={**tags, ASSET_PARTITION_RANGE_START_TAG: a, ASSET_PARTITION_RANGE_END_TAG: b},
                        )
                    )
            else:
                requests.append(dg.RunRequest(run_key=run.run_key, asset_selection=selection, tags=tags))
            for rel, fp in run.files:  # the cursor advances only for what is launched
                inflight[rel] = fp
                launched_at[rel] = now
        if not requests:
            return dg.SensorResult(skip_reason="no new landing files", cursor=dumps_cursor(inflight, launched_at))
        return dg.SensorResult(run_requests=requests, cursor=dumps_cursor(inflight, launched_at))

    return landing_files_sensor
