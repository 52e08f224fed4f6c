"""Exactly-once ingestion of source files into bronze Delta tables.

Identity of a source-file version: ``<namespace>:<rel_path>@<sha256>``. It is recorded as a
Delta *app transaction* (``txn`` action, ``CommitProperties(app_transactions=[...])``) in the
SAME commit that appends the file's rows — atomic with the data. One commit carries the rows
and the txn ids of many files (a batch), so thousands of files do not mean thousands of
commits.

Order of commits for one batch of files (every step is idempotent on its own):

1. ``_quarantine``: rejected rows/files of the batch whose txn id is not yet in
   ``_quarantine``, with those ids;
2. each bronze table of the file kind (fixed order): the valid rows of the files whose txn id
   is not yet in that table, with the ids of ALL those files (also those with no valid rows,
   so "done" is visible per table);
3. ``_ingest_log``: one bookkeeping row per file version (a cache for cheap "what is new?"
   checks by the sensor and the assets — never the source of truth).

A crash between any two steps is repaired by the next run: files missing from the log are read
and hashed again; tables that already hold a file's txn id skip it, tables that do not get it.
Validation is deterministic (the far-future bound is rounded to the day), so the re-run
classifies the rows the same way: no duplicates, no loss. The DeltaTable object used to check
the txn ids is the one written through, so two concurrent runs that try to commit the same file
version conflict in delta-rs ("concurrent transaction") instead of both appending; the loser
re-checks and skips.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake

from lakehouse.ingest import parquet_append
from lakehouse.ingest.parsing import FileRejected, head_preview, raw_records_csv
from lakehouse.ingest.readers import KINDS, FastPart, IngestContext, Kind, SourceFile, kind_for, validate_table
from lakehouse.ingest.schemas import (
    BRONZE_TABLE_PROPERTIES,
    INGEST_LOG_SCHEMA,
    INGEST_LOG_TABLE,
    PARTITION_BY,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    schema_of,
)
from lakehouse.ingest.validation import split_invalid
from lakehouse.provenance import code_version
from lakehouse.retry import DEFAULT_POLICY, RetryPolicy, retrying
from lakehouse.storage import Lake

log = logging.getLogger(__name__)

# Test/ops hook points: callables ``hook(event: str, info: dict)`` fired before each bronze
# commit ("bronze_committing") and after each commit ("quarantine_committed",
# "bronze_committed", "log_committed"). Nothing in the library reads the environment; the
# crash test's harness script appends a hook that os._exit()s, the overlapping-ingestion test
# one that holds a run back.
HOOKS: list[Callable[[str, dict[str, Any]], None]] = []

WRITER_PROPERTIES = WriterProperties(compression="ZSTD", compression_level=1)
# historian_readings: written by pyarrow, committed by delta-rs (lakehouse/ingest/parquet_append.py
# says why; measured with bench/bench_ingest.py, docs/ingestion.md "Performance"):
# - ts: DELTA_BINARY_PACKED, min/max per chunk and in the Delta stats (time pruning).
# - value: PLAIN, no dictionary. BYTE_STREAM_SPLIT costs less CPU but made the twin's values
#   2.3x larger (setpoints and held readings repeat: zstd finds them in PLAIN bytes).
# - every string column: dictionary pages (the rows arrive as dictionary arrays; the batch's
#   dictionaries are unified and written as they are) and no statistics. A commit holds a
#   whole batch of files, so one file per `date` partition mixes all units, tags and
#   parameters: min/max of unit_id/parameter would prune nothing.
PARQUET_LAYOUTS = {
    "historian_readings": parquet_append.ParquetLayout(
        dictionary=["unit_id", "tag", "parameter", "eng_unit", "_source_file", "_source_hash", "_run_id"],
        encodings={"ts": "DELTA_BINARY_PACKED", "_ingested_at": "DELTA_BINARY_PACKED"},
        stats_columns=["ts"],
    )
}
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
DEFAULT_BATCH_FILES = 5000
# The ingest log gets one small file per ingestion commit and every run reads all of it
# (``read_log``: which files are new, which contents are already in bronze). Left alone, a
# burst of small runs makes that read O(commits) — 16 writers × 50 runs on S3: 800 files,
# 17 s per read under contention, and a run's latency grew from 6 s to 26 s after 12 runs
# (bench/bench_integrity.py, docs/ingestion.md "Performance"). The writer that commits
# log version k·LOG_COMPACT_EVERY compacts the log's small files (one writer per multiple: no
# stampede; rows and app-transaction ids unchanged, allowed on the append-only table), so a
# read touches at most ~LOG_COMPACT_EVERY + a few files.
LOG_COMPACT_EVERY = 20
# A run writes its ingest-log rows at most this often (and once at its end): _LogBuffer.
LOG_FLUSH_SECONDS = 5.0
LOG_COMPACT_TARGET_BYTES = 16 * 1024 * 1024


def _fire(event: str, **info: Any) -> None:
    for h in list(HOOKS):
        h(event, info)


# ============================================================== table helpers
def table_uri(lake: Lake, table: str) -> str:
    """URI of a bronze table (or the quarantine / ingest log) in the lake."""
    return lake.table_uri("bronze", table)


def ensure_table(lake: Lake, table: str) -> DeltaTable:
    """Open a bronze table, creating it (empty, contract schema, append-only and with the
    retention floor: ``BRONZE_TABLE_PROPERTIES``) if it does not exist."""
    uri = table_uri(lake, table)
    opts = lake.delta_storage_options()
    if not DeltaTable.is_deltatable(uri, storage_options=opts):
        try:
            DeltaTable.create(
                uri,
                schema_of(table),
                mode="ignore",
                partition_by=PARTITION_BY.get(table),
                storage_options=opts,
                name=table,
                configuration=dict(BRONZE_TABLE_PROPERTIES),
            )
        except Exception:  # a concurrent creator won: fine, open it below
            if not DeltaTable.is_deltatable(uri, storage_options=opts):
                raise
    return DeltaTable(uri, storage_options=opts)


def app_id(namespace: str, rel_path: str, sha256: str) -> str:
    """Delta app-transaction id of one source file version: exactly-once per (namespace, path, hash)."""
    return f"{namespace}:{rel_path}@{sha256}"


def _committed(dt_: DeltaTable, ids: Iterable[str]) -> set[str]:
    return {i for i in ids if dt_.transaction_version(i) is not None}


def _commit(
    lake: Lake,
    table: str,
    dt_: DeltaTable,
    data: pa.Table,
    ids: Sequence[str],
    run_id: str,
    provenance: dict[str, str] | None = None,
) -> int:
    return append_rows(lake, table, dt_, data, _commit_properties(ids, run_id, provenance))


def _commit_properties(ids: Sequence[str], run_id: str, provenance: dict[str, str] | None) -> CommitProperties:
    """The app transactions of ``ids`` and the ingestion's commit metadata."""
    now_ms = int(time.time() * 1000)
    return CommitProperties(
        app_transactions=[Transaction(i, 1, now_ms) for i in ids],
        custom_metadata={
            "lakehouse.operation": "ingest",
            "lakehouse.run_id": run_id,
            "lakehouse.files": str(len(ids)),
            **(provenance or {}),
        },
    )


