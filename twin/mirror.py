"""The twin as a live mirror of a running batch: estimation, forecast, corrective scenarios.

For a batch that is still running, at culture age ``as_of_h`` the plant knows its recipe (MES
setpoints), its online signals so far and the offline assays released so far. This module

1. **estimates** the batch's own kinetics and its current state from that data
   (:func:`estimate`): a maximum a-posteriori fit of a few batch-specific parameters
   (:data:`DEFAULT_PRIOR_SD`) under a lognormal prior (the population's batch-to-batch spread),
   with the twin driven by what the batch actually received (measured temperature and delivered
   feed replace the recipe's up to ``as_of_h``: a temperature fault or a missed feed is replayed,
   not assumed away). The fit is a Levenberg-Marquardt iteration vectorised over batches: the
   residuals and the forward-difference Jacobian of every batch come from one
   ``simulate_batches`` call per iteration (batches x (1 + n parameters) on the batch axis). The
   posterior is the Laplace approximation (Gaussian in log-parameters, covariance = inverse
   Gauss-Newton Hessian incl. the prior);
2. **forecasts** harvest titer, viability and CQAs and the trajectory to harvest with bands
   (:func:`forecast`): posterior draws simulated to harvest in one vectorised call, the recipe
   followed from ``as_of_h`` on. A new estimate warm-starts from the previous posterior
   (``estimate(..., previous=...)``), so an update as data arrives costs a few iterations;
3. **ranks corrective actions** (:func:`recommend`): feed-rate changes, a temporary catch-up feed,
   temperature-shift timing/level and harvest day, each applied from ``as_of_h`` on and only
   inside ``DESIGN_SPACE``; every candidate runs over the *same* posterior draws (paired
   comparison with doing nothing) and is ranked by the expected in-spec harvest titer (titer x
   probability that every measured CQA is inside its spec). :class:`Recommendation` rows carry
   action, expected outcome with band, CQA risk and a one-line rationale (for an alerts table).

Units: hours since inoculation (culture age) everywhere; setpoints as in ``Recipe``. Plain
numpy/pandas, no Dagster; gold-table adapters live in ``ml.mirror``. See ``docs/mirror.md``.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from twin.bioreactor import (
    CQA_KEYS,
    DESIGN_SPACE,
    HARVEST_UNITS,
    SERIES_UNITS,
    KineticParams,
    QualityParams,
    Recipe,
    feed_command,
    recipes_to_arrays,
    simulate_batches,
)
from twin.site.config import LIMS_DAILY, LIMS_TITER

__all__ = [
    "ACTION_SETPOINTS",
    "DEFAULT_NUISANCE_SD",
    "DEFAULT_PRIOR_SD",
    "FIT_ANALYTES",
    "HARVEST_KEYS",
    "NO_ACTION",
    "QUANTILES",
    "TRAJECTORY_SERIES",
    "Action",
    "BatchData",
    "Forecast",
    "Posterior",
    "Prior",
    "Recommendation",
    "candidate_actions",
    "estimate",
    "forecast",
    "in_design_space",
    "recommend",
    "spec_risk",
]

# --------------------------------------------------------------------------- what is estimated

#: Batch-specific parameters the mirror estimates, with their prior batch-to-batch spread (SD of
#: the log, i.e. ~relative SD). ``seed`` is the actual/nominal inoculum density (cell counts at
#: inoculation are ±10 %); the others are ``KineticParams`` fields. Chosen by sensitivity of the
#: harvest titer and identifiability from daily assays (docs/mirror.md): ``mu_max`` (growth:
#: VCD, glucose), ``qp`` (titer/IVCD), ``yx_glc`` (glucose use per cell: glucose, VCD),
#: ``theta_temp`` (growth after the temperature shift) and ``qp_shift_gain`` (productivity after
#: the shift) - the last two are not identifiable before the shift, the prior carries them (so
#: early bands are wide) until post-shift assays arrive.
DEFAULT_PRIOR_SD: dict[str, float] = {
    "seed": 0.08,
    "mu_max": 0.06,
    "qp": 0.08,
    "yx_glc": 0.05,
    "theta_temp": 0.05,
    "qp_shift_gain": 0.06,
}

#: Kinetic parameters that vary from batch to batch but are not estimated (weakly identifiable from
#: running-batch data, or with little effect on the harvest), with their lognormal spread: the
#: forecast marginalises over them (posterior draws x draws of these), so its bands carry the
#: model uncertainty the fit cannot remove (late-culture death, metabolism, productivity modifiers).
DEFAULT_NUISANCE_SD: dict[str, float] = {
    "m_glc": 0.05,
    "y_lac_glc": 0.05,
    "q_aa": 0.05,
    "m_aa": 0.05,
    "ki_amm_qp": 0.05,
    "qp_osm_gain": 0.10,
    "age_mid_day": 0.02,
    "kd_age": 0.10,
    "kd0": 0.20,
    "k_lysis": 0.10,
    "ki_lac": 0.05,
}

#: Offline assays used by the fit (LIMS analyte names = ``BatchResult.series`` names).
#: the online signals of the running batch the mirror replays (the twin's own signal names, as
#: its site exports them and the CHO bundle's catalog declares them)
ONLINE_SIGNALS: tuple[str, ...] = ("temperature", "feed_total", "feed_flow", "feed_flow_sp")
FIT_ANALYTES: tuple[str, ...] = ("vcd", "viability", "glucose", "lactate", "ammonia", "titer")

#: Model discrepancy added to the lab's precision in the fit: (relative, absolute) 1 SD per analyte.
#: The twin is not the plant: parameters the mirror does not estimate vary from batch to batch.
MODEL_ERROR: dict[str, tuple[float, float]] = {
    "vcd": (0.06, 0.10),
    "viability": (0.0, 1.5),
    "glucose": (0.08, 0.15),
    "lactate": (0.08, 0.10),
    "ammonia": (0.08, 0.30),
    "titer": (0.04, 0.005),
}

#: Harvest quantities forecast (``BatchResult.harvest`` keys).
HARVEST_KEYS: tuple[str, ...] = ("titer", "viability", "vcd", *CQA_KEYS)
#: Trajectories forecast to harvest (``BatchResult.series`` names).
TRAJECTORY_SERIES: tuple[str, ...] = ("titer", "vcd", "viability", "glucose", "lactate", "ammonia", "osmolality")
#: Quantiles reported for trajectories and harvest values (80 % and 95 % bands + median).
QUANTILES: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975)

_FD_STEP = 1e-3  # forward-difference step in log-parameter space
_PRIOR_BOUND_SD = 4.0  # log-parameters are kept within ±4 prior SD


def _assay_error() -> dict[str, tuple[float, float]]:
    """Lab precision (the site's LIMS methods) combined with the model discrepancy, per analyte."""
    lab = {a: (rsd, asd) for a, _, _, _, rsd, asd, _ in (*LIMS_DAILY, LIMS_TITER)}
    out = {}
    for a in FIT_ANALYTES:
        rl, al = lab.get(a, (0.0, 0.0))
        rm, am = MODEL_ERROR[a]
        out[a] = (math.hypot(rl, rm), math.hypot(al, am))
    return out


#: Residual scale per analyte in the fit: SD = sqrt((rel * value)^2 + abs^2).
ASSAY_ERROR: dict[str, tuple[float, float]] = _assay_error()


@dataclass(frozen=True)
class Prior:
    """Population prior of the estimated parameters.

    Parameters
    ----------
    base : KineticParams
        Prior median of the kinetics (e.g. the site calibration, ``twin.calibration``); scalar
        fields only.
    sd : Mapping[str, float]
        Lognormal SD per estimated parameter (names: ``KineticParams`` fields or ``seed``).
    nuisance_sd : Mapping[str, float]
        Lognormal SD of ``KineticParams`` fields that vary but are not estimated; forecasts and
        scenarios draw them (not the fit).
    quality : QualityParams
        Product-quality model of the twin (also the CQA assay SDs used for spec risk).
    """

    base: KineticParams = field(default_factory=KineticParams)
    sd: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIOR_SD))
    nuisance_sd: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_NUISANCE_SD))
    quality: QualityParams = field(default_factory=QualityParams)

    def __post_init__(self) -> None:
        kinetic = {f.name for f in fields(KineticParams)}
        unknown = set(self.sd) - kinetic - {"seed"}
        if unknown:
            raise ValueError(f"unknown estimated parameters {sorted(unknown)}")
        unknown = set(self.nuisance_sd) - kinetic
        if unknown:
            raise ValueError(f"unknown nuisance parameters {sorted(unknown)}")
        both = set(self.sd) & set(self.nuisance_sd)
        if both:
            raise ValueError(f"parameters both estimated and nuisance: {sorted(both)}")
        for f in fields(self.base):
            if np.ndim(getattr(self.base, f.name)) != 0:
                raise ValueError(f"Prior.base.{f.name} must be a scalar (the population median)")
        if any(float(v) <= 0 for v in self.sd.values()) or any(float(v) < 0 for v in self.nuisance_sd.values()):
            raise ValueError("prior SDs must be > 0 (nuisance SDs >= 0)")

    @property
    def names(self) -> tuple[str, ...]:
        """Estimated parameter names, in the order of :attr:`Posterior.mean`."""
        return tuple(self.sd)

    def median(self, name: str) -> float:
        """Prior median of one estimated parameter in its natural unit (``seed``: multiplier 1)."""
        return 1.0 if name == "seed" else float(getattr(self.base, name))

    def sd_array(self) -> np.ndarray:
        """Prior SDs of the log-multipliers, shape (p,)."""
        return np.array([float(self.sd[k]) for k in self.names])


