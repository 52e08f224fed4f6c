"""Bioreactor historian export: one long-format CSV per unit per UTC day.

The historian logs every ``interval_s`` seconds, also when the vessel is idle. A unit's time
line is a sequence of segments (anything not covered is *idle*):

``prepare``   CIP (0-3 h, 75 C, caustic), SIP (3-6.5 h, 122 C, 1.1 bar), cool-down, medium fill
              (9-11 h, weight rises to 90 % of the working volume), conditioning (temperature,
              pH and DO brought to their setpoints);
``inoculate`` inoculum transfer (last 10 % of the working volume), 30 min;
``culture``   the simulated culture (interpolated from ``twin.bioreactor`` records);
``harvest``   drain to the harvest tank (weight to 0), chilled to 15 C;
``drain``     draining an aborted batch;
``idle``      empty vessel; totalisers hold the last batch's totals (they reset at the next
              Prepare).

Noise: AR(1) for control loops (temperature, pH, DO, O2/CO2 flows), white for sensors;
quality 192 (good) mostly, 64 (uncertain: ~0.3 % of readings, plus pH/DO probes during
CIP/SIP) and 0 (bad: ~0.05 %, value stuck at the previous reading); rare historian gaps
(no rows for 5-30 min).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from twin.equipment import agitator_signals, bearing_severity

# tag suffix, unit, decimals, abs sd (AR if phi>0 else white), relative white sd, AR, zero when off
TAGS: tuple[tuple[str, str, int, float, float, bool, bool], ...] = (
    ("TEMP.PV", "degC", 2, 0.025, 0.0, True, False),
    ("TEMP.SP", "degC", 2, 0.0, 0.0, False, False),
    ("PH.PV", "pH", 3, 0.006, 0.0, True, False),
    ("DO.PV", "%", 2, 0.6, 0.0, True, False),
    ("AGIT.PV", "rpm", 1, 0.25, 0.0, False, True),
    ("AIR.FLOW", "L/min", 2, 0.05, 0.01, False, True),
    ("O2.FLOW", "L/min", 3, 0.0, 0.04, True, True),
    ("CO2.FLOW", "L/min", 3, 0.0, 0.05, True, True),
    ("OFFGAS.O2", "%", 3, 0.02, 0.0, False, False),
    ("OFFGAS.CO2", "%", 3, 0.015, 0.0, False, False),
    ("CAP.PV", "pF/cm", 3, 0.08, 0.015, False, False),
    ("BASE.TOT", "mL", 0, 0.0, 0.0, False, False),
    ("FEED.FLOW.SP", "mL/min", 2, 0.0, 0.0, False, False),
    ("FEED.FLOW.PV", "mL/min", 2, 0.05, 0.015, False, True),
    ("FEED.TOT", "mL", 0, 0.0, 0.0, False, False),
    ("WEIGHT.PV", "kg", 1, 0.35, 0.0, False, False),
    ("PRESS.PV", "bar", 3, 0.003, 0.0, False, False),
    ("AGIT.VIB", "mm/s", 3, 0.01, 0.08, False, False),
    ("AGIT.CURRENT", "A", 2, 0.04, 0.0, False, True),
)
TAG_NAMES = tuple(t[0] for t in TAGS)
TAG_UNITS = {t[0]: t[1] for t in TAGS}
_IDX = {name: i for i, name in enumerate(TAG_NAMES)}
NT = len(TAGS)
_ABS_SD = np.array([t[3] for t in TAGS])
_REL_SD = np.array([t[4] for t in TAGS])
_AR = np.array([t[5] for t in TAGS])
_ZERO_OFF = np.array([t[6] for t in TAGS])
_DECIMALS = [t[2] for t in TAGS]
_AR_PHI = 0.97
# culture series -> tag (interpolated linearly unless zero-order hold)
_CULTURE_MAP: tuple[tuple[str, str, bool], ...] = (
    ("TEMP.PV", "temperature", False),
    ("TEMP.SP", "temperature_sp", False),
    ("PH.PV", "ph", False),
    ("DO.PV", "dissolved_oxygen", False),
    ("AGIT.PV", "agitation", False),
    ("AIR.FLOW", "air_flow", False),
    ("O2.FLOW", "o2_flow", False),
    ("CO2.FLOW", "co2_flow", False),
    ("OFFGAS.O2", "offgas_o2", False),
    ("OFFGAS.CO2", "offgas_co2", False),
    ("CAP.PV", "capacitance", False),
    ("BASE.TOT", "base_total", False),
    ("FEED.FLOW.SP", "feed_flow_sp", True),
    ("FEED.FLOW.PV", "feed_flow", True),
    ("FEED.TOT", "feed_total", False),
    ("WEIGHT.PV", "weight", False),
    ("PRESS.PV", "pressure", False),
)
HEADER = b"timestamp,tag,value,unit,quality\n"
DENSITY = 1.02
AMBIENT_O2, AMBIENT_CO2 = 20.95, 0.04


@dataclass
class Segment:
    """One stretch of a unit's time line (prepare, inoculate, culture, harvest, drain, idle) in hours."""

    kind: str  # prepare | inoculate | culture | harvest | drain | idle
    t0: float  # hours since the simulation start
    t1: float
    batch: int = -1  # index into the simulated batches