def append_rows(lake: Lake, table: str, dt_: DeltaTable, data: pa.Table, commit: CommitProperties) -> int:
    """Append ``data`` to the bronze ``table`` (opened as ``dt_``) in one commit; the new version.

    ``historian_readings`` is written by pyarrow and committed by delta-rs
    (:mod:`lakehouse.ingest.parquet_append`, layout ``PARQUET_LAYOUTS``); the small tables by
    ``write_deltalake``. The one way bronze rows are appended (file ingestion and the live
    collector)."""
    if table in PARQUET_LAYOUTS:
        return _commit_files(lake, table, dt_, _encode(table, data), commit)
    write_deltalake(
        dt_,
        data,
        mode="append",
        partition_by=PARTITION_BY.get(table),
        writer_properties=WRITER_PROPERTIES,
        commit_properties=commit,
    )
    return dt_.version()


def ingest_provenance(ctx: IngestContext) -> dict[str, str]:
    """The configuration in force, recorded in every ingestion commit: hash of the ingest
    config (tag map, time policy, analyte table, format options), the tag map's source and
    site, and the code version."""
    return {
        "lakehouse.config_sha256": ctx.fingerprint(),
        "lakehouse.tagmap": ctx.tagmap.source,
        "lakehouse.tagmap_site": ctx.tagmap.site,
        "lakehouse.code_version": code_version(),
    }


def _rows_of(table: str, rows_by_id: dict[str, pa.Table | None], ids: Sequence[str]) -> pa.Table:
    """The rows of ``ids`` (in that order) as one table of ``table``'s contract columns."""
    parts = [rows_by_id[i] for i in ids if rows_by_id[i] is not None and rows_by_id[i].num_rows]
    schema = schema_of(table)
    if parts and any(not p.schema.equals(parts[0].schema) for p in parts[1:]):
        # mixed physical encodings (e.g. dictionary vs plain string): the contract types
        parts = [p.cast(schema) for p in parts]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _encode(table: str, data: pa.Table) -> list[parquet_append.EncodedFile]:
    """The parquet files of ``data`` for a table written by pyarrow (``PARQUET_LAYOUTS``)."""
    return parquet_append.encode(
        data, columns=schema_of(table).names, partition_by=PARTITION_BY[table][0], layout=PARQUET_LAYOUTS[table]
    )


def _commit_files(
    lake: Lake, table: str, dt_: DeltaTable, files: list[parquet_append.EncodedFile], commit: CommitProperties
) -> int:
    """Put encoded files into ``table``'s folder and commit them; the table's new version."""
    return parquet_append.commit(
        dt_,
        files,
        partition_by=PARTITION_BY[table][0],
        filesystem=lake.filesystem() if lake.is_s3 else None,
        fs_root=lake.fs_path(table_uri(lake, table)),
        commit_properties=commit,
    )


def _encode_ahead(table: str, rows_by_id: dict[str, pa.Table | None]) -> list[parquet_append.EncodedFile]:
    """The parquet files of all of ``rows_by_id`` (encoded while earlier batches commit)."""
    return _encode(table, _rows_of(table, rows_by_id, list(rows_by_id)))


def _write_exactly_once(
    lake: Lake,
    table: str,
    rows_by_id: dict[str, pa.Table | None],
    run_id: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    provenance: dict[str, str] | None = None,
    encoded: Future | None = None,
) -> tuple[int, int | None, set[str]]:
    """Append the rows of every id not yet committed in ``table``, with the ids, in ONE commit.

    ``encoded`` (optional): the parquet files of ALL of ``rows_by_id``, encoded ahead
    (:func:`_encode_ahead`); used when none of the ids is committed yet (the normal case),
    otherwise the rows still to write are encoded here.

    Returns (rows written, new version or None, ids skipped as already committed).
    """
    if not rows_by_id:
        return 0, None, set()

    def attempt() -> tuple[int, int | None, set[str]]:
        # every attempt re-reads the committed ids: a concurrent writer that committed some of
        # these files, or an earlier attempt whose answer was lost, is never repeated
        dt_ = ensure_table(lake, table)
        done = _committed(dt_, rows_by_id)
        todo = [i for i in rows_by_id if i not in done]
        if not todo:
            return 0, None, done
        if encoded is not None and not done:
            version = _commit_files(lake, table, dt_, encoded.result(), _commit_properties(todo, run_id, provenance))
            return sum(r.num_rows for r in rows_by_id.values() if r is not None), version, done
        data = _rows_of(table, rows_by_id, todo)
        version = _commit(lake, table, dt_, data, todo, run_id, provenance)
        return data.num_rows, version, done

    return retrying(attempt, f"commit to bronze/{table}", policy)


# ============================================================== listing
def fingerprint(info: dict[str, Any]) -> str:
    """The listing pre-check of a file: it changes whenever the file may have changed.

    Object stores: size + ETag (the store's content hash). Local and POSIX filesystems: size,
    mtime, ctime and inode. ``cp -p`` and ``rsync -a`` give a corrected re-export the old size
    and mtime back, but nothing can set ctime (a write or a rename-into-place changes it, the
    latter the inode too). A changed fingerprint only means "read and hash it": the file's
    identity is its content hash (``<rel_path>@<sha256>`` in the bronze commits), so a file
    that was merely touched is re-read once and recognised as already committed.
    """
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return f"{info.get('size', -1)}:{str(etag).strip(chr(34))}"
    if "ino" in info or "created" in info:  # fsspec LocalFileSystem: st_mtime, st_ctime, st_ino
        return f"{info.get('size', -1)}:{info.get('mtime', '')}:{info.get('created', '')}:{info.get('ino', '')}"
    tag = info.get("mtime") or info.get("LastModified") or ""
    return f"{info.get('size', -1)}:{tag}"


