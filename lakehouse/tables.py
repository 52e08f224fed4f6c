"""Reading and writing the lake's library tables (gold, features, scores, golden, insilico …)
as Delta — the one ``write_table`` and ``read_table`` of the project.

Bronze has its own exactly-once writer (``lakehouse.ingest.writer``) and the gold publisher
its incremental copy (``lakehouse.gold``); every other table goes through here, so every one
follows the lake convention: timestamps ``timestamp[us, tz=UTC]``, plain (non-view) strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from lakehouse.storage import Lake


class TableNotFoundError(LookupError):
    """A Delta table the caller needs does not exist (yet) in the lake."""


@dataclass
class TableRead:
    """A table read: its rows as polars and the Delta version they come from."""

    df: pl.DataFrame
    version: int


def to_arrow(df: pl.DataFrame | Any) -> pa.Table:
    """A polars/pandas frame or Arrow table as Arrow in the lake convention (UTC µs timestamps,
    ``large_string`` for string views, which delta-rs does not take)."""
    if isinstance(df, pl.DataFrame):
        table = df.to_arrow()
    elif isinstance(df, pa.Table):
        table = df
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_string_view(t):
            t = pa.large_string()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))


def write_table(
    lake: Lake, layer: str, name: str, df: pl.DataFrame | Any, *, mode: str = "overwrite", metadata: dict | None = None
) -> int:
    """Write a frame as the Delta table ``<layer>/<name>``; returns the new table version.

    Parameters
    ----------
    lake
        The lake.
    layer, name
        Where: ``lake.uri(layer, name)``.
    df
        polars or pandas frame, or Arrow table (see :func:`to_arrow`).
    mode
        ``"overwrite"`` (schema replaced) or ``"append"`` (new columns merged in).
    metadata
        Custom commit metadata (e.g. the input table versions); non-strings as JSON.
    """
    from deltalake import CommitProperties

    uri = lake.uri(layer, name)
    props = (
        CommitProperties(custom_metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
        if metadata
        else None
    )
    lake.write_delta(
        uri,
        to_arrow(df),
        mode=mode,
        schema_mode="overwrite" if mode == "overwrite" else "merge",
        commit_properties=props,
    )
    return int(lake.delta_table(uri).version())


def read_table(
    lake: Lake,
    layer: str,
    name: str,
    version: int | None = None,
    columns: list[str] | None = None,
    *,
    only_existing_columns: bool = False,
) -> TableRead:
    """Read the Delta table ``<layer>/<name>`` (at ``version``, default the latest) into polars.

    Raises :class:`TableNotFoundError` when it does not exist. ``only_existing_columns`` drops
    requested columns the table does not have (instead of failing).
    """
    from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

    try:
        dt = lake.delta_table(lake.uri(layer, name), version=version)
    except DeltaTableNotFound as exc:
        raise TableNotFoundError(f"{layer}/{name} does not exist yet: materialize ['{layer}', '{name}'] first") from exc
    if columns is not None and only_existing_columns:
        have = {f.name for f in dt.schema().fields}
        columns = [c for c in columns if c in have]
    return TableRead(pl.from_arrow(dt.to_pyarrow_table(columns=columns)), int(dt.version()))
