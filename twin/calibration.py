"""Calibrate key twin kinetics to a site's historical batches (titer and VCD assays).

A weighted nonlinear least-squares fit (``scipy.optimize.least_squares``, trust-region
reflective with a robust ``soft_l1`` loss and bounds) of a few ``KineticParams`` (default
``mu_max``, ``qp``, ``kd_age``) in log space. The residuals are the scaled differences between
the assays (``fct_assay_results``: analyte ``titer`` / ``vcd`` at their ``culture_age_h``) and
the twin run with each batch's own recipe (``dim_batches`` setpoints) and culture length.

Every evaluation is one vectorised ``simulate_batches`` call: the batches at the current
parameters *and* at each forward-difference perturbation are stacked on the batch axis
(per-batch parameter arrays), so the residuals and the Jacobian cost one twin run per
iteration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lakehouse.errors import InsufficientData
from twin.bioreactor import DESIGN_SPACE, RECIPE_FIELDS, KineticParams, recipes_to_arrays, simulate_batches

#: default fitted parameters and their (low, high) bounds
DEFAULT_FIT: dict[str, tuple[float, float]] = {
    "mu_max": (0.4, 1.6),
    "qp": (8.0, 40.0),
    "kd_age": (0.01, 0.3),
}
#: residual scale per analyte (≈ assay SD + model error), in the analyte's unit
DEFAULT_SCALES: dict[str, float] = {"titer": 0.15, "vcd": 1.0}

SETPOINT_COLUMNS = (
    "temperature_c",
    "temp_shift_day",
    "temp_shift_c",
    "ph",
    "do_pct",
    "feed_rate_pct_per_day",
    "seed_density_e6_per_ml",
    "working_volume_l",
)


@dataclass
class CalibrationResult:
    """A calibration: fitted parameters, RMSE before/after per analyte, points used and solver info."""

    params: dict[str, float]
    initial: dict[str, float]
    bounds: dict[str, tuple[float, float]]
    rmse_before: dict[str, float]
    rmse_after: dict[str, float]
    n_batches: int
    n_points: dict[str, int]
    n_evaluations: int
    success: bool
    message: str
    batch_ids: list[str] = field(default_factory=list)

    def kinetic_params(self, base: KineticParams | None = None) -> KineticParams:
        """``base`` (default the twin's defaults) with the fitted parameters."""
        return replace(base or KineticParams(), **self.params)

    def to_frame(self) -> pd.DataFrame:
        """One row per fitted parameter (+ the fit errors repeated) — the Delta table layout."""
        rows = []
        for k, v in self.params.items():
            rows.append(
                {
                    "parameter": k,
                    "initial": self.initial[k],
                    "fitted": v,
                    "lower_bound": self.bounds[k][0],
                    "upper_bound": self.bounds[k][1],
                }
            )
        df = pd.DataFrame(rows)
        for a in self.rmse_before:
            df[f"rmse_before_{a}"] = self.rmse_before[a]
            df[f"rmse_after_{a}"] = self.rmse_after[a]
        df["n_batches"] = self.n_batches
        df["n_evaluations"] = self.n_evaluations
        df["success"] = self.success
        return df

    def summary(self) -> dict[str, Any]:
        """The calibration's figures as a JSON-safe dict."""
        d = asdict(self)
        d.pop("batch_ids", None)
        return d


def recipes_from_batches(batches: pd.DataFrame) -> dict[str, np.ndarray]:
    """Twin recipes (struct of arrays) from ``dim_batches`` rows: setpoints + culture length.

    Missing setpoints take the ``Recipe`` defaults; the culture length is ``duration_h``
    (inoculation → harvest) when present.
    """
    from twin.bioreactor import Recipe

    default = Recipe()
    cols: dict[str, np.ndarray] = {}
    for k in SETPOINT_COLUMNS:
        if k in batches.columns:
            v = pd.to_numeric(batches[k], errors="coerce").to_numpy(float)
            cols[k] = np.where(np.isfinite(v), v, float(getattr(default, k)))
    if "duration_h" in batches.columns:
        d = pd.to_numeric(batches["duration_h"], errors="coerce").to_numpy(float) / 24.0
        cols["duration_days"] = np.where(np.isfinite(d), d, default.duration_days)
    elif "duration_days" in batches.columns:
        cols["duration_days"] = batches["duration_days"].to_numpy(float)
    for k in ("feed_start_day", "feed_bolus"):
        if k in batches.columns:
            cols[k] = batches[k].to_numpy(float)
    return recipes_to_arrays(cols)


class _Problem:
    def __init__(
        self,
        recipes: dict[str, np.ndarray],
        obs: pd.DataFrame,
        names: list[str],
        base: KineticParams,
        scales: Mapping[str, float],
        dt_h: float,
        rel_step: float,
    ) -> None:
        self.rec = recipes
        self.n = recipes["ph"].shape[0]
        self.names = names
        self.base = base
        self.dt_h = dt_h
        self.rel_step = rel_step
        self.analytes = sorted(obs["analyte"].unique())
        self.obs_b = obs["_b"].to_numpy(int)
        self.obs_t = obs["culture_age_h"].to_numpy(float)
        self.obs_v = obs["value"].to_numpy(float)
        self.obs_a = obs["analyte"].to_numpy()
        self.obs_scale = np.array([scales.get(a, 1.0) for a in self.obs_a])
        self.cache_x: np.ndarray | None = None
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        self.n_sim = 0

    def _simulate(self, thetas: np.ndarray) -> np.ndarray:
        """Predictions at the observations for each parameter vector (rows of ``thetas``)."""
        m = thetas.shape[0]
        rec = {k: np.tile(v, m) for k, v in self.rec.items()}
        upd: dict[str, np.ndarray] = {name: np.repeat(thetas[:, j], self.n) for j, name in enumerate(self.names)}
        for f in self.base.__dataclass_fields__:
            v = getattr(self.base, f)
            if f not in upd and np.ndim(v) > 0:
                upd[f] = np.tile(np.asarray(v, dtype=float), m)
        params = replace(self.base, **upd)
        res = simulate_batches(rec, params=params, dt_h=self.dt_h, record_every_h=1.0)
        self.n_sim += 1
        t = res.t_h
        out = np.empty((m, self.obs_v.shape[0]))
        series = {a: res.series[a] for a in self.analytes}
        for i in range(m):
            for a in self.analytes:
                sel = self.obs_a == a
                S = series[a][i * self.n + self.obs_b[sel]]  # (n_obs_a, n_t)
                # linear interpolation at each observation time
                pos = np.clip(self.obs_t[sel], t[0], t[-1])
                k = np.clip(np.searchsorted(t, pos, side="right") - 1, 0, len(t) - 2)
                w = (pos - t[k]) / (t[k + 1] - t[k])
                rows = np.arange(S.shape[0])
                y0, y1 = S[rows, k], S[rows, k + 1]
                y1 = np.where(np.isfinite(y1), y1, y0)
                out[i, sel] = y0 + w * (y1 - y0)
        return out

    def residuals_at(self, theta: np.ndarray) -> np.ndarray:
        pred = self._simulate(theta[None, :])[0]
        return np.nan_to_num((pred - self.obs_v) / self.obs_scale, nan=0.0)

    def _both(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.cache_x is not None and np.array_equal(x, self.cache_x):
            return self.cache  # type: ignore[return-value]
        p = len(x)
        h = self.rel_step
        X = np.vstack([x[None, :], x[None, :] + h * np.eye(p)])
        pred = self._simulate(np.exp(X))
        r = np.nan_to_num((pred - self.obs_v[None, :]) / self.obs_scale[None, :], nan=0.0)
        J = ((r[1:] - r[0][None, :]) / h).T
        self.cache_x, self.cache = x.copy(), (r[0], J)
        return r[0], J

    def fun(self, x: np.ndarray) -> np.ndarray:
        return self._both(x)[0]

    def jac(self, x: np.ndarray) -> np.ndarray:
        return self._both(x)[1]

    def rmse(self, resid_scaled: np.ndarray) -> dict[str, float]:
        raw = resid_scaled * self.obs_scale
        out = {a: float(np.sqrt(np.mean(raw[self.obs_a == a] ** 2))) for a in self.analytes}
        out["scaled_total"] = float(np.sqrt(np.mean(resid_scaled**2)))
        return out


def calibrate(
    batches: pd.DataFrame,
    assays: pd.DataFrame,
    fit: Mapping[str, tuple[float, float]] | None = None,
    base: KineticParams | None = None,
    analytes: Sequence[str] = ("titer", "vcd"),
    scales: Mapping[str, float] | None = None,
    dt_h: float = 1.0,
    max_batches: int | None = 24,
    max_nfev: int = 25,
    loss: str = "soft_l1",
    seed: int = 0,
    rel_step: float = 1e-3,
) -> CalibrationResult:
    """Fit ``fit`` parameters (name → bounds) to the assays of ``batches``.

    ``batches``: ``dim_batches``-like rows (``batch_id``, setpoints, ``duration_h``; aborted
    batches should be filtered out by the caller). ``assays``: ``fct_assay_results``-like
    (``batch_id, analyte, value, culture_age_h``). ``max_batches`` subsamples batches (seeded)
    to bound the cost; ``dt_h`` is the twin's integration step during the fit.
    """
    from scipy.optimize import least_squares

    fit = dict(fit or DEFAULT_FIT)
    base = base or KineticParams()
    scales = {**DEFAULT_SCALES, **(scales or {})}
    b = batches.drop_duplicates("batch_id").reset_index(drop=True)
    a = assays[assays["analyte"].isin(list(analytes)) & assays["batch_id"].isin(b["batch_id"])].copy()
    a = a[np.isfinite(pd.to_numeric(a["value"], errors="coerce")) & a["culture_age_h"].notna()]
    have = set(a["batch_id"])
    b = b[b["batch_id"].isin(have)].reset_index(drop=True)
    if max_batches is not None and len(b) > max_batches:
        rng = np.random.default_rng(seed)
        b = b.iloc[np.sort(rng.choice(len(b), max_batches, replace=False))].reset_index(drop=True)
    if b.empty:
        raise InsufficientData("insufficient data: no complete batch with assays to calibrate on")
    pos = {bid: i for i, bid in enumerate(b["batch_id"])}
    a = a[a["batch_id"].isin(pos)].copy()
    a["_b"] = a["batch_id"].map(pos).astype(int)
    a["value"] = a["value"].astype(float)
    recipes = recipes_from_batches(b)
    names = list(fit)
    prob = _Problem(recipes, a, names, base, scales, dt_h, rel_step)
    x0_nat = np.array([float(np.mean(np.asarray(getattr(base, k), dtype=float))) for k in names])
    lo = np.log([fit[k][0] for k in names])
    hi = np.log([fit[k][1] for k in names])
    x0 = np.clip(np.log(x0_nat), lo + 1e-9, hi - 1e-9)
    r0 = prob.fun(x0)
    sol = least_squares(
        prob.fun, x0, jac=prob.jac, bounds=(lo, hi), loss=loss, f_scale=1.0, max_nfev=max_nfev, x_scale=1.0
    )
    r1 = prob.fun(sol.x)
    return CalibrationResult(
        params={k: float(v) for k, v in zip(names, np.exp(sol.x))},
        initial={k: float(v) for k, v in zip(names, x0_nat)},
        bounds={k: (float(fit[k][0]), float(fit[k][1])) for k in names},
        rmse_before=prob.rmse(r0),
        rmse_after=prob.rmse(r1),
        n_batches=len(b),
        n_points={an: int((a["analyte"] == an).sum()) for an in prob.analytes},
        n_evaluations=prob.n_sim,
        success=bool(sol.success),
        message=str(sol.message),
        batch_ids=list(b["batch_id"]),
    )


__all__ = [
    "DEFAULT_FIT",
    "DESIGN_SPACE",
    "RECIPE_FIELDS",
    "CalibrationResult",
    "calibrate",
    "recipes_from_batches",
]