_IGNORED_SUFFIXES = (".tmp", ".part", ".crc", ".lock", ".swp")


SYMLINK_REASON = "symbolic link (not followed: only files inside the landing zone are read)"


def _walk_local(base: str) -> Iterable[tuple[str, dict[str, Any]]]:
    """(path, info) of every entry below ``base`` without following symbolic links: a link
    (to a file or a directory, inside or outside the landing zone) is yielded as itself with
    ``islink`` and its ``target``, never read or descended into."""
    import os

    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for name in sorted(dirnames):  # os.walk lists links to directories here, and skips them
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                yield (
                    path,
                    {"type": "link", "islink": True, "link_to_dir": True, "target": os.readlink(path), "size": 0},
                )
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                yield path, {"type": "link", "islink": True, "target": os.readlink(path), "size": 0}
            else:
                yield (
                    path,
                    {
                        "type": "file",
                        "size": st.st_size,
                        "mtime": st.st_mtime,
                        "created": st.st_ctime,
                        "ino": st.st_ino,
                    },
                )


def list_landing(
    lake: Lake, systems: Iterable[str] | None = None, predicate: Callable[[SourceFile], bool] | None = None
) -> tuple[list[SourceFile], list[str]]:
    """Landing files of the given systems: (recognised files, ignored paths).

    ``landing/_truth`` is never listed. Hidden/temporary files (``.x``, ``_x``, ``*.tmp`` …)
    are skipped silently; other unrecognised names are returned as ignored. Symbolic links are
    never followed: a link with a recognised name is returned as a file flagged
    ``meta["symlink"]`` (quarantined without being read), any other link as ignored.
    """
    from lakehouse.ingest.readers import SYSTEMS

    fs = lake.filesystem()
    root = lake.fs_path(lake.landing).rstrip("/")
    files, ignored = [], []
    for system in systems or SYSTEMS:
        base = f"{root}/{system}"
        try:
            fs.invalidate_cache(base)
        except Exception:  # pragma: no cover
            pass
        if lake.is_s3:
            if not fs.exists(base):
                continue
            entries = sorted(fs.find(base, detail=True).items())
        else:
            import os

            if os.path.islink(base):
                ignored.append(f"{system} ({SYMLINK_REASON})")
                continue
            if not os.path.isdir(base):
                continue
            entries = list(_walk_local(base))
        for path, info in entries:
            if info.get("type", "file") == "directory":
                continue
            rel = path[len(root) + 1 :] if path.startswith(root + "/") else path
            name = rel.rsplit("/", 1)[-1]
            if name.startswith((".", "_")) or name.endswith(_IGNORED_SUFFIXES):
                continue
            hit = kind_for(rel)
            if hit is None or info.get("link_to_dir"):
                ignored.append(f"{rel} ({SYMLINK_REASON})" if info.get("islink") else rel)
                continue
            kind, meta = hit
            if info.get("islink"):
                target = str(info.get("target", ""))
                sf = SourceFile(
                    uri=lake.uri("landing", rel),
                    rel_path=rel,
                    size=0,
                    fingerprint=f"symlink:{target}",
                    kind=kind.name,
                    meta={**meta, "symlink": target},
                    data=b"",
                    sha256=hashlib.sha256(f"symlink:{target}".encode()).hexdigest(),
                )
            else:
                sf = SourceFile(
                    uri=lake.uri("landing", rel),
                    rel_path=rel,
                    size=int(info.get("size", -1)),
                    fingerprint=fingerprint(info),
                    kind=kind.name,
                    meta=meta,
                )
            if predicate is None or predicate(sf):
                files.append(sf)
    return files, ignored


def read_log(lake: Lake, systems: Iterable[str] | None = None) -> pl.DataFrame:
    """The ingest log (rel_path, fingerprint, source_hash, system …), empty if absent."""
    uri = table_uri(lake, INGEST_LOG_TABLE)
    if not DeltaTable.is_deltatable(uri, storage_options=lake.delta_storage_options()):
        return pl.from_arrow(INGEST_LOG_SCHEMA.empty_table())
    dt_ = DeltaTable(uri, storage_options=lake.delta_storage_options())
    # a dataset scan without Arrow's background threads: the log is small, and scanner threads
    # still alive at interpreter exit can abort the process (apache/arrow#34314)
    import pyarrow.compute as pc

    ds = dt_.to_pyarrow_dataset()
    flt = pc.field("system").isin(list(systems)) if systems else None
    tbl = ds.to_table(
        columns=["system", "rel_path", "fingerprint", "source_hash", "rows_bronze", "file_rejected"],
        filter=flt,
        use_threads=False,
    )
    return pl.from_arrow(tbl)


def pending_files(lake: Lake, files: Sequence[SourceFile], log_df: pl.DataFrame | None = None) -> list[SourceFile]:
    """Files whose (rel_path, fingerprint) the ingest log does not know: new or changed."""
    if log_df is None:
        log_df = read_log(lake)
    known = set(zip(log_df.get_column("rel_path").to_list(), log_df.get_column("fingerprint").to_list()))
    return [f for f in files if (f.rel_path, f.fingerprint) not in known]


def _ingested_hashes(log_df: pl.DataFrame | None, pending: set[str]) -> dict[str, dict[str, str]]:
    """Per system, sha256 -> rel_path of a file the log says was ingested with rows (not
    rejected), for the duplicate-content check. Files about to be (re)ingested do not count:
    their own earlier version is not a duplicate of them."""
    out: dict[str, dict[str, str]] = {}
    if log_df is None or log_df.height == 0 or "source_hash" not in log_df.columns:
        return out
    cols = [c for c in ("system", "rel_path", "source_hash", "rows_bronze", "file_rejected") if c in log_df.columns]
    df = log_df.select(cols)
    if "rows_bronze" in df.columns:
        df = df.filter(pl.col("rows_bronze") > 0)
    if "file_rejected" in df.columns:
        df = df.filter(~pl.col("file_rejected").fill_null(False))
    for system, rel, sha in df.select("system", "rel_path", "source_hash").iter_rows():
        if sha and rel not in pending:
            out.setdefault(system, {}).setdefault(sha, rel)
    return out


