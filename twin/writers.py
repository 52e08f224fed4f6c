"""Landing-zone I/O for the twin: an fsspec writer (local folder or S3) and fast formatters.

* :class:`LandingWriter` writes bytes under a root URI through
  ``fsspec.core.url_to_fs(out, **storage_options)``; on object stores it batches uploads
  (``fs.pipe`` with many files at once runs them concurrently in s3fs).
* Timestamps are formatted once per array with numpy (``2026-01-03T08:15:00.123Z``) and CSVs
  are written with ``pyarrow.csv`` from column arrays - no Python row loops.
* JSON is written with a fixed key order and rounded floats so that the same seed gives
  byte-identical files.
"""

from __future__ import annotations

import io
import json
import posixpath
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lakehouse.jsonsafe import clean

EPOCH_MS = np.datetime64(0, "ms")


class LandingWriter:
    """Write files under ``out`` (a local path or ``s3://bucket/prefix``)."""

    def __init__(
        self,
        out: str,
        storage_options: dict[str, Any] | None = None,
        batch_bytes: int = 64 << 20,
        batch_files: int = 256,
    ) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(out, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self._made: set[str] = set()
        self._pending: dict[str, bytes] = {}
        self._pending_bytes = 0
        self.batch_bytes = batch_bytes
        self.batch_files = batch_files
        self.files_written = 0
        self.bytes_written = 0
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)
        else:
            bucket = self.root.split("/", 1)[0]
            if not self.fs.exists(bucket):
                self.fs.mkdir(bucket)

    def path(self, rel: str) -> str:
        """The full path of a landing-relative path ``rel``."""
        return posixpath.join(self.root, rel)

    def put(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``<root>/<rel>`` (buffered on object stores)."""
        path = self.path(rel)
        self.files_written += 1
        self.bytes_written += len(data)
        if self.local:
            parent = posixpath.dirname(path)
            if parent not in self._made:
                self.fs.makedirs(parent, exist_ok=True)
                self._made.add(parent)
            with self.fs.open(path, "wb") as f:
                f.write(data)
            return
        self._pending[path] = data
        self._pending_bytes += len(data)
        if self._pending_bytes >= self.batch_bytes or len(self._pending) >= self.batch_files:
            self.flush()

    def flush(self) -> None:
        """Write the buffered files (one batched ``pipe`` call)."""
        if self._pending:
            self.fs.pipe(self._pending)
            self._pending = {}
            self._pending_bytes = 0

    def close(self) -> None:
        """Write what is still buffered."""
        self.flush()

    def __enter__(self) -> LandingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


# --------------------------------------------------------------------------- formatting


def to_datetime64(start: str | np.datetime64) -> np.datetime64:
    """UTC start (``2026-01-01`` or ISO) as ``datetime64[ms]``."""
    s = str(start).rstrip("Z")
    return np.datetime64(s, "ms")


def iso_ms(t0: np.datetime64, hours: np.ndarray | float) -> np.ndarray:
    """ISO-8601 UTC strings with milliseconds and ``Z`` for ``t0 + hours``."""
    ms = np.round(np.asarray(hours, dtype=float) * 3_600_000.0).astype(np.int64)
    s = np.datetime_as_string(t0 + ms.astype("timedelta64[ms]"), unit="ms")
    return np.char.add(s, "Z")


def iso1(t0: np.datetime64, hours: float) -> str | None:
    """One ISO string, or None for a non-finite time."""
    if hours is None or not np.isfinite(hours):
        return None
    return str(iso_ms(t0, float(hours)))


def ts_array(t0: np.datetime64, hours: np.ndarray) -> pa.Array:
    """Arrow ``timestamp[us, tz=UTC]`` array (null where not finite)."""
    h = np.asarray(hours, dtype=float)
    ok = np.isfinite(h)
    us = np.where(ok, np.round(np.where(ok, h, 0.0) * 3.6e9), 0).astype(np.int64)
    base = (t0 - np.datetime64(0, "us")).astype("timedelta64[us]").astype(np.int64)
    return pa.array(base + us, type=pa.timestamp("us", tz="UTC"), mask=~ok)


def csv_bytes(columns: dict[str, Any]) -> bytes:
    """CSV (header, comma, no quoting needed) from column arrays/lists, via pyarrow."""
    header = ",".join(columns) + "\n"
    arrays = []
    for v in columns.values():
        if isinstance(v, pa.Array | pa.ChunkedArray):
            arrays.append(v)
        else:
            a = np.asarray(v)
            if a.dtype.kind == "f":
                a = a + 0.0  # no "-0"
            arrays.append(pa.array(a if a.dtype.kind != "O" else list(a)))
    table = pa.Table.from_arrays(arrays, names=list(columns))
    # quote only when some text needs it (CMMS descriptions with commas); plain otherwise
    needs = False
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            hit = pc.any(pc.match_substring_regex(col, r'[,"\n\r]'))
            needs = needs or bool(hit.as_py())
    buf = pa.BufferOutputStream()
    buf.write(header.encode())
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed" if needs else "none"))
    return buf.getvalue().to_pybytes()


def rounded(x: np.ndarray, decimals: int) -> np.ndarray:
    """``x`` as floats rounded to ``decimals`` (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    return np.round(np.asarray(x, dtype=float), decimals) + 0.0


def json_bytes(obj: Any) -> bytes:
    """Deterministic JSON (key order as given, floats rounded to 6 decimals)."""
    return (json.dumps(clean(obj, digits=6), indent=2, ensure_ascii=False) + "\n").encode()


def parquet_bytes(table: pa.Table) -> bytes:
    """An Arrow table as zstd-compressed parquet bytes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
