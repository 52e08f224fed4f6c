"""What the site simulator simulates: :class:`SiteConfig` (the site defaults — bioreactors,
days, start date, historian interval, seed — live here and nowhere else), the site's timing
constants, its random streams and the batch-to-batch recipe variation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from twin.bioreactor import (
    DESIGN_SPACE,
    NOMINAL_RECIPE,
    Recipe,
)
from twin.deviations import DeviationType

ProgressFn = Callable[[int, int], None]

# random-stream ids (keep stable: changing them changes every output)
_S_PLAN, _S_RECIPE, _S_HIST, _S_LIMS, _S_DSP, _S_CQA = 1, 2, 3, 4, 5, 6

HARVEST_H = (4.0, 6.0)
DRAIN_H = 4.0
INOCULATE_H = 0.5
PREPARE_H = (16.0, 28.0)
TURNAROUND_H = (24.0, 72.0)  # harvest end -> next inoculation
AGITATOR_REPAIR_H = (12.0, 48.0)
PUMP_REPAIR_H = (3.0, 8.0)  # Faults.pump_down_h default (a rupture; the site changes worn tubing first)
AGITATOR_PM_D = 90.0
# In-process LIMS assays of the daily sample: analyte, BatchResult series, unit, method,
# relative SD, absolute SD, result delay range [h]. The site's lab writes them (twin.site.write);
# the live mirror (twin.mirror) takes its default measurement errors from them.
LIMS_DAILY: tuple[tuple[str, str, str, str, float, float, tuple[float, float]], ...] = (
    ("vcd", "vcd", "1e6 cells/mL", "Vi-CELL", 0.05, 0.0, (0.3, 1.5)),
    ("viability", "viability", "%", "Vi-CELL", 0.0, 1.2, (0.3, 1.5)),
    ("glucose", "glucose", "g/L", "BGA", 0.03, 0.03, (0.2, 1.0)),
    ("lactate", "lactate", "g/L", "BGA", 0.04, 0.03, (0.2, 1.0)),
    ("glutamine", "glutamine", "mM", "Cedex Bio", 0.06, 0.05, (1.0, 4.0)),
    ("ammonia", "ammonia", "mM", "Cedex Bio", 0.05, 0.1, (1.0, 4.0)),
    ("osmolality", "osmolality", "mOsm/kg", "Osmometer", 0.0, 3.0, (1.0, 3.0)),
    ("ph_offline", "ph", "pH", "BGA", 0.0, 0.02, (0.2, 1.0)),
    ("po2_offline", "do_true", "%", "BGA", 0.015, 0.5, (0.2, 1.0)),  # ~0.8 % air sat. at 40-50 %
)
# Titer of the daily sample from culture day LIMS_TITER_FROM_DAY on, every 1-2 days (same layout).
LIMS_TITER: tuple[str, str, str, str, float, float, tuple[float, float]] = (
    "titer",
    "titer",
    "g/L",
    "ProA-HPLC",
    0.04,
    0.0,
    (18.0, 60.0),
)
LIMS_TITER_FROM_DAY = 3
SKID_PM_D = 30.0
SAMPLE_TOD_H = 8.5  # daily sampling around 08:30 UTC


@dataclass(frozen=True)
class SiteConfig:
    """What to simulate.

    ``interval_s`` is the historian logging interval. With ``full_resolution_days`` only the
    last that many days are logged every ``interval_s`` and the days before every
    ``history_interval_s`` (a historian archive's coarser history); ``None`` (the default, or
    ``full_resolution_days >= days``): every day at ``interval_s``. The default site — a year
    of 6 bioreactors (~140 batches) at 1 minute — is logged at one resolution throughout: a
    resolution change is a change of the data-generating process that the models' drift checks
    flag (daily and hourly statistics of 10-minute samples spread wider than of 1-minute
    samples; measured in docs/twin.md).
    """

    start: str = "2025-07-01"
    days: int = 365
    bioreactors: int = 6
    interval_s: float = 60.0
    full_resolution_days: int | None = None
    history_interval_s: float = 600.0
    seed: int = 7
    product: str = "mAb-A"
    recipe_id: str = "FB-14D-v3"
    nominal: Recipe = NOMINAL_RECIPE
    dt_h: float = 0.25
    deviation_rates: dict[DeviationType, float] | None = None
    workers: int = 2
    write_trajectories: bool = True

    def day_interval_s(self, day: int) -> float:
        """The historian logging interval of day ``day`` (0 = ``start``)."""
        full = self.full_resolution_days
        if full is None or day >= self.days - full:
            return self.interval_s
        return max(self.interval_s, self.history_interval_s)

    def unit_ids(self) -> list[str]:
        """Bioreactor ids ``BR-101``, ``BR-102``, …"""
        return [f"BR-{101 + i}" for i in range(self.bioreactors)]


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *keys])


# The small batch-to-batch setpoint variation of a real site: recipe field -> (sd of the normal
# draw around the nominal value, rounding as entered in the MES: ("decimals", d) → round(x, d);
# ("per", k) → round(k·x)/k; ("step", s) → s·round(x/s)), clipped to DESIGN_SPACE. Draw order =
# key order. Used by the site simulator and by ml.mspc's twin evaluation sets.
RECIPE_VARIATION: dict[str, tuple[float, tuple[str, float]]] = {
    "temperature_c": (0.15, ("decimals", 1)),
    "temp_shift_day": (0.4, ("per", 4.0)),
    "temp_shift_c": (0.35, ("decimals", 1)),
    "ph": (0.03, ("decimals", 2)),
    "do_pct": (4.0, ("decimals", 0)),
    "feed_rate_pct_per_day": (0.25, ("per", 20.0)),
    "seed_density_e6_per_ml": (0.06, ("decimals", 2)),
    "working_volume_l": (12.0, ("step", 5.0)),
    "duration_days": (0.35, ("per", 4.0)),
}


def _round_setpoint(x: Any, rounding: tuple[str, float], rnd: Callable) -> Any:
    kind, k = rounding
    if kind == "decimals":
        return rnd(x, int(k))
    if kind == "per":
        return rnd(k * x) / k
    if kind == "step":
        return k * rnd(x / k)
    raise ValueError(f"unknown rounding {rounding!r}")


def vary_recipe(rng: np.random.Generator, nominal: Recipe) -> Recipe:
    """``nominal`` with the site's batch-to-batch setpoint variation (:data:`RECIPE_VARIATION`)."""
    values = {}
    for key, (sd, rounding) in RECIPE_VARIATION.items():
        lo, hi = DESIGN_SPACE[key]
        x = _round_setpoint(rng.normal(getattr(nominal, key), sd), rounding, round)
        values[key] = float(min(max(x, lo), hi))
    return replace(nominal, **values)


def vary_recipes(rng: np.random.Generator, n: int, nominal: Recipe | None = None) -> dict[str, np.ndarray]:
    """``n`` recipes drawn like :func:`vary_recipe`, vectorised: one array per field."""
    nominal = nominal or NOMINAL_RECIPE
    return {
        key: np.clip(_round_setpoint(rng.normal(getattr(nominal, key), sd, n), rounding, np.round), *DESIGN_SPACE[key])
        for key, (sd, rounding) in RECIPE_VARIATION.items()
    }
