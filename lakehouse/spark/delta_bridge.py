"""Delta Lake on Spark without the delta-spark jars: delta-rs for the log, Spark for the data.

Read
    :class:`DeltaRsDataSource` is a Spark 4 Python data source (format ``"deltars"``). On the
    driver it loads the Delta snapshot with ``deltalake`` (so time travel, removed files and
    partition values come from the transaction log, not from listing the folder) and plans
    one Spark partition per data file (small files are packed together up to a target
    size). Each executor task opens its files with pyarrow + fsspec (s3fs for ``s3://``) and
    yields Arrow record batches: only the requested columns are read, partition columns are
    filled from the add action's partition values, columns added to the table after a file
    was written come back as nulls. Filters on partition columns prune files.

Write
    :func:`write_delta` makes the executors write parquet files straight into the table
    location (``mapInArrow``, pyarrow + fsspec), each task returning its files' path, size,
    partition values and statistics; the driver then commits all of them in ONE delta-rs
    transaction (``DeltaTable.create_write_transaction`` or, for a new table,
    ``deltalake.transaction.create_table_with_add_actions``). A job that fails or is killed
    before that commit leaves the table at its previous version: the files already written
    are not referenced by the log (invisible to every reader) and are deleted best-effort
    right away or by ``DeltaTable.vacuum``.

Limits: tables with deletion vectors or column mapping are refused (delta-rs writes
neither); append validates the DataFrame against the table schema (no schema evolution);
overwrite replaces the schema. Where the cluster has delta-spark, pass
``use_delta_spark_jars=True`` (or set it on the Spark resource) and ``format("delta")`` is
used instead.
"""

from __future__ import annotations

import json
import math
import posixpath
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

try:  # pyspark is a project dependency, but keep this module importable without a JVM
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
except Exception:  # pragma: no cover
    DataSource = object  # type: ignore[misc,assignment]
    DataSourceReader = object  # type: ignore[misc,assignment]
    InputPartition = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

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
        uri = "s3://" + uri[len("s3a://"):]
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


# --------------------------------------------------------------------------- read
@dataclass
class _FileSlice:
    path: str  # absolute URI or local path of the parquet file
    partition_values: dict[str, Any]
    size: int


class _DeltaFilesPartition(InputPartition):  # type: ignore[misc]
    """One Spark task: one or more data files of the snapshot."""

    def __init__(self, files: list[_FileSlice]) -> None:
        self.files = files


def _snapshot_files(dt, table_uri: str) -> tuple[list[_FileSlice], list[str]]:
    """Data files of the loaded snapshot with typed partition values (from the log)."""
    protocol = dt.protocol()
    features = set(getattr(protocol, "reader_features", None) or [])
    if "deletionVectors" in features:
        try:
            dv = dt.deletion_vectors().read_all()
            has_dv = dv.num_rows > 0
        except Exception:  # pragma: no cover
            has_dv = True
        if has_dv:
            raise NotImplementedError("deltars: tables with deletion vectors need delta-spark "
                                      "(use_delta_spark_jars=True) or a delta-rs read")
    mode = (dt.metadata().configuration or {}).get("delta.columnMapping.mode", "none")
    if mode not in ("none", None):
        raise NotImplementedError("deltars: column mapping is not supported")
    part_cols = list(dt.metadata().partition_columns)
    actions = pa.table(dt.get_add_actions(flatten=True))
    rows = actions.to_pylist()
    files = []
    for r in rows:
        rel = urllib.parse.unquote(r["path"])
        path = rel if "://" in rel else _join(table_uri, rel)
        files.append(_FileSlice(path, {c: r.get(f"partition.{c}") for c in part_cols},
                                int(r.get("size_bytes") or 0)))
    return files, part_cols


def _pack(files: list[_FileSlice], target: int) -> list[list[_FileSlice]]:
    """Pack files into tasks of about ``target`` bytes (largest first; a large file alone)."""
    groups: list[list[_FileSlice]] = []
    cur: list[_FileSlice] = []
    cur_bytes = 0
    for f in sorted(files, key=lambda f: -f.size):
        if cur and cur_bytes + f.size > target:
            groups.append(cur)
            cur, cur_bytes = [], 0
        cur.append(f)
        cur_bytes += f.size
    if cur:
        groups.append(cur)
    return groups


