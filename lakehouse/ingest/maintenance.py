"""Small files and log health of bronze tables: compact, checkpoint, vacuum."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from deltalake import DeltaTable

from lakehouse.ingest.schemas import ALL_TABLES
from lakehouse.ingest.writer import WRITER_PROPERTIES, table_uri
from lakehouse.storage import Lake


def maintain_table(
    lake: Lake,
    table: str,
    *,
    compact: bool = True,
    checkpoint: bool = True,
    vacuum: bool = True,
    retention_hours: int = 168,
    target_size: int | None = None,
) -> dict[str, Any] | None:
    """Compact small files, write a checkpoint, clean old log files, vacuum removed files.

    ``retention_hours`` (default 7 days) protects readers of older versions; vacuum never
    deletes files younger than that. Returns file counts before/after, or None if the table
    does not exist. Compaction does not change data or app-transaction ids (exactly-once
    bookkeeping survives it).
    """
    uri = table_uri(lake, table)
    opts = lake.delta_storage_options()
    if not DeltaTable.is_deltatable(uri, storage_options=opts):
        return None
    t0 = time.perf_counter()
    dt = DeltaTable(uri, storage_options=opts)
    before = len(dt.file_uris())
    out: dict[str, Any] = {"table": table, "files_before": before, "version_before": dt.version()}
    if compact and before > 1:
        m = dt.optimize.compact(target_size=target_size, writer_properties=WRITER_PROPERTIES)
        out["compacted_files_removed"] = int(m.get("numFilesRemoved", 0))
        out["compacted_files_added"] = int(m.get("numFilesAdded", 0))
        dt = DeltaTable(uri, storage_options=opts)
    if checkpoint:
        dt.create_checkpoint()
        dt.cleanup_metadata()
    if vacuum:
        # the retention is explicit here (the table default is 7 days as well)
        removed = dt.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
        out["vacuumed_files"] = len(removed)
    dt = DeltaTable(uri, storage_options=opts)
    out.update(files_after=len(dt.file_uris()), version_after=dt.version(), seconds=round(time.perf_counter() - t0, 3))
    return out


def maintain(lake: Lake, tables: Iterable[str] | None = None, **kw: Any) -> list[dict[str, Any]]:
    """:func:`maintain_table` for every bronze table (default: all, incl. quarantine and log)."""
    return [r for t in (tables or ALL_TABLES) if (r := maintain_table(lake, t, **kw)) is not None]
