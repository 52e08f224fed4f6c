"""In-silico design of experiments on the digital twin, an XGBoost surrogate, and setpoints.

Framework-free (no Dagster). The flow:

1. :func:`latin_hypercube` samples recipes inside ``twin.bioreactor.DESIGN_SPACE`` (or a
   sub-box of it — never outside).
2. :func:`run_insilico` runs them through ``simulate_batches`` (vectorised over batches, in
   chunks; optional worker processes) with batch-to-batch biological variability of the
   kinetics, and returns one row per run: setpoints + harvest outcomes, named like the
   ``dim_batches`` columns (``harvest_titer_g_l, g0f_pct, …, hmw_pct, harvest_viability_pct``).
3. :class:`Surrogate` fits, per outcome, a K-fold ensemble of XGBoost mean models (their spread =
   model uncertainty) and a model of the out-of-fold |residual| (batch-to-batch variability +
   assay noise + surrogate error); together they give a 5–95 % band. Models are kept in
   XGBoost's own UBJ format (never pickle).
4. :func:`recommend` maximises a penalised titer over the design space: predicted titer minus
   ``kappa`` × ensemble SD, subject to every CQA's 5–95 % band lying inside its spec limits
   shrunk by ``margin``. Candidates are a large Latin hypercube plus local refinement clipped
   to the bounds, so the answer is inside the declared design space by construction (and
   asserted).
5. :func:`verify` runs the recommended recipe through the twin (replicates with biological
   variability) and reports titer and CQA pass rate.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.golden import spec_limits

#: twin harvest key -> dim_batches column
OUTCOME_COLUMNS: dict[str, str] = {
    "titer": "harvest_titer_g_l",
    "viability": "harvest_viability_pct",
    "peak_vcd": "peak_vcd",
    "g0f": "g0f_pct",
    "g1f": "g1f_pct",
    "g2f": "g2f_pct",
    "man5": "man5_pct",
    "afucosylation": "afucosylation_pct",
    "hmw": "hmw_pct",
}

#: relative (lognormal) batch-to-batch SD of kinetic parameters used for in-silico runs
#: (the same biological variability as the site simulator, ``twin.site``)
DEFAULT_VARIABILITY: dict[str, float] = {"mu_max": 0.04, "qp": 0.06}


# --------------------------------------------------------------------------- design
def design_space(
    factors: Sequence[str] | None = None, bounds: Mapping[str, Sequence[float]] | None = None
) -> dict[str, tuple[float, float]]:
    """The twin's declared design space restricted to ``factors``; ``bounds`` may narrow (never widen) it."""
    from twin.bioreactor import DESIGN_SPACE

    factors = list(factors or DESIGN_SPACE)
    out = {}
    for f in factors:
        if f not in DESIGN_SPACE:
            raise ValueError(f"{f!r} is not a design-space factor ({sorted(DESIGN_SPACE)})")
        lo, hi = DESIGN_SPACE[f]
        if bounds and f in bounds:
            lo, hi = max(lo, float(bounds[f][0])), min(hi, float(bounds[f][1]))
            if lo > hi:
                raise ValueError(f"bounds for {f} do not intersect the design space")
        out[f] = (float(lo), float(hi))
    return out


def latin_hypercube(n: int, space: Mapping[str, tuple[float, float]], seed: int = 0) -> pd.DataFrame:
    """``n`` recipes (one column per factor) from a random Latin hypercube inside ``space``:
    each factor's range is cut into ``n`` equal strata, each stratum used exactly once."""
    keys = list(space)
    rng = np.random.default_rng(seed)
    u = (np.argsort(rng.random((n, len(keys))), axis=0) + rng.random((n, len(keys)))) / n
    lo = np.array([space[k][0] for k in keys])
    hi = np.array([space[k][1] for k in keys])
    return pd.DataFrame(lo + u * (hi - lo), columns=keys)


def inside(df: pd.DataFrame, space: Mapping[str, tuple[float, float]], tol: float = 1e-9) -> np.ndarray:
    """Row mask: which rows of ``df`` lie inside ``space`` (each factor within ``[low, high]`` ± ``tol``)."""
    ok = np.ones(len(df), dtype=bool)
    for k, (lo, hi) in space.items():
        v = df[k].to_numpy(float)
        ok &= (v >= lo - tol) & (v <= hi + tol)
    return ok


