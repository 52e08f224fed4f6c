"""Equipment degradation, failure, repair and maintenance (what predictive maintenance learns).

Each degradation process has a hidden health state that drifts towards failure with noise in
its observable signals, so that the failure is visible days to weeks ahead (PdM lead time):

agitator bearing (``<unit>-AGT``)
    Wear onset after an exponential waiting time, then severity s(t) = ((t - onset)/life)^2
    rising over 18-45 days to 1 = seizure. Vibration RMS and motor current rise with s
    (vibration ~0.9 mm/s healthy at 100 rpm -> ~7 mm/s at failure, ISO 10816 "unacceptable").
    Failure stops the agitator: DO crashes, the running batch is lost. Repair = bearing
    replacement (corrective work order), s resets to 0.
feed pump (``<unit>-FP``, peristaltic)
    Tubing wear with pump running hours H: delivered/commanded = 1 - w (H/life)^2 (w = 0.22).
    The functional failure is the flow falling below ``PUMP_FLOW_TOLERANCE`` (90 % of the
    commanded flow, at H = life * sqrt(0.1/w) ~ 0.67 life): the daily feed review (delivered
    vs recipe on the feed totaliser) finds it and the technician raises a corrective work order
    (``flow_out_of_tolerance``) and changes the tubing (feed paused for the swap). A tubing that
    is never changed ruptures at H = life (no feed until replaced; ``pump_delivery_factor``). A
    preventive tubing change every ``PUMP_PM_INTERVAL_D`` days after the last change is the
    back-stop; most tubing reaches the flow tolerance before it (run to condition).
DO probe (``<unit>-DO``)
    Polarographic probe calibrated at every batch preparation (calibration work order). Its
    sensitivity falls during a batch (membrane fouling, electrolyte depletion: the reading is
    low, gain < 1) at a rate that grows exponentially with the probe's age in SIP cycles:
    online DO = gain * true DO. The controller holds the *reading* at setpoint, so the true DO
    (the offline blood-gas po2 in LIMS) departs from it. A relative deviation beyond 15 % at the
    daily offline check fails the probe (corrective work order, probe replaced at the next
    preparation; re-standardised to the offline value in the running batch).
Protein A column (``COL-PA-0n``)
    Fouling raises the pressure drop with cycles (linear + accelerating term); dynamic binding
    capacity and elution recovery fall with cycles. Max pressure above 3.0 bar fails the column
    (replaced by the next one).
TFF membrane cassette (``MEM-0n``)
    Normalised permeability falls with uses (irreversible fouling); below 55 % of new the
    cassette fails (low flux) and is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOURS_PER_DAY = 24.0

# --------------------------------------------------------------------------- agitator

BEARING_MEAN_ONSET_D = 150.0
BEARING_LIFE_RANGE_D = (18.0, 45.0)


def sample_bearing(rng: np.random.Generator, t_from_h: float, first: bool = False) -> tuple[float, float]:
    """(degradation onset, failure time) in hours for a bearing installed at ``t_from_h``.

    For the bearing in place at the start of a simulation (``first``) the wear may already be
    under way.
    """
    life = rng.uniform(*BEARING_LIFE_RANGE_D) * HOURS_PER_DAY
    wait = rng.exponential(BEARING_MEAN_ONSET_D) * HOURS_PER_DAY
    if first:
        wait -= rng.uniform(0.0, 30.0) * HOURS_PER_DAY
    else:
        wait += 10.0 * HOURS_PER_DAY  # burn-in: a new bearing does not wear out at once
    onset = t_from_h + wait
    return onset, onset + life


def bearing_severity(t_h: np.ndarray, onset_h: float, fail_h: float) -> np.ndarray:
    """Bearing degradation in [0, 1] (1 at failure)."""
    return np.clip((np.asarray(t_h, dtype=float) - onset_h) / (fail_h - onset_h), 0.0, 1.0) ** 2


def agitator_signals(rpm: np.ndarray, severity: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free (vibration RMS mm/s, motor current A) for agitator speed and bearing severity."""
    rpm = np.asarray(rpm, dtype=float)
    n = np.maximum(rpm, 0.0) / 100.0
    running = rpm > 1.0
    sev = np.asarray(severity, dtype=float)
    vib = np.where(running, 0.5 + 0.4 * n * n + 6.0 * sev * np.sqrt(n), 0.05)
    cur = np.where(running, (1.8 + 2.6 * n**3) * (1.0 + 0.18 * sev), 0.0)
    return vib, cur