def fetch(lake: Lake, files: Sequence[SourceFile], fs=None, hash_now: bool = True) -> None:
    """Read the bytes of the files (concurrently on S3) and hash them (sha256)."""
    fs = fs or lake.filesystem()
    todo = [f for f in files if f.data is None]
    remote = [f for f in todo if f.uri.startswith(("s3://", "s3a://"))]
    if remote:
        paths = [lake.fs_path(f.uri) for f in remote]
        got = fs.cat(paths, on_error="return") if len(paths) > 1 else {paths[0]: fs.cat_file(paths[0])}
        for f, p in zip(remote, paths):
            v = got[p]
            if isinstance(v, Exception):
                raise v
            f.data = v
    for f in todo:
        if f.data is None:
            with open(f.uri.removeprefix("file://"), "rb") as fh:
                f.data = fh.read()
    if hash_now:
        for f in files:
            _hash(f)


class DiskFullError(OSError):
    """The local lake's filesystem has not enough free space for the next batch."""


def ensure_disk_space(lake: Lake, batch_bytes: int, factor: float = 3.0, reserve: int = 64 << 20) -> None:
    """Refuse to start a batch that would fill a local lake's disk (delta-rs would stop with a
    panic mid-write): the free space must exceed ``factor`` × the batch's source bytes (parsed
    rows, parquet files and the log) plus a reserve. No-op on object stores."""
    if lake.is_s3:
        return
    import shutil
    from pathlib import Path

    path = Path(lake.root)
    while not path.exists() and path != path.parent:
        path = path.parent
    free = shutil.disk_usage(path).free
    need = int(batch_bytes * factor) + reserve
    if free < need:
        raise DiskFullError(
            errno.ENOSPC,
            f"disk full: {free / 1e6:.0f} MB free on {path}, the next ingestion "
            f"batch needs about {need / 1e6:.0f} MB; free space and run again "
            f"(nothing was lost: the batch was not started)",
        )


def _hash(f: SourceFile) -> None:
    if f.sha256 is None:
        f.sha256 = hashlib.sha256(f.data).hexdigest()  # releases the GIL: runs in parse threads
    if f.size < 0:
        f.size = len(f.data)