_FILTER_OPS = {
    "EqualTo": lambda v, x: v is not None and v == x,
    "EqualNullSafe": lambda v, x: v == x,
    "GreaterThan": lambda v, x: v is not None and v > x,
    "GreaterThanOrEqual": lambda v, x: v is not None and v >= x,
    "LessThan": lambda v, x: v is not None and v < x,
    "LessThanOrEqual": lambda v, x: v is not None and v <= x,
}


def _partition_filter(f, part_cols: set[str]) -> Callable[[dict[str, Any]], bool] | None:
    """A predicate on a file's partition values for a pushed-down Spark filter, or None."""
    name = type(f).__name__
    attr = getattr(f, "attribute", None)
    if not attr or len(attr) != 1 or attr[0] not in part_cols:
        return None
    col = attr[0]
    if name in _FILTER_OPS:
        op, val = _FILTER_OPS[name], f.value
        return lambda pv: _safe(op, pv.get(col), val)
    if name == "In":
        vals = list(f.value)
        return lambda pv: pv.get(col) is not None and any(_safe(_FILTER_OPS["EqualTo"], pv.get(col), x) for x in vals)
    if name == "IsNull":
        return lambda pv: pv.get(col) is None
    if name == "IsNotNull":
        return lambda pv: pv.get(col) is not None
    return None


def _safe(op, a, b) -> bool:
    try:
        if isinstance(a, datetime) and isinstance(b, datetime):
            if (a.tzinfo is None) != (b.tzinfo is None):
                a = a.replace(tzinfo=UTC) if a.tzinfo is None else a
                b = b.replace(tzinfo=UTC) if b.tzinfo is None else b
        return bool(op(a, b))
    except Exception:
        return True  # cannot decide: keep the file (Spark re-applies every filter)


def _options_storage(options: Mapping[str, str]) -> dict[str, str]:
    return {k[len(_STORAGE_PREFIX):].upper(): v for k, v in options.items()
            if k.lower().startswith(_STORAGE_PREFIX)}


def _options_columns(options: Mapping[str, str]) -> list[str] | None:
    raw = options.get("columns")
    if not raw:
        return None
    raw = raw.strip()
    if raw.startswith("["):
        return list(json.loads(raw))
    return [c.strip() for c in raw.split(",") if c.strip()]


class DeltaRsDataSource(DataSource):  # type: ignore[misc]
    """``spark.read.format("deltars").option("path", uri)`` — see the module docstring.

    Options: ``path`` (table URI), ``version`` (int), ``columns`` (JSON list or
    comma-separated), ``storage.<KEY>`` (delta-rs storage options, e.g.
    ``storage.AWS_ENDPOINT_URL``; keys named like secrets are redacted by Spark in plans),
    ``maxPartitionBytes``, ``parallelism``, ``pushdown`` ("true" when the session has
    ``spark.sql.python.filterPushdown.enabled``).
    """

    @classmethod
    def name(cls) -> str:
        return FORMAT_NAME

    def _table(self):
        from deltalake import DeltaTable

        uri = normalize_table_uri(self.options["path"])
        version = self.options.get("version")
        return DeltaTable(uri, version=int(version) if version not in (None, "") else None,
                          storage_options=_options_storage(self.options) or None)

    def schema(self):
        from pyspark.sql.pandas.types import from_arrow_schema

        schema = _delta_arrow_schema(self._table())
        cols = _options_columns(self.options)
        if cols:
            schema = pa.schema([schema.field(c) for c in cols])
        return from_arrow_schema(normalize_arrow_schema(schema), prefer_timestamp_ntz=True)

    def reader(self, schema):
        if str(self.options.get("pushdown", "false")).lower() == "true":
            return _PushdownDeltaReader(self.options, schema)
        return _DeltaReader(self.options, schema)