@dataclass
class UnitTimeline:
    """A unit's time line: its segments and installed agitator bearings (for the vibration signals)."""

    unit_id: str
    segments: list[Segment] = field(default_factory=list)
    # bearings: (installed_h, onset_h, fail_h); the last installed before t is in service
    bearings: list[tuple[float, float, float]] = field(default_factory=list)

    def severity(self, t: np.ndarray) -> np.ndarray:
        """Bearing wear severity at times ``t`` (hours), from the bearing installed at each time."""
        sev = np.zeros_like(t)
        for inst, onset, fail in self.bearings:
            m = t >= inst
            sev = np.where(m, bearing_severity(t, onset, fail), sev)
        return sev


@dataclass
class BatchSignals:
    """What the historian needs from one simulated batch."""

    inoc_h: float  # culture age 0
    t_rec: np.ndarray  # record times, hours since inoculation
    series: dict[str, np.ndarray]  # name -> (n_rec,)
    temperature_c: float
    ph: float
    do_pct: float
    v0_l: float
    agit_min: float
    air_min: float


def _slice(t_grid0: float, step_h: float, n: int, a: float, b: float) -> slice:
    i0 = int(np.clip(np.ceil((a - t_grid0) / step_h - 1e-9), 0, n))
    i1 = int(np.clip(np.ceil((b - t_grid0) / step_h - 1e-9), 0, n))
    return slice(i0, i1)


def _fill_idle(V: np.ndarray, t: np.ndarray, totals: tuple[float, float]) -> None:
    V[:, _IDX["TEMP.PV"]] = 21.0 + 0.6 * np.sin(2.0 * np.pi * (t - 9.0) / 24.0)
    V[:, _IDX["TEMP.SP"]] = 20.0
    V[:, _IDX["PH.PV"]] = 7.0
    V[:, _IDX["DO.PV"]] = 100.0
    V[:, _IDX["OFFGAS.O2"]] = AMBIENT_O2
    V[:, _IDX["OFFGAS.CO2"]] = AMBIENT_CO2
    V[:, _IDX["BASE.TOT"]] = totals[0]
    V[:, _IDX["FEED.TOT"]] = totals[1]


