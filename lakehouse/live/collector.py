"""Live collection: OPC UA (asyncua client) → bronze ``historian_readings``, exactly once.

Cursor semantics. Per tag the *cursor* is the source timestamp (µs since the epoch) of the
newest reading of that tag that is in the lake (in bronze or, if rejected, in ``_quarantine``).
It is a Delta app transaction ``Transaction(app_id="opcua:<endpoint>:<tag>", version=<cursor µs>)``
committed IN THE SAME COMMIT as the rows (``CommitProperties(app_transactions=...)``), like
file ingestion records a source-file version (``lakehouse/ingest/writer.py``). Readings at or
before a tag's cursor are never written again.

A micro-batch is committed in two steps, each exactly once on its own:

1. ``_quarantine``: the batch's rejected readings (tag not in the tag map, wrong unit,
   implausible value, missing value …: the same pandera checks as file ingestion) of tags whose
   ``_quarantine`` cursor is older, with those tags' transactions;
2. ``historian_readings``: the valid readings newer than each tag's bronze cursor, with a
   transaction for EVERY tag of the batch (also tags whose readings were all rejected).

A crash between the steps leaves the bronze cursors where they were: the next run reads the
same readings again from the server's history, skips the rejected ones already in
``_quarantine`` and writes the valid ones. Every commit re-reads the cursors from the
``DeltaTable`` it writes through, so two collectors on the same endpoint conflict in delta-rs
("concurrent transaction") instead of both appending; the loser re-reads and skips.

Session (one per connection): connect → browse the historized numeric variables (or a given
tag list) → read the bronze cursors → subscribe (data changes with trigger
StatusValueTimestamp: every reading, also a repeated value) → read every node's current value
→ HistoryRead (raw) from each cursor (exclusive) to that value's timestamp → from then on only
subscription data. Subscribing before reading history means nothing falls between the two;
readings seen twice are de-duplicated by timestamp. A tag is committed only once its history
gap is filled. On a lost connection (server restart, network) the collector commits what it
has, backs off, reconnects and starts a new session — which fills the gap from the cursors.
Commit conflicts and transient storage errors are retried with backoff; a batch that still
fails stays buffered for the next flush.

State (per tag cursor, lag, rows committed, last commit version, reconnects, commit latency)
is kept in :class:`CollectorStatus` and written as JSON to ``<lake>/_live/collector_status.json``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent
from deltalake import CommitProperties, DeltaTable, Transaction

from lakehouse.ingest.readers import HIST_REASONS, IngestContext, SourceFile, historian_part, schema_historian
from lakehouse.ingest.schemas import QUARANTINE_SCHEMA, QUARANTINE_TABLE
from lakehouse.ingest.tagmap import TagMap
from lakehouse.ingest.validation import split_invalid
from lakehouse.ingest.writer import (
    HOOKS,
    _fire,
    _with_lineage,
    append_rows,
    const_string,
    const_ts,
    ensure_table,
    ingest_provenance,
)
from lakehouse.live.context import CONTEXT_NODES, append_context, context_rows
from lakehouse.retry import DEFAULT_POLICY, RetryPolicy, is_transient, retrying
from lakehouse.storage import Lake

log = logging.getLogger(__name__)

TABLE = "historian_readings"
STATUS_PATH = "_live/collector_status.json"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NUMERIC = {
    ua.ObjectIds.Double,
    ua.ObjectIds.Float,
    ua.ObjectIds.Int16,
    ua.ObjectIds.Int32,
    ua.ObjectIds.Int64,
    ua.ObjectIds.UInt16,
    ua.ObjectIds.UInt32,
    ua.ObjectIds.UInt64,
    ua.ObjectIds.Byte,
    ua.ObjectIds.SByte,
}

# Hook points: the collector fires "before_commit" (cursors read, rows filtered, the write not
# yet done), "quarantine_committed" and "bronze_committed" (info: table, rows, version, run_id)
# through lakehouse.ingest.writer.HOOKS, like file ingestion; the tests append hooks that die
# or wait there.
__all__ = ["HOOKS", "CollectorConfig", "CollectorStatus", "LiveCollector", "app_id", "collect", "read_status"]


def app_id(endpoint: str, tag: str) -> str:
    """The Delta app-transaction id of one tag of one server."""
    return f"opcua:{endpoint}:{tag}"


def to_us(t: dt.datetime) -> int:
    """Microseconds since the epoch of an aware (or naive UTC) datetime, exactly."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def us_to_datetime(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=int(us))


# historian quality by OPC UA status severity (the code's top two bits): Good, Uncertain, Bad, Bad
QUALITY_BY_SEVERITY = np.array([192, 64, 0, 0], dtype=np.int16)