# ============================================================== report
@dataclass
class IngestReport:
    """What an ingestion did: files listed/ingested/skipped/rejected, rows read/valid/written/quarantined
    per table, quarantine reasons, Delta versions and timing.
    """

    run_id: str
    files_listed: int = 0
    files_skipped_unchanged: int = 0  # known to the ingest log (not even read)
    files_already_committed: int = 0  # read + hashed, every table already had the version
    files_ingested: int = 0
    files_rejected: list[dict[str, str]] = field(default_factory=list)
    files_ignored: list[str] = field(default_factory=list)
    rows_read: Counter = field(default_factory=Counter)  # per table: classified this run
    rows_valid: Counter = field(default_factory=Counter)
    rows_quarantined: Counter = field(default_factory=Counter)  # incl. whole-file rejects (1 each)
    rows_written: Counter = field(default_factory=Counter)  # actually appended this run
    quarantine_written: int = 0
    reasons: Counter = field(default_factory=Counter)
    versions: dict[str, int] = field(default_factory=dict)
    commits: int = 0
    seconds: float = 0.0

    def merge(self, other: IngestReport) -> None:
        """Add the counts of another report to this one."""
        for name in (
            "files_listed",
            "files_skipped_unchanged",
            "files_already_committed",
            "files_ingested",
            "quarantine_written",
            "commits",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.files_rejected += other.files_rejected
        self.files_ignored += other.files_ignored
        for name in ("rows_read", "rows_valid", "rows_quarantined", "rows_written", "reasons"):
            getattr(self, name).update(getattr(other, name))
        self.versions.update(other.versions)
        self.seconds += other.seconds

    def for_tables(self, tables: Iterable[str]) -> dict[str, Any]:
        """The report restricted to ``tables`` (as a dict)."""
        tables = list(tables)
        return {
            "rows_read": sum(self.rows_read[t] for t in tables),
            "rows_bronze": sum(self.rows_valid[t] for t in tables),
            "rows_quarantined": sum(self.rows_quarantined[t] for t in tables),
            "rows_written": sum(self.rows_written[t] for t in tables),
        }

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dict."""
        return {
            "run_id": self.run_id,
            "files_listed": self.files_listed,
            "files_skipped_unchanged": self.files_skipped_unchanged,
            "files_already_committed": self.files_already_committed,
            "files_ingested": self.files_ingested,
            "files_rejected": self.files_rejected,
            "files_ignored": self.files_ignored,
            "rows_read": dict(self.rows_read),
            "rows_valid": dict(self.rows_valid),
            "rows_quarantined": dict(self.rows_quarantined),
            "rows_written": dict(self.rows_written),
            "quarantine_written": self.quarantine_written,
            "reasons": dict(self.reasons),
            "versions": self.versions,
            "commits": self.commits,
            "seconds": round(self.seconds, 3),
        }


def _reason_key(reason: str) -> str:
    """Group reasons for metadata: drop the offending value."""
    return "; ".join(
        part.split(" (", 1)[0].split(":", 1)[0]
        if part.startswith(("non-numeric", "unparseable", "non-integer", "unreadable", "not UTF-8", "missing column"))
        else part.split(" (", 1)[0]
        for part in reason.split("; ")
    )


# ============================================================== the engine
def const_string(value: str, n: int) -> pa.Array:
    """A string array of ``n`` times ``value``, built from buffers (``pa.repeat`` is slow)."""
    b = value.encode("utf-8")
    width = len(b)
    if width * n >= 2**31:  # pragma: no cover - blocks are far smaller
        return pa.array([value] * n, pa.large_string()).cast(pa.string())
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32) if width else np.zeros(n + 1, np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(b * n))


def const_ts(value: dt.datetime, n: int) -> pa.Array:
    """An Arrow UTC timestamp array of ``n`` copies of ``value`` (built without a Python loop)."""
    us = int(value.timestamp() * 1_000_000)
    return pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), n, [None, pa.py_buffer(np.full(n, us, dtype=np.int64))])


_DICT_STRING = pa.dictionary(pa.int32(), pa.string())


def const_dict_string(value: str, indices: pa.Array) -> pa.DictionaryArray:
    """``value`` on every row, as a one-entry dictionary (``indices``: all zeros, shareable)."""
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


def write_schema(table: str, schema: pa.Schema) -> pa.Schema:
    """The contract schema of ``table``, keeping ``dictionary<int32, string>`` where ``schema``
    has it for a contract ``string`` column (a physical encoding only: Delta, DuckDB, polars
    and Spark read those columns as plain strings)."""
    out = []
    for fld in schema_of(table):
        i = schema.get_field_index(fld.name)
        keep = i >= 0 and fld.type == pa.string() and schema.field(i).type == _DICT_STRING
        out.append(fld.with_type(_DICT_STRING) if keep else fld)
    return pa.schema(out)


def _with_lineage(block: pa.Table, f: SourceFile, table: str, run_id: str, ingested_at: dt.datetime) -> pa.Table:
    """Append the lineage columns. The three per-file constant strings are one-entry
    dictionaries over one shared all-zero index buffer: no per-row copy of a ~100-byte URI
    and a 64-character hash (which the parquet writer would only dictionary-encode again)."""
    n = block.num_rows
    zeros = pa.array(np.zeros(n, dtype=np.int32))
    block = block.append_column("_source_file", const_dict_string(f.uri, zeros))
    block = block.append_column("_source_hash", const_dict_string(f.sha256, zeros))
    block = block.append_column("_run_id", const_dict_string(run_id, zeros))
    block = block.append_column("_ingested_at", const_ts(ingested_at, n))
    schema = write_schema(table, block.schema)
    return block if block.schema.equals(schema) else block.cast(schema)


def _split_by_file(tbl: pa.Table, file_idx: np.ndarray, n_files: int) -> list[pa.Table | None]:
    """Row blocks per file index (rows of one file are not necessarily contiguous)."""
    out: list[pa.Table | None] = [None] * n_files
    if tbl.num_rows == 0:
        return out
    order = np.argsort(file_idx, kind="stable")
    sorted_idx = file_idx[order]
    bounds = np.searchsorted(sorted_idx, np.arange(n_files + 1))
    contiguous = bool(np.all(order == np.arange(len(order))))
    for i in range(n_files):
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            out[i] = tbl.slice(a, b - a) if contiguous else tbl.take(pa.array(order[a:b]))
    return out


@dataclass
class _Prepared:
    """A validated batch, ready to commit (quarantine, then each bronze table, then the log)."""

    kind: Kind
    quarantine: dict[str, pa.Table]  # app id -> quarantine rows
    tables: dict[str, dict[str, pa.Table | None]]  # table -> app id -> rows (None: no rows)
    log_rows: list[dict]
    rejected_ids: set[str] = field(default_factory=set)
    encoded: dict[str, Future] = field(default_factory=dict)  # table -> parquet files of all its rows


def _rows_in(result: Any) -> int:
    """Data rows of a parse result (table -> FastPart | polars frame); 0 for a rejected file."""
    if isinstance(result, Exception):
        return 0
    return sum(p.payload.num_rows if isinstance(p, FastPart) else p.height for p in result.values())


def _reject_duplicates(files: list[SourceFile], results: list[Any], seen: dict[str, str]) -> None:
    """A file with data whose content (sha256) is already in bronze under another name — or
    earlier in this run — is not ingested again: it becomes a rejected file (one quarantine
    row with the reason). ``seen``: sha256 -> rel_path of the file that holds it, updated."""
    for j, f in enumerate(files):
        if _rows_in(results[j]) == 0:  # e.g. header-only exports: identical, but nothing to double
            continue
        first = seen.setdefault(f.sha256, f.rel_path)
        if first != f.rel_path:
            results[j] = FileRejected(f"duplicate file: same content (sha256 {f.sha256[:16]}) as {first}")


def _parse_all(kind: Kind, files: list[SourceFile], ctx: IngestContext, pool) -> Callable[[], list[Any]]:
    """Start hashing and parsing the files (in ``pool``'s threads when given); returns the
    function that waits for the results, in file order (a :class:`FileRejected` per file
    that cannot be read)."""

    def one(f: SourceFile):
        if f.meta.get("symlink") is not None:  # never read: not even the first bytes
            return FileRejected(f"{SYMLINK_REASON} -> {f.meta['symlink'][:200]}")
        _hash(f)
        try:
            return kind.parse(f, ctx)
        except FileRejected as exc:
            return exc
        except Exception as exc:
            log.warning("unexpected error reading %s: %r", f.rel_path, exc)
            return FileRejected(f"unreadable file ({type(exc).__name__}: {str(exc)[:200]})")

    if pool is None or len(files) < 2:
        done = [one(f) for f in files]
        return lambda: done
    futures = [pool.submit(one, f) for f in files]
    return lambda: [fut.result() for fut in futures]


def _prepare_batch(
    lake: Lake,
    kind: Kind,
    files: list[SourceFile],
    ctx: IngestContext,
    run_id: str,
    namespace: str,
    report: IngestReport,
    ingested_at: dt.datetime,
    pool,
    seen_hashes: dict[str, str] | None = None,
    parsed: Callable[[], list[Any]] | None = None,
) -> _Prepared:
    """Parse (or take the ``parsed`` results started by :func:`_parse_all`), validate and
    split one batch of files into quarantine rows, bronze rows and ingest-log rows."""
    # No "already committed?" lookup here: every table checks the txn ids of the batch right
    # before its commit (one lookup per file and table), which is what makes it exactly-once.
    wfiles = list(files)
    prepared = _Prepared(kind, {}, {t: {} for t in kind.tables}, [])
    if not wfiles:
        return prepared
    n = len(wfiles)
    results = (parsed or _parse_all(kind, wfiles, ctx, pool))()  # hashes too (in the pool's threads)
    if seen_hashes is not None:
        _reject_duplicates(wfiles, results, seen_hashes)
    wids = [app_id(namespace, f.rel_path, f.sha256) for f in wfiles]
    rejected = {j: str(r) for j, r in enumerate(results) if isinstance(r, FileRejected)}
    per_file_rows = {t: np.zeros(n, np.int64) for t in kind.tables}
    per_file_bad = {t: np.zeros(n, np.int64) for t in kind.tables}
    q_parts: list[pl.DataFrame] = []
    for t in kind.tables:
        parts = [(j, r[t]) for j, r in enumerate(results) if not isinstance(r, Exception) and t in r]
        blocks: list[pa.Table | None] = [None] * n
        if parts:
            if isinstance(parts[0][1], FastPart):
                lens = np.array([p.check.num_rows for _, p in parts], dtype=np.int64)
                file_no = np.repeat(np.array([j for j, _ in parts], dtype=np.int32), lens)
                check = pl.from_arrow(
                    pa.concat_tables([p.check for _, p in parts]).append_column("_file", pa.array(file_no))
                )
                bad_idx = split_invalid(check, kind.schema[t](ctx), kind.reasons.get(t, {}))
                starts = np.concatenate([[0], np.cumsum(lens)])
                bad_pos = bad_idx.get_column("index").to_numpy().astype(np.int64)
                bad = (
                    check[bad_idx.get_column("index")]
                    .select("_file", "_row")
                    .with_columns(bad_idx.get_column("_reason").alias("reason"))
                    if bad_idx.height
                    else None
                )
                for (j, p), a, b in zip(parts, starts[:-1], starts[1:]):
                    per_file_rows[t][j] = p.payload.num_rows
                    sel = bad_pos[(bad_pos >= a) & (bad_pos < b)] - a
                    block = p.payload
                    if sel.size:
                        mask = np.ones(block.num_rows, dtype=bool)
                        mask[sel] = False
                        block = block.filter(pa.array(mask))
                    blocks[j] = _with_lineage(block, wfiles[j], t, run_id, ingested_at)
                rows_read, rows_valid = int(lens.sum()), int(lens.sum()) - bad_idx.height
            else:
                df = pl.concat(
                    [r.with_columns(pl.lit(j, pl.Int32).alias("_file")) for j, r in parts], how="diagonal_relaxed"
                )
                per_file_rows[t] = np.bincount(df.get_column("_file").to_numpy(), minlength=n)
                valid, bad = validate_table(kind, t, df, ctx)
                if bad.height == 0:
                    bad = None
                fidx = valid.get_column("_file").to_numpy()
                vt = valid.drop("_file").to_arrow()
                for j, block in enumerate(_split_by_file(vt, fidx, n)):
                    if block is not None:
                        blocks[j] = _with_lineage(block, wfiles[j], t, run_id, ingested_at)
                rows_read, rows_valid = df.height, valid.height
            report.rows_read[t] += rows_read
            report.rows_valid[t] += rows_valid
            if bad is not None and bad.height:
                report.rows_quarantined[t] += bad.height
                per_file_bad[t] = np.bincount(bad.get_column("_file").to_numpy(), minlength=n)
                report.reasons.update(_reason_key(r) for r in bad.get_column("reason").to_list())
                q_parts.append(_quarantine_rows(kind, t, bad, wfiles))
        prepared.tables[t] = {wids[j]: blocks[j] for j in range(n)}  # every file's id, rows or not
        if t in PARQUET_LAYOUTS and pool is not None:  # encoded in the pool while batches commit
            prepared.encoded[t] = pool.submit(_encode_ahead, t, prepared.tables[t])
    for j, reason in rejected.items():
        t0 = kind.tables[0]
        report.rows_read[t0] += 1
        report.rows_quarantined[t0] += 1
        report.reasons[_reason_key(reason)] += 1
        report.files_rejected.append({"file": wfiles[j].rel_path, "reason": reason})
        q_parts.append(
            pl.DataFrame(
                {
                    "table": [t0],
                    "_file": [j],
                    "row_number": [None],
                    "reason": [reason],
                    "raw_record": [None if wfiles[j].meta.get("symlink") is not None else head_preview(wfiles[j].data)],
                },
                schema={
                    "table": pl.Utf8,
                    "_file": pl.Int32,
                    "row_number": pl.Int64,
                    "reason": pl.Utf8,
                    "raw_record": pl.Utf8,
                },
            )
        )
    prepared.rejected_ids = {wids[j] for j in rejected}
    if q_parts:
        q = pl.concat(q_parts, how="vertical_relaxed")
        qtbl = _quarantine_arrow(q, wfiles, run_id, ingested_at)
        qblocks = _split_by_file(qtbl, q.get_column("_file").to_numpy(), n)
        prepared.quarantine = {wids[j]: qblocks[j] for j in range(n) if qblocks[j] is not None}
    report.files_ingested += n - len(rejected)
    for j, f in enumerate(wfiles):
        rows_read = int(sum(per_file_rows[t][j] for t in kind.tables)) + (1 if j in rejected else 0)
        rows_bad = int(sum(per_file_bad[t][j] for t in kind.tables)) + (1 if j in rejected else 0)
        prepared.log_rows.append(
            _log_row(kind, f, rows_read, rows_read - rows_bad, rows_bad, j in rejected, run_id, ingested_at)
        )
    return prepared


def _commit_batch(
    lake: Lake,
    prep: _Prepared,
    run_id: str,
    report: IngestReport,
    policy: RetryPolicy,
    provenance: dict[str, str] | None,
    batch_no: int,
    log_buffer: _LogBuffer,
) -> None:
    """Quarantine → bronze tables (fixed order) → ingest log (buffered: :class:`_LogBuffer`);
    each step exactly-once."""
    skipped_everywhere: set[str] | None = None
    if prep.quarantine:
        written, version, _ = _write_exactly_once(lake, QUARANTINE_TABLE, prep.quarantine, run_id, policy, provenance)
        report.quarantine_written += written
        if version is not None:
            report.commits += 1
            report.versions[QUARANTINE_TABLE] = version
        _fire("quarantine_committed", table=QUARANTINE_TABLE, rows=written, version=version, run_id=run_id)
    for t in prep.kind.tables:
        by_id = prep.tables.get(t) or {}
        if not by_id:
            continue
        _fire("bronze_committing", table=t, run_id=run_id)
        written, version, skipped = _write_exactly_once(lake, t, by_id, run_id, policy, provenance, prep.encoded.get(t))
        skipped_everywhere = skipped if skipped_everywhere is None else skipped_everywhere & skipped
        report.rows_written[t] += written
        if version is not None:
            report.commits += 1
            report.versions[t] = version
        _fire("bronze_committed", table=t, rows=written, version=version, run_id=run_id)
    if skipped_everywhere:  # e.g. after a crash between the bronze commits and the log
        report.files_already_committed += len(skipped_everywhere)
        report.files_ingested -= len(skipped_everywhere - prep.rejected_ids)
    log_buffer.add(prep.log_rows, batch_no)
    if log_buffer.due():
        log_buffer.flush(lake, run_id, report, policy, provenance)


@dataclass
class _LogBuffer:
    """Ingest-log rows of committed batches, written in one commit at most every
    ``LOG_FLUSH_SECONDS`` and at the end of the run (only the committer thread touches it).

    The log is a cache: rows that a crash keeps from it only mean that the next run reads and
    hashes those files again and finds them committed. One log commit per batch cost ≈ 10 % of
    the committer's time on a 3 M-row ingestion (bench/bench_ingest.py) and a small file each.
    """

    rows: list[dict] = field(default_factory=list)
    first_batch: int | None = None
    last_flush: float = field(default_factory=time.monotonic)
    # one Dagster run ingests several systems, each a call with the same run id: the txn id of
    # a log commit names the call too (else the second call's rows were "already committed")
    call: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def add(self, rows: list[dict], batch_no: int) -> None:
        if rows and self.first_batch is None:
            self.first_batch = batch_no
        self.rows.extend(rows)

    def due(self) -> bool:
        return bool(self.rows) and time.monotonic() - self.last_flush >= LOG_FLUSH_SECONDS

    def flush(
        self,
        lake: Lake,
        run_id: str,
        report: IngestReport,
        policy: RetryPolicy = DEFAULT_POLICY,
        provenance: dict[str, str] | None = None,
    ) -> None:
        """Commit the buffered rows (exactly once: the txn id is the run, the call and the first
        batch, so a retried commit whose answer was lost is not written twice)."""
        if not self.rows:
            return
        tbl = pa.Table.from_pylist(self.rows, schema=INGEST_LOG_SCHEMA)
        written, version, _ = _write_exactly_once(
            lake, INGEST_LOG_TABLE, {f"log:{run_id}:{self.call}:{self.first_batch}": tbl}, run_id, policy, provenance
        )
        report.commits += 1 if written else 0
        _fire("log_committed", table=INGEST_LOG_TABLE, rows=len(self.rows), run_id=run_id)
        self.rows, self.first_batch, self.last_flush = [], None, time.monotonic()
        if version is not None and LOG_COMPACT_EVERY and version % LOG_COMPACT_EVERY == 0:
            compact_ingest_log(lake, policy)


def compact_ingest_log(lake: Lake, policy: RetryPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """Rewrite the small files of ``_ingest_log`` into files of up to
    ``LOG_COMPACT_TARGET_BYTES`` (same rows, same app-transaction ids; a data-neutral commit
    that the append-only table allows and that does not conflict with concurrent appends).

    Returns
    -------
    dict
        delta-rs' optimize metrics (``numFilesRemoved``, ``numFilesAdded`` …).
    """
    uri = table_uri(lake, INGEST_LOG_TABLE)
    meta = CommitProperties(
        custom_metadata={"lakehouse.operation": "compact-ingest-log", "lakehouse.code_version": code_version()}
    )

    def attempt() -> dict[str, Any]:
        dt_ = DeltaTable(uri, storage_options=lake.delta_storage_options())
        return dt_.optimize.compact(
            target_size=LOG_COMPACT_TARGET_BYTES, writer_properties=WRITER_PROPERTIES, commit_properties=meta
        )

    return retrying(attempt, "compact bronze/_ingest_log", policy)


def _quarantine_rows(kind: Kind, table: str, bad: pl.DataFrame, files: Sequence[SourceFile]) -> pl.DataFrame:
    if "_raw" in bad.columns:
        raw = bad.get_column("_raw")
    else:  # CSV: the exact original strings of the bad records, one re-parse per affected file
        raw_vals: list[str | None] = [None] * bad.height
        pos = np.arange(bad.height)
        fidx = bad.get_column("_file").to_numpy()
        rows = bad.get_column("_row").to_numpy()
        for j in np.unique(fidx):
            sel = pos[fidx == j]
            try:
                recs = _raw_records(files[j], [int(r) for r in rows[sel]])
            except Exception:  # pragma: no cover - the typed parse worked, strings will too
                recs = [None] * len(sel)
            for p, r in zip(sel, recs):
                raw_vals[p] = r
        raw = pl.Series("_raw", raw_vals, dtype=pl.Utf8)
    return pl.DataFrame(
        {
            "table": pl.Series([table] * bad.height, dtype=pl.Utf8),
            "_file": bad.get_column("_file").cast(pl.Int32),
            "row_number": bad.get_column("_row").cast(pl.Int64),
            "reason": bad.get_column("reason"),
            "raw_record": raw.alias("raw_record"),
        }
    )


def _raw_records(f: SourceFile, rows: list[int]) -> list[str]:
    """Original values of the given 1-based records of a CSV (exact strings) or Parquet file."""
    if f.meta.get("format") == "parquet":
        import io

        import pyarrow.parquet as pq

        tbl = pq.read_table(io.BytesIO(f.data)).take(pa.array([r - 1 for r in rows]))
        return [json.dumps(r, default=str, ensure_ascii=False) for r in tbl.to_pylist()]
    return raw_records_csv(f.data, rows, f.meta.get("_delimiter", ","))


def _quarantine_arrow(q: pl.DataFrame, files: Sequence[SourceFile], run_id: str, ingested_at: dt.datetime) -> pa.Table:
    idx = q.get_column("_file").to_arrow().cast(pa.int32())
    n = q.height
    return pa.table(
        {
            "table": q.get_column("table").to_arrow(),
            "source_file": pa.array([f.uri for f in files], pa.string()).take(idx),
            "source_hash": pa.array([f.sha256 for f in files], pa.string()).take(idx),
            "row_number": q.get_column("row_number").to_arrow(),
            "reason": q.get_column("reason").to_arrow(),
            "raw_record": q.get_column("raw_record").to_arrow(),
            "_run_id": const_string(run_id, n),
            "_ingested_at": const_ts(ingested_at, n),
        }
    ).cast(QUARANTINE_SCHEMA)


def _log_row(
    kind: Kind, f: SourceFile, rows_read, rows_bronze, rows_q, rejected: bool, run_id: str, ingested_at: dt.datetime
) -> dict:
    return {
        "system": kind.system,
        "source_file": f.uri,
        "rel_path": f.rel_path,
        "source_hash": f.sha256,
        "size": f.size,
        "fingerprint": f.fingerprint,
        "tables": ",".join(kind.tables),
        "rows_read": rows_read,
        "rows_bronze": rows_bronze,
        "rows_quarantined": rows_q,
        "file_rejected": rejected,
        "_run_id": run_id,
        "_ingested_at": ingested_at,
    }


def _batches(files: Sequence[SourceFile], max_bytes: int, max_files: int) -> list[list[SourceFile]]:
    """Consecutive batches of at most ``max_bytes`` / ``max_files``, the first and the last
    of them a quarter of ``max_bytes``: the committer starts while the second batch is parsed,
    and the last commit, which nothing overlaps, is a short one."""
    quarter = max(max_bytes // 4, 1)
    out: list[list[SourceFile]] = []
    batch, size, limit = [], 0, quarter
    for f in files:
        fsz = max(f.size, 0)
        if batch and (size + fsz > limit or len(batch) >= max_files):
            out.append(batch)
            batch, size, limit = [], 0, max_bytes
        batch.append(f)
        size += fsz
    if batch:
        out.append(batch)
    last = out[-1] if len(out) > 1 else []
    if sum(max(f.size, 0) for f in last) > quarter:  # split off a short tail
        tail, size = [], 0
        while len(last) > 1 and size + max(last[-1].size, 0) <= quarter:
            size += max(last[-1].size, 0)
            tail.insert(0, last.pop())
        if tail:
            out.append(tail)
    return out


def ingest_files(
    lake: Lake,
    files: Sequence[SourceFile],
    *,
    run_id: str | None = None,
    ctx: IngestContext | None = None,
    namespace: str = "landing",
    skip_logged: bool = True,
    max_batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_batch_files: int = DEFAULT_BATCH_FILES,
    log_df: pl.DataFrame | None = None,
    max_pending_commits: int = 2,
    retry: RetryPolicy = DEFAULT_POLICY,
) -> IngestReport:
    """Ingest source files exactly once into their bronze tables (see module docstring).

    ``files`` come from :func:`list_landing` (or the foreign importer). Files whose
    (rel_path, fingerprint) the ingest log already holds are skipped without being read
    (``skip_logged``); all others are read, hashed and committed with their app-transaction ids.
    Commit conflicts and transient storage faults are retried within ``retry``'s budget;
    every commit records the configuration in force (:func:`ingest_provenance`).
    """
    t0 = time.perf_counter()
    run_id = run_id or f"adhoc-{uuid.uuid4().hex[:12]}"
    ctx = ctx or IngestContext()
    report = IngestReport(run_id=run_id, files_listed=len(files))
    todo = list(files)
    systems = {KINDS[f.kind].system for f in todo}
    if log_df is None and todo:
        log_df = retrying(lambda: read_log(lake, systems), "read the ingest log", retry)
    if skip_logged and todo:
        todo = pending_files(lake, todo, log_df)
        report.files_skipped_unchanged = len(files) - len(todo)
    seen_hashes = _ingested_hashes(log_df, {f.rel_path for f in todo})
    fs = lake.filesystem()
    provenance = ingest_provenance(ctx)
    ingested_at = dt.datetime.now(dt.UTC)
    by_kind: dict[str, list[SourceFile]] = defaultdict(list)
    for f in todo:
        by_kind[f.kind].append(f)
    # day-major order: rows of one UTC day are contiguous (cheap partitioned writes)
    for fl in by_kind.values():
        fl.sort(key=lambda f: (f.meta.get("day", ""), f.rel_path))
    # three stages overlap: while batch k is committed (delta-rs and pyarrow release the GIL),
    # batch k+1 is validated and split, and batch k+2 fetched and parsed (2 threads). Commits
    # stay strictly ordered.
    with (
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-parse") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-commit") as committer,
    ):
        pending: list = []  # commit futures, executed strictly in order by ONE thread
        log_buffer = _LogBuffer()
        batch_no = 0

        def finish(kind_name: str, batch: list[SourceFile], parsed: Callable[[], list[Any]]) -> None:
            nonlocal batch_no
            kind = KINDS[kind_name]
            prep = _prepare_batch(
                lake,
                kind,
                batch,
                ctx,
                run_id,
                namespace,
                report,
                ingested_at,
                pool,
                seen_hashes.setdefault(kind.system, {}),
                parsed,
            )
            for f in batch:  # free memory early
                f.data = None
            while len(pending) >= max_pending_commits:
                pending.pop(0).result()
            pending.append(
                committer.submit(_commit_batch, lake, prep, run_id, report, retry, provenance, batch_no, log_buffer)
            )
            batch_no += 1

        try:
            ahead = None  # (kind, batch, results) being parsed while the batch before it is prepared
            for kind_name in KINDS:  # deterministic order
                for batch in _batches(by_kind.get(kind_name, []), max_batch_bytes, max_batch_files):
                    ensure_disk_space(lake, sum(max(f.size, 0) for f in batch))
                    try:
                        retrying(lambda b=batch: fetch(lake, b, fs, hash_now=False), "read landing files", retry)
                    except BaseException:
                        if ahead is not None:  # what was read before the failure is still committed
                            finish(*ahead)
                        raise
                    item = (kind_name, batch, _parse_all(KINDS[kind_name], batch, ctx, pool))
                    if ahead is not None:
                        finish(*ahead)
                    ahead = item
            if ahead is not None:
                finish(*ahead)
            pending.append(committer.submit(log_buffer.flush, lake, run_id, report, retry, provenance))
        finally:
            for fut in pending:  # surface the first commit error, after the others finished
                fut.exception()
            for fut in pending:
                fut.result()
    report.seconds = time.perf_counter() - t0
    return report


def ingest_landing(
    lake: Lake,
    systems: Iterable[str] | None = None,
    *,
    run_id: str | None = None,
    ctx: IngestContext | None = None,
    predicate: Callable[[SourceFile], bool] | None = None,
    **kw: Any,
) -> IngestReport:
    """List the landing zone (optionally some systems / a predicate) and ingest what is new."""
    files, ignored = list_landing(lake, systems, predicate)
    report = ingest_files(lake, files, run_id=run_id, ctx=ctx, **kw)
    report.files_ignored = ignored
    return report