def _fill_prepare(V: np.ndarray, Q: np.ndarray, tau: np.ndarray, b: BatchSignals) -> None:
    """Prepare: CIP, SIP, cool-down, medium fill, conditioning (tau = hours since start)."""
    cip, sip, cool = tau < 3.0, (tau >= 3.0) & (tau < 6.5), (tau >= 6.5) & (tau < 9.0)
    fill, cond = (tau >= 9.0) & (tau < 11.0), tau >= 11.0
    T = V[:, _IDX["TEMP.PV"]]
    T0 = T.copy()
    tsp = b.temperature_c
    temp = np.where(cip, np.minimum(75.0, T0 + (75.0 - T0) * np.clip(tau / 0.5, 0.0, 1.0)), 0.0)
    temp = np.where(sip, 75.0 + 47.0 * np.clip((tau - 3.0) / 0.5, 0.0, 1.0), temp)
    temp = np.where(cool, tsp + (122.0 - tsp) * np.exp(-(tau - 6.5) / 0.6), temp)
    ffrac = np.clip((tau - 9.0) / 2.0, 0.0, 1.0)
    temp = np.where(fill, tsp - 4.0 * np.sin(np.pi * ffrac), temp)
    temp = np.where(cond, tsp, temp)
    V[:, _IDX["TEMP.PV"]] = temp
    V[:, _IDX["TEMP.SP"]] = np.where(cip, 75.0, np.where(sip, 122.0, tsp))
    V[:, _IDX["PH.PV"]] = np.where(
        cip, 12.4, np.where(sip | cool, 7.6, np.where(fill, 7.35, b.ph + 0.05 + 0.25 * np.exp(-(tau - 11.0) / 1.5)))
    )
    V[:, _IDX["DO.PV"]] = np.where(
        sip, 3.0, np.where(cond, b.do_pct + (100.0 - b.do_pct) * np.exp(-np.clip(tau - 12.0, 0.0, None) / 1.0), 100.0)
    )
    Q[:, _IDX["PH.PV"]] = np.where(cip | sip, 64, Q[:, _IDX["PH.PV"]])
    Q[:, _IDX["DO.PV"]] = np.where(cip | sip, 64, Q[:, _IDX["DO.PV"]])
    agit = np.where(
        cip, 40.0, np.where(sip | cool, 30.0, np.where(fill, np.where(ffrac > 0.3, b.agit_min, 0.0), b.agit_min))
    )
    V[:, _IDX["AGIT.PV"]] = agit
    V[:, _IDX["AIR.FLOW"]] = np.where(cond, b.air_min, 0.0)
    V[:, _IDX["CO2.FLOW"]] = np.where(cond, 0.02 * b.v0_l / 1000.0 * np.exp(-(tau - 11.0) / 3.0), 0.0)
    V[:, _IDX["OFFGAS.CO2"]] = np.where(cond, AMBIENT_CO2 + 2.0 * np.exp(-(tau - 11.0) / 3.0), AMBIENT_CO2)
    w_fill = 0.9 * b.v0_l * DENSITY
    weight = np.where(cip, 120.0 + 40.0 * np.sin(2.0 * np.pi * tau / 0.5), 0.0)
    weight = np.where(sip, 15.0, weight)
    weight = np.where(fill, w_fill * ffrac, weight)
    weight = np.where(cond, w_fill, weight)
    V[:, _IDX["WEIGHT.PV"]] = weight
    V[:, _IDX["PRESS.PV"]] = np.where(
        cip, 0.3, np.where(sip, 1.1, np.where(cool, 0.15 + 0.95 * np.exp(-(tau - 6.5) / 0.5), 0.15))
    )
    V[:, _IDX["BASE.TOT"]] = 0.0
    V[:, _IDX["FEED.TOT"]] = 0.0


def _fill_inoculate(V: np.ndarray, tau: np.ndarray, b: BatchSignals) -> None:
    frac = np.clip(tau / 0.5, 0.0, 1.0)
    V[:, _IDX["TEMP.PV"]] = b.temperature_c
    V[:, _IDX["TEMP.SP"]] = b.temperature_c
    V[:, _IDX["PH.PV"]] = b.ph + 0.05
    V[:, _IDX["DO.PV"]] = b.do_pct
    V[:, _IDX["AGIT.PV"]] = b.agit_min
    V[:, _IDX["AIR.FLOW"]] = b.air_min
    V[:, _IDX["WEIGHT.PV"]] = (0.9 + 0.1 * frac) * b.v0_l * DENSITY
    V[:, _IDX["PRESS.PV"]] = 0.15
    V[:, _IDX["BASE.TOT"]] = 0.0
    V[:, _IDX["FEED.TOT"]] = 0.0


def _fill_culture(V: np.ndarray, rel: np.ndarray, b: BatchSignals) -> None:
    t_rec = b.t_rec
    dt = float(t_rec[1] - t_rec[0]) if len(t_rec) > 1 else 1.0
    zi = np.clip((rel / dt).astype(np.int64), 0, len(t_rec) - 1)
    for tag, key, zoh in _CULTURE_MAP:
        s = b.series[key]
        V[:, _IDX[tag]] = s[zi] if zoh else np.interp(rel, t_rec, s)


def _last_finite(t: np.ndarray, y: np.ndarray, at: float) -> float:
    """``y`` interpolated at ``at`` over its finite values (held at the last one beyond it)."""
    ok = np.isfinite(y)
    return float(np.interp(at, t[ok], y[ok])) if ok.any() else float("nan")