@dataclass
class CollectorConfig:
    """How to collect.

    Parameters
    ----------
    endpoint : str
        ``opc.tcp://host:port`` of the server.
    tags : sequence of str, optional
        Tags to collect (node id strings, e.g. ``BR-101.TEMP.PV``); default: every historized
        numeric variable the server exposes.
    tagmap : TagMap
        Tag → canonical unit_id/parameter/unit, applied like file ingestion.
    flush_interval_s, flush_rows : float, int
        A micro-batch is committed every ``flush_interval_s`` or when ``flush_rows`` are buffered.
    backfill_s : float or None
        For a tag without a cursor: start this many seconds (source time) before its current
        value; None: everything the server's history holds.
    publishing_interval_ms : float
        OPC UA subscription publishing interval.
    watchdog_s : float
        Seconds between (and timeout of) the client's liveness probes; a lost TCP connection is
        noticed at once anyway.
    retry : RetryPolicy
        Time budget of one commit against conflicts and storage outages
        (``lakehouse.retry``); a batch that still fails stays buffered for the next flush.
    status_path : str
        Status JSON under the lake root.
    """

    endpoint: str
    tags: Sequence[str] | None = None
    tagmap: TagMap = field(default_factory=TagMap.contract_default)
    flush_interval_s: float = 2.0
    flush_rows: int = 200_000
    backfill_s: float | None = 3600.0
    publishing_interval_ms: float = 200.0
    history_nodes_per_request: int = 50
    request_timeout_s: float = 10.0
    watchdog_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 10.0
    retry: RetryPolicy = DEFAULT_POLICY
    status_path: str = STATUS_PATH
    status_every_s: float = 2.0


@dataclass
class TagState:
    tag: str
    unit: str | None = None  # engineering unit string the server declares
    cursor_us: int | None = None  # newest source time in the lake (bronze cursor)
    rows_committed: int = 0
    rows_quarantined: int = 0


@dataclass
class CollectorStatus:
    """What the collector is doing (also written as JSON for a sensor / the UI)."""

    endpoint: str
    run_id: str
    state: str = "starting"  # starting | connecting | syncing | running | reconnecting | stopped
    started_at: str = ""
    updated_at: str = ""
    sessions: int = 0
    reconnects: int = 0
    rows_committed: int = 0
    rows_quarantined: int = 0
    readings_received: int = 0
    commits: int = 0
    commit_retries: int = 0
    commit_failures: int = 0
    last_commit_version: int | None = None
    last_commit_at: str | None = None
    last_error: str | None = None
    server_time: str | None = None  # newest source timestamp received
    max_lag_s: float | None = None  # server_time - oldest cursor
    commit_latency_s: dict[str, float] = field(default_factory=dict)  # p50/p95 of commit - source ts
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The status as plain JSON-able data."""
        return asdict(self)


@dataclass
class _Pending:
    """Buffered readings of one tag (subscription tuples + history chunks)."""

    live: list[tuple[int, float | None, int]] = field(default_factory=list)
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.live) + sum(c[0].size for c in self.chunks)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ts µs, value, value is null, status) sorted by ts, one row per ts."""
        parts = list(self.chunks)
        if self.live:
            ts = np.fromiter((r[0] for r in self.live), np.int64, len(self.live))
            null = np.fromiter((r[1] is None for r in self.live), bool, len(self.live))
            val = np.fromiter((0.0 if r[1] is None else r[1] for r in self.live), np.float64, len(self.live))
            st = np.fromiter((r[2] for r in self.live), np.int64, len(self.live))
            parts.append((ts, val, null, st))
        ts = np.concatenate([p[0] for p in parts])
        val = np.concatenate([p[1] for p in parts])
        null = np.concatenate([p[2] for p in parts])
        st = np.concatenate([p[3] for p in parts])
        order = np.argsort(ts, kind="stable")
        ts, val, null, st = ts[order], val[order], null[order], st[order]
        first = np.ones(ts.size, dtype=bool)
        first[1:] = ts[1:] != ts[:-1]
        return ts[first], val[first], null[first], st[first]


@dataclass
class _Batch:
    """One micro-batch, validated: rows sorted by (tag, ts)."""

    tags: list[str]
    code: np.ndarray  # tag index per row
    ts_us: np.ndarray
    last_us: dict[str, int]  # per tag: newest ts in the batch (its next cursor)
    payload: pa.Table  # bronze rows (all rows, validity in ``valid``)
    valid: np.ndarray
    reasons: dict[int, str]  # row -> reason (rejected rows)
    raw: list[str | None]  # raw record JSON of rejected rows (by row, None otherwise)
    sha256: str