# --------------------------------------------------------------------------- feed pump

PUMP_WEAR_AT_FAILURE = 0.22
PUMP_LIFE_RANGE_H = (700.0, 2000.0)
PUMP_FLOW_TOLERANCE = 0.90  # delivered/commanded below this at the daily feed review -> corrective WO
PUMP_PM_INTERVAL_D = 180.0  # preventive tubing change, days after the last tubing change
PUMP_SWAP_H = (0.5, 1.5)  # feed paused while the tubing is changed


def sample_pump_life(rng: np.random.Generator) -> float:
    """Running hours of a new tubing until rupture."""
    return float(rng.uniform(*PUMP_LIFE_RANGE_H))


def pump_efficiency(
    run_h: np.ndarray | float, life_h: np.ndarray | float, wear_max: np.ndarray | float = PUMP_WEAR_AT_FAILURE
) -> np.ndarray:
    """Delivered / commanded flow of a worn tubing after ``run_h`` running hours."""
    x = np.clip(np.asarray(run_h, dtype=float) / np.asarray(life_h, dtype=float), 0.0, 1.0)
    return 1.0 - np.asarray(wear_max) * x * x


def pump_delivery_factor(
    running: np.ndarray, dt: float, run_h0: np.ndarray, life_h: np.ndarray, down_h: np.ndarray, wear_max: np.ndarray
) -> np.ndarray:
    """Per-step delivered/commanded factor (n_batches, n_steps) of the feed pump in a batch.

    ``running`` (n, n_steps) is where the pump is commanded. Running hours accumulate from
    ``run_h0``; at ``life_h`` the tubing ruptures: no flow for ``down_h`` hours, then a new
    tubing (wear restarts from 0).
    """
    fail_h = pump_failure_time(running, dt, run_h0, life_h)
    n, ns = running.shape
    t = np.arange(ns) * dt
    on = np.where(np.isfinite(fail_h), fail_h, 1e12)[:, None]
    off = on + np.asarray(down_h, dtype=float)[:, None]
    down = np.clip((np.minimum(off, t + dt) - np.maximum(on, t)) / dt, 0.0, 1.0)
    r = running.astype(float) * dt
    h_run = np.asarray(run_h0, dtype=float)[:, None] + np.cumsum(r, axis=1) - r
    after = t[None, :] >= off
    h_new = np.cumsum(r * after, axis=1) - r * after
    h = np.where(after, h_new, h_run)
    eff = pump_efficiency(h, np.asarray(life_h, dtype=float)[:, None], np.asarray(wear_max)[:, None])
    return eff * (1.0 - down)


def pump_tolerance_hours(
    life_h: np.ndarray | float,
    wear_max: np.ndarray | float = PUMP_WEAR_AT_FAILURE,
    tolerance: float = PUMP_FLOW_TOLERANCE,
) -> np.ndarray:
    """Running hours at which delivered/commanded falls to ``tolerance`` (functional failure)."""
    return np.asarray(life_h, dtype=float) * np.sqrt(
        np.minimum((1.0 - tolerance) / np.asarray(wear_max, dtype=float), 1.0)
    )


def pump_failure_time(running: np.ndarray, dt: float, run_h0: np.ndarray, life_h: np.ndarray) -> np.ndarray:
    """Hours since inoculation at which the tubing ruptures (inf if it survives the batch)."""
    n, ns = running.shape
    r = running.astype(float) * dt
    h_end = np.asarray(run_h0, dtype=float)[:, None] + np.cumsum(r, axis=1)
    life = np.asarray(life_h, dtype=float)[:, None]
    crossed = h_end >= life
    any_c = crossed.any(axis=1)
    idx = np.argmax(crossed, axis=1)
    h_start = h_end[np.arange(n), idx] - r[np.arange(n), idx]
    t_fail = idx * dt + np.clip(life[:, 0] - h_start, 0.0, dt)
    return np.where(any_c, t_fail, np.inf)


# --------------------------------------------------------------------------- DO probe

