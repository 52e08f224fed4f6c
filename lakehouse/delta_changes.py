"""What a Delta table gained since a version: the change capture of the incremental models.

Rows of a bronze table carry ``_ingested_at``, stamped when their ingestion run *started*.
Runs overlap, so a slow run can commit rows older than rows a faster run committed before
it: a watermark on ``_ingested_at`` would skip them for good. Commit order is what the Delta
log records, so incremental readers remember the table **version** they have processed and
ask this module what came after it: the data files of the newest snapshot that the snapshot
at that version did not hold (an optimize/compaction re-adds rows under new file names; they
count as new, which costs a re-read and never a loss).

Used by the dbt project (its DuckDB plugin registers these as SQL functions, see
``dbt_project/plugins/lakehouse_duckdb.py``) and by the Spark alignment
(``lakehouse/spark/aligned_table.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa


class VersionGoneError(RuntimeError):
    """The version an incremental reader processed last is not in the table's log any more
    (the table was re-created, or its log was cleaned up): rebuild it with a full refresh."""


@dataclass(frozen=True)
class Changes:
    """Data files of ``uri`` at ``version`` that were not in the table at ``since``.

    Attributes
    ----------
    version : int
        The table version the changes run up to (``-1``: the table does not exist).
    since : int
        The version they are relative to (``-1``: everything is new).
    files : tuple of str
        Paths (relative to the table root) of the new data files.
    partitions : dict of str to tuple of str
        Per partition column, the distinct partition values of the new files (sorted).
    """

    version: int
    since: int
    files: tuple[str, ...] = ()
    partitions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def table_version(uri: str, storage_options: Mapping[str, str] | None = None) -> int:
    """Newest version of the Delta table at ``uri``; ``-1`` when there is none."""
    from deltalake import DeltaTable

    opts = dict(storage_options or {}) or None
    if not DeltaTable.is_deltatable(uri, storage_options=opts):
        return -1
    return int(DeltaTable(uri, storage_options=opts).version())


def _files(uri: str, version: int, opts: dict | None) -> pa.Table:
    from deltalake import DeltaTable

    try:
        table = DeltaTable(uri, version=version, storage_options=opts)
    except Exception as exc:  # the kernel says "LogSegment end version … not the same …"
        raise VersionGoneError(
            f"{uri}: version {version} is not in the Delta log any more (table re-created or log "
            f"cleaned up); rebuild the readers of this table with a full refresh"
        ) from exc
    return pa.table(table.get_add_actions(flatten=True))


def changes_since(
    uri: str, since: int, storage_options: Mapping[str, str] | None = None, upto: int | None = None
) -> Changes:
    """The data files ``uri`` holds at ``upto`` (default: newest) and did not hold at ``since``.

    Parameters
    ----------
    uri : str
        Delta table root (local path or ``s3://…``).
    since : int
        Last version the caller processed; ``-1`` (or less) means "nothing yet".
    storage_options : mapping, optional
        delta-rs storage options (S3 endpoint and credentials).
    upto : int, optional
        Version to compare with; default the newest.

    Returns
    -------
    Changes
        ``version == since`` and no files when nothing was committed since.

    Raises
    ------
    VersionGoneError
        ``since`` is newer than the table, or no longer in its log.
    """
    opts = dict(storage_options or {}) or None
    current = table_version(uri, opts) if upto is None else int(upto)
    if current < 0:
        return Changes(-1, since)
    if since > current:
        raise VersionGoneError(
            f"{uri}: processed up to version {since}, but the table is at "
            f"version {current} (re-created?); rebuild its readers with a full refresh"
        )
    if since == current:
        return Changes(current, since)
    now = _files(uri, current, opts)
    if since >= 0:
        before = set(_files(uri, since, opts).column("path").to_pylist())
        keep = pa.array([p not in before for p in now.column("path").to_pylist()], pa.bool_())
        now = now.filter(keep)
    partitions = {
        name.removeprefix("partition."): tuple(
            sorted({v for v in now.column(name).to_pylist() if v is not None}, key=str)
        )
        for name in now.column_names
        if name.startswith("partition.")
    }
    return Changes(
        current,
        since,
        tuple(now.column("path").to_pylist()),
        {k: tuple(str(v) for v in vals) for k, vals in partitions.items()},
    )


def read_changed(
    uri: str, changes: Changes, columns: list[str], storage_options: Mapping[str, str] | None = None
) -> pa.Table:
    """``columns`` (partition columns included) of the rows in the data files of ``changes``.

    Reads only those files, at ``changes.version`` (cheap when few files are new).
    """
    import pyarrow.dataset as pds
    from deltalake import DeltaTable

    if not changes.files:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    table = DeltaTable(uri, version=changes.version, storage_options=dict(storage_options or {}) or None)
    dataset = table.to_pyarrow_dataset()
    wanted = set(changes.files)
    fragments = [f for f in dataset.get_fragments() if _relative(f.path, wanted)]
    subset = pds.FileSystemDataset(fragments, dataset.schema, dataset.format, dataset.filesystem)
    # no scanner threads: they can outlive the call and abort the interpreter (apache/arrow#34314)
    return subset.to_table(columns=columns, use_threads=False)


def _relative(path: str, wanted: set[str]) -> bool:
    from urllib.parse import unquote

    return path in wanted or unquote(path) in wanted or any(path.endswith("/" + w) for w in wanted)