class LiveCollector:
    """Collect an OPC UA server's tags into bronze, exactly once (see the module docstring).

    Parameters
    ----------
    lake : Lake
        Where bronze lives.
    config : CollectorConfig
    run_id : str, optional
        Lineage ``_run_id`` of this collector process (default ``live-<random>``).
    """

    def __init__(self, lake: Lake, config: CollectorConfig, run_id: str | None = None) -> None:
        self.lake = lake
        self.cfg = config
        self.endpoint = config.endpoint.rstrip("/")
        self.run_id = run_id or f"live-{uuid.uuid4().hex[:12]}"
        self.ctx = IngestContext(tagmap=config.tagmap)
        self._provenance = ingest_provenance(self.ctx)  # tag map, config hash, code version
        self.status = CollectorStatus(endpoint=self.endpoint, run_id=self.run_id, started_at=_iso(time.time()))
        self.tags: dict[str, TagState] = {}
        self._node_tag: dict[ua.NodeId, str] = {}
        self._pending: dict[str, _Pending] = {}
        self._synced: set[str] = set()
        self._lost = asyncio.Event()
        self._newest_us: int | None = None
        self._tables: dict[str, DeltaTable] = {}
        self._latencies: list[float] = []
        self._status_written = 0.0
        self._flush_lock = asyncio.Lock()
        self._context_nodes: dict[tuple[str, str], ua.NodeId] = {}
        self._context_seen: dict[str, tuple[str, str]] = {}  # unit -> (batch, phase) last written

    # ================================================================ public
    async def run(self, stop: asyncio.Event | None = None, duration_s: float | None = None) -> CollectorStatus:
        """Collect until ``stop`` is set or ``duration_s`` elapsed; commit what is buffered."""
        stop = stop or asyncio.Event()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        delay = self.cfg.reconnect_min_s
        while not stop.is_set() and not _past(deadline):
            self.status.state = "connecting" if self.status.sessions == 0 else "reconnecting"
            try:
                await self._session(stop, deadline)
                delay = self.cfg.reconnect_min_s
            except Exception as exc:
                if not (is_transient(exc) or isinstance(exc, (asyncio.TimeoutError, ua.UaError))):
                    raise
                self._note_error(f"connection: {exc!r}")
                log.warning("OPC UA session on %s ended: %r; reconnecting in %.1f s", self.endpoint, exc, delay)
            finally:
                await self._flush(final=True)
                self._synced.clear()
            if stop.is_set() or _past(deadline):
                break
            self.status.reconnects += 1
            await _wait(stop, min(delay, max(0.0, deadline - time.monotonic())) if deadline else delay)
            delay = min(delay * 2.0, self.cfg.reconnect_max_s)
        self.status.state = "stopped"
        await asyncio.to_thread(self.write_status, True)
        return self.status

    def read_cursors(self, tags: Sequence[str]) -> dict[str, int | None]:
        """The committed bronze cursor (µs) of each tag, None if it never was committed."""
        dt_ = self._table(TABLE, refresh=True)
        return {t: dt_.transaction_version(app_id(self.endpoint, t)) for t in tags}

    # ================================================================ session
    async def _session(self, stop: asyncio.Event, deadline: float | None) -> None:
        # asyncua's watchdog probes the server every ``watchdog_s`` with that timeout: a busy event
        # loop (a large HistoryRead, a slow host) must not look like a dead server
        client = Client(self.endpoint, timeout=self.cfg.request_timeout_s, watchdog_intervall=self.cfg.watchdog_s)
        self._lost.clear()
        await client.connect()
        try:
            self.status.sessions += 1
            self.status.state = "syncing"
            await self._discover(client)
            cursors = await asyncio.to_thread(self.read_cursors, list(self.tags))
            for t, c in cursors.items():
                self.tags[t].cursor_us = c
            sub = await client.create_subscription(self.cfg.publishing_interval_ms, None, queue_maxsize=0)
            consumer = asyncio.create_task(self._consume(sub), name="opcua-consumer")
            try:
                await self._monitor(sub)
                await self._fill_gaps(client)
                self.status.state = "running"
                log.info("collecting %d tags from %s (run %s)", len(self.tags), self.endpoint, self.run_id)
                self._context_seen.clear()  # a new session re-records the current context (idempotent)
                await self._loop(stop, deadline, sub, consumer, client)
            finally:
                consumer.cancel()
                try:
                    await consumer
                except (asyncio.CancelledError, Exception):
                    pass
        finally:
            try:
                await asyncio.wait_for(client.disconnect(), 5.0)
            except Exception:
                pass

    async def _loop(
        self, stop: asyncio.Event, deadline: float | None, sub, consumer: asyncio.Task, client: Client | None = None
    ) -> None:
        sub_id = sub.subscription_id
        next_flush = time.monotonic() + self.cfg.flush_interval_s
        while not stop.is_set() and not _past(deadline):
            if self._lost.is_set():
                raise ConnectionError("subscription reported a lost connection")
            if consumer.done():
                raise ConnectionError(
                    f"subscription consumer stopped: {consumer.exception()!r}"
                    if not consumer.cancelled()
                    else "subscription consumer cancelled"
                )
            if sub.subscription_id != sub_id:  # re-created by asyncua's watchdog: readings may be missing
                raise ConnectionError("subscription was re-created")
            now = time.monotonic()
            buffered = sum(len(self._pending[t]) for t in self._synced if t in self._pending)
            if now >= next_flush or buffered >= self.cfg.flush_rows:
                await self._flush()
                if client is not None and self._context_nodes:
                    await self._record_context(client)
                next_flush = time.monotonic() + self.cfg.flush_interval_s
            await _wait(stop, min(0.05, max(0.0, next_flush - time.monotonic())))

    async def _discover(self, client: Client) -> None:
        """Tags (node id string → node) and their engineering units."""
        if not self._node_tag:
            found = await _browse_historized(client, self._context_nodes)
            wanted = set(self.cfg.tags) if self.cfg.tags is not None else None
            for nodeid, tag in found.items():
                if wanted is None or tag in wanted:
                    self._node_tag[nodeid] = tag
            if wanted is not None and (missing := wanted - set(self._node_tag.values())):
                raise ValueError(f"tags not found on {self.endpoint}: {sorted(missing)[:10]}")
            if not self._node_tag:
                raise ValueError(f"no historized numeric variables on {self.endpoint}")
            units = await _engineering_units(client, list(self._node_tag))
            for nodeid, tag in self._node_tag.items():
                self.tags[tag] = TagState(tag, unit=units.get(nodeid))
                self._pending.setdefault(tag, _Pending())

    async def _monitor(self, sub) -> None:
        flt = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        requests = []
        for handle, nodeid in enumerate(self._node_tag, start=1):
            params = ua.MonitoringParameters(
                ClientHandle=handle, SamplingInterval=0.0, QueueSize=0, DiscardOldest=False, Filter=flt
            )
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(NodeId=nodeid, AttributeId=ua.AttributeIds.Value),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=params,
                )
            )
        results = await sub.create_monitored_items(requests)
        bad = [
            (self._node_tag[r.ItemToMonitor.NodeId], res)
            for r, res in zip(requests, results)
            if isinstance(res, ua.StatusCode)
        ]
        if bad:
            raise ua.UaError(f"could not monitor {len(bad)} tags, e.g. {bad[0]}")

    async def _consume(self, sub) -> None:
        sub_id = sub.subscription_id
        async for ev in sub:
            if sub.subscription_id != sub_id:
                # re-created by asyncua (stale watchdog): whatever it delivers now may follow a gap.
                # Stop taking readings; the session ends and the next one fills from the cursors.
                self._lost.set()
                return
            if isinstance(ev, DataChangeEvent):
                tag = self._node_tag.get(ev.node.nodeid)
                dv = ev.data.monitored_item.Value
                if tag is not None and dv is not None:
                    self._take(tag, dv)
            elif isinstance(ev, StatusChangeEvent):
                code = ev.notification.Status
                if code is not None and not code.is_good():
                    log.warning("subscription status %s on %s", code, self.endpoint)
                    self._lost.set()

    def _take(self, tag: str, dv: ua.DataValue) -> None:
        t = dv.SourceTimestamp or dv.ServerTimestamp
        if t is None:
            log.warning("reading of %s without any timestamp ignored", tag)
            return
        ts = to_us(t)
        value = dv.Value.Value if dv.Value is not None else None
        status = dv.StatusCode.value if dv.StatusCode is not None else 0
        self._pending[tag].live.append((ts, None if value is None else float(value), int(status)))
        self.status.readings_received += 1
        if self._newest_us is None or ts > self._newest_us:
            self._newest_us = ts

    async def _fill_gaps(self, client: Client) -> None:
        """HistoryRead from each cursor (exclusive) to the current value's timestamp."""
        nodes = list(self._node_tag)
        current = await client.uaclient.read_attributes(nodes, ua.AttributeIds.Value)
        ends: dict[ua.NodeId, int] = {}
        for nodeid, dv in zip(nodes, current):
            t = dv.SourceTimestamp or dv.ServerTimestamp
            if t is not None:
                ends[nodeid] = to_us(t)
        for nodeid in nodes:
            if nodeid not in ends:  # no value yet: nothing to fill, the subscription has it all
                self._synced.add(self._node_tag[nodeid])
        todo = [n for n in nodes if n in ends]
        step = max(1, self.cfg.history_nodes_per_request)
        n_read = 0
        for i in range(0, len(todo), step):
            chunk = todo[i : i + step]
            starts = {n: self._start_us(self._node_tag[n], ends[n]) for n in chunk}
            got = await _history_raw(client, chunk, min(starts.values()), max(ends[n] for n in chunk))
            for n in chunk:
                tag = self._node_tag[n]
                ts, val, null, st = got[n]
                keep = ts > starts[n] - 1
                if keep.any():
                    self._pending[tag].chunks.append((ts[keep], val[keep], null[keep], st[keep]))
                    n_read += int(keep.sum())
                    if self._newest_us is None or ts[keep][-1] > self._newest_us:
                        self._newest_us = int(ts[keep][-1])
                self._synced.add(tag)
        self.status.readings_received += n_read
        log.info("history gap filled: %d readings for %d tags", n_read, len(todo))

    def _start_us(self, tag: str, end_us: int) -> int:
        """First source time (inclusive) to read for ``tag``."""
        c = self.tags[tag].cursor_us
        if c is not None:
            return c + 1
        if self.cfg.backfill_s is None:
            return 0
        return end_us - int(self.cfg.backfill_s * 1_000_000)

    async def _record_context(self, client: Client) -> None:
        """Read the batch-context variables; append a row per unit whose (batch, phase) changed."""
        keys = list(self._context_nodes)
        dvs = await client.uaclient.read_attributes([self._context_nodes[k] for k in keys], ua.AttributeIds.Value)
        values: dict[str, dict[str, tuple[Any, dt.datetime | None]]] = {}
        for (unit, name), dv in zip(keys, dvs):
            v = dv.Value.Value if dv.Value is not None else None
            values.setdefault(unit, {})[name] = (v, dv.SourceTimestamp)
        changed = {
            u: v
            for u, v in values.items()
            if (str(v.get("Id", ("", None))[0]), str(v.get("Phase", ("", None))[0])) != self._context_seen.get(u)
        }
        if not changed:
            return
        rows = context_rows(changed, dt.datetime.now(dt.UTC), self.endpoint, self.run_id)
        try:
            await asyncio.to_thread(
                retrying, lambda: append_context(self.lake, rows), "append bronze/live_batch_context", self.cfg.retry
            )
        except Exception as exc:  # the readings matter more: keep collecting, try again next flush
            self._note_error(f"batch context: {exc!r}")
            log.error("could not record the batch context: %r", exc)
            return
        for r in rows:
            self._context_seen[r["unit_id"]] = (r["batch_id"], r["phase"])

    # ================================================================ flush / commit
    async def _flush(self, final: bool = False) -> None:
        async with self._flush_lock:
            batch_in = self._take_batch()
            if batch_in:
                try:
                    await asyncio.to_thread(self._commit, batch_in)
                except Exception as exc:
                    self.status.commit_failures += 1
                    self._note_error(f"commit: {exc!r}")
                    log.error(
                        "commit of %d readings failed, kept for the next flush: %r",
                        sum(a[0].size for a in batch_in.values()),
                        exc,
                    )
                    for tag, arrays in batch_in.items():
                        self._pending[tag].chunks.insert(0, arrays)
            if final or time.monotonic() - self._status_written >= self.cfg.status_every_s:
                self._status_written = time.monotonic()
                try:
                    await asyncio.to_thread(self.write_status)
                except Exception as exc:
                    log.warning("could not write the collector status: %r", exc)

    def _take_batch(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        out = {}
        for tag in sorted(self._synced):
            p = self._pending.get(tag)
            if p is None or len(p) == 0:
                continue
            ts, val, null, st = p.arrays()
            self._pending[tag] = _Pending()
            c = self.tags[tag].cursor_us
            keep = ts > c if c is not None else np.ones(ts.size, dtype=bool)
            if keep.any():
                out[tag] = (ts[keep], val[keep], null[keep], st[keep])
        return out

    def _commit(self, batch_in: dict[str, tuple[np.ndarray, ...]]) -> None:
        """Validate and commit one micro-batch (quarantine, then bronze); runs in a thread."""
        batch = self._prepare(batch_in)
        ingested_at = dt.datetime.now(dt.UTC)
        q_written, q_version = self._commit_table(QUARANTINE_TABLE, batch, ~batch.valid, ingested_at)
        if q_version is not None:
            _fire(
                "quarantine_committed",
                table=QUARANTINE_TABLE,
                rows=int(q_written.sum()),
                version=q_version,
                run_id=self.run_id,
            )
        written, version = self._commit_table(TABLE, batch, batch.valid, ingested_at)
        commit_wall = time.time()
        if version is not None:
            _fire("bronze_committed", table=TABLE, rows=int(written.sum()), version=version, run_id=self.run_id)
            self.status.commits += 1
            self.status.last_commit_version = version
            self.status.last_commit_at = _iso(commit_wall)
        # what THIS commit wrote (another writer may have committed some of the readings first)
        per_tag = np.bincount(batch.code[written], minlength=len(batch.tags))
        per_tag_q = np.bincount(batch.code[q_written], minlength=len(batch.tags))
        for k, tag in enumerate(batch.tags):
            st = self.tags[tag]
            st.rows_committed += int(per_tag[k])
            st.rows_quarantined += int(per_tag_q[k])
            st.cursor_us = max(st.cursor_us or 0, batch.last_us[tag])
        self.status.rows_committed += int(written.sum())
        self.status.rows_quarantined += int(q_written.sum())
        lat = commit_wall - batch.ts_us[written] / 1e6
        self._latencies = (self._latencies + lat.tolist())[-100_000:]

    def _prepare(self, batch_in: dict[str, tuple[np.ndarray, ...]]) -> _Batch:
        tags = sorted(batch_in)
        sizes = [batch_in[t][0].size for t in tags]
        code = np.repeat(np.arange(len(tags), dtype=np.int32), sizes)
        ts = np.concatenate([batch_in[t][0] for t in tags])
        val = np.concatenate([batch_in[t][1] for t in tags])
        null = np.concatenate([batch_in[t][2] for t in tags])
        st = np.concatenate([batch_in[t][3] for t in tags])
        units = [self.tags[t].unit or _declared_unit(self.ctx.tagmap, t) for t in tags]
        quality = QUALITY_BY_SEVERITY[(st >> 30) & 0x3]
        tag_dict = pa.array(tags, pa.string())
        unit_dict = pa.array(units, pa.string())
        codes = pa.array(code, pa.int32())
        tbl = pa.table(
            {
                "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "tag": pa.DictionaryArray.from_arrays(codes, tag_dict),
                "value": pa.array(val, pa.float64(), mask=null),
                "unit": pa.DictionaryArray.from_arrays(codes, unit_dict),
                "quality": pa.array(quality, pa.int16()),
            }
        )
        part = historian_part(tbl, None, self.ctx)
        check = pl.from_arrow(part.check).with_columns(pl.lit(0, pl.Int32).alias("_file"))
        bad_idx = split_invalid(check, schema_historian(self.ctx), HIST_REASONS)
        valid = np.ones(ts.size, dtype=bool)
        reasons: dict[int, str] = {}
        raw: list[str | None] = [None] * ts.size
        if bad_idx.height:
            idx = bad_idx.get_column("index").to_numpy()
            valid[idx] = False
            for i, reason in zip(idx.tolist(), bad_idx.get_column("_reason").to_list()):
                reasons[i] = reason
                raw[i] = json.dumps(
                    {
                        "tag": tags[code[i]],
                        "source_timestamp": us_to_datetime(int(ts[i])).isoformat(),
                        "value": None if null[i] else float(val[i]),
                        "status": f"0x{int(st[i]):08X}",
                        "unit": units[code[i]],
                    }
                )
        h = hashlib.sha256(self.endpoint.encode())
        for t, n in zip(tags, sizes):
            h.update(f"|{t}|{n}|".encode())
        for a in (ts, val, null, st):
            h.update(np.ascontiguousarray(a).tobytes())
        last = {t: int(batch_in[t][0][-1]) for t in tags}
        return _Batch(tags, code, ts, last, part.payload, valid, reasons, raw, h.hexdigest())

    def _commit_table(
        self, table: str, batch: _Batch, rows: np.ndarray, ingested_at: dt.datetime
    ) -> tuple[np.ndarray, int | None]:
        """Append ``batch`` rows (mask) newer than each tag's cursor in ``table``, with the
        tags' transactions, in ONE commit (retried on conflicts and transient errors).

        Returns (mask of the rows this commit wrote, new table version or None)."""
        nothing = np.zeros(rows.size, dtype=bool)
        if table == QUARANTINE_TABLE and not rows.any():
            return nothing, None
        attempts = 0

        def attempt() -> tuple[np.ndarray, int | None]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:  # a conflict or an outage: re-open the table, re-read the cursors
                self._tables.pop(table, None)
                self.status.commit_retries += 1
            dt_ = self._table(table, refresh=True)
            cursors = np.array(
                [_or_min(dt_.transaction_version(app_id(self.endpoint, t))) for t in batch.tags], dtype=np.int64
            )
            sel = rows & (batch.ts_us > cursors[batch.code])
            # bronze: a transaction for every tag with newer readings (rejected ones too);
            # quarantine: for tags with newer rejected readings
            txn_tags = [
                t
                for k, t in enumerate(batch.tags)
                if batch.last_us[t] > cursors[k] and (table == TABLE or sel[batch.code == k].any())
            ]
            if not txn_tags:
                return nothing, None
            data = self._rows(table, batch, sel, ingested_at)
            _fire("before_commit", table=table, rows=data.num_rows, attempt=attempts - 1, run_id=self.run_id)
            now_ms = int(time.time() * 1000)
            commit = CommitProperties(
                app_transactions=[
                    Transaction(app_id(self.endpoint, t), int(batch.last_us[t]), now_ms) for t in txn_tags
                ],
                custom_metadata={
                    "lakehouse.operation": "live-collect",
                    "lakehouse.run_id": self.run_id,
                    "lakehouse.source": self.endpoint,
                    "lakehouse.source_hash": batch.sha256,
                    "lakehouse.tags": str(len(txn_tags)),
                    **self._provenance,
                },
            )
            return sel, append_rows(self.lake, table, dt_, data, commit)

        return retrying(attempt, f"commit to bronze/{table}", self.cfg.retry)

    def _rows(self, table: str, batch: _Batch, sel: np.ndarray, ingested_at: dt.datetime) -> pa.Table:
        idx = pa.array(np.flatnonzero(sel))
        src = SourceFile(uri=self.endpoint, rel_path=self.endpoint, sha256=batch.sha256)
        if table == TABLE:
            return _with_lineage(batch.payload.take(idx), src, TABLE, self.run_id, ingested_at)
        rows = np.flatnonzero(sel)
        n = rows.size
        return pa.table(
            {
                "table": const_string(TABLE, n),
                "source_file": const_string(self.endpoint, n),
                "source_hash": const_string(batch.sha256, n),
                "row_number": pa.array(rows + 1, pa.int64()),
                "reason": pa.array([batch.reasons[i] for i in rows.tolist()], pa.string()),
                "raw_record": pa.array([batch.raw[i] for i in rows.tolist()], pa.string()),
                "_run_id": const_string(self.run_id, n),
                "_ingested_at": const_ts(ingested_at, n),
            }
        ).cast(QUARANTINE_SCHEMA)

    def _table(self, table: str, refresh: bool = False) -> DeltaTable:
        dt_ = self._tables.get(table)
        if dt_ is None:
            dt_ = ensure_table(self.lake, table)
            self._tables[table] = dt_
        elif refresh:
            dt_.update_incremental()
        return dt_

    # ================================================================ status
    def snapshot(self) -> CollectorStatus:
        """The status with per-tag cursors and lags filled in."""
        s = self.status
        s.updated_at = _iso(time.time())
        newest = self._newest_us
        s.server_time = us_to_datetime(newest).isoformat() if newest is not None else None
        lags = []
        tags = {}
        for tag, st in sorted(self.tags.items()):
            lag = (newest - st.cursor_us) / 1e6 if newest is not None and st.cursor_us is not None else None
            if lag is not None:
                lags.append(lag)
            spec = self.cfg.tagmap.resolve(tag)
            tags[tag] = {
                "unit_id": spec.unit_id if spec is not None else None,
                "cursor": us_to_datetime(st.cursor_us).isoformat() if st.cursor_us is not None else None,
                "lag_s": None if lag is None else round(lag, 3),
                "unit": st.unit,
                "rows_committed": st.rows_committed,
                "rows_quarantined": st.rows_quarantined,
            }
        s.tags = tags
        s.max_lag_s = round(max(lags), 3) if lags else None
        if self._latencies:
            a = np.asarray(self._latencies[-20_000:])
            s.commit_latency_s = {
                "p50": round(float(np.percentile(a, 50)), 3),
                "p95": round(float(np.percentile(a, 95)), 3),
                "n": int(a.size),
            }
        return s

    def write_status(self, final: bool = False) -> None:
        """Write :meth:`snapshot` as JSON to ``<lake>/<status_path>``."""
        data = json.dumps(self.snapshot().as_dict(), indent=1, default=str).encode()
        fs = self.lake.filesystem()
        path = self.lake.fs_path(self.lake.uri(self.cfg.status_path))
        if not self.lake.is_s3:
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.tmp" if not self.lake.is_s3 else path
        fs.pipe_file(tmp, data)
        if tmp != path:
            fs.mv(tmp, path)

    def _note_error(self, msg: str) -> None:
        self.status.last_error = f"{_iso(time.time())} {msg}"[:500]


def read_status(lake: Lake, status_path: str = STATUS_PATH) -> dict[str, Any] | None:
    """The last status a collector wrote, or None if there is none."""
    fs = lake.filesystem()
    try:
        return json.loads(fs.cat_file(lake.fs_path(lake.uri(status_path))))
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------- OPC UA helpers
async def _browse_historized(
    client: Client, context: dict[tuple[str, str], ua.NodeId] | None = None
) -> dict[ua.NodeId, str]:
    """Every variable under Objects (outside namespace 0) that is numeric and historized:
    node id -> tag name (the node id's string identifier, else its browse name). Batch-context
    variables (``<unit>.Batch.<name>``, :data:`lakehouse.live.context.CONTEXT_NODES`) go to
    ``context`` as (unit, name) -> node id."""
    out: dict[ua.NodeId, str] = {}
    seen: set[ua.NodeId] = set()
    stack = [client.nodes.objects]
    while stack:
        node = stack.pop()
        children = [c for c in await node.get_children() if c.nodeid.NamespaceIndex != 0 and c.nodeid not in seen]
        seen.update(c.nodeid for c in children)
        if not children:
            continue
        ids = [c.nodeid for c in children]
        classes = await client.uaclient.read_attributes(ids, ua.AttributeIds.NodeClass)
        stack += [c for c, k in zip(children, classes) if k.Value.Value == ua.NodeClass.Object]
        variables = [c for c, k in zip(children, classes) if k.Value.Value == ua.NodeClass.Variable]
        if not variables:
            continue
        vids = [v.nodeid for v in variables]
        dtypes = await client.uaclient.read_attributes(vids, ua.AttributeIds.DataType)
        levels = await client.uaclient.read_attributes(vids, ua.AttributeIds.AccessLevel)
        names = await client.uaclient.read_attributes(vids, ua.AttributeIds.BrowseName)
        for nid, dtype, level, name in zip(vids, dtypes, levels, names):
            if context is not None and isinstance(nid.Identifier, str) and ".Batch." in nid.Identifier:
                unit, _, leaf = nid.Identifier.rpartition(".Batch.")
                if leaf in CONTEXT_NODES:
                    context[(unit, leaf)] = nid
                    continue
            d = dtype.Value.Value
            if d is None or d.NamespaceIndex != 0 or d.Identifier not in _NUMERIC:
                continue
            if not int(level.Value.Value or 0) & ua.AccessLevel.HistoryRead.mask:
                continue
            out[nid] = nid.Identifier if isinstance(nid.Identifier, str) else str(name.Value.Value.Name)
    return out


async def _engineering_units(client: Client, nodes: list[ua.NodeId]) -> dict[ua.NodeId, str | None]:
    """The EngineeringUnits (EUInformation DisplayName) of each node, None where it has none."""
    paths = [
        ua.BrowsePath(
            StartingNode=n,
            RelativePath=ua.RelativePath(
                Elements=[
                    ua.RelativePathElement(
                        ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasProperty),
                        IsInverse=False,
                        IncludeSubtypes=True,
                        TargetName=ua.QualifiedName("EngineeringUnits", 0),
                    )
                ]
            ),
        )
        for n in nodes
    ]
    results = await client.uaclient.translate_browsepaths_to_nodeids(paths)
    props = {n: r.Targets[0].TargetId for n, r in zip(nodes, results) if r.StatusCode.is_good() and r.Targets}
    out: dict[ua.NodeId, str | None] = {n: None for n in nodes}
    if props:
        keys = list(props)
        values = await client.uaclient.read_attributes(
            [ua.NodeId(props[k].Identifier, props[k].NamespaceIndex) for k in keys], ua.AttributeIds.Value
        )
        for k, dv in zip(keys, values):
            eu = dv.Value.Value if dv.Value is not None else None
            text = getattr(getattr(eu, "DisplayName", None), "Text", None)
            out[k] = str(text) if text else None
    return out