# --------------------------------------------------------------------------- inputs


@dataclass
class BatchData:
    """What the plant knows about one running batch (any amount of it; the mirror cuts at ``as_of_h``).

    Parameters
    ----------
    batch_id : str
        The batch id.
    recipe : Recipe or Mapping[str, float]
        MES setpoints (``Recipe`` fields; missing ones take the ``Recipe`` defaults, e.g.
        ``duration_days`` = planned harvest).
    online : pandas.DataFrame, optional
        Online signals on any time grid: ``culture_age_h`` plus any of ``temperature`` [degC],
        ``feed_total`` [mL] (or ``feed_flow`` [mL/min]) and ``feed_flow_sp`` [mL/min]; NaN =
        missing. Without it the mirror assumes the recipe was followed.
    assays : pandas.DataFrame, optional
        Offline results: ``analyte``, ``value``, ``culture_age_h`` (sampling) and
        ``result_age_h`` (culture age when the result was released); analytes outside
        :data:`FIT_ANALYTES` are ignored.
    sample_offset_h : float
        Culture age of the first daily sample (the twin withdraws 0.25 L per sample).
    """

    batch_id: str
    recipe: Recipe | Mapping[str, float]
    online: pd.DataFrame | None = None
    assays: pd.DataFrame | None = None
    sample_offset_h: float = 2.0

    def recipe_arrays(self) -> dict[str, np.ndarray]:
        """The recipe as struct-of-arrays (one batch)."""
        rec = self.recipe
        return recipes_to_arrays(rec if isinstance(rec, Recipe) else dict(rec))

    def known_at(self, as_of_h: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(online rows with ``culture_age_h <= as_of_h``, assays released by ``as_of_h``)."""
        on = self.online if self.online is not None else pd.DataFrame({"culture_age_h": []})
        if "culture_age_h" not in on.columns:
            raise ValueError(f"{self.batch_id}: online data needs a culture_age_h column")
        on = on[pd.to_numeric(on["culture_age_h"], errors="coerce") <= as_of_h]
        a = self.assays if self.assays is not None else pd.DataFrame(columns=["analyte", "value"])
        if len(a):
            missing = {"analyte", "value", "culture_age_h", "result_age_h"} - set(a.columns)
            if missing:
                raise ValueError(f"{self.batch_id}: assays lack columns {sorted(missing)}")
            rt = pd.to_numeric(a["result_age_h"], errors="coerce")
            st = pd.to_numeric(a["culture_age_h"], errors="coerce")
            v = pd.to_numeric(a["value"], errors="coerce")
            a = a[(rt <= as_of_h) & (st <= as_of_h) & np.isfinite(v) & a["analyte"].isin(FIT_ANALYTES)]
        return on, a


def _cumulative(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cumulative trapezoid integral of x(t) (t sorted)."""
    return np.concatenate([[0.0], np.cumsum(0.5 * (x[1:] + x[:-1]) * np.diff(t))])


def _step_means(t: np.ndarray, x: np.ndarray, edges: np.ndarray, integral: bool) -> np.ndarray:
    """Mean of x over each step [edges[k], edges[k+1]) (NaN outside the data's time range).

    ``integral``: x is already a cumulative quantity (a totaliser); its increments are used.
    """
    ok = np.isfinite(t) & np.isfinite(x)
    t, x = t[ok], x[ok]
    out = np.full(edges.shape[0] - 1, np.nan)
    if t.shape[0] < 2:
        return out
    order = np.argsort(t, kind="stable")
    t, x = t[order], x[order]
    c = x if integral else _cumulative(t, x)
    cv = np.interp(edges, t, c)
    width = np.diff(edges)
    inside = (edges[:-1] >= t[0] - 0.5 * width) & (edges[1:] <= t[-1] + 1e-9)
    out[inside] = (cv[1:] - cv[:-1])[inside] / width[inside]
    return out


@dataclass
class _Case:
    """One batch prepared for the twin at ``as_of_h``: recipe, measured inputs, observations."""

    batch_id: str
    as_of_h: float
    recipe: dict[str, np.ndarray]
    temperature: np.ndarray  # (m,) measured mean per step, NaN = recipe
    feed_lph: np.ndarray  # (m,) measured delivered feed per step, NaN = recipe
    feed_efficiency: float  # delivered / commanded feed (pump wear), used for the future
    obs_t: np.ndarray
    obs_a: np.ndarray  # analyte index into FIT_ANALYTES
    obs_y: np.ndarray
    obs_sd: np.ndarray
    sample_offset_h: float

    @property
    def harvest_h(self) -> float:
        return float(self.recipe["duration_days"][0]) * 24.0


def _prepare(data: BatchData, as_of_h: float, dt_h: float) -> _Case:
    if not np.isfinite(as_of_h) or as_of_h < 0:
        raise ValueError(f"{data.batch_id}: as_of_h must be a culture age >= 0, got {as_of_h}")
    rec = data.recipe_arrays()
    # a batch running past its planned harvest is harvested now at the earliest
    rec["duration_days"] = np.maximum(rec["duration_days"], as_of_h / 24.0)
    on, a = data.known_at(as_of_h)
    m = int(math.floor(as_of_h / dt_h + 1e-9))
    edges = np.arange(m + 1) * dt_h
    t = pd.to_numeric(on["culture_age_h"], errors="coerce").to_numpy(float)
    col = lambda c: pd.to_numeric(on[c], errors="coerce").to_numpy(float)
    temp = _step_means(t, col("temperature"), edges, False) if "temperature" in on.columns else np.full(m, np.nan)
    if "feed_total" in on.columns:
        feed = _step_means(t, col("feed_total"), edges, True) / 1000.0
    elif "feed_flow" in on.columns:
        feed = _step_means(t, col("feed_flow"), edges, False) * 60.0 / 1000.0
    else:
        feed = np.full(m, np.nan)
    eff = 1.0
    if {"feed_flow", "feed_flow_sp"} <= set(on.columns):
        recent = t >= as_of_h - 24.0
        sp, pv = col("feed_flow_sp")[recent], col("feed_flow")[recent]
        use = np.isfinite(sp) & np.isfinite(pv) & (sp > 1e-6)
        if use.sum() >= 3:
            eff = float(np.clip(np.median(pv[use] / sp[use]), 0.5, 1.2))
    code = {k: i for i, k in enumerate(FIT_ANALYTES)}
    y = pd.to_numeric(a["value"], errors="coerce").to_numpy(float) if len(a) else np.zeros(0)
    ai = a["analyte"].map(code).to_numpy(int) if len(a) else np.zeros(0, dtype=int)
    rel = np.array([ASSAY_ERROR[k][0] for k in FIT_ANALYTES])[ai]
    ab = np.array([ASSAY_ERROR[k][1] for k in FIT_ANALYTES])[ai]
    return _Case(
        batch_id=data.batch_id,
        as_of_h=float(as_of_h),
        recipe=rec,
        temperature=temp,
        feed_lph=feed,
        feed_efficiency=eff,
        obs_t=pd.to_numeric(a["culture_age_h"], errors="coerce").to_numpy(float) if len(a) else np.zeros(0),
        obs_a=ai,
        obs_y=y,
        obs_sd=np.sqrt((rel * np.abs(y)) ** 2 + ab**2),
        sample_offset_h=float(data.sample_offset_h),
    )


# --------------------------------------------------------------------------- simulation of cases


def _planned_inputs(
    cases: Sequence[_Case], idx: np.ndarray, recipes: dict[str, np.ndarray], n_steps: int, dt_h: float
) -> dict[str, np.ndarray]:
    """Per-step inputs of each simulation: measured up to its case's ``as_of_h``, then the plan.

    The planned feed is the (scenario) recipe's command x the batch's pump delivery efficiency;
    the planned temperature is left NaN (= the recipe's setpoint profile).
    """
    n = idx.shape[0]
    temp = np.full((n, n_steps), np.nan)
    t = np.arange(n_steps) * dt_h
    end = recipes["duration_days"] * 24.0
    feed = feed_command(recipes, t, dt_h, end)
    eff = np.array([cases[c].feed_efficiency for c in idx])
    feed *= eff[:, None]
    for c in np.unique(idx):
        rows = idx == c
        case = cases[c]
        m = min(case.temperature.shape[0], n_steps)
        temp[rows, :m] = case.temperature[:m]
        fm = case.feed_lph[:m]
        feed[np.ix_(rows, np.flatnonzero(np.isfinite(fm)))] = fm[np.isfinite(fm)]
    return {"temperature": temp, "feed_lph": feed}


def _params_for(prior: Prior, z: np.ndarray) -> tuple[KineticParams, np.ndarray]:
    """KineticParams with per-simulation arrays and the inoculum multiplier, from log-multipliers z.

    ``z`` (n, p) holds the estimated parameters (``prior.names``), optionally followed by the
    nuisance parameters (``prior.nuisance_sd`` order); missing ones stay at their median.
    """
    upd: dict[str, np.ndarray] = {}
    seed = np.ones(z.shape[0])
    for j, name in enumerate((*prior.names, *prior.nuisance_sd)[: z.shape[1]]):
        mult = np.exp(z[:, j])
        if name == "seed":
            seed = mult
        else:
            upd[name] = prior.median(name) * mult
    return replace(prior.base, **upd), seed


def _simulate(
    cases: Sequence[_Case],
    idx: np.ndarray,
    z: np.ndarray,
    prior: Prior,
    dt_h: float,
    end_h: np.ndarray,
    record_every_h: float,
    recipes: dict[str, np.ndarray] | None = None,
    inputs: dict[str, np.ndarray] | None = None,
):
    """One vectorised twin run: simulation i is case ``idx[i]`` with log-multipliers ``z[i]``."""
    if recipes is None:
        recipes = {k: np.concatenate([cases[c].recipe[k] for c in idx]) for k in cases[idx[0]].recipe}
    recipes = dict(recipes)
    params, seed = _params_for(prior, z)
    recipes["seed_density_e6_per_ml"] = recipes["seed_density_e6_per_ml"] * seed
    n_steps = int(math.ceil(float(np.max(end_h)) / dt_h - 1e-9)) + 1
    if inputs is None:
        inputs = _planned_inputs(cases, idx, recipes, n_steps, dt_h)
    offs = np.array([cases[c].sample_offset_h for c in idx])
    return simulate_batches(
        recipes,
        params=params,
        dt_h=dt_h,
        record_every_h=record_every_h,
        end_h=end_h,
        inputs=inputs,
        sample_offset_h=offs,
        quality=prior.quality,
    )


# --------------------------------------------------------------------------- estimation


@dataclass
class Posterior:
    """Laplace posterior of one batch's estimated parameters at culture age ``as_of_h``.

    ``mean``/``cov`` are of the log-multipliers relative to the prior median (``names`` order);
    :meth:`params` gives natural units. ``n_obs`` assays were used; ``cost`` is the final
    0.5 * (weighted squared residuals + prior penalty). Serialise with :meth:`to_dict` (JSON) to
    warm-start the next update.
    """

    batch_id: str
    as_of_h: float
    names: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray
    n_obs: int
    cost: float
    iterations: int
    converged: bool
    prior: Prior = field(default_factory=Prior, repr=False)
    _case: _Case | None = field(default=None, repr=False)

    def params(self) -> dict[str, dict[str, float]]:
        """Per parameter: posterior median, 10/90 % quantiles (natural units) and the prior median."""
        sd = np.sqrt(np.maximum(np.diag(self.cov), 0.0))
        out = {}
        for j, k in enumerate(self.names):
            m0 = self.prior.median(k)
            out[k] = {
                "median": m0 * math.exp(self.mean[j]),
                "p10": m0 * math.exp(self.mean[j] - 1.2816 * sd[j]),
                "p90": m0 * math.exp(self.mean[j] + 1.2816 * sd[j]),
                "prior_median": m0,
                "shrinkage": float(1.0 - sd[j] / float(self.prior.sd[k])),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (without the data): enough to warm-start :func:`estimate`."""
        return {
            "batch_id": self.batch_id,
            "as_of_h": self.as_of_h,
            "names": list(self.names),
            "mean": [float(v) for v in self.mean],
            "cov": [[float(v) for v in row] for row in self.cov],
            "n_obs": self.n_obs,
            "cost": self.cost,
            "iterations": self.iterations,
            "converged": self.converged,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prior: Prior | None = None) -> Posterior:
        """Inverse of :meth:`to_dict` (no data attached: use it as ``previous`` of :func:`estimate`)."""
        return cls(
            batch_id=str(d["batch_id"]),
            as_of_h=float(d["as_of_h"]),
            names=tuple(d["names"]),
            mean=np.asarray(d["mean"], dtype=float),
            cov=np.asarray(d["cov"], dtype=float),
            n_obs=int(d["n_obs"]),
            cost=float(d["cost"]),
            iterations=int(d["iterations"]),
            converged=bool(d["converged"]),
            prior=prior or Prior(),
        )


def _residuals(
    cases: Sequence[_Case], active: np.ndarray, z: np.ndarray, prior: Prior, dt_h: float, M: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled residuals (n_active, M) and forward-difference Jacobians (n_active, M, p) at z (n_active, p).

    One twin run of n_active x (1 + p) simulations, each to its case's ``as_of_h``; residuals
    are zero-padded to ``M`` (at least the largest number of observations of a case).
    """
    p = z.shape[1]
    q = p + 1
    zz = np.repeat(z, q, axis=0) + np.tile(np.vstack([np.zeros(p), _FD_STEP * np.eye(p)]), (len(active), 1))
    idx = np.repeat(active, q)
    t_last = np.array([max(cases[c].as_of_h, float(np.max(cases[c].obs_t, initial=0.0))) for c in idx])
    end_h = np.maximum(np.ceil(t_last / dt_h) * dt_h + dt_h, 2 * dt_h)
    res = _simulate(cases, idx, zz, prior, dt_h, end_h, dt_h)
    t = res.t_h
    S = np.stack([res.series[a] for a in FIT_ANALYTES], axis=1)  # (n_sim, n_an, n_rec)
    r = np.zeros((len(active), q, M))
    for i, c in enumerate(active):
        case = cases[c]
        k = case.obs_y.shape[0]
        if k == 0:
            continue
        pos = np.clip(case.obs_t, t[0], t[-1])
        j = np.clip(np.searchsorted(t, pos, side="right") - 1, 0, len(t) - 2)
        w = (pos - t[j]) / (t[j + 1] - t[j])
        rows = S[i * q : (i + 1) * q][:, case.obs_a, :]  # (q, k, n_rec)
        ar = np.arange(k)
        y0, y1 = rows[:, ar, j], rows[:, ar, j + 1]
        pred = y0 + w * (np.where(np.isfinite(y1), y1, y0) - y0)
        r[i, :, :k] = np.nan_to_num((pred - case.obs_y) / case.obs_sd, nan=0.0)
    J = np.moveaxis((r[:, 1:, :] - r[:, :1, :]) / _FD_STEP, 1, 2)
    return r[:, 0, :], J


def estimate(
    data: Sequence[BatchData] | BatchData,
    as_of_h: float | Sequence[float],
    prior: Prior | None = None,
    previous: Sequence[Posterior | None] | None = None,
    dt_h: float = 1.0,
    max_iter: int = 25,
    tol: float = 1e-3,
) -> list[Posterior]:
    """Estimate each running batch's parameters and state from what is known at ``as_of_h``.

    Parameters
    ----------
    data : BatchData or sequence of BatchData
        The batches (any amount of data; only online rows up to ``as_of_h`` and assays released
        by ``as_of_h`` are used).
    as_of_h : float or sequence of float
        Current culture age of each batch [h] (one value for all, or one per batch).
    prior : Prior, optional
        Population prior (default: twin defaults, :data:`DEFAULT_PRIOR_SD`).
    previous : sequence of Posterior or None, optional
        The batches' previous posteriors (same order; None where there is none): the fit starts
        from their means (an update as data arrives then takes a few iterations).
    dt_h : float
        Twin integration step [h] (1 h: harvest titer within 0.1 % of the 0.25 h default).
    max_iter : int
        Levenberg-Marquardt iterations at most (each is one vectorised twin run).
    tol : float
        Relative cost decrease below which a batch's fit has converged.

    Returns
    -------
    list of Posterior
        One per batch, in input order.
    """
    prior = prior or Prior()
    batches = [data] if isinstance(data, BatchData) else list(data)
    if not batches:
        raise ValueError("no batches to estimate")
    n = len(batches)
    ages = np.broadcast_to(np.asarray(as_of_h, dtype=float), (n,))
    cases = [_prepare(b, float(t), dt_h) for b, t in zip(batches, ages, strict=True)]
    p = len(prior.names)
    sd0 = prior.sd_array()
    p_inv = 1.0 / sd0**2
    lo, hi = -_PRIOR_BOUND_SD * sd0, _PRIOR_BOUND_SD * sd0
    z = np.zeros((n, p))
    for i, prev in enumerate(previous or []):
        if prev is None:
            continue
        if tuple(prev.names) != prior.names:
            raise ValueError(f"{prev.batch_id}: previous posterior has parameters {prev.names}, prior {prior.names}")
        z[i] = np.clip(prev.mean, lo, hi)
    lam = np.full(n, 1e-2 if previous else 1e-1)
    M = max(1, max(c.obs_y.shape[0] for c in cases))
    r_all, J_all = _residuals(cases, np.arange(n), z, prior, dt_h, M)
    cost = 0.5 * (np.sum(r_all**2, axis=1) + np.sum(z**2 * p_inv, axis=1))
    done = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=int)
    eye = np.eye(p)
    for _ in range(max_iter):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        Ja, za = J_all[act], z[act]
        A = np.einsum("nmi,nmj->nij", Ja, Ja) + eye * p_inv
        g = np.einsum("nmi,nm->ni", Ja, r_all[act]) + za * p_inv
        damped = A + lam[act, None, None] * eye * np.diagonal(A, axis1=1, axis2=2)[:, None, :]
        z_new = np.clip(za - np.linalg.solve(damped, g[..., None])[..., 0], lo, hi)
        r_new, J_new = _residuals(cases, act, z_new, prior, dt_h, M)
        c_new = 0.5 * (np.sum(r_new**2, axis=1) + np.sum(z_new**2 * p_inv, axis=1))
        iters[act] += 1
        better = c_new < cost[act]
        gain = (cost[act] - c_new) / np.maximum(cost[act], 1e-12)
        small = np.max(np.abs(z_new - za), axis=1) < 1e-3
        acc = act[better]
        z[acc], cost[acc], r_all[acc], J_all[acc] = z_new[better], c_new[better], r_new[better], J_new[better]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-6)
        rej = act[~better]
        lam[rej] *= 4.0
        done[act] = np.where(better, (gain < tol) | small, small | (lam[act] > 1e6))
    A = np.einsum("nmi,nmj->nij", J_all, J_all) + np.eye(p) * p_inv
    cov = np.linalg.inv(A)
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    return [
        Posterior(
            batch_id=cases[i].batch_id,
            as_of_h=cases[i].as_of_h,
            names=prior.names,
            mean=z[i].copy(),
            cov=cov[i],
            n_obs=int(cases[i].obs_y.shape[0]),
            cost=float(cost[i]),
            iterations=int(iters[i]),
            converged=bool(done[i]),
            prior=prior,
            _case=cases[i],
        )
        for i in range(n)
    ]