# ------------------------------------------------------------------------ twin runs
def sample_kinetics(n: int, base: Any = None, variability: Mapping[str, float] | None = None, seed: int = 0):
    """``KineticParams`` with per-batch arrays: lognormal relative variability around ``base``."""
    from dataclasses import replace

    from twin.bioreactor import KineticParams

    base = base or KineticParams()
    variability = DEFAULT_VARIABILITY if variability is None else variability
    rng = np.random.default_rng(seed)
    upd = {}
    for name, rel in variability.items():
        v0 = np.broadcast_to(np.asarray(getattr(base, name), dtype=float), (n,))
        upd[name] = v0 * np.exp(rng.normal(0.0, float(rel), n)) if rel > 0 else v0.copy()
    return replace(base, **upd)


def _slice_params(params: Any, idx: np.ndarray, n_total: int):
    from dataclasses import fields, replace

    upd = {}
    for f in fields(params):
        v = getattr(params, f.name)
        if np.ndim(v) > 0 and np.shape(v)[0] == n_total:
            upd[f.name] = np.asarray(v)[idx]
    return replace(params, **upd)


def _run_chunk(args: tuple) -> dict[str, np.ndarray]:
    recipes, params, dt_h, seed = args
    from twin.bioreactor import simulate_batches

    res = simulate_batches(recipes, params=params, dt_h=dt_h, seed=seed, record_every_h=24.0)
    return {k: np.asarray(v) for k, v in res.harvest_noisy.items()} | {
        f"true_{k}": np.asarray(v) for k, v in res.harvest.items()
    }


def simulate_design(
    design: pd.DataFrame,
    params: Any = None,
    variability: Mapping[str, float] | None = None,
    seed: int = 0,
    dt_h: float = 0.25,
    chunk_size: int = 600,
    n_jobs: int = 1,
    noisy: bool = True,
) -> pd.DataFrame:
    """Run every recipe of ``design`` through the twin; one row per run with its harvest outcomes.

    ``params``: base ``KineticParams`` (e.g. calibrated); ``variability``: relative SDs of
    per-batch kinetic variability (``{}`` = none). CQA outcomes carry the assay noise of the
    twin when ``noisy`` (what a real lab would report), else the noise-free values.
    """
    from twin.bioreactor import recipes_to_arrays

    n = len(design)
    rec = recipes_to_arrays({k: design[k].to_numpy(float) for k in design.columns if k in _recipe_fields()})
    kin = sample_kinetics(n, params, variability, seed=seed + 1)
    jobs = []
    for ci, start in enumerate(range(0, n, chunk_size)):
        idx = np.arange(start, min(n, start + chunk_size))
        jobs.append(({k: v[idx] for k, v in rec.items()}, _slice_params(kin, idx, n), dt_h, seed + 17 * ci))
    if n_jobs > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(n_jobs, len(jobs)), mp_context=mp.get_context("fork")) as ex:
            outs = list(ex.map(_run_chunk, jobs))
    else:
        outs = [_run_chunk(j) for j in jobs]
    harvest = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    out = design.reset_index(drop=True).copy()
    for key, col in OUTCOME_COLUMNS.items():
        out[col] = harvest[key] if noisy else harvest[f"true_{key}"]
        if noisy and key != "titer":
            out[f"true_{col}"] = harvest[f"true_{key}"]
    out["end_h"] = harvest["end_h"]
    return out


def _recipe_fields() -> tuple[str, ...]:
    from twin.bioreactor import RECIPE_FIELDS

    return RECIPE_FIELDS


# --------------------------------------------------------------------------- surrogate
_Z90 = 1.6448536269514722  # two-sided 90 % (5–95 %) normal quantile


