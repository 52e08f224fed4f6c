"""Process deviations of a production culture, with ground-truth onset times.

Three deviation types are modelled (about 15-20 % of batches deviate at the default rates):

``contamination``
    A contamination-like metabolism shift: a contaminant grows logistically from the onset
    (lag ~ 18 h / magnitude), consuming glucose at up to ``CONTAM_GLC_G_L_H`` and producing
    acids (lactate-equivalent) and oxygen demand; host cells stop growing and die. Visible
    online as a rising O2 demand (agitation/O2 flow), falling pH with rising base addition,
    off-gas CO2 up; offline as glucose/viability crash. The batch is aborted (lost) once it is
    detected, 24-48 h after the onset.
``temperature_fault``
    Temperature-control unit fault: the culture temperature moves ``magnitude`` C away from
    the setpoint (first-order, 1 h time constant) for ``duration`` hours, then recovers.
    TEMP.PV departs from TEMP.SP.
``feed_error``
    Wrong feed command: the commanded feed is multiplied by ``magnitude`` (0 = missed feed,
    ~2 = double feed) for ``duration`` hours. Visible in FEED.FLOW.SP and in glucose.

All functions are vectorised over batches; times are hours since inoculation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

#: contaminant effects at full intensity
CONTAM_GLC_G_L_H = 0.30  # g/L/h glucose uptake by the contaminant
CONTAM_LAC_YIELD = 0.9  # g acid (as lactate) per g glucose
CONTAM_OUR_MMOL_L_H = 3.0  # mmol/L/h extra oxygen demand
CONTAM_DEATH_PER_D = 1.5  # 1/d extra host-cell death


class DeviationType(IntEnum):
    """Kinds of process deviation the twin injects (``NONE`` = none)."""

    NONE = 0
    CONTAMINATION = 1
    TEMPERATURE_FAULT = 2
    FEED_ERROR = 3

    @property
    def label(self) -> str:
        """The deviation's name as written to the ground truth (``""`` for none)."""
        return "" if self is DeviationType.NONE else self.name.lower()


#: probability per batch (sum ~ 0.17)
DEFAULT_RATES: dict[DeviationType, float] = {
    DeviationType.CONTAMINATION: 0.04,
    DeviationType.TEMPERATURE_FAULT: 0.065,
    DeviationType.FEED_ERROR: 0.065,
}


@dataclass
class DeviationDraw:
    """Sampled deviations, arrays (n_batches,). ``onset_h`` is inf where ``dev_type`` is 0."""

    dev_type: np.ndarray
    onset_h: np.ndarray
    magnitude: np.ndarray
    duration_h: np.ndarray
    detect_h: np.ndarray  # when operators detect it (contamination: batch aborted then); inf if never

    def label(self, i: int) -> str:
        """Label of the deviation of batch ``i``."""
        return DeviationType(int(self.dev_type[i])).label