def _fill_drain(V: np.ndarray, tau: np.ndarray, dur: float, b: BatchSignals, end_rel: float, chill: bool) -> None:
    """Harvest / drain after the culture ends (``end_rel`` hours after inoculation)."""
    # the last simulated value: a culture's series are NaN after its end, and end_rel (a time-line
    # difference) may lie a rounding error past the last finite record
    last = {key: _last_finite(b.t_rec, b.series[key], end_rel) for _, key, _ in _CULTURE_MAP}
    frac = np.clip(tau / max(dur - 0.5, 0.1), 0.0, 1.0)
    t_end = last["temperature"]
    if chill:
        V[:, _IDX["TEMP.SP"]] = 15.0
        V[:, _IDX["TEMP.PV"]] = 15.0 + (t_end - 15.0) * np.exp(-tau / 1.5)
    else:
        V[:, _IDX["TEMP.SP"]] = last["temperature_sp"]
        V[:, _IDX["TEMP.PV"]] = t_end
    V[:, _IDX["PH.PV"]] = last["ph"] + 0.1 * (1.0 - np.exp(-tau / 1.0))
    V[:, _IDX["DO.PV"]] = 5.0 + (last["dissolved_oxygen"] - 5.0) * np.exp(-tau / 0.3)
    # harvest: slow agitation while draining; an aborted batch is drained without agitation
    V[:, _IDX["AGIT.PV"]] = np.where((frac < 0.9) & chill, 40.0, 0.0)
    V[:, _IDX["OFFGAS.O2"]] = AMBIENT_O2 + (last["offgas_o2"] - AMBIENT_O2) * np.exp(-tau / 0.2)
    V[:, _IDX["OFFGAS.CO2"]] = AMBIENT_CO2 + (last["offgas_co2"] - AMBIENT_CO2) * np.exp(-tau / 0.2)
    V[:, _IDX["CAP.PV"]] = np.where(frac < 0.85, last["capacitance"], 0.0)
    V[:, _IDX["BASE.TOT"]] = last["base_total"]
    V[:, _IDX["FEED.TOT"]] = last["feed_total"]
    V[:, _IDX["WEIGHT.PV"]] = last["weight"] * (1.0 - frac)
    V[:, _IDX["PRESS.PV"]] = 0.05


def ar1_filter(e: np.ndarray, phi: float, block: int = 64) -> np.ndarray:
    """x[i] = phi * x[i-1] + e[i] along axis 0 (x[-1] = 0), vectorised in blocks.

    Within a block x[i] = sum_j e[j] phi^(i-j) + carry phi^(i+1) is a scaled cumulative sum;
    blocks keep phi^-k bounded (numerically safe).
    """
    n = e.shape[0]
    out = np.empty_like(e, dtype=float)
    k = np.arange(block, dtype=float)
    pw = phi**k
    inv = 1.0 / pw
    carry = np.zeros(e.shape[1:])
    for s in range(0, n, block):
        m = min(block, n - s)
        y = np.cumsum(e[s : s + m] * inv[:m, None], axis=0) * pw[:m, None]
        y += carry[None, ...] * (phi * pw[:m, None])
        out[s : s + m] = y
        carry = y[-1]
    return out


@dataclass
class HistorianDay:
    """Inputs to build one unit-day file."""

    unit_id: str
    timeline: UnitTimeline
    batches: dict[int, BatchSignals]
    day_start_h: float
    interval_s: float
    t_end_h: float  # simulation end (exclusive)
    idle_totals: dict[int, tuple[float, float]]  # batch -> (base mL, feed mL) held afterwards


@dataclass
class DayReadings:
    """The readings of one unit-day exactly as the historian records them (what its CSV holds).

    ``ts`` (n,) ``datetime64[ms]`` UTC, one per kept scan (historian gaps are absent),
    ``values`` (n, NT) rounded as exported, ``quality`` (n, NT) 192 / 64 / 0; column j is tag
    ``f"{unit_id}.{TAG_NAMES[j]}"`` in ``TAG_UNITS[TAG_NAMES[j]]``.
    """

    unit_id: str
    ts: np.ndarray
    values: np.ndarray
    quality: np.ndarray

    @property
    def n(self) -> int:
        """Number of readings."""
        return int(self.ts.shape[0])