# --------------------------------------------------------------------------- forecast


def _draws(posteriors: Sequence[Posterior], n_draws: int, seed: int) -> np.ndarray:
    """Draws of the log-multipliers, (n_batches, n_draws, p + p_nuisance): the estimated parameters
    from each posterior, the nuisance parameters from their prior; draw 0 = posterior mean, medians."""
    out = []
    for post in posteriors:
        # one stream per batch: its draws do not depend on which other batches share the run
        rng = np.random.default_rng([seed, zlib.crc32(post.batch_id.encode())])
        sd0 = post.prior.sd_array()
        sdn = np.array([float(v) for v in post.prior.nuisance_sd.values()])
        L = np.linalg.cholesky(post.cov + 1e-12 * np.eye(len(post.names)))
        xi = rng.standard_normal((n_draws, len(post.names)))
        xn = rng.standard_normal((n_draws, sdn.shape[0]))
        xi[0], xn[0] = 0.0, 0.0
        est = np.clip(post.mean + xi @ L.T, -_PRIOR_BOUND_SD * sd0, _PRIOR_BOUND_SD * sd0)
        out.append(np.hstack([est, np.clip(xn, -_PRIOR_BOUND_SD, _PRIOR_BOUND_SD) * sdn]))
    return np.stack(out)