async def _history_raw(
    client: Client, nodes: list[ua.NodeId], start_us: int, end_us: int
) -> dict[ua.NodeId, tuple[np.ndarray, ...]]:
    """HistoryRead (raw, forward) of several nodes over [start, end], following continuation
    points: per node (ts µs, value, value is null, status) in time order."""
    acc: dict[ua.NodeId, list[tuple[int, float | None, int]]] = {n: [] for n in nodes}
    cont: dict[ua.NodeId, bytes | None] = {n: None for n in nodes}
    todo = list(nodes)
    details = ua.ReadRawModifiedDetails(
        IsReadModified=False,
        StartTime=us_to_datetime(max(start_us, 0)),
        EndTime=us_to_datetime(end_us),
        NumValuesPerNode=0,
        ReturnBounds=False,
    )
    while todo:
        params = ua.HistoryReadParameters(
            HistoryReadDetails=details,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            ReleaseContinuationPoints=False,
            NodesToRead=[ua.HistoryReadValueId(NodeId=n, ContinuationPoint=cont[n]) for n in todo],
        )
        results = await client.uaclient.history_read(params)
        nxt = []
        for n, res in zip(todo, results):
            res.StatusCode.check()
            for dv in (res.HistoryData.DataValues or []) if res.HistoryData is not None else []:
                t = dv.SourceTimestamp or dv.ServerTimestamp
                if t is None:
                    continue
                v = dv.Value.Value if dv.Value is not None else None
                acc[n].append(
                    (
                        to_us(t),
                        None if v is None else float(v),
                        int(dv.StatusCode.value) if dv.StatusCode is not None else 0,
                    )
                )
            if res.ContinuationPoint and res.ContinuationPoint != cont[n]:
                cont[n] = res.ContinuationPoint
                nxt.append(n)
        todo = nxt
    out = {}
    for n, rows in acc.items():
        k = len(rows)
        out[n] = (
            np.fromiter((r[0] for r in rows), np.int64, k),
            np.fromiter((0.0 if r[1] is None else r[1] for r in rows), np.float64, k),
            np.fromiter((r[1] is None for r in rows), bool, k),
            np.fromiter((r[2] for r in rows), np.int64, k),
        )
    return out