DO_FAIL_REL_DEV = 0.15
DO_DRIFT_NEW_PER_DAY = 0.0015  # sensitivity loss per day of a new probe
DO_DRIFT_AGE_SIPS = 2.5  # e-folding age (SIP cycles) of the drift rate
DO_INITIAL_AGE_MAX = 5  # probes in place at the simulation start: 0..4 SIP cycles old


def do_drift_rate(rng: np.random.Generator, age_sips: int) -> float:
    """Relative gain drift per day (negative: sensitivity loss) of a probe with ``age_sips`` SIP cycles."""
    return -DO_DRIFT_NEW_PER_DAY * float(np.exp(age_sips / DO_DRIFT_AGE_SIPS)) * float(rng.lognormal(0.0, 0.1))


def do_probe_gain(t: np.ndarray, drift_per_day: np.ndarray, restd_h: np.ndarray) -> np.ndarray:
    """Gain (reading / true) over time (n, n_steps); a re-standardisation at ``restd_h`` resets it."""
    restd = np.asarray(restd_h, dtype=float)[:, None]
    ref = np.where(t >= restd, restd, 0.0)
    return 1.0 + np.asarray(drift_per_day, dtype=float)[:, None] * (t - ref) / HOURS_PER_DAY


# --------------------------------------------------------------------------- Protein A column

COLUMN_PRESSURE_LIMIT_BAR = 3.0


@dataclass
class ColumnHealth:
    """A packed Protein A column; ``cycles`` = cycles run so far."""

    column_id: str
    cycles: int
    life_cycles: float  # cycle count around which fouling accelerates
    foul_rate: float  # linear pressure-drop increase per cycle

    @classmethod
    def new(cls, rng: np.random.Generator, column_id: str, cycles: int = 0) -> ColumnHealth:
        """A Protein A column with its own fouling rate, after ``cycles`` cycles."""
        return cls(column_id, cycles, float(rng.uniform(110.0, 190.0)), float(rng.uniform(0.0025, 0.0045)))

    def fouling(self, cycle: float | None = None) -> float:
        """Pressure-drop multiplier vs a clean column."""
        c = self.cycles if cycle is None else cycle
        return 1.0 + self.foul_rate * c + 0.9 * (c / self.life_cycles) ** 4

    def dbc_factor(self, cycle: float | None = None) -> float:
        """Dynamic binding capacity relative to a new column after ``cycle`` cycles (default: now)."""
        c = self.cycles if cycle is None else cycle
        return max(0.55, 1.0 - 0.0016 * c)

    def recovery(self, cycle: float | None = None) -> float:
        """Step recovery (fraction) after ``cycle`` cycles (default: now)."""
        c = self.cycles if cycle is None else cycle
        return max(0.85, 0.975 - 0.00015 * c)


# --------------------------------------------------------------------------- TFF membrane

MEMBRANE_MIN_PERMEABILITY = 0.55


@dataclass
class MembraneHealth:
    """A TFF cassette set; ``uses`` = runs so far."""

    membrane_id: str
    uses: int
    tau_uses: float  # e-folding uses of irreversible permeability loss

    @classmethod
    def new(cls, rng: np.random.Generator, membrane_id: str, uses: int = 0) -> MembraneHealth:
        """A TFF membrane cassette with its own fouling rate, after ``uses`` uses."""
        return cls(membrane_id, uses, float(rng.uniform(20.0, 34.0)))

    def permeability(self, use: float | None = None) -> float:
        """Normalised water permeability (1 = new)."""
        u = self.uses if use is None else use
        return float(np.exp(-u / self.tau_uses))


# --------------------------------------------------------------------------- work orders


@dataclass
class WorkOrder:
    """A CMMS work order (times in hours since the simulation start; ``closed_h`` may be inf)."""

    equipment_id: str
    equipment_type: str
    work_type: str  # corrective | preventive | calibration
    failure_mode: str
    priority: str
    opened_h: float
    closed_h: float
    description: str


@dataclass
class FailureRecord:
    """Ground truth of one failure (hours since the simulation start)."""

    equipment_id: str
    failure_mode: str
    degradation_start_h: float
    failure_h: float
    repaired_h: float


EQUIPMENT_TYPES: dict[str, str] = {
    "AGT": "agitator",
    "FP": "feed_pump",
    "DO": "do_probe",
}