def _cases_of(posteriors: Sequence[Posterior]) -> list[_Case]:
    cases = []
    for post in posteriors:
        if post._case is None:
            raise ValueError(f"{post.batch_id}: posterior has no data attached (from_dict); run estimate() first")
        cases.append(post._case)
    return cases


@dataclass
class Forecast:
    """Forecast of one batch from its posterior at ``as_of_h`` to harvest at ``harvest_h``.

    ``harvest[key]``: (n_draws,) noise-free harvest values per posterior draw
    (:data:`HARVEST_KEYS`, units in ``twin.bioreactor.HARVEST_UNITS``); ``state[name]``:
    (n_draws,) values at ``as_of_h`` (the estimated current state); ``trajectory[name]``:
    (len(QUANTILES), n_rec) quantiles on ``t_h``.
    """

    batch_id: str
    as_of_h: float
    harvest_h: float
    harvest: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    t_h: np.ndarray
    trajectory: dict[str, np.ndarray]

    def quantile(self, key: str, q: float | Sequence[float]) -> np.ndarray | float:
        """Quantile(s) of a harvest value over the posterior draws."""
        v = np.quantile(self.harvest[key], q)
        return float(v) if np.ndim(v) == 0 else v

    def band(self, key: str, level: float = 0.8) -> tuple[float, float]:
        """Central ``level`` band of a harvest value (e.g. 0.8 -> 10-90 %)."""
        a = 0.5 * (1.0 - level)
        lo, hi = np.quantile(self.harvest[key], [a, 1.0 - a])
        return float(lo), float(hi)

    def summary(self) -> pd.DataFrame:
        """One row per forecast quantity (harvest values and the current state): mean, SD, quantiles, unit."""
        rows = []
        for kind, src, units in (("harvest", self.harvest, HARVEST_UNITS), ("state", self.state, SERIES_UNITS)):
            for k, v in src.items():
                qs = np.quantile(v, QUANTILES)
                rows.append(
                    {
                        "batch_id": self.batch_id,
                        "as_of_h": self.as_of_h,
                        "harvest_h": self.harvest_h,
                        "kind": kind,
                        "quantity": k,
                        "unit": units.get(k, ""),
                        "mean": float(np.mean(v)),
                        "sd": float(np.std(v)),
                        **{f"p{100 * q:g}".replace(".", "_"): float(x) for q, x in zip(QUANTILES, qs, strict=True)},
                    }
                )
        return pd.DataFrame(rows)


