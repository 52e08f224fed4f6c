"""Helpers of the transform tests: the fixture plant and an in-process materialization of
the transform assets (dbt build + gold publication + gold read-back checks)."""

from __future__ import annotations

import datetime as dt

import bronze_fixture as bf

FIRST_DAY = dt.date(2026, 1, 1)
N_DAYS = 5
PLANT = bf.Plant(n_units=2, culture_days=1.5, turnaround_h=10.0)


def materialize_transform(lake, warehouse, engine: str = "default"):
    """dbt build + gold publication + gold read-back checks, in-process, against ``lake``
    (``engine="spark"``: the historian alignment on Spark, see assets/transform/dbt_models.py)."""
    import dagster as dg

    from assets.resources import LakeResource, SparkResource
    from assets.transform import build_defs, dbt_cli_resource

    s3 = lake.s3
    resource = LakeResource(
        root_uri=lake.root,
        s3_endpoint_url=s3.endpoint_url if lake.is_s3 else None,
        aws_access_key_id=s3.access_key_id if lake.is_s3 else None,
        aws_secret_access_key=s3.secret_access_key if lake.is_s3 else None,
        aws_region=s3.region,
        duckdb_path=str(warehouse),
    )
    defs = build_defs()
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources={"lake": resource, "dbt": dbt_cli_resource(), "spark": SparkResource(engine=engine)},
        raise_on_error=False,
    )
