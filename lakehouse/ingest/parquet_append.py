"""Append Arrow rows to a partitioned Delta table: parquet written by pyarrow, committed by delta-rs.

Why this exists (and ``write_deltalake`` is not used for ``historian_readings``): bronze
historian rows arrive with dictionary-encoded strings — tag, unit, parameter and the per-file
lineage constants — and a batch of files shares those dictionaries once unified (a few
microseconds). pyarrow's parquet writer writes such arrays directly (dictionary page +
RLE indices); the arrow-rs writer inside delta-rs decodes every row and hashes the string
again. On the ingest benchmark (3.0 M rows, 12 columns, 11 date partitions,
``bench/bench_ingest.py``) the delta-rs write cost 0.46 CPU-s, this one 0.24 CPU-s, with the
same encodings and compression (zstd 1); the write was 40 % of the ingestion's CPU time, and
ingestion is the step that grows with the plant.

What stays delta-rs: the commit (``DeltaTable.create_write_transaction``): protocol and
append-only checks, the app-transaction ids (exactly-once, conflicts between concurrent
writers), commit metadata and checkpoints. A crash after the files are written and before
the commit leaves unreferenced files, exactly as a crashed ``write_deltalake`` would (the
retention vacuum removes them). The Delta statistics written are the ones the readers use:
``numRecords`` and min / max / null count of the ``stats_columns`` (timestamps as
milliseconds, the minimum rounded down and the maximum up, so they always bound the data).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction


@dataclass(frozen=True)
class ParquetLayout:
    """How the data files of one table are written.

    Parameters
    ----------
    dictionary : sequence of str
        Columns written with a dictionary page (strings with few distinct values).
    encodings : mapping of str to str
        Parquet encodings of the other columns (e.g. ``DELTA_BINARY_PACKED`` for timestamps,
        ``BYTE_STREAM_SPLIT`` for noisy doubles); unlisted columns are PLAIN.
    stats_columns : sequence of str
        Columns with parquet chunk statistics and Delta min/max statistics (file skipping).
    compression, compression_level
        Parquet compression codec and level.
    """

    dictionary: Sequence[str] = ()
    encodings: Mapping[str, str] = field(default_factory=dict)
    stats_columns: Sequence[str] = ()
    compression: str = "zstd"
    compression_level: int = 1


def _unify(data: pa.Table) -> pa.Table:
    """One dictionary per column across all chunks, so the writer keeps the indices as they are."""
    cols = []
    for i, f in enumerate(data.schema):
        col = data.column(i)
        if pa.types.is_dictionary(f.type) and col.num_chunks > 1:
            col = col.unify_dictionaries()
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=data.schema)


def _stat_value(v: object, ceil: bool) -> object:
    if isinstance(v, dt.datetime):  # Delta: milliseconds, a bound of the microsecond values
        us = v.microsecond
        ms = (math.ceil if ceil else math.floor)(us / 1000)
        v = v.replace(microsecond=0) + dt.timedelta(milliseconds=ms)
        return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _stats(part: pa.Table, columns: Sequence[str]) -> str:
    mins, maxs, nulls = {}, {}, {}
    for c in columns:
        col = part.column(c)
        nulls[c] = col.null_count
        if col.null_count < part.num_rows:
            mm = pc.min_max(col)
            mins[c] = _stat_value(mm["min"].as_py(), ceil=False)
            maxs[c] = _stat_value(mm["max"].as_py(), ceil=True)
    return json.dumps(
        {"numRecords": part.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}, separators=(",", ":")
    )


def _partitions(data: pa.Table, column: str) -> list[tuple[object, pa.Table]]:
    """(value, rows without the partition column) per distinct value of ``column``.

    Rows arrive day-major (one file per day, files in day order), so each value is usually
    one contiguous run: then the parts are zero-copy slices; otherwise filtered copies."""
    values = data.column(column)
    rest = data.drop_columns([column])
    if values.null_count == 0 and data.num_rows:
        arr = values.to_numpy()
        starts = np.concatenate([[0], np.flatnonzero(arr[1:] != arr[:-1]) + 1])
        if len(np.unique(arr[starts])) == len(starts):  # one run per value
            ends = [*starts[1:], data.num_rows]
            return [(values[int(a)].as_py(), rest.slice(int(a), int(b) - int(a))) for a, b in zip(starts, ends)]
    return [(v.as_py(), rest.filter(pc.equal(values, v))) for v in pc.unique(values)]


def _partition_dir(column: str, value: object) -> str:
    text = "__HIVE_DEFAULT_PARTITION__" if value is None else _stat_value(value, ceil=False)
    return f"{column}={urllib.parse.quote(str(text), safe='')}"


def _parquet_bytes(part: pa.Table, layout: ParquetLayout) -> bytes:
    dictionary = [c for c in layout.dictionary if c in part.column_names]
    sink = pa.BufferOutputStream()
    pq.write_table(
        part,
        sink,
        compression=layout.compression,
        compression_level=layout.compression_level,
        use_dictionary=dictionary,
        column_encoding={c: e for c, e in layout.encodings.items() if c in part.column_names and c not in dictionary},
        write_statistics=[c for c in layout.stats_columns if c in part.column_names],
        store_schema=False,  # readers take the types from the Delta schema, not an Arrow hint
    )
    return sink.getvalue().to_pybytes()


@dataclass(frozen=True)
class EncodedFile:
    """One parquet data file, encoded in memory and not yet in the table."""

    rel_path: str
    data: bytes
    partition_value: str | None
    stats: str


def encode(data: pa.Table, *, columns: Sequence[str], partition_by: str, layout: ParquetLayout) -> list[EncodedFile]:
    """Encode ``data`` as one parquet file per value of ``partition_by`` (CPU work only: no I/O,
    so it can run ahead of the commit, in another thread).

    Parameters
    ----------
    data : pyarrow.Table
        Rows in the table's column order (``columns``) and types; strings may be dictionary
        arrays.
    columns : sequence of str
        The table's columns, in order (a mismatch raises ``ValueError``).
    partition_by : str
        The table's single partition column.
    layout : ParquetLayout
        Encodings, statistics and compression of the data files.
    """
    if data.column_names != list(columns):
        raise ValueError(f"columns {data.column_names} do not match the table's {list(columns)}")
    if not data.num_rows:
        return []
    data = _unify(data)
    out = []
    for value, part in _partitions(data, partition_by):
        rel = f"{_partition_dir(partition_by, value)}/part-00000-{uuid.uuid4()}-c000.{layout.compression}.parquet"
        pv = None if value is None else str(_stat_value(value, ceil=False))
        out.append(EncodedFile(rel, _parquet_bytes(part, layout), pv, _stats(part, layout.stats_columns)))
    return out


def commit(
    dt_: DeltaTable,
    files: Sequence[EncodedFile],
    *,
    partition_by: str,
    filesystem,
    fs_root: str,
    commit_properties: CommitProperties | None = None,
) -> int:
    """Put the encoded files into the table's folder and commit them (one transaction, also
    when ``files`` is empty: the app transactions still record what was done); returns the
    table's version after the commit (``dt_`` is brought up to it).

    Parameters
    ----------
    dt_ : deltalake.DeltaTable
        The table, loaded at the snapshot the caller checked (its app transactions): the
        commit conflicts with any concurrent commit of the same transaction ids.
    files : sequence of EncodedFile
        From :func:`encode` (with this table's columns and partition column).
    partition_by : str
        The table's single partition column.
    filesystem : fsspec filesystem or None
        Where the files go (s3fs); None: ``fs_root`` is a local directory.
    fs_root : str
        The table's path on ``filesystem`` (or on the local disk).
    commit_properties : deltalake.CommitProperties, optional
        App transactions and custom metadata of the commit.
    """
    if list(dt_.metadata().partition_columns) != [partition_by]:
        raise ValueError(f"table is partitioned by {dt_.metadata().partition_columns}, not [{partition_by!r}]")
    now_ms = int(time.time() * 1000)
    _put(filesystem, fs_root, {f.rel_path: f.data for f in files})
    actions = [
        AddAction(f.rel_path, len(f.data), {partition_by: f.partition_value}, now_ms, True, f.stats) for f in files
    ]
    dt_.create_write_transaction(
        actions, "append", dt_.schema(), partition_by=[partition_by], commit_properties=commit_properties
    )
    # the transaction does not advance ``dt_`` (write_deltalake does): load what was committed.
    # With a concurrent writer this is a version at or after the commit (it holds the rows).
    dt_.update_incremental()
    return dt_.version()


def _put(filesystem, fs_root: str, files: dict[str, bytes]) -> None:
    root = fs_root.rstrip("/")
    if filesystem is None:
        for rel, blob in files.items():
            path = Path(root, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
    elif files:  # s3fs puts the files concurrently
        filesystem.pipe({f"{root}/{rel}": blob for rel, blob in files.items()})
