"""Small files and log health of bronze tables: compact, checkpoint, vacuum — within the
integrity rules of the raw layer (``BRONZE_TABLE_PROPERTIES`` in ``schemas.py``).

* Tables created before those rules get them here (append-only, the retention floor, no
  automatic log cleanup): maintenance upgrades what it maintains.
* Vacuum never goes below ``RETENTION_FLOOR_HOURS``: a shorter retention is refused with a
  clear error (older versions must stay readable for a week), and delta-rs enforces the
  table's retention property on top.
* The commit log is kept by default (it is the audit trail of what was ingested when, with
  which config); ``log_retention_days`` lets an operator clean it explicitly.
* Compaction rewrites files without changing data or app-transaction ids (exactly-once
  bookkeeping survives it); its commit records the code version.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from deltalake import CommitProperties, DeltaTable

from lakehouse.ingest.schemas import ALL_TABLES, BRONZE_TABLE_PROPERTIES, RETENTION_FLOOR_HOURS
from lakehouse.ingest.writer import WRITER_PROPERTIES, table_uri
from lakehouse.provenance import code_version
from lakehouse.storage import Lake


class RetentionBelowFloorError(ValueError):
    """A vacuum retention shorter than the floor was asked for."""


def upgrade_table_properties(table: DeltaTable) -> list[str]:
    """Set the integrity properties a table lacks (returns the keys set)."""
    current = table.metadata().configuration or {}
    missing = {k: v for k, v in BRONZE_TABLE_PROPERTIES.items() if current.get(k) != v}
    if missing:
        table.alter.set_table_properties(
            missing,
            raise_if_not_exists=False,
            commit_properties=CommitProperties(
                custom_metadata={"lakehouse.operation": "maintenance-upgrade", "lakehouse.code_version": code_version()}
            ),
        )
    return sorted(missing)


def maintain_table(
    lake: Lake,
    table: str,
    *,
    compact: bool = True,
    checkpoint: bool = True,
    vacuum: bool = True,
    retention_hours: int = RETENTION_FLOOR_HOURS,
    log_retention_days: int | None = None,
    target_size: int | None = None,
) -> dict[str, Any] | None:
    """Upgrade, compact small files, write a checkpoint, vacuum removed files.

    Parameters
    ----------
    retention_hours : int
        Vacuum deletes only files removed longer ago than this; at least
        ``RETENTION_FLOOR_HOURS`` (168).
    log_retention_days : int, optional
        Clean commit-log entries older than this many days (after a checkpoint). Default:
        never — the log is the history the audit needs.

    Returns
    -------
    dict or None
        File counts and versions before/after, properties set; None if the table does not exist.

    Raises
    ------
    RetentionBelowFloorError
        ``retention_hours`` below the floor.
    """
    if retention_hours < RETENTION_FLOOR_HOURS:
        raise RetentionBelowFloorError(
            f"vacuum retention {retention_hours} h is below the floor of {RETENTION_FLOOR_HOURS} h: "
            f"versions of the last week must stay readable"
        )
    uri = table_uri(lake, table)
    opts = lake.delta_storage_options()
    if not DeltaTable.is_deltatable(uri, storage_options=opts):
        return None
    t0 = time.perf_counter()
    dt = DeltaTable(uri, storage_options=opts)
    out: dict[str, Any] = {
        "table": table,
        "version_before": dt.version(),
        "properties_set": upgrade_table_properties(dt),
    }
    dt = DeltaTable(uri, storage_options=opts)
    before = len(dt.file_uris())
    out["files_before"] = before
    meta = CommitProperties(
        custom_metadata={"lakehouse.operation": "maintenance", "lakehouse.code_version": code_version()}
    )
    if compact and before > 1:
        m = dt.optimize.compact(target_size=target_size, writer_properties=WRITER_PROPERTIES, commit_properties=meta)
        out["compacted_files_removed"] = int(m.get("numFilesRemoved", 0))
        out["compacted_files_added"] = int(m.get("numFilesAdded", 0))
        dt = DeltaTable(uri, storage_options=opts)
    if checkpoint:
        dt.create_checkpoint()
        if log_retention_days is not None:
            dt.alter.set_table_properties(
                {"delta.logRetentionDuration": f"interval {int(log_retention_days)} days"}, commit_properties=meta
            )
            dt = DeltaTable(uri, storage_options=opts)
            dt.cleanup_metadata()
    if vacuum:
        removed = dt.vacuum(
            retention_hours=retention_hours, dry_run=False, enforce_retention_duration=True, commit_properties=meta
        )
        out["vacuumed_files"] = len(removed)
    dt = DeltaTable(uri, storage_options=opts)
    out.update(files_after=len(dt.file_uris()), version_after=dt.version(), seconds=round(time.perf_counter() - t0, 3))
    return out


def maintain(lake: Lake, tables: Iterable[str] | None = None, **kw: Any) -> list[dict[str, Any]]:
    """:func:`maintain_table` for every bronze table (default: all, incl. quarantine and log)."""
    return [r for t in (tables or ALL_TABLES) if (r := maintain_table(lake, t, **kw)) is not None]