def unit_day_readings(day: HistorianDay, t0: np.datetime64, rng: np.random.Generator) -> DayReadings:
    """The readings of one unit-day (the content of :func:`build_unit_day`'s CSV, as arrays)."""
    step_h = day.interval_s / 3600.0
    n = int(round(24.0 / step_h))
    n = int(min(n, np.ceil((day.t_end_h - day.day_start_h) / step_h - 1e-9)))
    if n <= 0:
        return DayReadings(day.unit_id, np.empty(0, "datetime64[ms]"), np.empty((0, NT)), np.empty((0, NT), np.int16))
    t = day.day_start_h + np.arange(n) * step_h
    V = np.zeros((n, NT))
    Q = np.full((n, NT), 192, dtype=np.int16)
    _fill_idle(V, t, (0.0, 0.0))
    for seg in day.timeline.segments:
        if seg.t1 <= t[0] or seg.t0 >= t[-1] + step_h:
            continue
        sl = _slice(day.day_start_h, step_h, n, seg.t0, seg.t1)
        if sl.start >= sl.stop:
            continue
        ts = t[sl]
        sub = V[sl]
        if seg.kind == "idle":
            _fill_idle(sub, ts, day.idle_totals.get(seg.batch, (0.0, 0.0)))
            continue
        b = day.batches[seg.batch]
        if seg.kind == "prepare":
            _fill_prepare(sub, Q[sl], ts - seg.t0, b)
        elif seg.kind == "inoculate":
            _fill_inoculate(sub, ts - seg.t0, b)
        elif seg.kind == "culture":
            _fill_culture(sub, ts - b.inoc_h, b)
        elif seg.kind in ("harvest", "drain"):
            _fill_drain(sub, ts - seg.t0, seg.t1 - seg.t0, b, seg.t0 - b.inoc_h, chill=seg.kind == "harvest")
        V[sl] = sub
    # agitator mechanics from speed and bearing health
    sev = day.timeline.severity(t)
    vib, cur = agitator_signals(V[:, _IDX["AGIT.PV"]], sev)
    V[:, _IDX["AGIT.VIB"]] = vib
    V[:, _IDX["AGIT.CURRENT"]] = cur
    # noise
    w = rng.standard_normal((n, NT))
    ar = np.flatnonzero(_AR)
    w[:, ar] = np.sqrt(1.0 - _AR_PHI**2) * ar1_filter(w[:, ar], _AR_PHI)
    w2 = rng.standard_normal((n, NT))
    on = np.where(_ZERO_OFF, np.abs(V) > 1e-9, True)
    V = V + on * (_ABS_SD * w + _REL_SD * np.abs(V) * w2)
    V[:, _ZERO_OFF] = np.maximum(V[:, _ZERO_OFF], 0.0)
    # quality: uncertain / bad readings (bad = value stuck at the previous reading)
    u = rng.random((n, NT))
    Q[u < 0.003] = 64
    bad = u < 0.0005
    Q[bad] = 0
    if bad.any():
        prev = np.vstack([V[:1], V[:-1]])
        V = np.where(bad, prev, V)
    # rare historian gaps (no rows at all)
    keep = np.ones(n, dtype=bool)
    if rng.random() < 0.02:
        g0 = int(rng.integers(0, n))
        g1 = g0 + int(rng.uniform(5.0, 30.0) * 60.0 / day.interval_s)
        keep[g0:g1] = False
    # format
    for j, d in enumerate(_DECIMALS):
        V[:, j] = np.round(V[:, j], d)
    V += 0.0
    jitter = rng.integers(0, 1000, n)
    ms = np.round(t * 3_600_000.0).astype(np.int64) + jitter
    rows = np.flatnonzero(keep)
    return DayReadings(day.unit_id, (t0 + ms.astype("timedelta64[ms]"))[rows], V[rows], Q[rows])


def build_unit_day(day: HistorianDay, t0: np.datetime64, rng: np.random.Generator) -> bytes:
    """CSV bytes of one unit-day of historian readings."""
    r = unit_day_readings(day, t0, rng)
    if r.n == 0:
        return HEADER
    ts_str = np.char.add(np.datetime_as_string(r.ts, unit="ms"), "Z")
    nr = r.n
    tag_col, unit_col, row_idx = _constant_columns(day.unit_id, nr)
    qual = np.where(r.quality == 192, 0, np.where(r.quality == 64, 1, 2)).astype(np.int8).ravel()
    table = pa.Table.from_arrays(
        [
            pa.array(ts_str).take(row_idx),
            tag_col,
            pa.array(r.values.ravel()),
            unit_col,
            _QUALITY_STR.take(pa.array(qual)),
        ],
        names=["timestamp", "tag", "value", "unit", "quality"],
    )
    buf = pa.BufferOutputStream()
    buf.write(HEADER)
    pacsv.write_csv(table, buf, _CSV_OPTIONS)
    return buf.getvalue().to_pybytes()


_QUALITY_STR = pa.array(["192", "64", "0"])
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none")
_CONST_CACHE: dict[tuple[str, int], tuple[pa.Array, pa.Array, pa.Array]] = {}


def _constant_columns(unit_id: str, nr: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Tag and unit columns and the row->scan index for ``nr`` scans (cached per unit)."""
    key = (unit_id, nr)
    hit = _CONST_CACHE.get(key)
    if hit is None:
        tags = pa.array([f"{unit_id}.{s}" for s in TAG_NAMES])
        units = pa.array([TAG_UNITS[s] for s in TAG_NAMES])
        tag_idx = pa.array(np.tile(np.arange(NT, dtype=np.int32), nr))
        hit = (tags.take(tag_idx), units.take(tag_idx), pa.array(np.repeat(np.arange(nr, dtype=np.int32), NT)))
        if len(_CONST_CACHE) > 64:
            _CONST_CACHE.clear()
        _CONST_CACHE[key] = hit
    return hit