def sample_deviations(
    rng: np.random.Generator, duration_h: np.ndarray, rates: dict[DeviationType, float] | None = None
) -> DeviationDraw:
    """Draw at most one deviation per batch with onset inside the culture."""
    rates = DEFAULT_RATES if rates is None else rates
    n = duration_h.shape[0]
    kinds = [DeviationType.NONE, *rates.keys()]
    probs = np.array([1.0 - sum(rates.values()), *rates.values()])
    dev_type = rng.choice(np.array([int(k) for k in kinds]), size=n, p=probs)
    u = rng.random((4, n))
    onset = np.full(n, np.inf)
    mag = np.zeros(n)
    dur = np.zeros(n)
    detect = np.full(n, np.inf)
    for i in range(n):
        d = DeviationType(int(dev_type[i]))
        D = duration_h[i]
        if d is DeviationType.CONTAMINATION:
            onset[i] = 24.0 * (2.0 + u[0, i] * 7.0)
            mag[i] = 0.7 + 0.8 * u[1, i]
            detect[i] = onset[i] + 24.0 + 24.0 * u[2, i] / mag[i]
            dur[i] = detect[i] - onset[i]
        elif d is DeviationType.TEMPERATURE_FAULT:
            onset[i] = 24.0 * (1.0 + u[0, i] * (D / 24.0 - 2.0))
            hot = u[1, i] < 0.6
            mag[i] = (1.5 + 1.5 * u[2, i]) if hot else -(2.0 + 3.0 * u[2, i])
            dur[i] = 4.0 + 20.0 * u[3, i]
        elif d is DeviationType.FEED_ERROR:
            onset[i] = 24.0 * (3.5 + u[0, i] * (D / 24.0 - 5.0))
            missed = u[1, i] < 0.5
            mag[i] = 0.0 if missed else 1.8 + 0.7 * u[2, i]
            dur[i] = (18.0 + 30.0 * u[3, i]) if missed else (10.0 + 14.0 * u[3, i])
    return DeviationDraw(
        dev_type=dev_type.astype(np.int64), onset_h=onset, magnitude=mag, duration_h=dur, detect_h=detect
    )


def _col(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=float)[:, None]


def _finite_col(a: Any) -> np.ndarray:
    """Column vector with ``inf`` (never) replaced by a far-future time (avoids inf - inf)."""
    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, 1e12)[:, None]


def contamination_intensity(t: np.ndarray, onset_h: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """Contaminant intensity in [0, 1]: logistic growth after the onset (0 before)."""
    m = np.maximum(_col(magnitude), 1e-6)
    on = _finite_col(onset_h)
    x = (t - on - 18.0 / m) / (4.0 / m)
    val = 0.5 * (1.0 + np.tanh(0.5 * x))
    return np.where(t >= on, val, 0.0)


def temperature_excursion(
    t: np.ndarray, onset_h: np.ndarray, magnitude: np.ndarray, duration_h: np.ndarray, tau_h: float = 1.0
) -> np.ndarray:
    """Temperature offset [C] of a control fault: first-order rise, hold, first-order recovery."""
    on = _finite_col(onset_h)
    off = on + _col(duration_h)
    rise = 1.0 - np.exp(-np.clip(t - on, 0.0, None) / tau_h)
    rise_at_off = 1.0 - np.exp(-np.clip(off - on, 0.0, None) / tau_h)
    decay = np.exp(-np.clip(t - off, 0.0, None) / tau_h)
    shape = np.where(t < off, rise, rise_at_off * decay)
    shape = np.where(t >= on, shape, 0.0)
    return _col(magnitude) * shape


def apply(
    faults: Any, t: np.ndarray, dt: float, t_sp: np.ndarray, feed_cmd: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the deviations in ``faults`` (a ``twin.bioreactor.Faults``) to per-step inputs.

    Returns (actual temperature, commanded feed [L/h], contaminant intensity), each
    (n_batches, n_steps).
    """
    typ = np.asarray(faults.dev_type)
    onset = np.where(typ > 0, faults.dev_onset_h, np.inf)
    tc = t + 0.5 * dt  # step mid-point
    is_t = typ == DeviationType.TEMPERATURE_FAULT
    t_act = t_sp + temperature_excursion(tc, np.where(is_t, onset, np.inf), faults.dev_magnitude, faults.dev_duration_h)
    is_c = typ == DeviationType.CONTAMINATION
    contam = contamination_intensity(tc, np.where(is_c, onset, np.inf), faults.dev_magnitude)
    is_f = typ == DeviationType.FEED_ERROR
    on = _finite_col(np.where(is_f, onset, np.inf))
    off = on + _col(faults.dev_duration_h)
    cover = np.clip((np.minimum(off, t + dt) - np.maximum(on, t)) / dt, 0.0, 1.0)
    factor = 1.0 + cover * (_col(faults.dev_magnitude) - 1.0)
    return t_act, feed_cmd * factor, contam