# ---------------------------------------------------------------------- small helpers
def _declared_unit(tagmap: TagMap, tag: str) -> str | None:
    spec = tagmap.resolve(tag)
    return spec.source_unit if spec is not None else None


def _or_min(v: int | None) -> int:
    return np.iinfo(np.int64).min if v is None else int(v)


def _iso(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds")


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


async def _wait(event: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass


# ---------------------------------------------------------------------- entry point
def collect(
    lake: Lake,
    endpoint: str,
    *,
    tagmap: TagMap | None = None,
    tags: Sequence[str] | None = None,
    flush_interval_s: float = 2.0,
    backfill_s: float | None = 3600.0,
    duration_s: float | None = None,
    run_id: str | None = None,
    stop: threading.Event | None = None,
    log_every_s: float = 10.0,
    **config: Any,
) -> CollectorStatus:
    """Run a collector until SIGINT/SIGTERM, ``stop`` or ``duration_s``; log progress.

    Returns the final :class:`CollectorStatus` (also written to the lake).
    """
    cfg = CollectorConfig(
        endpoint=endpoint,
        tags=tags,
        tagmap=tagmap or TagMap.contract_default(),
        flush_interval_s=flush_interval_s,
        backfill_s=backfill_s,
        **config,
    )
    collector = LiveCollector(lake, cfg, run_id=run_id)
    return asyncio.run(_collect(collector, duration_s, stop, log_every_s))


async def _collect(
    collector: LiveCollector, duration_s: float | None, stop: threading.Event | None, log_every_s: float
) -> CollectorStatus:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, done.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass

    async def watch() -> None:
        last = 0.0
        while not done.is_set():
            if stop is not None and stop.is_set():
                done.set()
                break
            if time.monotonic() - last >= log_every_s:
                last = time.monotonic()
                s = collector.snapshot()
                log.info(
                    "%s: %s, %d rows committed (%d quarantined), %d commits, max lag %s s, %d reconnects",
                    s.endpoint,
                    s.state,
                    s.rows_committed,
                    s.rows_quarantined,
                    s.commits,
                    s.max_lag_s,
                    s.reconnects,
                )
            await _wait(done, 0.2)

    watcher = asyncio.create_task(watch())
    try:
        return await collector.run(done, duration_s)
    finally:
        done.set()
        await watcher
