"""Independent readers of a Delta table (delta-rs, polars, DuckDB) for the Spark tests."""

from __future__ import annotations

import os

import pyarrow as pa

from lakehouse.storage import Lake


def read_deltalake(lake: Lake, uri: str, version: int | None = None) -> pa.Table:
    """delta-rs read through its DataFusion query engine.

    (``DeltaTable.to_pyarrow_table()`` sometimes aborts the interpreter at exit —
    delta-io/delta-rs#2184 — so the tests avoid the pyarrow-dataset path.)
    """
    from deltalake import DeltaTable, QueryBuilder

    dt = DeltaTable(uri, version=version, storage_options=lake.delta_storage_options() or None)
    out = pa.table(QueryBuilder().register("t", dt).execute("SELECT * FROM t").read_all())
    # DataFusion hands strings out as string_view: back to plain string for comparisons
    fields = [
        f.with_type(pa.string())
        if f.type == pa.string_view()
        else f.with_type(pa.binary())
        if f.type == pa.binary_view()
        else f
        for f in out.schema
    ]
    return out.cast(pa.schema(fields))


def read_polars(lake: Lake, uri: str, version: int | None = None):
    import polars as pl

    return pl.read_delta(uri, version=version, storage_options=lake.delta_storage_options() or None)


def duckdb_connection(lake: Lake):
    """DuckDB with the delta (+ httpfs) extensions from the duckdb-extension-* wheels (offline)."""
    import duckdb
    import duckdb_extension_delta
    import duckdb_extension_httpfs

    con = duckdb.connect()
    for mod in (duckdb_extension_httpfs, duckdb_extension_delta):
        base = os.path.join(os.path.dirname(mod.__file__), "extensions")
        for root, _, files in os.walk(base):
            for f in files:
                if f.endswith(".duckdb_extension"):
                    con.load_extension(os.path.join(root, f))
    if lake.is_s3:
        s3 = lake.s3
        endpoint = s3.endpoint_url.split("://", 1)[1]
        use_ssl = "true" if s3.endpoint_url.startswith("https://") else "false"
        con.execute(
            f"CREATE SECRET lake_s3 (TYPE s3, KEY_ID '{s3.access_key_id}', SECRET '{s3.secret_access_key}', "
            f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL {use_ssl}, REGION '{s3.region}')"
        )
    return con


def read_duckdb(lake: Lake, uri: str) -> pa.Table:
    con = duckdb_connection(lake)
    try:
        return con.sql(f"SELECT * FROM delta_scan('{uri}')").to_arrow_table()
    finally:
        con.close()
