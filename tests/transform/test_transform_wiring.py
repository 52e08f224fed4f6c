"""Cheap checks of the wiring: asset keys, lineage to bronze, dbt tests as asset checks,
how the lake and S3 settings reach dbt, the DuckDB S3 secret."""

from __future__ import annotations

import sys

import dagster as dg

from lakehouse.storage import Lake, S3Settings


def test_asset_graph_keys_and_lineage():
    from assets.transform import build_defs
    from lakehouse.warehouse import BRONZE_TABLES, GOLD_MARTS

    defs = build_defs()
    specs = {s.key: s for a in defs.assets for s in a.specs}
    for mart in GOLD_MARTS:
        assert dg.AssetKey([mart]) in specs
        gold = specs[dg.AssetKey(["gold", mart])]
        assert dg.AssetKey([mart]) in {d.asset_key for d in gold.deps}
        assert gold.group_name == "gold"
    assert specs[dg.AssetKey(["fct_process_readings"])].group_name == "dbt"
    # staging models depend on the bronze assets (dbt sources mapped by meta.dagster.asset_key)
    deps = {d.asset_key for d in specs[dg.AssetKey(["stg_historian__readings"])].deps}
    assert deps == {dg.AssetKey(["bronze", "historian_readings"])}
    all_deps = {d.asset_key for s in specs.values() for d in s.deps}
    assert {dg.AssetKey(["bronze", t]) for t in BRONZE_TABLES} <= all_deps
    # dbt data tests are asset checks of their models
    # two dbt builds: the aligned readings and their downstream models (engine switch) after the rest
    aligned = next(a for a in defs.assets if dg.AssetKey(["fct_process_readings"]) in a.keys)
    rest = next(a for a in defs.assets if dg.AssetKey(["stg_historian__readings"]) in a.keys)
    assert aligned is not rest and not set(aligned.keys) & set(rest.keys)
    assert {"int_process_readings__aligned", "int_process_readings__assays_asof", "fct_process_readings"} <= {
        k.to_user_string() for k in aligned.keys
    }
    assert dg.AssetKey(["stg_historian__readings"]) in {d.asset_key for s in aligned.specs for d in s.deps}
    assert {"spark", "dbt", "lake"} <= set(aligned.required_resource_keys)
    check_assets = {c.asset_key for c in aligned.check_specs}
    assert dg.AssetKey(["fct_process_readings"]) in check_assets
    assert len(list(aligned.check_specs)) + len(list(rest.check_specs)) > 50
    # the Definitions object resolves once the resources are bound
    dg.Definitions.merge(defs, dg.Definitions(resources={"lake": object(), "dbt": object(), "spark": object()}))


def test_dbt_env_carries_lake_root_and_s3_only_for_s3():
    from lakehouse.warehouse import dbt_env, patched_environ

    local = dbt_env(Lake("/tmp/some-lake"))
    assert local["LAKEHOUSE_ROOT"] == "/tmp/some-lake"
    assert local["LAKEHOUSE_S3_ACCESS_KEY_ID"] == "" and local["DBT_ENV_SECRET_LAKEHOUSE_S3_SECRET_ACCESS_KEY"] == ""
    s3 = dbt_env(Lake("s3://lake/p", S3Settings("http://127.0.0.1:9000", "AK", "SK")), missing_bronze=["chrom_runs"])
    assert s3["LAKEHOUSE_ROOT"] == "s3://lake/p"
    assert s3["LAKEHOUSE_S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert s3["DBT_ENV_SECRET_LAKEHOUSE_S3_SECRET_ACCESS_KEY"] == "SK"
    assert s3["LAKEHOUSE_MISSING_BRONZE"] == "chrom_runs"
    import os

    os.environ.pop("LAKEHOUSE_S3_ACCESS_KEY_ID", None)
    with patched_environ(s3):
        assert os.environ["LAKEHOUSE_S3_ACCESS_KEY_ID"] == "AK"
    assert "LAKEHOUSE_S3_ACCESS_KEY_ID" not in os.environ


def test_duckdb_s3_secret_is_path_style_and_http_for_http_endpoints():
    from lakehouse.warehouse import DBT_PROJECT_DIR

    sys.path.insert(0, str(DBT_PROJECT_DIR / "plugins"))
    import lakehouse_duckdb

    sql = lakehouse_duckdb.s3_secret_sql("http://127.0.0.1:8333", "AK", "S'K")
    assert "ENDPOINT '127.0.0.1:8333'" in sql and "URL_STYLE 'path'" in sql and "USE_SSL false" in sql
    assert "SECRET 'S''K'" in sql
    assert "USE_SSL true" in lakehouse_duckdb.s3_secret_sql("https://minio.example:9000", "AK", "SK")
    assert "ENDPOINT" not in lakehouse_duckdb.s3_secret_sql("", "AK", "SK")  # plain AWS
