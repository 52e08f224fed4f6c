"""The lake abstraction behaves the same on local disk and on a real S3 server."""

from __future__ import annotations

import pyarrow as pa

from lakehouse.storage import Lake


def test_delta_roundtrip_same_on_local_and_s3(lake: Lake):
    uri = lake.uri("bronze", "roundtrip")
    assert not lake.delta_exists(uri)
    lake.write_delta(uri, pa.table({"batch_id": ["B1", "B2"], "value": [1.5, 2.5]}))
    lake.write_delta(uri, pa.table({"batch_id": ["B3"], "value": [3.5]}))
    assert lake.delta_exists(uri)
    table = lake.read_delta(uri)
    assert table.num_rows == 3
    assert sorted(table.column("batch_id").to_pylist()) == ["B1", "B2", "B3"]
    # time travel to the first commit
    assert lake.read_delta(uri, version=0).num_rows == 2


def test_filesystem_writes_under_root(lake: Lake):
    fs = lake.filesystem()
    path = lake.fs_path(lake.uri("landing", "x", "hello.txt"))
    fs.makedirs(lake.fs_path(lake.uri("landing", "x")), exist_ok=True)
    fs.pipe(path, b"hello")
    assert fs.cat(path) == b"hello"


def test_s3_credentials_never_leak_into_local_options(lake_local: Lake):
    assert lake_local.delta_storage_options() == {}
    assert lake_local.fsspec_storage_options() == {}
