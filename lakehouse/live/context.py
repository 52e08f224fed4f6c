"""The MES batch context of a live plant: which batch runs in which vessel, since when, with
which control recipe — collected from OPC UA next to the readings (``bronze/live_batch_context``).

A server that exposes, per unit, variables whose node id ends in ``<unit>.Batch.<name>`` with
``name`` in :data:`CONTEXT_NODES` (the twin's server does: ``Id``, ``Operation``, ``Phase``,
``CultureStart``, ``Recipe``) gets one context row per observed change: the collector reads them
after every flush and appends a row when ``(batch_id, phase)`` of a unit changed. The phase
start is the ``Phase`` value's SourceTimestamp. Rows are idempotent facts (a restarted collector
re-observes the current phase: :func:`read_context` de-duplicates), so no cursor is needed.

:func:`running_batches` is what the running-batch job scores: per unit the newest context row
whose phase is a culture phase (:data:`RUNNING_PHASES`) and whose batch has a culture start.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from lakehouse.storage import Lake

TABLE = "live_batch_context"
#: the context variables under ``<unit>.Batch``
CONTEXT_NODES: tuple[str, ...] = ("Id", "Operation", "Phase", "CultureStart", "Recipe")
#: phases in which a batch is a running culture (scored live)
RUNNING_PHASES: tuple[str, ...] = ("Inoculate", "Batch", "Fed-Batch", "Production")
TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("unit_id", pa.string()),
        ("batch_id", pa.string()),
        ("operation", pa.string()),
        ("phase", pa.string()),
        ("phase_start", TS),
        ("culture_start", TS),
        ("recipe_json", pa.string()),
        ("observed_at", TS),
        ("_source", pa.string()),
        ("_run_id", pa.string()),
    ]
)
_EPOCH_YEAR = 1970


def context_rows(
    values: Mapping[str, Mapping[str, Any]], observed_at: dt.datetime, source: str, run_id: str
) -> list[dict[str, Any]]:
    """Context rows of ``unit -> {name: (value, source timestamp)}`` as read from the server.

    ``CultureStart`` at or before 1970 (the OPC UA null DateTime 1601) means "no batch".
    """
    out = []
    for unit, v in sorted(values.items()):
        bid, _ = v.get("Id", ("", None))
        phase, phase_ts = v.get("Phase", ("", None))
        start, _ = v.get("CultureStart", (None, None))
        if isinstance(start, dt.datetime) and (start.tzinfo is None):
            start = start.replace(tzinfo=dt.UTC)
        if isinstance(start, dt.datetime) and start.year <= _EPOCH_YEAR:
            start = None
        out.append(
            {
                "unit_id": unit,
                "batch_id": str(bid or ""),
                "operation": str(v.get("Operation", ("", None))[0] or ""),
                "phase": str(phase or ""),
                "phase_start": phase_ts,
                "culture_start": start,
                "recipe_json": str(v.get("Recipe", ("{}", None))[0] or "{}"),
                "observed_at": observed_at,
                "_source": source,
                "_run_id": run_id,
            }
        )
    return out


def append_context(lake: Lake, rows: Sequence[Mapping[str, Any]]) -> int | None:
    """Append context rows to ``bronze/live_batch_context``; returns the new table version."""
    if not rows:
        return None
    from deltalake import write_deltalake

    data = pa.Table.from_pylist([dict(r) for r in rows], schema=SCHEMA)
    uri = lake.table_uri("bronze", TABLE)
    write_deltalake(uri, data, mode="append", storage_options=lake.delta_storage_options())
    return lake.delta_table(uri).version()


def read_context(lake: Lake) -> pl.DataFrame:
    """Every distinct context fact (unit, batch, phase, phase start), oldest first."""
    uri = lake.table_uri("bronze", TABLE)
    if not lake.delta_exists(uri):
        return pl.DataFrame(schema=pl.Schema(pl.from_arrow(SCHEMA.empty_table()).schema))
    df = pl.from_arrow(lake.read_delta(uri))
    return (
        df.sort("observed_at")
        .unique(subset=["unit_id", "batch_id", "phase", "phase_start"], keep="first", maintain_order=True)
        .sort(["unit_id", "phase_start", "observed_at"])
    )


def running_batches(context: pl.DataFrame, phases: Sequence[str] = RUNNING_PHASES) -> pl.DataFrame:
    """One row per unit whose newest context is a running culture: ``unit_id, batch_id, phase,
    phase_start, culture_start`` and the recipe setpoints as columns (``dim_batches`` names)."""
    if context.height == 0:
        return pl.DataFrame(
            schema={"unit_id": pl.String, "batch_id": pl.String, "phase": pl.String, "culture_start": pl.Datetime}
        )
    latest = context.sort(["phase_start", "observed_at"]).group_by("unit_id", maintain_order=True).last()
    run = latest.filter(
        pl.col("phase").is_in(list(phases)) & (pl.col("batch_id") != "") & pl.col("culture_start").is_not_null()
    ).sort("unit_id")
    recipes = [json.loads(r or "{}") for r in run["recipe_json"].to_list()]
    keys = sorted({k for r in recipes for k in r})
    return run.select("unit_id", "batch_id", "phase", "phase_start", "culture_start").with_columns(
        pl.Series(k, [r.get(k) for r in recipes], dtype=pl.Float64) for k in keys
    )


def phase_changes(context: pl.DataFrame, batch_ids: Sequence[str]) -> pl.DataFrame:
    """``batch_id, phase, phase_start`` of the given batches (for the phase of each grid row)."""
    return (
        context.filter(pl.col("batch_id").is_in(list(batch_ids)) & pl.col("phase_start").is_not_null())
        .select("batch_id", "phase", "phase_start")
        .unique()
        .sort(["batch_id", "phase_start"])
    )


def read_rows(lake: Lake, uri: str, batch_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Rows of a Delta table (of ``batch_ids`` if given); empty when the table does not exist.

    The batch filter is applied by polars after the scan: pyarrow's predicate pushdown on
    delta-rs' view-typed Parquet string columns silently matches nothing.
    """
    if not lake.delta_exists(uri):
        return pl.DataFrame()
    df = pl.from_arrow(lake.delta_table(uri).to_pyarrow_table())
    return df.filter(pl.col("batch_id").is_in(list(batch_ids))) if batch_ids is not None else df
