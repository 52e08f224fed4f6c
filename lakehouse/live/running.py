"""Running batches aligned from bronze, incrementally: ``silver/live_process_readings``.

dbt's ``int_process_readings__aligned`` aligns a batch once its MES record has a harvest time,
so a running batch has no aligned rows there; and a dbt invocation has a fixed cost of several
seconds (parse, DuckDB start, lake attach) before any row moves — more than a one-minute
increment is worth. The live path therefore aligns running batches in Python, with the same
semantics as the dbt model (docs/live.md "Running batches"):

* grid: ``ts = floor(reading ts / grid) · grid`` (UTC epoch origin), ``grid_s`` seconds;
* value: mean of the good (quality 192) readings of that unit/parameter in ``[ts, ts + grid)``;
* gaps: the last value carried forward within the batch (never across batches, never back);
* ``culture_age_h`` from the culture start of the batch context, ``phase`` = the context's phase
  whose start is the latest at or before ``ts``.

Incremental and exactly once: per running batch a watermark (end of the last aligned grid step,
µs) is a Delta app transaction ``live-align:<batch_id>`` committed WITH the rows. A grid step
is aligned only once it is *complete*: every tag of the unit has a bronze cursor at or past its
end (the collector's per-tag cursors), so a collector catching up after a restart never leaves
a step half-filled. A refresh reads from bronze only the new steps' readings (date partitions +
a ts filter) and the last aligned row of each batch (to carry values forward).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from lakehouse.live.collector import TABLE as BRONZE_TABLE
from lakehouse.live.collector import app_id, read_status
from lakehouse.live.context import phase_changes, read_context, read_rows, running_batches
from lakehouse.storage import Lake

ALIGNED_TABLE = "live_process_readings"
GRID_S = 60.0
UTC_US = pl.Datetime("us", "UTC")
KEYS = ["batch_id", "unit_id", "ts", "culture_age_h", "phase"]


def align_app_id(batch_id: str) -> str:
    """The Delta app-transaction id of a running batch's alignment watermark."""
    return f"live-align:{batch_id}"