class _DeltaReader(DataSourceReader):  # type: ignore[misc]
    def __init__(self, options: Mapping[str, str], schema) -> None:
        self.options = dict(options)
        self.schema = schema
        self.filters: list = []

    def partitions(self):
        from deltalake import DeltaTable

        uri = normalize_table_uri(self.options["path"])
        version = self.options.get("version")
        dt = DeltaTable(uri, version=int(version) if version not in (None, "") else None,
                        storage_options=_options_storage(self.options) or None)
        files, part_cols = _snapshot_files(dt, uri)
        preds = [p for p in (_partition_filter(f, set(part_cols)) for f in self.filters) if p]
        if preds:
            files = [f for f in files if all(p(f.partition_values) for p in preds)]
        if not files:
            return [_DeltaFilesPartition([])]
        total = sum(f.size for f in files)
        parallelism = max(1, int(self.options.get("parallelism") or 2))
        max_bytes = int(self.options.get("maxPartitionBytes") or _DEFAULT_MAX_PARTITION_BYTES)
        target = min(max_bytes, max(_MIN_PARTITION_BYTES, math.ceil(total / parallelism)))
        return [_DeltaFilesPartition(g) for g in _pack(files, target)]

    def read(self, partition) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import to_arrow_schema

        target = to_arrow_schema(self.schema, timezone="UTC")
        fsopts = to_fsspec_storage_options(_options_storage(self.options))
        batch_rows = int(self.options.get("batchRows") or 65536)
        for f in partition.files:
            fs, path = _filesystem(f.path, fsopts)
            part_names = set(f.partition_values)
            with fs.open(path, "rb") as fh:
                pf = pq.ParquetFile(fh)
                present = set(pf.schema_arrow.names)
                data_cols = [n for n in target.names if n not in part_names and n in present]
                if data_cols:
                    it = pf.iter_batches(batch_size=batch_rows, columns=data_cols, use_threads=False)
                else:  # only partition / missing columns requested: still need the row count
                    it = (pa.record_batch([pa.nulls(min(batch_rows, pf.metadata.num_rows - i))],
                                          names=["__n"])
                          for i in range(0, pf.metadata.num_rows, batch_rows))
                for rb in it:
                    yield _with_partitions(rb, target, f.partition_values)


def _with_partitions(rb: pa.RecordBatch, target: pa.Schema, pvalues: Mapping[str, Any]) -> pa.RecordBatch:
    n = rb.num_rows
    arrays = []
    for fld in target:
        if fld.name in pvalues:
            arrays.append(pa.array([pvalues[fld.name]] * n, type=fld.type) if n else pa.array([], type=fld.type))
        elif fld.name in rb.schema.names:
            col = rb.column(fld.name)
            arrays.append(col if col.type == fld.type else col.cast(fld.type))
        else:
            arrays.append(pa.nulls(n, fld.type))
    return pa.RecordBatch.from_arrays(arrays, schema=target)


class _PushdownDeltaReader(_DeltaReader):
    def pushFilters(self, filters):
        # Remember what prunes files; hand every filter back so Spark re-checks the rows.
        self.filters = list(filters)
        return self.filters


_registered: weakref.WeakSet = weakref.WeakSet()


def register(spark: SparkSession) -> None:
    """Register the ``deltars`` data source in this session (once per session object)."""
    try:
        if spark in _registered:
            return
    except TypeError:  # pragma: no cover - not weak-referenceable
        pass
    spark.dataSource.register(DeltaRsDataSource)
    try:
        _registered.add(spark)
    except TypeError:  # pragma: no cover
        pass


def _pushdown_enabled(spark) -> bool:
    try:
        return str(spark.conf.get("spark.sql.python.filterPushdown.enabled", "false")).lower() == "true"
    except Exception:  # pragma: no cover
        return False


def _spark_delta_uri(uri: str) -> str:
    """URI for delta-spark/hadoop: ``s3://`` → ``s3a://`` (the S3A connector)."""
    return "s3a://" + uri[len("s3://"):] if uri.startswith("s3://") else uri


