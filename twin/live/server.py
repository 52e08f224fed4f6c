"""OPC UA server (asyncua) that plays a simulated site in simulated time.

Address space (namespace :data:`NAMESPACE_URI`)::

    Objects/Plant                         ns;s=Plant
      Plant.SimulatedTime   DateTime      the server's simulated clock
      Plant.PublishedUntil  DateTime      every reading up to here has been published
      Plant.Speed           Double        simulated seconds per wall second
      Plant.HistoryWindow   Double        seconds of simulated time HistoryRead serves
      BR-101                              one object per bioreactor
        BR-101.TEMP.PV      Double        one variable per historian tag (twin/historian.py)
        ...                               (EngineeringUnits property, HistoryRead access)
        BR-101.Batch                      MES context
          BR-101.Batch.Id         String  current batch id ("" when the vessel is idle)
          BR-101.Batch.Operation  String  e.g. "Cell Culture"
          BR-101.Batch.Phase      String  Prepare, Inoculate, Batch, Fed-Batch, Production,
                                          Harvest, Drain (aborted batch) or Idle
          BR-101.Batch.CultureStart DateTime inoculation time of the current batch (epoch: none)
          BR-101.Batch.Recipe     String  the batch's control-recipe setpoints as JSON ("{}": none)

A tag value is published as a DataValue with the historian's value, a status mapped from the
historian quality (:data:`QUALITY_STATUS`) and SourceTimestamp = the simulated reading time.
The twin replays a historian record, so a Bad reading keeps the value the historian stored (a
frozen sensor); a spec-strict server would send it without a value (see docs/live.md).

Deviations: :meth:`PlantServer.inject` adds an :class:`Injection` (an offset on one tag from a
simulated time on, e.g. a temperature-control fault on ``TEMP.PV``) to what is published AND to
what HistoryRead serves — only readings not yet published can change, so the record a client
has seen stays the record.

Time: :class:`SimClock` (simulated = start + speed × (wall − anchor)). The publisher advances
``published_until`` to the simulated now every ``tick_s`` and writes every reading of
(previous, now] to its node, in time order. History is not stored: HistoryRead (raw) serves
the same readings straight from the twin's day arrays (deterministic for a seed), for source
times in [published_until − history_window, published_until]. ``published_until`` moves
BEFORE a tick's readings are written, so a client that subscribes and then reads history
never misses a reading (it may see one twice; a collector de-duplicates by timestamp).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from asyncua import Server, ua
from asyncua.server.history import HistoryStorageInterface

from twin.historian import TAG_NAMES, TAG_UNITS, DayReadings
from twin.site import SiteConfig, SitePlan, plan_site

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:bioprocess-lakehouse:twin"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DAY_MS = 86_400_000
# historian quality -> OPC UA status code (severity bits: 00 Good, 01 Uncertain, 10 Bad)
#: MES context variables under ``<unit>.Batch`` (CultureStart is a DateTime, the others strings)
BATCH_NODES: tuple[str, ...] = ("Id", "Operation", "Phase", "CultureStart", "Recipe")
QUALITY_STATUS: dict[int, int] = {192: ua.StatusCodes.Good, 64: ua.StatusCodes.Uncertain, 0: ua.StatusCodes.Bad}
_STATUS = {q: ua.StatusCode(code) for q, code in QUALITY_STATUS.items()}
# historian unit -> UNECE Rec. 20 common code (OPC UA Part 8 EUInformation); units without a
# code (pH, rpm, pF/cm, mm/s here) get UnitId -1. DisplayName is always the historian's unit.
UNECE_CODES: dict[str, str] = {
    "degC": "CEL",
    "%": "P1",
    "kg": "KGM",
    "bar": "BAR",
    "A": "AMP",
    "mL": "MLT",
    "L/min": "L2",
    "mL/min": "41",
}
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"


def unece_unit_id(code: str | None) -> int:
    """OPC UA UnitId of a UNECE common code (its ASCII bytes as an integer), -1 without one."""
    if not code:
        return -1
    out = 0
    for ch in code.upper():
        out = (out << 8) | ord(ch)
    return out


def eu_information(unit: str) -> ua.EUInformation:
    """EngineeringUnits of a historian unit string."""
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=unece_unit_id(UNECE_CODES.get(unit)),
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(unit),
    )


def ms_to_datetime(ms: int) -> dt.datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return EPOCH + dt.timedelta(milliseconds=int(ms))


def datetime_to_us(t: dt.datetime) -> int:
    """Microseconds since the epoch of an aware (or naive UTC) datetime, exactly."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    d = t - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