def forecast(
    posteriors: Sequence[Posterior] | Posterior,
    n_draws: int = 100,
    seed: int = 0,
    dt_h: float = 1.0,
    record_every_h: float = 2.0,
) -> list[Forecast]:
    """Forecast harvest values and trajectories of each batch over its posterior (one twin run).

    From ``as_of_h`` on the recipe is followed (planned temperature profile; recipe feed x the
    batch's measured pump delivery efficiency), harvest at the recipe's ``duration_days``.

    Parameters
    ----------
    posteriors : Posterior or sequence of Posterior
        From :func:`estimate` (with their data attached).
    n_draws : int
        Posterior draws per batch (draw 0 = the posterior mean).
    seed : int
        Seed of the draws.
    dt_h : float
        Twin integration step [h].
    record_every_h : float
        Resolution of the forecast trajectories [h].

    Returns
    -------
    list of Forecast
        One per batch, in input order.
    """
    posts = [posteriors] if isinstance(posteriors, Posterior) else list(posteriors)
    cases = _cases_of(posts)
    Z = _draws(posts, n_draws, seed)
    n = len(posts)
    idx = np.repeat(np.arange(n), n_draws)
    end_h = np.array([cases[c].harvest_h for c in idx])
    res = _simulate(cases, idx, Z.reshape(n * n_draws, -1), posts[0].prior, dt_h, end_h, record_every_h)
    out = []
    t = res.t_h
    for i, post in enumerate(posts):
        sl = slice(i * n_draws, (i + 1) * n_draws)
        now = cases[i].as_of_h
        j = int(np.clip(np.searchsorted(t, now, side="right") - 1, 0, len(t) - 2))
        w = (now - t[j]) / (t[j + 1] - t[j])
        state = {
            k: res.series[k][sl, j] + w * (res.series[k][sl, j + 1] - res.series[k][sl, j]) for k in TRAJECTORY_SERIES
        }
        keep = t <= cases[i].harvest_h + 1e-9
        traj = {k: np.quantile(res.series[k][sl][:, keep], QUANTILES, axis=0) for k in TRAJECTORY_SERIES}
        out.append(
            Forecast(
                batch_id=post.batch_id,
                as_of_h=now,
                harvest_h=cases[i].harvest_h,
                harvest={k: res.harvest[k][sl].copy() for k in HARVEST_KEYS},
                state=state,
                t_h=t[keep],
                trajectory=traj,
            )
        )
    return out