@dataclass
class AlignResult:
    """What one refresh did."""

    batches: list[str] = field(default_factory=list)
    rows_added: int = 0
    steps_added: dict[str, int] = field(default_factory=dict)
    complete_until: dict[str, str] = field(default_factory=dict)  # unit -> ISO time
    bronze_version: int | None = None
    aligned_version: int | None = None
    readings_read: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """Plain JSON-able data (asset metadata)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def unit_cursors(lake: Lake, bronze: DeltaTable) -> dict[str, int]:
    """Per unit: the oldest bronze cursor (µs) of its tags = bronze is complete up to there.

    Tags and endpoint come from the collector's status; the cursors are read from the Delta log
    (exact: the status file may lag).
    """
    status = read_status(lake)
    if not status:
        return {}
    endpoint = status["endpoint"]
    out: dict[str, int] = {}
    missing: set[str] = set()
    for tag, info in (status.get("tags") or {}).items():
        unit = info.get("unit_id") or tag.split(".", 1)[0]
        v = bronze.transaction_version(app_id(endpoint, tag))
        if v is None:
            missing.add(unit)
            continue
        out[unit] = min(out.get(unit, v), v)
    return {u: c for u, c in out.items() if u not in missing}


def _read_bronze(bronze: DeltaTable, unit: str, a_us: int, b_us: int) -> pl.DataFrame:
    """Good readings of ``unit`` with a ≤ ts < b: ts, parameter, value."""
    a = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=a_us)
    b = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=b_us)
    days = [(a.date() + dt.timedelta(days=i)).isoformat() for i in range((b.date() - a.date()).days + 1)]
    dset = bronze.to_pyarrow_dataset(partitions=[("date", "in", days)])
    ts = pads.field("ts")
    flt = (ts >= pa.scalar(a, pa.timestamp("us", "UTC"))) & (ts < pa.scalar(b, pa.timestamp("us", "UTC")))
    # string / int16 predicates are applied after the scan: pyarrow's pushdown on delta-rs'
    # view-typed Parquet columns silently matches nothing
    df = pl.from_arrow(dset.to_table(filter=flt, columns=["ts", "unit_id", "parameter", "value", "quality"]))
    return df.filter((pl.col("unit_id") == unit) & (pl.col("quality") == 192)).select("ts", "parameter", "value")


def _grid(df: pl.DataFrame, grid_us: int) -> pl.DataFrame:
    """Wide per grid step: mean of the readings of each parameter."""
    if df.height == 0:
        return pl.DataFrame(schema={"ts": UTC_US})
    g = df.with_columns(
        ((pl.col("ts").dt.epoch("us") // grid_us) * grid_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    )
    return g.group_by("ts", "parameter").agg(pl.col("value").mean()).pivot(on="parameter", index="ts", values="value")


def aligned_table_uri(lake: Lake) -> str:
    """URI of ``silver/live_process_readings``."""
    return lake.table_uri("silver", ALIGNED_TABLE)


def read_aligned(lake: Lake, batch_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """The aligned rows of running batches (all, or of ``batch_ids``), sorted by batch and ts."""
    df = read_rows(lake, aligned_table_uri(lake), batch_ids)
    if df.height == 0:
        return pl.DataFrame(schema={"batch_id": pl.String, "unit_id": pl.String, "ts": UTC_US})
    return df.sort("batch_id", "ts")


def refresh_aligned(lake: Lake, grid_s: float = GRID_S, max_steps: int | None = None) -> AlignResult:
    """Align the new complete grid steps of every running batch into ``silver/live_process_readings``.

    Parameters
    ----------
    lake : Lake
        The lake the collector writes (bronze ``historian_readings`` and ``live_batch_context``).
    grid_s : float
        Grid step in seconds.
    max_steps : int, optional
        At most this many new steps per batch in one refresh (a first refresh of a long batch
        catches up over several calls); default: all.

    Returns
    -------
    AlignResult
    """
    t0 = time.perf_counter()
    res = AlignResult()
    bronze_uri = lake.table_uri("bronze", BRONZE_TABLE)
    if not lake.delta_exists(bronze_uri):
        res.seconds = time.perf_counter() - t0
        return res
    bronze = lake.delta_table(bronze_uri)
    res.bronze_version = bronze.version()
    ctx = read_context(lake)
    run = running_batches(ctx)
    cursors = unit_cursors(lake, bronze)
    grid_us = int(round(grid_s * 1e6))
    uri = aligned_table_uri(lake)
    table = lake.delta_table(uri) if lake.delta_exists(uri) else None
    phases = phase_changes(ctx, run["batch_id"].to_list()) if run.height else None
    parts: list[pl.DataFrame] = []
    txns: list[Transaction] = []
    now_ms = int(time.time() * 1000)
    for r in run.iter_rows(named=True):
        unit, bid = r["unit_id"], r["batch_id"]
        if unit not in cursors:
            continue
        res.complete_until[unit] = (
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=cursors[unit])
        ).isoformat()
        start_us = _us(r["culture_start"])
        first = (start_us // grid_us) * grid_us
        wm = table.transaction_version(align_app_id(bid)) if table is not None else None
        a = first if wm is None else int(wm)
        # step [t, t + grid) is complete when every tag's cursor reached t + grid
        b = ((cursors[unit] - grid_us) // grid_us) * grid_us + grid_us
        if max_steps is not None:
            b = min(b, a + max_steps * grid_us)
        if b <= a:
            continue
        raw = _read_bronze(bronze, unit, a, b)
        res.readings_read += raw.height
        if wm is None:  # first refresh: start at the batch's first reading in the lake (a collector
            # started mid-batch has nothing before; no rows of nulls from the culture start)
            if raw.height == 0:
                continue
            a = max(a, (int(raw["ts"].dt.epoch("us").min()) // grid_us) * grid_us)
        wide = _grid(raw, grid_us)
        steps = pl.DataFrame(
            {
                "ts": pl.Series(np.arange(a, b, grid_us), dtype=pl.Int64)
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone("UTC")
            }
        )
        new = steps.join(wide, on="ts", how="left")
        # carry forward from the batch's last aligned row (never across batches)
        prev = _last_row(lake, bid) if wm is not None else None
        if prev is not None and prev.height:
            cols = [c for c in prev.columns if c not in KEYS and not c.startswith("_")]
            seed = prev.select("ts", *cols)
            new = pl.concat([seed, new], how="diagonal_relaxed")
        signal_cols = [c for c in new.columns if c != "ts"]
        new = new.sort("ts").with_columns(pl.col(c).cast(pl.Float64).forward_fill() for c in signal_cols)
        new = new.filter(pl.col("ts").dt.epoch("us") >= a)
        new = new.with_columns(
            pl.lit(bid).alias("batch_id"),
            pl.lit(unit).alias("unit_id"),
            ((pl.col("ts").dt.epoch("us") - start_us) / 3.6e9).alias("culture_age_h"),
        )
        ph = phases.filter(pl.col("batch_id") == bid).select(pl.col("phase_start").cast(UTC_US), pl.col("phase"))
        new = new.sort("ts").join_asof(
            ph.sort("phase_start"), left_on="ts", right_on="phase_start", strategy="backward"
        )
        new = new.drop("phase_start")
        parts.append(new)
        txns.append(Transaction(align_app_id(bid), int(b), now_ms))
        res.batches.append(bid)
        res.steps_added[bid] = new.height
    if parts:
        out = pl.concat(parts, how="diagonal_relaxed")
        sig = sorted(c for c in out.columns if c not in KEYS)
        out = out.select(*KEYS, *sig).with_columns(
            pl.lit(datetime_now()).cast(UTC_US).alias("_loaded_at"),
            pl.lit(res.bronze_version, dtype=pl.Int64).alias("_bronze_version"),
        )
        write_deltalake(
            uri,
            out.to_arrow(),
            mode="append",
            schema_mode="merge",
            storage_options=lake.delta_storage_options(),
            commit_properties=CommitProperties(
                app_transactions=txns, custom_metadata={"lakehouse.operation": "live-align"}
            ),
        )
        res.rows_added = out.height
        res.aligned_version = lake.delta_table(uri).version()
    res.seconds = time.perf_counter() - t0
    return res


def _last_row(lake: Lake, batch_id: str) -> pl.DataFrame | None:
    df = read_rows(lake, aligned_table_uri(lake), [batch_id])
    return df.sort("ts").tail(1) if df.height else None


def datetime_now() -> dt.datetime:
    """Now, UTC (one place, so a refresh stamps every row alike)."""
    return dt.datetime.now(dt.UTC)


def _us(t: dt.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    d = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
