"""Per-file statistics of the parquet files the executors write: the ``stats`` JSON of a
Delta add action (numRecords, minValues, maxValues, nullCount), computed from Arrow batches
without re-reading the files."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
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

from lakehouse.spark.delta_bridge.common import _STRING_STATS_PREFIX


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


def _minmax_summary(tbl: pa.Table) -> _SummaryTable:
    """Two-row (min, max) table + null counts of a chunk, so file stats need no full copy."""
    cols, names = [], []
    for name, col in zip(tbl.column_names, tbl.columns):
        t = col.type
        if pa.types.is_nested(t):
            continue
        if pa.types.is_floating(t) and pc.any(pc.is_nan(col)).as_py():
            arr = pa.array([float("nan"), float("nan")], type=t)  # poison: no stats
        elif (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_timestamp(t)
            or pa.types.is_date(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
        ) and col.null_count < len(col):
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
    return json.dumps(
        {"numRecords": rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}, separators=(",", ":")
    )