# --------------------------------------------------------------------------- corrective scenarios


@dataclass(frozen=True)
class Action:
    """A corrective action applied from the decision time (the posterior's ``as_of_h``) on.

    ``setpoints``: recipe fields changed for the rest of the culture (``temp_shift_day``,
    ``temp_shift_c``, ``feed_rate_pct_per_day``, ``duration_days``); ``feed_hours``: a
    ``feed_rate_pct_per_day`` change lasts this many hours, then the recipe's rate again (a
    catch-up feed); ``inf`` = to harvest.
    """

    kind: str
    setpoints: tuple[tuple[str, float], ...] = ()
    feed_hours: float = math.inf
    description: str = "no action: follow the recipe"

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe description."""
        d: dict[str, Any] = {"kind": self.kind, "setpoints": dict(self.setpoints), "description": self.description}
        if math.isfinite(self.feed_hours):
            d["feed_hours"] = self.feed_hours
        return d


NO_ACTION = Action("none")
#: Setpoints an action may change (all must lie in ``DESIGN_SPACE``).
ACTION_SETPOINTS: tuple[str, ...] = ("feed_rate_pct_per_day", "temp_shift_day", "temp_shift_c", "duration_days")


def _apply(recipe: Mapping[str, np.ndarray], action: Action) -> dict[str, np.ndarray]:
    rec = {k: np.asarray(v, dtype=float).copy() for k, v in recipe.items()}
    for k, v in action.setpoints:
        if k not in ACTION_SETPOINTS:
            raise ValueError(f"action {action.kind!r} changes {k!r}; allowed: {ACTION_SETPOINTS}")
        rec[k][:] = float(v)
    return rec


def in_design_space(recipe: Mapping[str, Any], action: Action, as_of_h: float) -> tuple[bool, str]:
    """Whether the plan after ``action`` stays inside ``DESIGN_SPACE`` and is feasible at ``as_of_h``.

    Every design-space factor of the resulting recipe must lie within its bounds, a changed
    temperature-shift day cannot lie in the past, the harvest not before now.

    Parameters
    ----------
    recipe : Mapping
        The batch's recipe (``Recipe`` field -> value).
    action : Action
        The candidate.
    as_of_h : float
        Decision time (culture age) [h].

    Returns
    -------
    tuple of (bool, str)
        Whether it is allowed, and why not.
    """
    rec = _apply(recipes_to_arrays(dict(recipe)), action)
    for k, (lo, hi) in DESIGN_SPACE.items():
        v = float(rec[k][0])
        if not lo - 1e-9 <= v <= hi + 1e-9:
            return False, f"{k}={v:g} outside the design space [{lo:g}, {hi:g}]"
    ch = dict(action.setpoints)
    if "temp_shift_day" in ch and ch["temp_shift_day"] * 24.0 < as_of_h - 1e-9:
        return False, "temperature shift in the past"
    if float(rec["duration_days"][0]) * 24.0 < as_of_h - 1e-9:
        return False, "harvest in the past"
    return True, ""


def candidate_actions(
    recipe: Recipe | Mapping[str, float],
    as_of_h: float,
    feed_rates: Sequence[float] = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    catch_up_hours: float = 24.0,
    shift_levels: Sequence[float] = (31.0, 32.0, 33.0, 34.0, 35.0, 36.0),
    harvest_days: Sequence[float] = (12.0, 13.0, 14.0, 15.0, 16.0),
) -> list[Action]:
    """The default corrective actions of a running batch at ``as_of_h``, all inside ``DESIGN_SPACE``.

    Feed rate for the rest of the culture; a catch-up feed (a higher rate for
    ``catch_up_hours``); temperature-shift timing (whole days from now to day 8) x level while the
    shift is ahead, or a new post-shift level after it; harvest day. :data:`NO_ACTION` first.

    Parameters
    ----------
    recipe : Recipe or Mapping
        The batch's recipe.
    as_of_h : float
        Decision time (culture age) [h].
    feed_rates, shift_levels, harvest_days : sequence of float
        Candidate feed rates [%/d], production temperatures [degC] and harvest days.
    catch_up_hours : float
        Duration of a catch-up feed [h].

    Returns
    -------
    list of Action
        Only actions for which :func:`in_design_space` holds.
    """
    rec = recipes_to_arrays(recipe if isinstance(recipe, Recipe) else dict(recipe))
    g = lambda k: float(rec[k][0])
    day = as_of_h / 24.0
    acts = [NO_ACTION]
    if day < g("duration_days"):
        for r in feed_rates:
            if abs(r - g("feed_rate_pct_per_day")) > 1e-9:
                acts.append(
                    Action("feed_rate", (("feed_rate_pct_per_day", r),), description=f"feed {r:g} %/d from now")
                )
            if r > g("feed_rate_pct_per_day") + 1e-9:
                acts.append(
                    Action(
                        "feed_catch_up",
                        (("feed_rate_pct_per_day", r),),
                        feed_hours=catch_up_hours,
                        description=f"catch-up feed {r:g} %/d for {catch_up_hours:g} h, then the recipe's rate",
                    )
                )
    shift_h = g("temp_shift_day") * 24.0
    lo_d, hi_d = DESIGN_SPACE["temp_shift_day"]
    if as_of_h < shift_h:
        first = max(math.ceil(day * 4.0) / 4.0, lo_d)
        days = sorted({first, *[float(d) for d in range(math.ceil(first), int(hi_d) + 1)]})
        for d in days:
            for lvl in shift_levels:
                if abs(d - g("temp_shift_day")) < 1e-9 and abs(lvl - g("temp_shift_c")) < 1e-9:
                    continue
                acts.append(
                    Action(
                        "temp_shift",
                        (("temp_shift_day", d), ("temp_shift_c", lvl)),
                        description=f"temperature shift on day {d:g} to {lvl:g} C",
                    )
                )
    elif as_of_h < g("duration_days") * 24.0:
        for lvl in shift_levels:
            if abs(lvl - g("temp_shift_c")) > 1e-9:
                acts.append(
                    Action(
                        "temp_level", (("temp_shift_c", lvl),), description=f"production temperature {lvl:g} C from now"
                    )
                )
    for d in harvest_days:
        if abs(d - g("duration_days")) > 1e-9 and d * 24.0 >= as_of_h + 12.0:
            acts.append(Action("harvest_day", (("duration_days", d),), description=f"harvest on day {d:g}"))
    return [a for a in acts if in_design_space({k: v[0] for k, v in rec.items()}, a, as_of_h)[0]]


@dataclass
class Recommendation:
    """One ranked corrective scenario of a running batch (a row of an alerts/recommendations table).

    Titer in g/L (harvest, noise-free twin value over the posterior draws); ``risk_any``: the
    probability that at least one measured harvest CQA falls outside its spec; ``risk``: per CQA;
    ``delta_titer``/``delta_risk``: versus doing nothing over the same draws; ``p_better``:
    fraction of draws in which the action's in-spec titer beats doing nothing.
    """

    batch_id: str
    as_of_h: float
    rank: int
    action: Action
    score: float
    titer_mean: float
    titer_p10: float
    titer_p90: float
    titer_p2_5: float
    titer_p97_5: float
    risk_any: float
    risk: dict[str, float]
    delta_titer: float
    delta_risk: float
    p_better: float
    harvest_day: float
    rationale: str

    def to_record(self) -> dict[str, Any]:
        """Flat JSON-safe record (``action``/``risk`` as JSON strings)."""
        return {
            "batch_id": self.batch_id,
            "as_of_h": self.as_of_h,
            "rank": self.rank,
            "action_kind": self.action.kind,
            "action": json.dumps(self.action.as_dict(), sort_keys=True),
            "description": self.action.description,
            "score": self.score,
            "titer_mean": self.titer_mean,
            "titer_p10": self.titer_p10,
            "titer_p90": self.titer_p90,
            "titer_p2_5": self.titer_p2_5,
            "titer_p97_5": self.titer_p97_5,
            "risk_any": self.risk_any,
            "risk": json.dumps(self.risk, sort_keys=True),
            "delta_titer": self.delta_titer,
            "delta_risk": self.delta_risk,
            "p_better": self.p_better,
            "harvest_day": self.harvest_day,
            "rationale": self.rationale,
        }


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


#: Assay SD of the harvest viability (Vi-CELL) used in the spec risk.
_VIABILITY_SD = next(asd for a, _, _, _, _, asd, _ in LIMS_DAILY if a == "viability")


def spec_risk(
    harvest: Mapping[str, np.ndarray], specs: Mapping[str, tuple[float | None, float | None]], quality: QualityParams
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per draw: probability that every *measured* harvest CQA is in spec, and per-CQA out-of-spec probability.

    ``harvest``: twin harvest values per draw (noise-free); ``specs``: ``{harvest key: (min, max)}``
    (None = unbounded). The measurement is the twin value + the assay's SD (``QualityParams.sd_*``;
    viability: the cell counter's), assumed independent between CQAs.

    Parameters
    ----------
    harvest : Mapping[str, numpy.ndarray]
        Harvest values per draw, (n,) each.
    specs : Mapping[str, tuple]
        ``{harvest key: (min, max)}``.
    quality : QualityParams
        Source of the assay SDs.

    Returns
    -------
    tuple
        (P(all in spec) per draw (n,), ``{key: P(out of spec) per draw}``).
    """
    sds = {
        "g0f": quality.sd_g0f,
        "g1f": quality.sd_g1f,
        "g2f": quality.sd_g2f,
        "man5": quality.sd_man5,
        "afucosylation": quality.sd_afuc,
        "hmw": quality.sd_hmw,
        "viability": _VIABILITY_SD,
    }
    n = len(next(iter(harvest.values())))
    p_in = np.ones(n)
    per: dict[str, np.ndarray] = {}
    for key, (lo, hi) in specs.items():
        if key not in harvest:
            raise ValueError(f"spec {key!r} is not a forecast harvest value ({sorted(harvest)})")
        v = np.asarray(harvest[key], dtype=float)
        sd = max(float(sds.get(key, 0.0)), 1e-9)
        p_out = np.zeros(n)
        if lo is not None:
            p_out += _norm_cdf((lo - v) / sd)
        if hi is not None:
            p_out += 1.0 - _norm_cdf((hi - v) / sd)
        p_out = np.clip(p_out, 0.0, 1.0)
        per[key] = p_out
        p_in *= 1.0 - p_out
    return p_in, per


