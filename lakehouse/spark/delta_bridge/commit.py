"""The Delta write protocol of the bridge: executors write, the driver commits once.

A Delta table is a folder of parquet files plus a transaction log (``_delta_log/``): a file
belongs to the table only once a committed log entry adds it. :func:`write_delta` uses that:

1. **Plan** (driver). Open the table with delta-rs (if it exists) and settle the schema and
   partitioning: ``append`` must fit the table (no new columns; missing columns nullable)
   and keeps its partitioning; ``overwrite`` replaces the schema (or only the partitions
   matched by ``partition_filters``). A random ``write_id`` names every file of this write.
2. **Write** (executors, :mod:`lakehouse.spark.delta_bridge.write`). ``df.mapInArrow`` runs
   one task per Spark partition: it writes its rows as parquet files straight into the table
   folder (``<partition dirs>/part-<write_id>-…parquet``, pyarrow + fsspec, no Spark
   writer and no jars) and returns one row per file: path, size, partition values and the
   file's statistics (:mod:`lakehouse.spark.delta_bridge.stats`). Nothing is visible yet:
   no log entry names these files.
3. **Commit** (driver, ONE transaction). The collected rows become delta-rs ``AddAction``s,
   committed in a single log entry — ``create_table_with_add_actions`` for a new table,
   ``DeltaTable.create_write_transaction`` otherwise (``overwrite`` also removes the files it
   replaces, in the same entry) — with commit metadata ``engine``, ``write_id``,
   ``num_files`` and the caller's ``commit_metadata``. delta-rs' optimistic concurrency
   (conditional PUT of the next log version on S3) makes concurrent writers safe.
4. **Failure**. A job that fails or is killed before step 3 leaves the table at its previous
   version: the orphan files are unreferenced (invisible to every reader); they are deleted
   best-effort right away (files whose name carries this ``write_id``) or later by
   ``DeltaTable.vacuum``. An append of no rows makes no commit.

With ``use_delta_spark_jars=True`` (a cluster that has delta-spark) the write is
``df.write.format("delta")`` instead, ``partition_filters`` becoming a ``replaceWhere``
(:func:`replace_where`) and ``commit_metadata`` the ``userMetadata`` string.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

try:  # pyspark is a project dependency, but keep this module importable without a JVM
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
except Exception:  # pragma: no cover
    DataSource = object  # type: ignore[misc,assignment]
    DataSourceReader = object  # type: ignore[misc,assignment]
    InputPartition = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

from lakehouse.spark.delta_bridge.common import (
    _WRITER_ENGINE,
    _delta_arrow_schema,
    _filesystem,
    _is_remote,
    _spark_delta_uri,
    normalize_arrow_schema,
    normalize_arrow_type,
    normalize_table_uri,
    to_delta_storage_options,
    to_fsspec_storage_options,
)
from lakehouse.spark.delta_bridge.write import _RESULT_DDL, _write_partition_files, _WriteSpec


@dataclass
class WriteResult:
    """What :func:`write_delta` committed: the table version, its files and rows."""

    version: int
    num_files: int
    num_records: int
    paths: list[str]


_log = logging.getLogger(__name__)


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
    spec = _WriteSpec(
        table_uri,
        to_fsspec_storage_options(dopts),
        data_schema,
        partition_by,
        full_schema,
        uuid.uuid4().hex[:16],
        compression,
        max_rows_per_file,
        _fail_partition,
    )

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
    actions = [
        AddAction(
            r["path"],
            int(r["size"]),
            json.loads(r["partition_values"]),
            int(r["modification_time"] or now),
            True,
            r["stats"],
        )
        for r in rows
    ]
    meta = {
        "engine": _WRITER_ENGINE,
        "write_id": spec.write_id,
        "num_files": len(actions),
        **dict(commit_metadata or {}),
    }
    if _before_commit is not None:
        _before_commit(actions)
    try:
        if dt is None:
            create_table_with_add_actions(
                table_uri,
                Schema.from_arrow(commit_schema),
                actions,
                mode="error",
                partition_by=partition_by or None,
                storage_options=dopts or None,
                commit_properties=CommitProperties(custom_metadata=meta),
            )
        else:
            dt.create_write_transaction(
                actions,
                mode,
                commit_schema,
                partition_by=partition_by or None,
                partition_filters=partition_filters if mode == "overwrite" else None,
                commit_properties=CommitProperties(custom_metadata=meta),
            )
    except BaseException:
        if cleanup_on_failure:
            _remove_write_files(fs, root, spec.write_id)
        raise
    version = DeltaTable(table_uri, storage_options=dopts or None).version()
    return WriteResult(version, len(actions), sum(int(r["num_records"]) for r in rows), [a.path for a in actions])


def _remove_write_files(fs, root: str, write_id: str) -> int:
    """Best-effort removal of the files of a failed write (vacuum would catch the rest)."""
    removed = 0
    try:
        for p in fs.find(root):
            if write_id in posixpath.basename(p):
                try:
                    fs.rm(p)
                    removed += 1
                except Exception as exc:  # best effort: the write's own error is what is raised
                    _log.warning("could not remove %s of failed write %s: %s", p, write_id, exc)
    except Exception as exc:
        _log.warning("could not list %s to remove the files of failed write %s: %s", root, write_id, exc)
    return removed
