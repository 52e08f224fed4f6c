"""The executors' side of a write: each Spark task writes its rows as parquet files straight
into the table location (``mapInArrow``, pyarrow + fsspec) and returns one row per file
(path, size, partition values, statistics) for the driver's commit
(:mod:`lakehouse.spark.delta_bridge.commit`)."""

from __future__ import annotations

import json
import posixpath
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
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
    pass

from lakehouse.spark.delta_bridge.common import _HIVE_NULL, _conform, _filesystem, _is_remote
from lakehouse.spark.delta_bridge.stats import _minmax_summary, _stats_from_summaries

# --------------------------------------------------------------------------- write
_RESULT_SCHEMA = pa.schema(
    [
        ("path", pa.string()),  # relative to the table root, not URL-encoded
        ("size", pa.int64()),
        ("partition_values", pa.string()),  # JSON {col: str | null}
        ("modification_time", pa.int64()),
        ("num_records", pa.int64()),
        ("stats", pa.string()),  # Delta stats JSON
    ]
)
_RESULT_DDL = "path string, size long, partition_values string, modification_time long, num_records long, stats string"


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
    if ts_cols:  # µs timestamps with jitter are over half of the parquet bytes: delta encoding shrinks them
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
        results.append(
            {
                "path": st["rel"],
                "size": size,
                "partition_values": json.dumps(st["pvalues"]),
                "modification_time": int(time.time() * 1000),
                "num_records": st["rows"],
                "stats": _stats_from_summaries(st["stats_parts"], st["rows"]),
            }
        )

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
            st = {
                "writer": writer,
                "fh": fh,
                "rel": rel,
                "fs_path": fs_path,
                "pvalues": pvalues,
                "rows": 0,
                "stats_parts": [],
            }
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