@dataclass(frozen=True)
class SimClock:
    """Simulated time = ``sim_start_ms`` + ``speed`` × (wall − ``wall_anchor``), in ms.

    Keep the same clock (same anchor) across a server restart and simulated time goes on as if
    the plant had kept running (the readings of the outage are then served by HistoryRead).
    """

    sim_start_ms: int
    wall_anchor: float
    speed: float = 1.0

    @classmethod
    def starting_now(cls, sim_start: dt.datetime | str, speed: float = 1.0) -> SimClock:
        """A clock whose simulated time is ``sim_start`` now."""
        if isinstance(sim_start, str):
            sim_start = dt.datetime.fromisoformat(sim_start.replace("Z", "+00:00"))
        if speed <= 0:
            raise ValueError(f"speed must be > 0 (got {speed})")
        return cls(datetime_to_us(sim_start) // 1000, time.time(), float(speed))

    def now_ms(self, wall: float | None = None) -> int:
        """Simulated time (ms since the epoch) at wall-clock time ``wall`` (default: now)."""
        wall = time.time() if wall is None else wall
        return self.sim_start_ms + int(math.floor((wall - self.wall_anchor) * self.speed * 1000.0))

    def wall_of(self, sim_ms: float) -> float:
        """Wall time (epoch seconds) at which the clock shows ``sim_ms``."""
        return self.wall_anchor + (sim_ms - self.sim_start_ms) / 1000.0 / self.speed


@dataclass(frozen=True)
class Injection:
    """A deviation injected into the served record: ``offset`` added to tag ``unit.suffix`` for
    readings with ``start_ms <= ts < end_ms`` (simulated ms since the epoch), ramped in linearly
    over ``ramp_s`` simulated seconds (a control fault drifts away, it does not jump).

    Only the served signal changes (the twin's culture does not react): enough for monitoring and
    for the live mirror, which replays the measured temperature and feed.
    """

    unit: str
    suffix: str
    offset: float
    start_ms: int
    end_ms: int = 2**62
    ramp_s: float = 0.0

    def delta(self, ts_ms: np.ndarray) -> np.ndarray:
        """The offset at each reading time (0 outside the window)."""
        t = ts_ms.astype(np.float64)
        inside = (t >= self.start_ms) & (t < self.end_ms)
        frac = np.ones_like(t) if self.ramp_s <= 0 else np.clip((t - self.start_ms) / (self.ramp_s * 1000.0), 0, 1)
        return np.where(inside, self.offset * frac, 0.0)

    @classmethod
    def parse(cls, text: str, sim_start_ms: int) -> Injection:
        """``UNIT.SUFFIX:OFFSET:AFTER_S[:DURATION_S[:RAMP_S]]`` (seconds of simulated time after
        ``sim_start_ms``), e.g. ``BR-101.TEMP.PV:+2.5:7200:86400:3600``."""
        parts = text.split(":")
        if len(parts) < 3 or "." not in parts[0]:
            raise ValueError(f"--inject {text!r}: expected UNIT.SUFFIX:OFFSET:AFTER_S[:DURATION_S[:RAMP_S]]")
        unit, suffix = parts[0].split(".", 1)
        if suffix not in TAG_NAMES:
            raise ValueError(f"--inject {text!r}: unknown tag suffix {suffix!r} (known: {', '.join(TAG_NAMES)})")
        after = float(parts[2])
        start = sim_start_ms + int(after * 1000)
        end = start + int(float(parts[3]) * 1000) if len(parts) > 3 and parts[3] else 2**62
        ramp = float(parts[4]) if len(parts) > 4 else 0.0
        return cls(unit, suffix, float(parts[1]), start, end, ramp)


class _Days:
    """Per-unit historian day arrays of a plan, generated on demand (in a worker thread)."""

    def __init__(self, plan: SitePlan) -> None:
        self.plan = plan
        self.t0_ms = int(plan.t0.astype("datetime64[ms]").astype(np.int64))
        self.n_days = int(plan.cfg.days)
        self._cache: dict[tuple[str, int], tuple[np.ndarray, DayReadings]] = {}
        self._lock = threading.Lock()
        self.injections: list[Injection] = []

    def day_of(self, ms: int) -> int:
        return (int(ms) - self.t0_ms) // DAY_MS

    def get(self, unit: str, day: int) -> tuple[np.ndarray, DayReadings]:
        """(ts in ms as int64, readings) of one unit-day; blocking (call in a thread)."""
        key = (unit, day)
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                r = self.plan.unit_day(unit, day)
                ts = r.ts.astype("datetime64[ms]").astype(np.int64)
                mine = [inj for inj in self.injections if inj.unit == unit]
                if mine:
                    r = dataclasses.replace(r, values=r.values.copy())
                    for inj in mine:
                        r.values[:, TAG_NAMES.index(inj.suffix)] += inj.delta(ts)
                hit = (ts, r)
                self._cache[key] = hit
        return hit

    def add_injection(self, inj: Injection) -> None:
        """Apply ``inj`` from now on (cached days of its unit are regenerated)."""
        with self._lock:
            self.injections.append(inj)
            for key in [k for k in self._cache if k[0] == inj.unit]:
                del self._cache[key]

    def evict_before(self, day: int) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[1] < day]:
                del self._cache[key]

    def days_between(self, a_ms: int, b_ms: int) -> range:
        """Days overlapping [a_ms, b_ms], clipped to the simulated window."""
        lo = max(self.day_of(a_ms), 0)
        hi = min(self.day_of(b_ms), self.n_days - 1)
        return range(lo, hi + 1)

    def slices(
        self, unit: str, a_ms: int, b_ms: int, *, left_open: bool
    ) -> list[tuple[np.ndarray, DayReadings, int, int]]:
        """Row slices of ``unit`` with a < ts ≤ b (``left_open``) or a ≤ ts ≤ b."""
        out = []
        for d in self.days_between(a_ms, b_ms):
            ts, r = self.get(unit, d)
            i0 = int(np.searchsorted(ts, a_ms, side="right" if left_open else "left"))
            i1 = int(np.searchsorted(ts, b_ms, side="right"))
            if i1 > i0:
                out.append((ts, r, i0, i1))
        return out


