"""The twin simulates a tiny site into S3; the real assets ingest all of it, nothing set aside."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.ingest import build_ingest_defs
from assets.resources import LakeResource
from lakehouse.ingest.writer import table_uri

site = pytest.importorskip("twin.site")

pytestmark = pytest.mark.s3


def test_simulated_site_ingests_completely(lake_s3, s3_server):
    lake = lake_s3
    cfg = site.SiteConfig(start="2026-01-01", days=3, bioreactors=1, write_trajectories=False)
    summary = site.simulate_site(lake.root, cfg, storage_options=lake.fsspec_storage_options())
    defs = build_ingest_defs("2026-01-01")
    hist = defs.get_assets_def(dg.AssetKey(["bronze", "historian_readings"]))
    others = [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition)
        and not a.partitions_def
        and not ({k.path[-1] for k in a.keys} & {"_maintenance", "_quarantine"})
    ]
    res = {
        "lake": LakeResource(
            root_uri=lake.root,
            s3_endpoint_url=s3_server.endpoint_url,
            aws_access_key_id=s3_server.access_key,
            aws_secret_access_key=s3_server.secret_key,
        )
    }
    # the three days as ONE run (single-run backfill: the range is handed to the asset)
    run = dg.materialize(
        [hist],
        resources=res,
        tags={ASSET_PARTITION_RANGE_START_TAG: "2026-01-01", ASSET_PARTITION_RANGE_END_TAG: "2026-01-03"},
    )
    assert run.success
    assert dg.materialize(others, resources=res).success

    hist_rows = pl.from_arrow(
        lake.read_delta(table_uri(lake, "historian_readings"), columns=["date", "parameter", "unit_id"])
    )
    assert hist_rows.height == summary.historian_readings
    assert hist_rows.get_column("date").n_unique() == 3
    assert hist_rows.get_column("parameter").n_unique() == 19
    assert lake.read_delta(table_uri(lake, "lims_results")).num_rows == summary.lims_results
    assert lake.read_delta(table_uri(lake, "cmms_work_orders")).num_rows == summary.work_orders
    assert (
        not lake.delta_exists(table_uri(lake, "_quarantine"))
        or lake.read_delta(table_uri(lake, "_quarantine")).num_rows == 0
    )