@dataclass
class Surrogate:
    """Per outcome: a K-fold ensemble of XGBoost mean models and a spread model.

    Each of the K members is trained without one fold; their mean is the prediction and their
    standard deviation the model (epistemic) uncertainty. The out-of-fold residuals give the
    cross-validation metrics and train a second XGBoost model of ``|residual|`` (batch-to-batch
    variability + assay noise + surrogate error, which varies over the design space). The
    5–95 % band is ``mean ± 1.645·sqrt(σ_spread² + σ_ensemble²)``. Models are kept in
    XGBoost's own UBJ format (never pickle).
    """

    factors: list[str]
    outcomes: list[str]
    members: dict[str, list[Any]] = field(default_factory=dict)
    spread: dict[str, Any] = field(default_factory=dict)
    cv_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        runs: pd.DataFrame,
        factors: Sequence[str],
        outcomes: Sequence[str],
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.08,
        folds: int = 4,
        seed: int = 0,
        n_jobs: int = 1,
        **_: Any,
    ) -> Surrogate:
        """Fit one XGBoost ensemble per outcome on the DoE runs, with ``folds``-fold CV metrics.

        Parameters
        ----------
        runs
            DoE runs (factors and outcomes as columns).
        factors, outcomes
            Input and output columns.

        Returns
        -------
        Surrogate
        """
        import xgboost as xgb

        X = runs[list(factors)].to_numpy(np.float32)
        params = {
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "subsample": 0.8,
            "min_child_weight": 3,
            "tree_method": "hist",
            "n_jobs": n_jobs,
        }
        self = cls(list(factors), list(outcomes), params=dict(params, folds=folds, seed=seed))
        fold = np.random.default_rng(seed).permutation(len(runs)) % max(2, folds)
        for o in outcomes:
            y = runs[o].to_numpy(np.float32)
            ok = np.isfinite(y)
            oof = np.full(len(y), np.nan)
            mem = []
            for f in range(max(2, folds)):
                tr, te = (fold != f) & ok, fold == f
                m = xgb.XGBRegressor(objective="reg:squarederror", random_state=seed + f, **params)
                m.fit(X[tr], y[tr])
                oof[te] = m.predict(X[te])
                mem.append(m)
            self.members[o] = mem
            res = np.abs(y - oof)
            sm = xgb.XGBRegressor(
                objective="reg:squarederror",
                random_state=seed,
                **{**params, "n_estimators": max(50, n_estimators // 2), "max_depth": 3},
            )
            sm.fit(X[ok], res[ok])
            self.spread[o] = sm
            sig = np.maximum(sm.predict(X[ok]), 1e-9) * np.sqrt(np.pi / 2.0)
            ss = np.sum((y[ok] - y[ok].mean()) ** 2)
            self.cv_metrics[o] = {
                "r2": float(1 - np.sum((y[ok] - oof[ok]) ** 2) / ss) if ss > 0 else float("nan"),
                "mae": float(np.mean(res[ok])),
                "band_coverage_5_95": float(np.mean(np.abs(y[ok] - oof[ok]) <= _Z90 * sig)),
            }
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """Per outcome: ``mean``, ``std`` (ensemble), ``spread`` and the band ``q05, q50, q95``."""
        A = X[self.factors].to_numpy(np.float32) if isinstance(X, pd.DataFrame) else np.asarray(X, np.float32)
        out = {}
        for o in self.outcomes:
            e = np.stack([m.predict(A) for m in self.members[o]], axis=0)
            mean, std = e.mean(axis=0), e.std(axis=0)
            sp = np.maximum(self.spread[o].predict(A), 0.0) * np.sqrt(np.pi / 2.0)
            tot = np.sqrt(sp**2 + std**2)
            out[o] = {
                "mean": mean,
                "std": std,
                "spread": sp,
                "q05": mean - _Z90 * tot,
                "q50": mean,
                "q95": mean + _Z90 * tot,
            }
        return out

    def to_ubj(self) -> dict[str, bytes]:
        """``{file name: UBJ bytes}`` for every model (XGBoost's own format) + a JSON manifest."""
        files = {}
        for o in self.outcomes:
            for i, m in enumerate(self.members[o]):
                files[f"{o}__member{i}.ubj"] = bytes(m.get_booster().save_raw("ubj"))
            files[f"{o}__spread.ubj"] = bytes(self.spread[o].get_booster().save_raw("ubj"))
        files["surrogate.json"] = json.dumps(
            {"factors": self.factors, "outcomes": self.outcomes, "params": self.params, "cv_metrics": self.cv_metrics}
        ).encode()
        return files


# ---------------------------------------------------------------------- optimisation
def _feasibility(
    pred: dict, specs: Mapping[str, tuple[float | None, float | None]], margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """(feasible mask, total violation) of the CQA bands against the specs shrunk by ``margin``.

    ``margin`` is a fraction of each spec's width (two-sided) or of the limit (one-sided).
    """
    n = len(next(iter(pred.values()))["q50"])
    viol = np.zeros(n)
    for name, (lo, hi) in specs.items():
        if name not in pred:
            continue
        p = pred[name]
        width = (hi - lo) if (lo is not None and hi is not None) else abs(hi if hi is not None else lo)
        m = margin * width
        if lo is not None:
            viol += np.maximum(0.0, (lo + m) - p["q05"]) / max(width, 1e-9)
        if hi is not None:
            viol += np.maximum(0.0, p["q95"] - (hi - m)) / max(width, 1e-9)
    return viol <= 0.0, viol


def recommend(
    surrogate: Surrogate,
    space: Mapping[str, tuple[float, float]],
    specs: Mapping[str, tuple[float | None, float | None]],
    objective: str = "harvest_titer_g_l",
    margin: float = 0.05,
    kappa: float = 1.0,
    n_candidates: int = 20000,
    n_refine: int = 6,
    seed: int = 0,
    fixed: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Setpoints that maximise ``q50(objective) − kappa·std(objective)`` with CQA bands in spec.

    Searches only inside ``space`` (a Latin hypercube, then local refinement around the best
    candidates with steps clipped to the bounds). Factors of the surrogate missing from
    ``space`` are held at ``fixed`` (default: the nominal recipe).
    """
    from twin.bioreactor import NOMINAL_RECIPE

    factors = surrogate.factors
    fixed = dict(fixed or {})
    for f in factors:
        if f not in space and f not in fixed:
            fixed[f] = float(getattr(NOMINAL_RECIPE, f))
    free = [f for f in factors if f in space]
    lo = np.array([space[f][0] for f in free])
    hi = np.array([space[f][1] for f in free])
    rng = np.random.default_rng(seed)

    def frame(U: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(U, columns=free)
        for f, v in fixed.items():
            df[f] = v
        return df[factors]

    def evaluate(U: np.ndarray):
        pred = surrogate.predict(frame(U))
        feas, viol = _feasibility(pred, specs, margin)
        p = pred[objective]
        score = p["q50"] - kappa * p["std"]
        penalised = np.where(feas, score, -1e6 - viol)
        return penalised, feas, pred

    U = latin_hypercube(n_candidates, {f: space[f] for f in free}, seed=seed).to_numpy()
    val, feas, _ = evaluate(U)
    n_feasible_lhs = int(feas.sum())
    top = U[np.argsort(-val)[:32]]
    best_U, best_val = U[np.argsort(-val)[:32]], np.sort(val)[::-1][:32]
    step = 0.10
    for _ in range(n_refine):
        cand = np.repeat(top, 64, axis=0) + rng.normal(0.0, step, (len(top) * 64, len(free))) * (hi - lo)
        cand = np.clip(cand, lo, hi)
        cv, _, _ = evaluate(cand)
        allU = np.concatenate([best_U, cand])
        allv = np.concatenate([best_val, cv])
        order = np.argsort(-allv)[:32]
        best_U, best_val = allU[order], allv[order]
        top = best_U
        step *= 0.6
    x = best_U[:1]
    val, feas, pred = evaluate(x)
    rec = frame(x).iloc[0].to_dict()
    full_space = {**{f: space[f] for f in free}}
    assert bool(inside(frame(x), full_space)[0]), "recommendation left the design space"
    outcome = {o: {k: float(v[0]) for k, v in pred[o].items()} for o in pred}
    return {
        "setpoints": {k: float(v) for k, v in rec.items()},
        "feasible": bool(feas[0]),
        "objective": objective,
        "score": float(val[0]),
        "predicted": outcome,
        "n_candidates": int(n_candidates),
        "n_feasible_candidates": n_feasible_lhs,
        "margin": margin,
        "kappa": kappa,
        "design_space": {f: list(space[f]) for f in free},
        "fixed": fixed,
    }


def verify(
    setpoints: Mapping[str, float],
    specs: Mapping[str, tuple[float | None, float | None]],
    n_replicates: int = 24,
    params: Any = None,
    variability: Mapping[str, float] | None = None,
    seed: int = 1234,
    dt_h: float = 0.25,
) -> dict[str, Any]:
    """Run the recipe through the twin ``n_replicates`` times (biological variability + assay noise)."""
    from twin.bioreactor import RECIPE_FIELDS

    design = pd.DataFrame({k: np.full(n_replicates, float(v)) for k, v in setpoints.items() if k in RECIPE_FIELDS})
    runs = simulate_design(design, params=params, variability=variability, seed=seed, dt_h=dt_h)
    ok_each = pd.Series(True, index=runs.index)
    per_cqa = {}
    for name, (lo, hi) in specs.items():
        v = runs[name]
        c = v.notna()
        if lo is not None:
            c &= v >= lo
        if hi is not None:
            c &= v <= hi
        per_cqa[name] = {
            "mean": float(v.mean()),
            "sd": float(v.std()),
            "pass_fraction": float(c.mean()),
            "min": lo,
            "max": hi,
        }
        ok_each &= c
    t = runs["harvest_titer_g_l"]
    return {
        "n_replicates": n_replicates,
        "titer_mean": float(t.mean()),
        "titer_sd": float(t.std()),
        "titer_median": float(t.median()),
        "titer_p05": float(t.quantile(0.05)),
        "cqa_pass_fraction": float(ok_each.mean()),
        "cqa": per_cqa,
        "runs": runs,
    }


# ----------------------------------------------------------------------------- plots
def plot_response_surface(
    surrogate: Surrogate,
    recommendation: dict,
    x: str,
    y: str,
    specs: Mapping[str, tuple[float | None, float | None]],
    runs: pd.DataFrame | None = None,
    objective: str = "harvest_titer_g_l",
    margin: float = 0.05,
    n: int = 60,
) -> bytes:
    """PNG: predicted titer over two factors (others at the recommendation), infeasible hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sp = recommendation["design_space"]
    xs = np.linspace(*sp[x], n)
    ys = np.linspace(*sp[y], n)
    XX, YY = np.meshgrid(xs, ys)
    base = {**recommendation["setpoints"]}
    df = pd.DataFrame({f: np.full(XX.size, base[f]) for f in surrogate.factors})
    df[x] = XX.ravel()
    df[y] = YY.ravel()
    pred = surrogate.predict(df)
    Z = pred[objective]["q50"].reshape(XX.shape)
    feas, _ = _feasibility(pred, specs, margin)
    F = feas.reshape(XX.shape)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    cs = ax.contourf(XX, YY, Z, levels=20, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=f"predicted {objective} (median)")
    ax.contourf(XX, YY, (~F).astype(float), levels=[0.5, 1.5], colors="none", hatches=["//"])
    ax.contour(XX, YY, F.astype(float), levels=[0.5], colors="w", linewidths=1)
    if runs is not None and len(runs):
        ax.scatter(runs[x], runs[y], s=3, c="k", alpha=0.25, label="in-silico runs")
    ax.scatter([base[x]], [base[y]], marker="*", s=220, c="tab:red", edgecolors="w", label="recommended")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("DoE response surface (hatched: CQA band out of spec)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def top_factors(surrogate: Surrogate, objective: str = "harvest_titer_g_l", k: int = 2) -> list[str]:
    """The ``k`` factors with the largest gain importance for the objective."""
    imp = np.mean([np.asarray(m.feature_importances_) for m in surrogate.members[objective]], axis=0)
    return [surrogate.factors[i] for i in np.argsort(-imp)[:k]]


def specs_from_config(cfg: dict) -> dict[str, tuple[float | None, float | None]]:
    """CQA spec limits ``{outcome: (min, max)}`` of a golden-batch config (``config/golden.yaml``)."""
    return spec_limits(cfg)


def default_n_jobs() -> int:
    """Worker processes for :func:`simulate_design` on this machine (at least 1)."""
    return max(1, min(2, os.cpu_count() or 1))


# ------------------------------------------------------------------ the lake's twin tables
def latest_calibration(lake) -> tuple[dict[str, float], str | None]:
    """Fitted kinetic parameters of the newest ``insilico/calibration`` (``{}`` when there is none,
    or when that calibration did not improve the fit) and its calibration id."""
    import polars as pl

    uri = lake.uri("insilico", "calibration")
    if not lake.delta_exists(uri):
        return {}, None
    df = pl.from_arrow(lake.read_delta(uri)).sort("created_at")
    cid = df["calibration_id"][-1]
    last = df.filter(pl.col("calibration_id") == cid)
    if not bool(last["use_for_twin"][0]):
        return {}, cid
    return dict(zip(last["parameter"].to_list(), last["fitted"].to_list(), strict=True)), cid


def latest_doe(lake) -> pd.DataFrame:
    """The runs of the newest in-silico DoE (``insilico/doe_runs``); :class:`FileNotFoundError`
    when there is none."""
    import polars as pl

    uri = lake.uri("insilico", "doe_runs")
    if not lake.delta_exists(uri):
        raise FileNotFoundError("no in-silico DoE yet: materialize ['twin', 'insilico_doe'] first")
    df = pl.from_arrow(lake.read_delta(uri))
    last = df.sort("created_at")["doe_id"][-1]
    return df.filter(pl.col("doe_id") == last).to_pandas()


def kinetic_params(params: Mapping[str, float] | None) -> Any:
    """:class:`twin.bioreactor.KineticParams` with ``params`` (fitted values) over the defaults."""
    from dataclasses import replace

    from twin.bioreactor import KineticParams

    return replace(KineticParams(), **params) if params else KineticParams()