class _TwinHistory(HistoryStorageInterface):
    """HistoryRead (raw) from the twin's day arrays; nothing is stored."""

    def __init__(self, server: PlantServer, max_history_data_response_size: int = 10_000) -> None:
        super().__init__(max_history_data_response_size)
        self.server = server

    async def init(self) -> None:
        return None

    async def new_historized_node(self, node_id, period, count=0) -> None:
        return None

    async def save_node_value(self, node_id, datavalue) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def read_node_history(
        self, node_id: ua.NodeId, start: dt.datetime | None, end: dt.datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], dt.datetime | None]:
        where = self.server.tag_index.get(node_id)
        if where is None:
            return [], None
        unit, j = where
        epoch = ua.get_win_epoch()
        s_us = None if start is None or start == epoch else datetime_to_us(start)
        e_us = None if end is None or end == epoch else datetime_to_us(end)
        lo_us, hi_us = (v * 1000 for v in self.server.history_range_ms())
        # OPC UA Part 11 (raw): start > end, or only an end, reads backward (newest first)
        backward = e_us is not None and (s_us is None or s_us > e_us)
        if backward:
            newest, oldest = (e_us, None) if s_us is None else (s_us, e_us)
        else:
            newest, oldest = e_us, s_us
        a_us = lo_us if oldest is None else max(oldest, lo_us)
        b_us = hi_us if newest is None else min(newest, hi_us)
        if b_us < a_us:
            return [], None
        # ms-resolution readings in [a_us, b_us]: ceil / floor to whole milliseconds
        a_ms, b_ms = -(-a_us // 1000), b_us // 1000
        parts = await asyncio.to_thread(self.server.days.slices, unit, a_ms, b_ms, left_open=False)
        ts = np.concatenate([p[0][p[2] : p[3]] for p in parts]) if parts else np.empty(0, np.int64)
        val = np.concatenate([p[1].values[p[2] : p[3], j] for p in parts]) if parts else np.empty(0)
        q = np.concatenate([p[1].quality[p[2] : p[3], j] for p in parts]) if parts else np.empty(0, np.int16)
        if backward:
            ts, val, q = ts[::-1], val[::-1], q[::-1]
        if nb_values and ts.size > nb_values:
            ts, val, q = ts[:nb_values], val[:nb_values], q[:nb_values]
        cont = None
        if ts.size > self.max_history_data_response_size:
            cont = ms_to_datetime(int(ts[self.max_history_data_response_size]))
            n = self.max_history_data_response_size
            ts, val, q = ts[:n], val[:n], q[:n]
        now = dt.datetime.now(dt.UTC)
        return [_datavalue(float(v), int(qq), ms_to_datetime(int(t)), now) for t, v, qq in zip(ts, val, q)], cont


def _datavalue(value: float, quality: int, source: dt.datetime, server: dt.datetime) -> ua.DataValue:
    return ua.DataValue(
        Value=ua.Variant(value, ua.VariantType.Double),
        StatusCode=_STATUS[quality],
        SourceTimestamp=source,
        ServerTimestamp=server,
    )


class PlantServer:
    """An asyncua server that plays ``plan`` on ``clock`` (see the module docstring).

    Parameters
    ----------
    plan : SitePlan
        The planned, simulated site (:func:`twin.site.plan_site`).
    clock : SimClock
        Simulated time; keep the same one across restarts.
    host, port : str, int
        Listen address; port 0 picks a free port (see :attr:`endpoint` after :meth:`start`).
    history_window_s : float
        Seconds of simulated time before ``published_until`` that HistoryRead serves.
    tick_s : float
        Wall seconds between two publications.
    units : sequence of str, optional
        Units to serve (default: every unit of the plan).
    """

    def __init__(
        self,
        plan: SitePlan,
        clock: SimClock,
        *,
        host: str = "127.0.0.1",
        port: int = 4840,
        history_window_s: float = 86_400.0,
        tick_s: float = 0.25,
        units: Sequence[str] | None = None,
    ) -> None:
        if plan.cfg.interval_s < 1.0:
            raise ValueError("the live server needs a historian interval of at least 1 s")
        self.plan = plan
        self.clock = clock
        self.host, self.port = host, int(port)
        self.history_window_ms = int(history_window_s * 1000)
        self.tick_s = float(tick_s)
        self.units = list(units or plan.cfg.unit_ids())
        self.days = _Days(plan)
        self.site_start_ms = self.days.t0_ms
        self.site_end_ms = self.days.t0_ms + self.days.n_days * DAY_MS
        self.published_ms = min(max(clock.now_ms(), self.site_start_ms), self.site_end_ms)
        self.readings_published = 0
        self.tag_index: dict[ua.NodeId, tuple[str, int]] = {}
        self._server: Server | None = None
        self._attvals: dict[str, list[Any]] = {}
        self._batch_nodes: dict[str, tuple[ua.NodeId, ...]] = {}
        self._batch_state: dict[str, tuple[str, str, str]] = {}
        self._plant_nodes: dict[str, ua.NodeId] = {}
        self._task: asyncio.Task | None = None
        self._ended = False
        self._prefetching: asyncio.Task | None = None
        self._prefetched = -1
        self.ns = 0

    # ------------------------------------------------------------------ properties
    @property
    def endpoint(self) -> str:
        """``opc.tcp://host:port`` of the server."""
        return f"opc.tcp://{self.host}:{self.port}"

    def history_range_ms(self) -> tuple[int, int]:
        """[first, last] simulated ms that HistoryRead serves right now."""
        return max(self.published_ms - self.history_window_ms, self.site_start_ms), self.published_ms

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Build the address space, listen, and start publishing."""
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}")
        server.set_server_name(f"bioprocess-lakehouse twin ({self.plan.cfg.product}, {len(self.units)} units)")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.iserver.history_manager.set_storage(_TwinHistory(self))
        self.ns = await server.register_namespace(NAMESPACE_URI)
        await self._build(server)
        await server.start()
        self._server = server
        self.port = int(server.bserver.port) if server.bserver is not None else self.port
        self._task = asyncio.create_task(self._publish_loop(), name="twin-publisher")
        log.info(
            "twin OPC UA server on %s: %d units, %d tags, speed %g, simulated time %s",
            self.endpoint,
            len(self.units),
            len(self.tag_index),
            self.clock.speed,
            ms_to_datetime(self.published_ms).isoformat(),
        )

    async def stop(self) -> None:
        """Stop publishing and close every connection."""
        for task in (self._prefetching, self._task):
            if task is not None:
                task.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    # ------------------------------------------------------------------ address space
    async def _build(self, server: Server) -> None:
        ns = self.ns
        plant = await server.nodes.objects.add_object(ua.NodeId("Plant", ns), ua.QualifiedName("Plant", ns))
        now = ms_to_datetime(self.published_ms)
        for name, value, vtype in (
            ("SimulatedTime", now, ua.VariantType.DateTime),
            ("PublishedUntil", now, ua.VariantType.DateTime),
            ("Speed", float(self.clock.speed), ua.VariantType.Double),
            ("HistoryWindow", self.history_window_ms / 1000.0, ua.VariantType.Double),
        ):
            node = await plant.add_variable(ua.NodeId(f"Plant.{name}", ns), ua.QualifiedName(name, ns), value, vtype)
            self._plant_nodes[name] = node.nodeid
        initial = await asyncio.to_thread(self._last_values, self.published_ms)
        for unit in self.units:
            obj = await plant.add_object(ua.NodeId(unit, ns), ua.QualifiedName(unit, ns))
            attvals = []
            for j, suffix in enumerate(TAG_NAMES):
                tag = f"{unit}.{suffix}"
                value, quality, src = initial[unit][j]
                var = await obj.add_variable(ua.NodeId(tag, ns), ua.QualifiedName(tag, ns), 0.0, ua.VariantType.Double)
                await var.add_property(
                    ua.NodeId(f"{tag}.EngineeringUnits", ns),
                    "EngineeringUnits",
                    eu_information(TAG_UNITS[suffix]),
                    ua.VariantType.ExtensionObject,
                    ua.ObjectIds.EUInformation,
                )
                level = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.HistoryRead.mask
                await var.write_attribute(
                    ua.AttributeIds.AccessLevel, ua.DataValue(ua.Variant(level, ua.VariantType.Byte))
                )
                await var.write_attribute(
                    ua.AttributeIds.UserAccessLevel, ua.DataValue(ua.Variant(level, ua.VariantType.Byte))
                )
                await var.write_attribute(
                    ua.AttributeIds.Historizing, ua.DataValue(ua.Variant(True, ua.VariantType.Boolean))
                )
                self.tag_index[var.nodeid] = (unit, j)
                attval = server.iserver.aspace[var.nodeid].attributes[ua.AttributeIds.Value]
                if src is not None:
                    attval.value = _datavalue(value, quality, src, dt.datetime.now(dt.UTC))
                attvals.append(attval)
            self._attvals[unit] = attvals
            batch = await obj.add_object(ua.NodeId(f"{unit}.Batch", ns), ua.QualifiedName("Batch", ns))
            ids = []
            for name in BATCH_NODES:
                vtype = ua.VariantType.DateTime if name == "CultureStart" else ua.VariantType.String
                initial_value = ua.get_win_epoch() if name == "CultureStart" else ""
                node = await batch.add_variable(
                    ua.NodeId(f"{unit}.Batch.{name}", ns), ua.QualifiedName(name, ns), initial_value, vtype
                )
                ids.append(node.nodeid)
            self._batch_nodes[unit] = tuple(ids)
        await self._update_context(server)

    def _last_values(self, at_ms: int) -> dict[str, list[tuple[float, int, dt.datetime | None]]]:
        """Per unit and tag: the last reading at or before ``at_ms`` (the node's initial value)."""
        out = {}
        for unit in self.units:
            vals: list[tuple[float, int, dt.datetime | None]] = [(0.0, 192, None)] * len(TAG_NAMES)
            d = min(self.days.day_of(at_ms), self.days.n_days - 1)
            while d >= 0:
                ts, r = self.days.get(unit, d)
                i = int(np.searchsorted(ts, at_ms, side="right")) - 1
                if i >= 0:
                    src = ms_to_datetime(int(ts[i]))
                    vals = [(float(r.values[i, j]), int(r.quality[i, j]), src) for j in range(len(TAG_NAMES))]
                    break
                d -= 1
            out[unit] = vals
        return out

    def _culture_of(self, batch_id: str) -> tuple[dt.datetime, str]:
        """(inoculation time, control-recipe setpoints as JSON) of a batch; (epoch, "{}") for none."""
        for b in self.plan.batches:
            if batch_id and b.batch_id == batch_id:
                recipe = {**b.recipe.setpoints(), "duration_days": float(b.recipe.duration_days)}
                return ms_to_datetime(self.site_start_ms + int(round(b.inoc * 3_600_000))), json.dumps(recipe)
        return ua.get_win_epoch(), "{}"

    # ------------------------------------------------------------------ deviations
    def inject(self, injection: Injection) -> None:
        """Serve ``injection`` from its start on (see :class:`Injection`).

        Raises
        ------
        ValueError
            When it would change a reading already published (start at or before
            ``published_until``) or names a unit or tag the server does not serve.
        """
        if injection.unit not in self.units:
            raise ValueError(f"inject: unit {injection.unit!r} is not served (units: {', '.join(self.units)})")
        if injection.suffix not in TAG_NAMES:
            raise ValueError(f"inject: unknown tag suffix {injection.suffix!r}")
        if injection.start_ms <= max(self.published_ms, min(self.clock.now_ms(), self.site_end_ms)):
            raise ValueError(
                f"inject: start {ms_to_datetime(injection.start_ms).isoformat()} is not after the published "
                f"record ({ms_to_datetime(self.published_ms).isoformat()}): history is never rewritten"
            )
        self.days.add_injection(injection)
        log.warning(
            "deviation injected: %s.%s %+g from %s",
            injection.unit,
            injection.suffix,
            injection.offset,
            ms_to_datetime(injection.start_ms).isoformat(),
        )

    # ------------------------------------------------------------------ publishing
    async def _publish_loop(self) -> None:
        while True:
            t = time.monotonic()
            try:
                await self.publish_until(self.clock.now_ms())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("publishing failed")
            await asyncio.sleep(max(self.tick_s - (time.monotonic() - t), 0.01))

    async def publish_until(self, now_ms: int) -> int:
        """Publish every reading with published_until < ts ≤ ``now_ms``; returns how many."""
        server = self._server
        b = min(int(now_ms), self.site_end_ms)
        a = self.published_ms
        if b <= a:
            if int(now_ms) > self.site_end_ms and not self._ended:
                self._ended = True
                log.warning("end of the simulated window (%s): no new readings", ms_to_datetime(self.site_end_ms))
            return 0
        slices = {u: await asyncio.to_thread(self.days.slices, u, a, b, left_open=True) for u in self.units}
        self.published_ms = b  # history shows them first: subscribe-then-read never has a gap
        n = 0
        now = dt.datetime.now(dt.UTC)
        for unit in self.units:
            attvals = self._attvals[unit]
            for ts, r, i0, i1 in slices[unit]:
                vals, quals = r.values, r.quality
                for i in range(i0, i1):
                    src = ms_to_datetime(int(ts[i]))
                    row, qrow = vals[i], quals[i]
                    for j, attval in enumerate(attvals):
                        await _set_value(attval, _datavalue(float(row[j]), int(qrow[j]), src, now))
                    n += len(attvals)
        self.readings_published += n
        if server is not None:
            await self._update_context(server)
        keep_from = self.days.day_of(self.published_ms - self.history_window_ms) - 1
        self.days.evict_before(keep_from)
        self._prefetch_next_day()
        return n

    def _prefetch_next_day(self) -> None:
        """Generate tomorrow's arrays in the background a minute (wall) before midnight, so that
        publishing does not stall at the day change (~0.2 s per unit-day at a 1 s interval)."""
        ahead_ms = min(60_000.0 * self.clock.speed, DAY_MS)
        day = self.days.day_of(self.published_ms)
        nxt = self.days.day_of(int(self.published_ms + ahead_ms))
        if nxt > day and nxt < self.days.n_days and self._prefetching is None and self._prefetched != nxt:
            self._prefetched = nxt

            async def work() -> None:
                for unit in self.units:
                    await asyncio.to_thread(self.days.get, unit, nxt)

            self._prefetching = asyncio.create_task(work())
            self._prefetching.add_done_callback(lambda _: setattr(self, "_prefetching", None))

    async def _update_context(self, server: Server) -> None:
        src = ms_to_datetime(self.published_ms)
        t_h = (self.published_ms - self.site_start_ms) / 3_600_000.0
        for unit in self.units:
            state = self.plan.batch_state(unit, t_h)
            if state != self._batch_state.get(unit):
                self._batch_state[unit] = state
                start, recipe = self._culture_of(state[0])
                for nodeid, value in zip(self._batch_nodes[unit], (*state, start, recipe)):
                    vtype = ua.VariantType.DateTime if isinstance(value, dt.datetime) else ua.VariantType.String
                    await server.write_attribute_value(
                        nodeid,
                        ua.DataValue(
                            ua.Variant(value, vtype),
                            SourceTimestamp=src,
                            ServerTimestamp=dt.datetime.now(dt.UTC),
                        ),
                    )
        sim_now = ms_to_datetime(min(self.clock.now_ms(), self.site_end_ms))
        for name, value in (("SimulatedTime", sim_now), ("PublishedUntil", src)):
            await server.write_attribute_value(
                self._plant_nodes[name], ua.DataValue(ua.Variant(value, ua.VariantType.DateTime), SourceTimestamp=src)
            )


async def _set_value(attval: Any, dv: ua.DataValue) -> None:
    """Set a node's value and notify its monitored items (asyncua's ``write_attribute_value``
    without the type check and without replacing a Bad reading's value by null: the twin replays
    what its historian stored)."""
    attval.value = dv
    attval.value_callback = None
    for handle, callback in list(attval.datachange_callbacks.items()):
        await callback(handle, dv)


class PlantServerThread:
    """A :class:`PlantServer` on its own event loop in a background thread (tests, benchmarks).

    ``start()`` returns once the server listens; ``stop()`` shuts it down and joins the thread.
    """

    def __init__(self, plan: SitePlan, clock: SimClock, **kwargs: Any) -> None:
        self.server = PlantServer(plan, clock, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def endpoint(self) -> str:
        """``opc.tcp://host:port`` of the server."""
        return self.server.endpoint

    def start(self, timeout: float = 60.0) -> PlantServerThread:
        """Start the server in its thread; return once it accepts connections."""
        self._thread = threading.Thread(target=self._run, name="twin-opcua", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the twin OPC UA server did not start")
        if self._error is not None:
            raise RuntimeError(f"the twin OPC UA server failed to start: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.server.stop()

        asyncio.run(main())  # cancels and awaits whatever asyncua left running

    def call(self, coro_fn, *args: Any, timeout: float = 60.0) -> Any:
        """Run ``coro_fn(*args)`` on the server's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro_fn(*args), self._loop).result(timeout)

    def inject(self, injection: Injection, timeout: float = 30.0) -> None:
        """:meth:`PlantServer.inject` on the server's loop."""

        async def do() -> None:
            self.server.inject(injection)

        self.call(do, timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server and join its thread."""
        if self._loop is not None and self._stop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> PlantServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ---------------------------------------------------------------------- entry point
def site_for_live(
    units: int = 2,
    interval_s: float = 60.0,
    seed: int = 7,
    days: int = 30,
    site_start: str | None = None,
    start: str | None = None,
    history_window_s: float = 86_400.0,
    product: str = "mAb-A",
) -> tuple[SiteConfig, dt.datetime]:
    """The site to play and the simulated start time.

    ``start``: ISO time, ``"now"`` (the site is laid out so that simulated time = wall time at
    speed 1: it starts ``history_window`` + 1 day before today), or None (site start + 2 days).
    """
    if start == "now":
        now = dt.datetime.now(dt.UTC)
        lead = int(math.ceil(history_window_s / 86_400.0)) + 1
        first = (now - dt.timedelta(days=lead)).date()
        cfg = SiteConfig(
            start=first.isoformat(),
            days=days + lead,
            bioreactors=units,
            interval_s=interval_s,
            seed=seed,
            product=product,
        )
        return cfg, now
    cfg = SiteConfig(
        start=site_start or SiteConfig.start,
        days=days,
        bioreactors=units,
        interval_s=interval_s,
        seed=seed,
        product=product,
    )
    t0 = dt.datetime.fromisoformat(cfg.start).replace(tzinfo=dt.UTC)
    sim_start = (
        t0 + dt.timedelta(days=2)
        if start is None
        else dt.datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(dt.UTC)
    )
    return cfg, sim_start


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 4840,
    units: int = 2,
    interval_s: float = 60.0,
    seed: int = 7,
    days: int = 30,
    site_start: str | None = None,
    start: str | None = None,
    speed: float = 1.0,
    history_window_s: float = 86_400.0,
    tick_s: float = 0.25,
    wall_anchor: float | None = None,
    log_every_s: float = 10.0,
    stop: threading.Event | None = None,
    injections: Sequence[str] = (),
) -> None:
    """Serve a twin site over OPC UA until SIGINT/SIGTERM (or ``stop`` is set).

    ``injections``: deviations as ``UNIT.SUFFIX:OFFSET:AFTER_S[:DURATION_S[:RAMP_S]]``
    (:meth:`Injection.parse`; seconds of simulated time after the simulated start).

    Prints one JSON line ``{"event": "listening", "endpoint": ...}`` when ready, then a progress
    line every ``log_every_s`` seconds. ``wall_anchor`` (epoch seconds at which simulated time was
    ``start``) lets a restarted server continue the same simulated clock.
    """
    cfg, sim_start = site_for_live(units, interval_s, seed, days, site_start, start, history_window_s)
    t = time.perf_counter()
    plan = plan_site(cfg)
    clock = SimClock.starting_now(sim_start, speed)
    if wall_anchor is not None:
        clock = SimClock(clock.sim_start_ms, float(wall_anchor), clock.speed)
    log.info("planned %d units x %d days in %.1f s", units, cfg.days, time.perf_counter() - t)
    server = PlantServer(plan, clock, host=host, port=port, history_window_s=history_window_s, tick_s=tick_s)
    for text in injections:
        server.inject(Injection.parse(text, clock.sim_start_ms))
    asyncio.run(_serve(server, log_every_s, stop))


async def _serve(server: PlantServer, log_every_s: float, stop: threading.Event | None) -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, done.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    await server.start()
    print(
        json.dumps(
            {
                "event": "listening",
                "endpoint": server.endpoint,
                "tags": len(server.tag_index),
                "speed": server.clock.speed,
                "wall_anchor": server.clock.wall_anchor,
                "sim_start_ms": server.clock.sim_start_ms,
            }
        ),
        flush=True,
    )
    try:
        last = 0.0
        while not done.is_set() and not (stop is not None and stop.is_set()):
            await asyncio.sleep(0.2)
            if time.monotonic() - last >= log_every_s:
                last = time.monotonic()
                print(
                    json.dumps(
                        {
                            "event": "progress",
                            "simulated_time": ms_to_datetime(server.published_ms).isoformat(),
                            "readings_published": server.readings_published,
                            "batches": {u: s[0] or s[2] for u, s in server._batch_state.items()},
                        }
                    ),
                    flush=True,
                )
    finally:
        await server.stop()
        print(json.dumps({"event": "stopped", "readings_published": server.readings_published}), flush=True)