def read_delta(
    spark: SparkSession,
    uri: str,
    storage_options: Mapping[str, Any] | None = None,
    version: int | str | datetime | None = None,
    columns: Sequence[str] | None = None,
    *,
    use_delta_spark_jars: bool = False,
    max_partition_bytes: int | None = None,
) -> DataFrame:
    """A Delta table as a Spark DataFrame (through delta-rs + pyarrow unless delta-spark is there).

    ``storage_options`` in delta-rs form (``Lake.delta_storage_options()``; s3fs form is
    accepted too). ``version``: a version number or a timestamp (ISO string/datetime) —
    resolved on the driver to a fixed version, so schema and file list come from the same
    snapshot. ``columns``: only these columns are read from the files.
    """
    from deltalake import DeltaTable
    from pyspark.sql.pandas.types import from_arrow_schema

    from lakehouse.spark.session import default_parallelism

    table_uri = normalize_table_uri(uri)
    dopts = to_delta_storage_options(storage_options)
    dt = DeltaTable(table_uri, version=version if isinstance(version, int) else None,
                    storage_options=dopts or None)
    if version is not None and not isinstance(version, int):
        dt.load_as_version(version)
    resolved = dt.version()

    if use_delta_spark_jars:
        reader = spark.read.format("delta").option("versionAsOf", resolved)
        df = reader.load(_spark_delta_uri(table_uri))
        return df.select(*columns) if columns else df

    schema = _delta_arrow_schema(dt)
    if columns:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise ValueError(f"columns not in the table: {missing}")
        schema = pa.schema([schema.field(c) for c in columns])
    spark_schema = from_arrow_schema(normalize_arrow_schema(schema), prefer_timestamp_ntz=True)

    register(spark)
    reader = (spark.read.format(FORMAT_NAME).schema(spark_schema)
              .option("path", table_uri).option("version", str(resolved))
              .option("parallelism", str(default_parallelism(spark)))
              .option("pushdown", "true" if _pushdown_enabled(spark) else "false"))
    if columns:
        reader = reader.option("columns", json.dumps(list(columns)))
    if max_partition_bytes:
        reader = reader.option("maxPartitionBytes", str(int(max_partition_bytes)))
    for k, v in dopts.items():
        reader = reader.option(_STORAGE_PREFIX + k, v)
    return reader.load()


# --------------------------------------------------------------------------- write
_RESULT_SCHEMA = pa.schema([
    ("path", pa.string()),  # relative to the table root, not URL-encoded
    ("size", pa.int64()),
    ("partition_values", pa.string()),  # JSON {col: str | null}
    ("modification_time", pa.int64()),
    ("num_records", pa.int64()),
    ("stats", pa.string()),  # Delta stats JSON
])
_RESULT_DDL = ("path string, size long, partition_values string, modification_time long, "
               "num_records long, stats string")


