"""Helpers of the live tests: what the server served (an independent HistoryRead), what the
twin generated, what bronze holds, and the committed cursors."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from asyncua import Client, ua

from lakehouse.live.collector import app_id
from lakehouse.storage import Lake
from twin.historian import TAG_NAMES, TAG_UNITS
from twin.live.server import NAMESPACE_URI
from twin.site import SiteConfig, SitePlan

SITE = SiteConfig(start="2026-01-01", bioreactors=1, days=4, interval_s=60.0, seed=7)
SIM_START = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)  # one simulated day after the site start
UNKNOWN_SUFFIX = "AGIT.VIB"  # left out of the test tag map

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "collector_harness.py"
ROOT = HERE.parents[1]
STATUS_BY_QUALITY = {192: 0, 64: 0x40000000, 0: 0x80000000}


async def _served(endpoint: str, tags: list[str]) -> pl.DataFrame:
    rows: dict[str, list] = {"tag": [], "ts": [], "value": [], "quality": [], "status": []}
    async with Client(endpoint, timeout=60, watchdog_intervall=30) as c:
        ns = await c.get_namespace_index(NAMESPACE_URI)
        for tag in tags:
            node = c.get_node(ua.NodeId(tag, ns))
            hist = await node.read_raw_history(
                dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
            )
            for dv in hist:
                code = dv.StatusCode.value
                rows["tag"].append(tag)
                rows["ts"].append(dv.SourceTimestamp)
                rows["value"].append(dv.Value.Value)
                rows["status"].append(code)
                rows["quality"].append(192 if code >> 30 == 0 else 64 if code >> 30 == 1 else 0)
    return pl.DataFrame(
        rows,
        schema={
            "tag": pl.Utf8,
            "ts": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
            "quality": pl.Int16,
            "status": pl.Int64,
        },
    )


def served(endpoint: str, tags: list[str]) -> pl.DataFrame:
    """Everything the server's HistoryRead holds for ``tags`` (tag, ts, value, quality)."""
    return asyncio.run(_served(endpoint, tags))


def generated(plan: SitePlan, unit: str, days: range) -> pl.DataFrame:
    """The twin's own readings of ``unit`` (tag, ts, value, quality, unit), straight from its arrays."""
    parts = []
    for d in days:
        r = plan.unit_day(unit, d)
        n, k = r.values.shape
        parts.append(
            pl.DataFrame(
                {
                    "tag": np.tile(np.array([f"{unit}.{s}" for s in TAG_NAMES]), n),
                    "ts": np.repeat(r.ts.astype("datetime64[us]"), k),
                    "value": r.values.ravel(),
                    "quality": r.quality.ravel().astype(np.int16),
                    "unit": np.tile(np.array([TAG_UNITS[s] for s in TAG_NAMES]), n),
                }
            ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
        )
    return pl.concat(parts)


def bronze(lake: Lake, table: str = "historian_readings") -> pl.DataFrame:
    uri = lake.table_uri("bronze", table)
    if not lake.delta_exists(uri):
        return pl.DataFrame()
    return pl.from_arrow(lake.read_delta(uri))


def cursors(lake: Lake, endpoint: str, tags: list[str], table: str = "historian_readings") -> dict[str, int | None]:
    dt_ = lake.delta_table(lake.table_uri("bronze", table))
    return {t: dt_.transaction_version(app_id(endpoint, t)) for t in tags}


def upto_cursor(df: pl.DataFrame, cur: dict[str, int | None]) -> pl.DataFrame:
    """Rows of ``df`` (tag, ts) at or before each tag's cursor."""
    lim = pl.DataFrame({"tag": list(cur), "_cursor": [c if c is not None else -1 for c in cur.values()]})
    return df.join(lim, on="tag").filter(pl.col("ts").dt.epoch("us") <= pl.col("_cursor")).drop("_cursor")


def start_collector(
    endpoint: str, lake_root: str, *args: str, crash_after: str = "", env: dict[str, str] | None = None
) -> subprocess.Popen:
    e = {**os.environ, **(env or {}), "LIVE_CRASH_AFTER": crash_after}
    return subprocess.Popen(
        [
            sys.executable,
            str(HARNESS),
            "--endpoint",
            endpoint,
            "--lake",
            lake_root,
            "--backfill",
            "-1",
            "--log-every",
            "1",
            *args,
        ],
        cwd=ROOT,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(pred, timeout: float, what: str, proc: subprocess.Popen | None = None, every: float = 0.25) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"collector exited ({proc.returncode}) while waiting for {what}:\n"
                f"{proc.stdout.read()[-4000:] if proc.stdout else ''}"
            )
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 180.0) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out or ""