def recommend(
    posterior: Posterior,
    specs: Mapping[str, tuple[float | None, float | None]],
    actions: Sequence[Action] | None = None,
    n_draws: int = 64,
    seed: int = 0,
    dt_h: float = 1.0,
    top: int | None = None,
) -> list[Recommendation]:
    """Rank corrective actions of a running batch by forecast outcome and CQA risk.

    Every action (default :func:`candidate_actions`; actions outside the design space or in the
    past are rejected) is simulated from the posterior's ``as_of_h`` on over the same
    ``n_draws`` posterior draws, in one vectorised twin run. Score = expected in-spec harvest
    titer (mean over draws of titer x P(every measured CQA in spec)); ties go to the lower risk.

    Parameters
    ----------
    posterior : Posterior
        From :func:`estimate` (data attached).
    specs : Mapping[str, tuple[float | None, float | None]]
        Harvest CQA specs keyed by twin harvest key (``g0f``, ``man5``, ``hmw``, ``viability`` …;
        ``ml.mirror.twin_specs`` maps ``config/golden.yaml``).
    actions : sequence of Action, optional
        Candidates; :data:`NO_ACTION` is always evaluated as the baseline.
    n_draws : int
        Posterior draws.
    seed : int
        Seed of the draws.
    dt_h : float
        Twin integration step [h].
    top : int, optional
        Return only the best ``top`` (the baseline's rank is still computed).

    Returns
    -------
    list of Recommendation
        Best first; includes the no-action baseline at its rank.
    """
    case = _cases_of([posterior])[0]
    rec0 = {k: v[0] for k, v in case.recipe.items()}
    acts = list(candidate_actions(rec0, case.as_of_h) if actions is None else actions)
    acts = [NO_ACTION] + [a for a in acts if a != NO_ACTION]
    for a in acts:
        ok, why = in_design_space(rec0, a, case.as_of_h)
        if not ok:
            raise ValueError(f"action {a.description!r} rejected: {why}")
    Z = _draws([posterior], n_draws, seed)[0]
    na = len(acts)
    idx = np.zeros(na * n_draws, dtype=int)
    recipes = {k: np.concatenate([np.repeat(_apply(case.recipe, a)[k], n_draws) for a in acts]) for k in case.recipe}
    end_h = recipes["duration_days"] * 24.0
    n_steps = int(math.ceil(float(end_h.max()) / dt_h - 1e-9)) + 1
    inputs = _planned_inputs([case], idx, recipes, n_steps, dt_h)
    # a temporary feed change: after feed_hours the recipe's own rate again
    t = np.arange(n_steps) * dt_h
    base_feed = feed_command(case.recipe, t, dt_h, end_h[:1])[0] * case.feed_efficiency
    for i, a in enumerate(acts):
        if math.isfinite(a.feed_hours):
            after = t >= case.as_of_h + a.feed_hours
            m = min(case.feed_lph.shape[0], n_steps)
            after[:m] = False
            inputs["feed_lph"][i * n_draws : (i + 1) * n_draws, after] = base_feed[after]
    res = _simulate([case], idx, np.tile(Z, (na, 1)), posterior.prior, dt_h, end_h, 24.0, recipes, inputs)
    titer = res.harvest["titer"].reshape(na, n_draws)
    harvest = {k: res.harvest[k] for k in HARVEST_KEYS}
    p_in, per = spec_risk(harvest, specs, posterior.prior.quality)
    p_in = p_in.reshape(na, n_draws)
    score_d = titer * p_in
    score = score_d.mean(axis=1)
    risk_any = 1.0 - p_in.mean(axis=1)
    order = sorted(range(na), key=lambda i: (-round(float(score[i]), 6), float(risk_any[i])))
    base_titer, base_risk = float(titer[0].mean()), float(risk_any[0])
    out = []
    for rank, i in enumerate(order, 1):
        a = acts[i]
        q = np.quantile(titer[i], [0.025, 0.1, 0.9, 0.975])
        risk = {k: float(v.reshape(na, n_draws)[i].mean()) for k, v in per.items()}
        dt = float(titer[i].mean()) - base_titer
        p_better = float(np.mean(score_d[i] > score_d[0] + 1e-9)) if i else 0.0
        worst = max(risk, key=risk.get) if risk else ""
        rationale = (
            f"{a.description}: harvest titer {titer[i].mean():.2f} g/L (80 %: {q[1]:.2f}-{q[2]:.2f})"
            + (
                f" vs {base_titer:.2f} with no action ({dt:+.2f} g/L, better in {100 * p_better:.0f} % of draws)"
                if i
                else ""
            )
            + f"; CQA risk {100 * risk_any[i]:.0f} %"
            + (f" (mostly {worst} {100 * risk[worst]:.0f} %)" if worst and risk[worst] >= 0.005 else "")
            + (f" vs {100 * base_risk:.0f} %" if i else "")
        )
        out.append(
            Recommendation(
                batch_id=posterior.batch_id,
                as_of_h=case.as_of_h,
                rank=rank,
                action=a,
                score=float(score[i]),
                titer_mean=float(titer[i].mean()),
                titer_p10=float(q[1]),
                titer_p90=float(q[2]),
                titer_p2_5=float(q[0]),
                titer_p97_5=float(q[3]),
                risk_any=float(risk_any[i]),
                risk=risk,
                delta_titer=dt,
                delta_risk=float(risk_any[i]) - base_risk,
                p_better=p_better,
                harvest_day=float(recipes["duration_days"][i * n_draws]),
                rationale=rationale,
            )
        )
    return out[:top] if top else out