def _partition_value_str(v: Any) -> str | None:
    """Delta's serialisation of a partition value (protocol: 'Partition Value Serialization')."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return str(v)


def _partition_dir(part_cols: Sequence[str], values: Mapping[str, str | None]) -> str:
    segs = []
    for c in part_cols:
        v = values[c]
        segs.append(f"{c}={_HIVE_NULL if v is None else urllib.parse.quote(v, safe='')}")
    return "/".join(segs)


def _stat_value(v: Any, t: pa.DataType, is_max: bool) -> Any:
    if v is None:
        return None
    if pa.types.is_timestamp(t):
        # like delta-rs: millisecond precision, UTC 'Z' for tz-aware timestamps
        if isinstance(v, datetime):
            if v.tzinfo is not None:
                v = v.astimezone(UTC)
            s = v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}"
            return s + ("Z" if t.tz else "")
        return None
    if pa.types.is_date(t):
        return v.isoformat()
    if pa.types.is_floating(t):
        return float(v) if math.isfinite(v) else None
    if pa.types.is_integer(t):
        return int(v)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if len(v) <= _STRING_STATS_PREFIX:
            return v
        return None if is_max else v[:_STRING_STATS_PREFIX]  # a prefix is still a lower bound
    return None


@dataclass
class _WriteSpec:
    table_uri: str
    fsspec_options: dict[str, Any]
    data_schema: pa.Schema  # columns stored in the files (no partition columns)
    partition_by: list[str]
    file_schema_full: pa.Schema  # table schema (data + partition columns), target types
    write_id: str
    compression: str = "zstd"
    max_rows_per_file: int = 5_000_000
    fail_partition: int | None = field(default=None)  # tests only: raise in this task


def _parquet_writer(fs, path: str, schema: pa.Schema, compression: str):
    import pyarrow.parquet as pq

    ts_cols = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    kwargs: dict[str, Any] = {"compression": compression, "write_statistics": True}
    if ts_cols:  # µs timestamps with jitter: delta encoding halves the bytes (PERFORMANCE.md)
        kwargs["use_dictionary"] = [f.name for f in schema if f.name not in ts_cols]
        kwargs["column_encoding"] = {c: "DELTA_BINARY_PACKED" for c in ts_cols}
    fh = fs.open(path, "wb")
    return fh, pq.ParquetWriter(fh, schema, **kwargs)


def _write_partition_files(spec: _WriteSpec, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Executor side of :func:`write_delta`: write this task's rows, return its add actions."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    task = f"{ctx.partitionId():05d}-{ctx.attemptNumber()}" if ctx else "00000-0"
    if spec.fail_partition is not None and ctx is not None and ctx.partitionId() == spec.fail_partition:
        # tests: let the other tasks write their files first
        time.sleep(1.0)
        raise RuntimeError(f"injected failure in partition {spec.fail_partition}")
    fs, root = _filesystem(spec.table_uri, spec.fsspec_options)
    open_files: dict[tuple, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    seq = 0

    def close(key: tuple) -> None:
        st = open_files.pop(key)
        st["writer"].close()
        st["fh"].close()
        size = int(fs.size(st["fs_path"]))
        results.append({
            "path": st["rel"], "size": size,
            "partition_values": json.dumps(st["pvalues"]),
            "modification_time": int(time.time() * 1000),
            "num_records": st["rows"],
            "stats": _stats_from_summaries(st["stats_parts"], st["rows"]),
        })

    def target_for(key: tuple, pvalues: dict[str, str | None]) -> dict[str, Any]:
        nonlocal seq
        st = open_files.get(key)
        if st is not None and st["rows"] >= spec.max_rows_per_file:
            close(key)
            st = None
        if st is None:
            seq += 1
            name = f"part-{task}-{spec.write_id}-{seq:04d}.{spec.compression}.parquet"
            rel = f"{_partition_dir(spec.partition_by, pvalues)}/{name}" if spec.partition_by else name
            fs_path = f"{root}/{rel}"
            if spec.partition_by and not _is_remote(spec.table_uri):
                fs.makedirs(posixpath.dirname(fs_path), exist_ok=True)
            fh, writer = _parquet_writer(fs, fs_path, spec.data_schema, spec.compression)
            st = {"writer": writer, "fh": fh, "rel": rel, "fs_path": fs_path, "pvalues": pvalues,
                  "rows": 0, "stats_parts": []}
            open_files[key] = st
        return st

    def write(st: dict[str, Any], tbl: pa.Table) -> None:
        st["writer"].write_table(tbl)
        st["rows"] += tbl.num_rows
        # file stats from tiny per-chunk summaries (no copy of the file's rows is kept)
        st["stats_parts"].append(_minmax_summary(tbl))

    try:
        for rb in batches:
            if rb.num_rows == 0:
                continue
            tbl = _conform(rb, spec.file_schema_full)
            if not spec.partition_by:
                write(target_for((), {}), tbl)
                continue
            keys = tbl.select(spec.partition_by)
            groups = keys.group_by(spec.partition_by, use_threads=False).aggregate([])
            for g in groups.to_pylist():
                mask = None
                for c in spec.partition_by:
                    cond = pc.is_null(tbl[c]) if g[c] is None else pc.equal(tbl[c], pa.scalar(g[c], tbl[c].type))
                    mask = cond if mask is None else pc.and_(mask, cond)
                part = tbl.filter(mask).drop_columns(spec.partition_by)
                pvalues = {c: _partition_value_str(g[c]) for c in spec.partition_by}
                key = tuple(pvalues[c] for c in spec.partition_by)
                write(target_for(key, pvalues), part)
        for key in list(open_files):
            close(key)
    except BaseException:
        for st in open_files.values():
            try:
                st["writer"].close()
                st["fh"].close()
            except Exception:
                pass
            try:
                fs.rm(st["fs_path"])
            except Exception:
                pass
        for r in results:  # this attempt failed: its finished files are orphans too
            try:
                fs.rm(f"{root}/{r['path']}")
            except Exception:
                pass
        raise
    if results:
        yield pa.RecordBatch.from_pylist(results, schema=_RESULT_SCHEMA)


def _minmax_summary(tbl: pa.Table) -> _SummaryTable:
    """Two-row (min, max) table + null counts of a chunk, so file stats need no full copy."""
    cols, names = [], []
    for name, col in zip(tbl.column_names, tbl.columns):
        t = col.type
        if pa.types.is_nested(t):
            continue
        if pa.types.is_floating(t) and pc.any(pc.is_nan(col)).as_py():
            arr = pa.array([float("nan"), float("nan")], type=t)  # poison: no stats
        elif (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t)
              or pa.types.is_date(t) or pa.types.is_string(t) or pa.types.is_large_string(t)) \
                and col.null_count < len(col):
            mm = pc.min_max(col)
            arr = pa.array([mm["min"].as_py(), mm["max"].as_py()], type=t)
        else:
            arr = pa.nulls(2, t)
        cols.append(arr)
        names.append(name)
    summary = pa.Table.from_arrays(cols, names=names) if cols else pa.table({})
    return _SummaryTable(summary, {n: int(tbl.column(n).null_count) for n in names}, tbl.num_rows)


class _SummaryTable:
    """Chunk summary: 2-row min/max table, null counts and row count."""

    def __init__(self, summary: pa.Table, nulls: dict[str, int], rows: int) -> None:
        self.summary, self.nulls, self.rows = summary, nulls, rows


def _stats_from_summaries(parts: list[_SummaryTable], rows: int) -> str:
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    if not parts:
        return json.dumps({"numRecords": rows})
    summary = pa.concat_tables([p.summary for p in parts])
    for name in summary.column_names:
        col = summary.column(name)
        t = col.type
        nulls[name] = sum(p.nulls.get(name, 0) for p in parts)
        if col.null_count == len(col):
            continue
        if pa.types.is_floating(t) and pc.any(pc.is_nan(col)).as_py():
            continue
        mm = pc.min_max(col)
        lo = _stat_value(mm["min"].as_py(), t, False)
        hi = _stat_value(mm["max"].as_py(), t, True)
        if lo is not None:
            mins[name] = lo
        if hi is not None:
            maxs[name] = hi
    return json.dumps({"numRecords": rows, "minValues": mins, "maxValues": maxs,
                       "nullCount": nulls}, separators=(",", ":"))


@dataclass
class WriteResult:
    """What :func:`write_delta` committed."""

    version: int
    num_files: int
    num_records: int
    paths: list[str]


def _sql_value(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def replace_where(partition_filters: Sequence[tuple[str, str, Any]]) -> str:
    """delta-rs style partition filters as a delta-spark ``replaceWhere`` predicate:
    ``[("batch_id", "in", ["a", "b"]), ("date", "=", "2026-01-01")]`` →
    ``batch_id IN ('a', 'b') AND date = '2026-01-01'``."""
    parts = []
    for col, op, value in partition_filters:
        name = "`" + col.replace("`", "``") + "`"
        o = op.strip().lower()
        if o in ("in", "not in"):
            values = ", ".join(_sql_value(v) for v in value)
            parts.append(f"{name} {o.upper()} ({values})")
        elif o in ("=", "!=", "<", "<=", ">", ">="):
            parts.append(f"{name} {o} {_sql_value(value)}")
        else:
            raise ValueError(f"unsupported partition filter operator {op!r}")
    return " AND ".join(parts)


def write_delta(
    df: DataFrame,
    uri: str,
    storage_options: Mapping[str, Any] | None = None,
    mode: str = "append",
    partition_by: Sequence[str] | str | None = None,
    *,
    use_delta_spark_jars: bool = False,
    partition_filters: list[tuple[str, str, Any]] | None = None,
    max_rows_per_file: int = 5_000_000,
    compression: str = "zstd",
    cleanup_on_failure: bool = True,
    commit_metadata: Mapping[str, Any] | None = None,
    _before_commit: Callable[[list], None] | None = None,
    _fail_partition: int | None = None,
) -> WriteResult | None:
    """Write a Spark DataFrame to a Delta table: executors write parquet, the driver commits once.

    ``mode``: ``"append"`` (the DataFrame must fit the table schema; missing nullable
    columns are written as nulls) or ``"overwrite"`` (replaces the data and the schema, or
    only the partitions matched by ``partition_filters``). ``partition_by`` for a new table
    (an existing table keeps its partitioning). Timestamps are stored as µs "UTC".
    Returns the committed version and files (None with ``use_delta_spark_jars``).
    """
    from deltalake import DeltaTable, Schema
    from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions
    from pyspark.sql.pandas.types import to_arrow_schema

    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
    if isinstance(partition_by, str):
        partition_by = [partition_by]
    partition_by = list(partition_by or [])
    table_uri = normalize_table_uri(uri)
    dopts = to_delta_storage_options(storage_options)

    if use_delta_spark_jars:
        w = df.write.format("delta").mode(mode)
        if partition_by:
            w = w.partitionBy(*partition_by)
        if partition_filters and mode == "overwrite":
            w = w.option("replaceWhere", replace_where(partition_filters))
        if commit_metadata:  # delta-spark keeps one string per commit: commitInfo.userMetadata
            w = w.option("userMetadata", json.dumps(dict(commit_metadata), sort_keys=True))
        w.save(_spark_delta_uri(table_uri))
        return None

    df_schema = normalize_arrow_schema(to_arrow_schema(df.schema, timezone="UTC"))
    exists = DeltaTable.is_deltatable(table_uri, storage_options=dopts or None)
    dt = DeltaTable(table_uri, storage_options=dopts or None) if exists else None

    if dt is not None:
        table_parts = list(dt.metadata().partition_columns)
        if partition_by and partition_by != table_parts and mode == "append":
            raise ValueError(f"table is partitioned by {table_parts}, not {partition_by}")
        if mode == "append" or not partition_by:
            partition_by = table_parts
    if dt is not None and mode == "append":
        table_schema = _delta_arrow_schema(dt)
        extra = [n for n in df_schema.names if n not in table_schema.names]
        if extra:
            raise ValueError(f"columns not in the Delta table {table_uri}: {extra} (no schema evolution on append)")
        missing = [f.name for f in table_schema if f.name not in df_schema.names and not f.nullable]
        if missing:
            raise ValueError(f"non-nullable columns missing from the DataFrame: {missing}")
        full_schema = pa.schema([f.with_type(normalize_arrow_type(f.type)) for f in table_schema])
        commit_schema = table_schema
    else:
        full_schema = df_schema
        commit_schema = df_schema
    missing_parts = [c for c in partition_by if c not in full_schema.names]
    if missing_parts:
        raise ValueError(f"partition columns not in the schema: {missing_parts}")
    data_schema = pa.schema([f for f in full_schema if f.name not in partition_by])

    fs, root = _filesystem(table_uri, to_fsspec_storage_options(dopts))
    if not _is_remote(table_uri):
        fs.makedirs(root, exist_ok=True)
    spec = _WriteSpec(table_uri, to_fsspec_storage_options(dopts), data_schema, partition_by,
                      full_schema, uuid.uuid4().hex[:16], compression, max_rows_per_file,
                      _fail_partition)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _write_partition_files(spec, batches)

    try:
        rows = df.mapInArrow(run, _RESULT_DDL).collect()
    except BaseException:
        if cleanup_on_failure:
            _remove_write_files(fs, root, spec.write_id)
        raise

    if not rows and dt is not None and mode == "append":  # nothing to add: no empty commit
        return WriteResult(dt.version(), 0, 0, [])
    now = int(time.time() * 1000)
    actions = [AddAction(r["path"], int(r["size"]), json.loads(r["partition_values"]),
                         int(r["modification_time"] or now), True, r["stats"]) for r in rows]
    meta = {"engine": _WRITER_ENGINE, "write_id": spec.write_id,
            "num_files": len(actions), **dict(commit_metadata or {})}
    if _before_commit is not None:
        _before_commit(actions)
    try:
        if dt is None:
            create_table_with_add_actions(
                table_uri, Schema.from_arrow(commit_schema), actions, mode="error",
                partition_by=partition_by or None, storage_options=dopts or None,
                commit_properties=CommitProperties(custom_metadata=meta))
        else:
            dt.create_write_transaction(
                actions, mode, commit_schema, partition_by=partition_by or None,
                partition_filters=partition_filters if mode == "overwrite" else None,
                commit_properties=CommitProperties(custom_metadata=meta))
    except BaseException:
        if cleanup_on_failure:
            _remove_write_files(fs, root, spec.write_id)
        raise
    version = DeltaTable(table_uri, storage_options=dopts or None).version()
    return WriteResult(version, len(actions), sum(int(r["num_records"]) for r in rows),
                       [a.path for a in actions])


def _remove_write_files(fs, root: str, write_id: str) -> int:
    """Best-effort removal of the files of a failed write (vacuum would catch the rest)."""
    removed = 0
    try:
        for p in fs.find(root):
            if write_id in posixpath.basename(p):
                try:
                    fs.rm(p)
                    removed += 1
                except Exception:
                    pass
    except Exception:
        pass
    return removed
