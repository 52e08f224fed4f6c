"""Held-out twin batches for the live mirror (``twin.mirror``): truth + what the plant would see.

Test and benchmark scaffolding, never imported by product code. Batches get the site's recipe
variation and a wider biological spread than the site's (mu_max/qp only): the population the
mirror's prior describes (its estimated parameters and the nuisance parameters it marginalises,
``twin.mirror.DEFAULT_PRIOR_SD`` / ``DEFAULT_NUISANCE_SD``), an actual inoculum that differs
from the setpoint, and parameters the mirror does not know vary (:data:`UNKNOWN_SD`: model
mismatch). Observations are what the plant has: online
signals every ``online_every_h`` with the noise of ``tests.support.monitoring_set`` and the
site's LIMS assays (``twin.site.config.LIMS_DAILY`` / ``LIMS_TITER``: precision, result delays,
titer from day 3 every 1-2 days).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from tests.support.monitoring_set import DEFAULT_NOISE
from twin.bioreactor import Faults, KineticParams, Recipe, feed_command, recipes_to_arrays, simulate_batches
from twin.mirror import DEFAULT_NUISANCE_SD, DEFAULT_PRIOR_SD, FIT_ANALYTES, BatchData
from twin.site import vary_recipes
from twin.site.config import LIMS_DAILY, LIMS_TITER, LIMS_TITER_FROM_DAY

#: lognormal SD of kinetic parameters that vary in the held-out population and that the mirror
#: neither estimates nor marginalises (it does not know they vary): true model mismatch
UNKNOWN_SD: dict[str, float] = {
    "q_gln": 0.05,
    "y_amm_gln": 0.05,
    "k_gln_deg": 0.10,
    "ks_aa": 0.10,
    "qo2": 0.10,
    "cell_diam_um": 0.03,
}
ONLINE_SIGNALS = ("temperature", "temperature_sp", "feed_flow_sp", "feed_flow", "feed_total", "capacitance")


@dataclass
class MirrorSet:
    """Simulated batches: ``data`` (what the plant sees, whole culture), ``truth`` (harvest values)."""

    data: list[BatchData]
    truth: pd.DataFrame  # batch_id, titer, harvest_titer_measured, viability, g0f, ..., hmw, end_h
    result: Any  # the BatchResult of the truth (dt 0.25 h)
    params: KineticParams


def simulate_mirror_set(
    n: int,
    seed: int = 0,
    faults: Faults | None = None,
    recipes: Mapping[str, np.ndarray] | None = None,
    spread: Mapping[str, float] | None = None,
    online_every_h: float = 0.5,
    prefix: str = "M",
) -> MirrorSet:
    """``n`` held-out batches (see the module doc); ``faults`` inject deviations (``twin.bioreactor.Faults``).

    ``spread``: lognormal SD per varied parameter (``KineticParams`` fields, ``seed`` = actual /
    set inoculum); default: the mirror's prior (estimated + nuisance) and :data:`UNKNOWN_SD`.
    """
    rng = np.random.default_rng(seed)
    rec = recipes_to_arrays(dict(recipes) if recipes is not None else vary_recipes(rng, n))
    spread = {**DEFAULT_PRIOR_SD, **DEFAULT_NUISANCE_SD, **UNKNOWN_SD} if spread is None else spread
    base = KineticParams()
    upd = {}
    seed_mult = np.ones(n)
    for name, sd in spread.items():
        mult = np.exp(rng.normal(0.0, sd, n))
        if name == "seed":
            seed_mult = mult
        else:
            upd[name] = float(getattr(base, name)) * mult
    params = replace(base, **upd)
    true_rec = dict(rec)
    true_rec["seed_density_e6_per_ml"] = rec["seed_density_e6_per_ml"] * seed_mult
    offs = 2.0 + rng.uniform(-0.5, 0.5, n)
    res = simulate_batches(
        true_rec,
        params=params,
        dt_h=0.25,
        record_every_h=online_every_h,
        seed=seed,
        faults=faults,
        sample_offset_h=offs,
    )
    t = res.t_h
    data = []
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    for i, bid in enumerate(ids):
        keep = t <= res.end_h[i] + 1e-9
        online = {"culture_age_h": t[keep]}
        for s in ONLINE_SIGNALS:
            v = res.series[s][i, keep]
            sd = DEFAULT_NOISE.get(s, 0.0)
            online[s] = v + rng.normal(0.0, sd, v.shape) if sd > 0 else v.copy()
        data.append(
            BatchData(
                batch_id=bid,
                recipe={k: float(v[i]) for k, v in rec.items()},
                online=pd.DataFrame(online),
                assays=_assays(res, i, offs[i], rng),
                sample_offset_h=float(offs[i]),
            )
        )
    truth = pd.DataFrame({"batch_id": ids, **{k: np.asarray(v, dtype=float) for k, v in res.harvest.items()}})
    truth["harvest_titer_measured"] = truth["titer"] * (1.0 + LIMS_TITER[4] * rng.standard_normal(n))
    return MirrorSet(data=data, truth=truth, result=res, params=params)


def _assays(res: Any, i: int, offset_h: float, rng: np.random.Generator) -> pd.DataFrame:
    """The site's in-process LIMS results of batch ``i`` (fit analytes + titer), with release times."""
    t = res.t_h
    end = float(res.end_h[i])
    spec = {a: (key, rsd, asd, delay) for a, key, _, _, rsd, asd, delay in LIMS_DAILY if a in FIT_ANALYTES}
    rows = []
    titer_next = LIMS_TITER_FROM_DAY
    k = 0
    while offset_h + 24.0 * k <= end + 1e-9:
        s_h = offset_h + 24.0 * k
        day = int(s_h // 24.0)
        for a, (key, rsd, asd, delay) in spec.items():
            true = float(np.interp(s_h, t, np.nan_to_num(res.series[key][i], nan=0.0)))
            v = true * (1.0 + rsd * rng.standard_normal()) + asd * rng.standard_normal()
            v = float(np.clip(v, 0.0, 100.0)) if a == "viability" else max(v, 0.0)
            rows.append((a, v, s_h, s_h + float(rng.uniform(*delay))))
        if day >= titer_next:
            a, key, _, _, rsd, _, delay = LIMS_TITER
            true = float(np.interp(s_h, t, np.nan_to_num(res.series[key][i], nan=0.0)))
            rows.append(
                (a, max(true * (1.0 + rsd * rng.standard_normal()), 0.0), s_h, s_h + float(rng.uniform(*delay)))
            )
            titer_next = day + int(rng.integers(1, 3))
        k += 1
    return pd.DataFrame(rows, columns=["analyte", "value", "culture_age_h", "result_age_h"])


def nominal_recipes(n: int, **changes: float) -> dict[str, np.ndarray]:
    """``n`` copies of the nominal recipe (with ``changes``) as struct-of-arrays."""
    return recipes_to_arrays([replace(Recipe(), **changes)] * n)


def true_outcome(ms: MirrorSet, i: int, actions: Sequence[Any], as_of_h: float) -> pd.DataFrame:
    """Harvest values of the *truth* of batch ``i`` when each action is applied from ``as_of_h`` on.

    The truth's own inputs (actual temperature and delivered feed, faults included) are replayed
    up to ``as_of_h``, then each action's plan runs with the truth's kinetics. Faults after
    ``as_of_h`` are not replayed: choose ``as_of_h`` after the deviation ended. Needs the truth
    recorded every 0.25 h (``simulate_mirror_set(online_every_h=0.25)``).
    """
    res, dt = ms.result, 0.25
    if not np.isclose(res.t_h[1] - res.t_h[0], dt):
        raise ValueError("true_outcome needs the truth recorded every 0.25 h")
    k = len(actions)
    rec = {key: np.repeat(v[i], k) for key, v in res.recipes.items()}
    for j, a in enumerate(actions):
        for key, v in a.setpoints:
            rec[key][j] = v
    n_steps = int(np.ceil(rec["duration_days"].max() * 24.0 / dt)) + 1
    t = np.arange(n_steps) * dt
    feed = feed_command(rec, t, dt, rec["duration_days"] * 24.0)
    own = feed_command({key: v[i : i + 1] for key, v in res.recipes.items()}, t, dt, rec["duration_days"][:1] * 24.0)
    for j, a in enumerate(actions):
        if np.isfinite(a.feed_hours):  # a catch-up feed: the recipe's own rate afterwards
            after = t >= as_of_h + a.feed_hours
            feed[j, after] = own[0, after]
    m = int(round(as_of_h / dt))
    feed[:, :m] = res.series["feed_flow"][i, :m] * 60.0 / 1000.0
    temp = np.full((k, n_steps), np.nan)
    temp[:, :m] = res.series["temperature"][i, :m]
    kin = replace(
        ms.params,
        **{
            f.name: np.repeat(np.asarray(getattr(ms.params, f.name))[i], k)
            for f in fields(ms.params)
            if np.ndim(getattr(ms.params, f.name)) > 0
        },
    )
    out = simulate_batches(
        rec,
        params=kin,
        dt_h=dt,
        record_every_h=24.0,
        sample_offset_h=float(ms.data[i].sample_offset_h),
        inputs={"temperature": temp, "feed_lph": feed},
    )
    return pd.DataFrame(dict(out.harvest))
