"""Reading Delta into Spark without jars: the ``deltars`` Python data source.

:class:`DeltaRsDataSource` is a Spark 4 Python data source (format ``"deltars"``). On the
driver it loads the Delta snapshot with ``deltalake`` (so time travel, removed files and
partition values come from the transaction log, not from listing the folder) and plans
one Spark partition per data file (small files are packed together up to a target
size). Each executor task opens its files with pyarrow + fsspec (s3fs for ``s3://``) and
yields Arrow record batches: only the requested columns are read, partition columns are
filled from the add action's partition values, columns added to the table after a file
was written come back as nulls. Filters on partition columns prune files.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

try:  # pyspark is a project dependency, but keep this module importable without a JVM
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
except Exception:  # pragma: no cover
    DataSource = object  # type: ignore[misc,assignment]
    DataSourceReader = object  # type: ignore[misc,assignment]
    InputPartition = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

from lakehouse.spark.delta_bridge.common import (
    _DEFAULT_MAX_PARTITION_BYTES,
    _MIN_PARTITION_BYTES,
    _STORAGE_PREFIX,
    FORMAT_NAME,
    _delta_arrow_schema,
    _filesystem,
    _join,
    _spark_delta_uri,
    normalize_arrow_schema,
    normalize_table_uri,
    to_delta_storage_options,
    to_fsspec_storage_options,
)


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
            raise NotImplementedError(
                "deltars: tables with deletion vectors need delta-spark (use_delta_spark_jars=True) or a delta-rs read"
            )
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
        files.append(_FileSlice(path, {c: r.get(f"partition.{c}") for c in part_cols}, int(r.get("size_bytes") or 0)))
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
        if isinstance(a, datetime) and isinstance(b, datetime) and (a.tzinfo is None) != (b.tzinfo is None):
            a = a.replace(tzinfo=UTC) if a.tzinfo is None else a
            b = b.replace(tzinfo=UTC) if b.tzinfo is None else b
        return bool(op(a, b))
    except Exception:
        return True  # cannot decide: keep the file (Spark re-applies every filter)


def _options_storage(options: Mapping[str, str]) -> dict[str, str]:
    return {k[len(_STORAGE_PREFIX) :].upper(): v for k, v in options.items() if k.lower().startswith(_STORAGE_PREFIX)}


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
        """The data source format name (``deltars``)."""
        return FORMAT_NAME

    def _table(self):
        from deltalake import DeltaTable

        uri = normalize_table_uri(self.options["path"])
        version = self.options.get("version")
        return DeltaTable(
            uri,
            version=int(version) if version not in (None, "") else None,
            storage_options=_options_storage(self.options) or None,
        )

    def schema(self):
        """The table's Spark schema (from the Delta snapshot, or the requested columns)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        schema = _delta_arrow_schema(self._table())
        cols = _options_columns(self.options)
        if cols:
            schema = pa.schema([schema.field(c) for c in cols])
        return from_arrow_schema(normalize_arrow_schema(schema), prefer_timestamp_ntz=True)

    def reader(self, schema):
        """The reader planning one Spark partition per (packed) data file of the snapshot."""
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
        dt = DeltaTable(
            uri,
            version=int(version) if version not in (None, "") else None,
            storage_options=_options_storage(self.options) or None,
        )
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
                    it = (
                        pa.record_batch([pa.nulls(min(batch_rows, pf.metadata.num_rows - i))], names=["__n"])
                        for i in range(0, pf.metadata.num_rows, batch_rows)
                    )
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
    dt = DeltaTable(table_uri, version=version if isinstance(version, int) else None, storage_options=dopts or None)
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
    reader = (
        spark.read.format(FORMAT_NAME)
        .schema(spark_schema)
        .option("path", table_uri)
        .option("version", str(resolved))
        .option("parallelism", str(default_parallelism(spark)))
        .option("pushdown", "true" if _pushdown_enabled(spark) else "false")
    )
    if columns:
        reader = reader.option("columns", json.dumps(list(columns)))
    if max_partition_bytes:
        reader = reader.option("maxPartitionBytes", str(int(max_partition_bytes)))
    for k, v in dopts.items():
        reader = reader.option(_STORAGE_PREFIX + k, v)
    return reader.load()
