"""Shared by the read and write paths: storage options (delta-rs ↔ fsspec), table URIs,
Arrow type normalisation, and the bridge's constants."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

try:  # pyspark is a project dependency, but keep this module importable without a JVM
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
except Exception:  # pragma: no cover
    DataSource = object  # type: ignore[misc,assignment]
    DataSourceReader = object  # type: ignore[misc,assignment]
    InputPartition = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:  # pragma: no cover
    pass


FORMAT_NAME = "deltars"
_STORAGE_PREFIX = "storage."
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_DEFAULT_MAX_PARTITION_BYTES = 128 * 1024 * 1024
_MIN_PARTITION_BYTES = 4 * 1024 * 1024
_STRING_STATS_PREFIX = 32
_WRITER_ENGINE = "lakehouse.spark.delta_bridge"


# --------------------------------------------------------------------------- storage options
def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def normalize_table_uri(uri: str) -> str:
    """Strip the trailing slash; ``s3a://`` is spelled ``s3://`` for delta-rs and s3fs."""
    uri = uri.rstrip("/")
    if uri.startswith("s3a://"):
        uri = "s3://" + uri[len("s3a://") :]
    uri = uri.removeprefix("file://")
    return uri


def to_delta_storage_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """delta-rs style options (``AWS_*``) from delta-rs or fsspec/s3fs style ones."""
    if not options:
        return {}
    opts = dict(options)
    if not any(k in opts for k in ("key", "secret", "client_kwargs", "token", "endpoint_url")):
        return {str(k).upper(): str(v) for k, v in opts.items() if v is not None}
    out: dict[str, str] = {}
    ck = dict(opts.get("client_kwargs") or {})
    if opts.get("key"):
        out["AWS_ACCESS_KEY_ID"] = str(opts["key"])
    if opts.get("secret"):
        out["AWS_SECRET_ACCESS_KEY"] = str(opts["secret"])
    if opts.get("token"):
        out["AWS_SESSION_TOKEN"] = str(opts["token"])
    endpoint = opts.get("endpoint_url") or ck.get("endpoint_url")
    if endpoint:
        out["AWS_ENDPOINT_URL"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            out["AWS_ALLOW_HTTP"] = "true"
        out["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    out["AWS_REGION"] = str(ck.get("region_name") or opts.get("region") or "us-east-1")
    return out


def to_fsspec_storage_options(delta_options: Mapping[str, str] | None) -> dict[str, Any]:
    """s3fs options from delta-rs style ones (keys are case-insensitive, as in delta-rs)."""
    if not delta_options:
        return {}
    o = {str(k).upper(): v for k, v in delta_options.items()}
    out: dict[str, Any] = {}
    ck: dict[str, Any] = {}
    if o.get("AWS_ACCESS_KEY_ID"):
        out["key"] = o["AWS_ACCESS_KEY_ID"]
    if o.get("AWS_SECRET_ACCESS_KEY"):
        out["secret"] = o["AWS_SECRET_ACCESS_KEY"]
    if o.get("AWS_SESSION_TOKEN"):
        out["token"] = o["AWS_SESSION_TOKEN"]
    endpoint = o.get("AWS_ENDPOINT_URL") or o.get("AWS_ENDPOINT")
    if endpoint:
        ck["endpoint_url"] = endpoint
    if o.get("AWS_REGION"):
        ck["region_name"] = o["AWS_REGION"]
    if ck:
        out["client_kwargs"] = ck
    if str(o.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "")).lower() == "false":
        out["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    return out


def _filesystem(uri: str, fsspec_options: Mapping[str, Any]):
    """(fsspec filesystem, path) for a URI; the instance is cached by fsspec."""
    import fsspec

    if _is_remote(uri):
        protocol = uri.split("://", 1)[0]
        if protocol == "s3a":
            protocol = "s3"
        fs = fsspec.filesystem(protocol, **dict(fsspec_options))
        return fs, uri.split("://", 1)[1]
    return fsspec.filesystem("file"), uri


def _join(table_uri: str, rel: str) -> str:
    return posixpath.join(table_uri, rel) if _is_remote(table_uri) else f"{table_uri}/{rel}"


# --------------------------------------------------------------------------- arrow helpers
def normalize_arrow_type(t: pa.DataType) -> pa.DataType:
    """Spark's Arrow output → what delta-rs accepts: tz-aware timestamps as µs "UTC"."""
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(normalize_arrow_type(f.type)) for f in t])
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(normalize_arrow_type(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(normalize_arrow_type(t.key_type), normalize_arrow_type(t.item_type))
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    return t


def normalize_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """Timestamps with any tz ("Etc/UTC" from Spark) → "UTC", µs; all fields nullable."""
    return pa.schema([pa.field(f.name, normalize_arrow_type(f.type), nullable=True) for f in schema])


def _delta_arrow_schema(dt) -> pa.Schema:
    return pa.schema(dt.schema().to_arrow())


def _conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.Table:
    """Select/cast ``batch`` to ``schema`` by name; absent nullable columns become nulls."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            if col.type != f.type:
                col = col.cast(f.type)
            cols.append(col)
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _spark_delta_uri(uri: str) -> str:
    """URI for delta-spark/hadoop: ``s3://`` → ``s3a://`` (the S3A connector)."""
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri
