"""Batch evolution monitoring (multivariate SPC) on the culture-age-aligned grid.

Framework-free (no Dagster, no pickle). The model is SIMCA-style batch evolution monitoring
with batch-wise scaling:

1. Good batches are binned on culture age (``ml.golden.align``: bin ``k`` = mean of the 1-min
   grid over ``[k·step, (k+1)·step)``, known online at ``(k+1)·step``).
2. Each signal is centred and scaled **per time step** with the good batches' mean and
   standard deviation at that culture age (batch-wise unfolding: time-varying trajectory
   means/stds, smoothed over ±``smooth_window`` steps, with a floor on the std).
3. One PCA is fitted on the pooled scaled observations (observation-level model).
4. A running batch is scaled the same way, optionally filtered with an EWMA along time
   (``ewma_lambda`` < 1: persistent small drifts accumulate, noise averages out), and projected:
   Hotelling T² (inside the model plane) and SPE (= DModX², distance to the plane).
5. Time-varying control limits come from **cross-validated** good batches (K-fold by batch:
   each good batch is scored by a model that did not see it), as an empirical quantile
   ``alpha`` pooled over ±``limit_window`` steps. A common factor on both limits is then set
   so that at most ``batch_false_alarm_target`` of the cross-validated good batches would ever
   alarm under the persistence rule (empirical, smoothed by a lognormal tail fit). Reference
   batches that are far out of control themselves are dropped first (Phase I, robust MAD rule).
6. Alarm rule: ``persistence`` consecutive steps with T² or SPE above its limit. At an alarm,
   the signals to blame come from the contributions (SPE: squared residual per signal; T²:
   ``z_j · Σ_a t_a p_ja / λ_a``) averaged over the steps that fired it.

Arrays are stored as ``.npz`` (``allow_pickle=False``) plus a JSON sidecar.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from lakehouse.jsonsafe import clean
from ml.golden import AlignedBatches


# ---------------------------------------------------------------------------- config
@dataclass
class MSPCConfig:
    """Settings of batch evolution monitoring (config/golden.yaml ``mspc``): signals, time step,
    components, limit confidence and false-alarm target, smoothing windows.
    """

    signals: list[str]
    step_h: float = 1.0
    n_steps: int | None = None  # culture-age bins covered by the model (default: good batches' span)
    n_components: int | None = None  # None: smallest A reaching explained_variance
    explained_variance: float = 0.80
    max_components: int = 8
    alpha: float = 0.99
    persistence: int = 3
    ewma_lambda: float = 0.5
    cv_folds: int = 5
    batch_false_alarm_target: float = 0.005
    limit_window: int = 6
    smooth_window: int = 6
    std_floor_frac: float = 0.05
    std_floor_global_frac: float = 0.0  # and at least this fraction of the signal's overall SD
    min_batches_per_step: int = 5
    warmup_steps: int = 2
    seed: int = 0
    phase1_rounds: int = 2  # drop out-of-control reference batches, refit (at most this often)
    phase1_mad_k: float = 4.0
    phase1_leave_one_out: bool = False  # judge each reference batch by limits of the others (robust Phase I)
    derived: dict = field(default_factory=dict)  # name -> SQL expression (ml.golden.with_derived)
    # alignment: the axis column (culture_age_h; or any column/derived signal that grows with the
    # batch, e.g. cumulative feed) and landmarks for a phase-wise shift on it, in order:
    # {setpoint_change: <signal>, min_step: 0.5} or {expr: "<SQL condition>"} (ml.golden.landmark_times)
    axis: str = "culture_age_h"
    landmarks: list = field(default_factory=list)
    landmark_ref_h: list | None = None  # where each landmark sits on the model axis (set at fit)

    @classmethod
    def from_dict(cls, d: dict) -> MSPCConfig:
        """Build from the ``mspc`` section of a golden.yaml (unknown keys are ignored)."""
        d = dict(d or {})
        if d.get("align_on_shift") and not d.get("landmarks"):
            raise ValueError(
                "mspc.align_on_shift was replaced by mspc.landmarks (e.g. "
                "[{setpoint_change: <a setpoint signal>, min_step: 0.5}]); retrain models saved before"
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def align_for(
    cfg: MSPCConfig | MSPCModel, readings, n_steps: int | None = None, batch_ids: Sequence[str] | None = None
) -> AlignedBatches:
    """Bin gold-mart readings (``fct_process_readings``-like) the way the model/config wants:
    derived signals, optional phase-wise warping on landmarks, then bins of the axis.

    With an axis other than culture age, the culture age at which each bin is known online (the
    latest culture age of its rows) is kept in ``extras["culture_age_at_bin"]``."""
    from ml.golden import align, landmark_references, landmark_times, warp_to_landmarks, with_derived

    is_model = isinstance(cfg, MSPCModel)
    c = MSPCConfig.from_dict(cfg.config) if is_model else cfg
    signals = cfg.signals
    step = cfg.step_h
    if n_steps is None and is_model:
        n_steps = cfg.n_steps
    df = with_derived(readings, c.derived)
    extras: dict = {}
    if c.landmarks:
        lm = landmark_times(df, c.landmarks, axis=c.axis)
        refs = c.landmark_ref_h if c.landmark_ref_h else (landmark_references(lm, step) if lm else None)
        if refs:
            df = warp_to_landmarks(df, lm, refs, axis=c.axis)
            extras = {"landmarks": lm, "landmark_ref_h": [float(r) for r in refs]}
    al = align(df, signals, axis=c.axis, step=step, n_steps=n_steps, batch_ids=batch_ids)
    if c.axis != "culture_age_h" and "culture_age_h" in df.columns:
        extras["culture_age_at_bin"] = align(
            df.with_columns(pl.col("culture_age_h").alias("_age_known")),
            ["_age_known"],
            axis=c.axis,
            step=step,
            n_steps=al.n_steps,
            batch_ids=al.batch_ids,
            reduce="max",
        ).values[:, :, 0]
    al.extras.update(extras)
    return al


# ----------------------------------------------------------------------- the model
@dataclass
class MSPCModel:
    """A fitted batch evolution monitoring model: per-step scaling, PCA loadings and the
    time-varying T² and SPE limits (saved as ``.npz`` + ``.json``, never pickled).
    """

    signals: list[str]
    step_h: float
    mean: np.ndarray  # (K, J)
    std: np.ndarray  # (K, J)
    loadings: np.ndarray  # (J, A)
    eigvals: np.ndarray  # (A,)  variance of each score in the training data
    t2_limit: np.ndarray  # (K,)
    spe_limit: np.ndarray  # (K,)
    config: dict
    train_batches: list[str] = field(default_factory=list)
    limit_scale: float = 1.0
    info: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        """Number of time steps the model covers."""
        return int(self.mean.shape[0])

    @property
    def n_components(self) -> int:
        """Number of principal components."""
        return int(self.loadings.shape[1])

    # ------------------------------------------------------------ persistence
    def to_npz_bytes(self) -> bytes:
        """The model's arrays as compressed ``.npz`` bytes."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            mean=self.mean,
            std=self.std,
            loadings=self.loadings,
            eigvals=self.eigvals,
            t2_limit=self.t2_limit,
            spe_limit=self.spe_limit,
        )
        return buf.getvalue()

    def to_json_dict(self) -> dict:
        """The model's settings and metadata as a JSON-safe dict (the ``.json`` part)."""
        return {
            "format": "mspc-bem/1",
            "signals": self.signals,
            "step_h": self.step_h,
            "n_steps": self.n_steps,
            "n_components": self.n_components,
            "config": self.config,
            "train_batches": self.train_batches,
            "limit_scale": self.limit_scale,
            "info": clean(self.info),
        }

    @classmethod
    def from_parts(cls, meta: dict, npz_bytes: bytes) -> MSPCModel:
        """Rebuild a model from its ``.json`` dict and ``.npz`` bytes."""
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(
            signals=list(meta["signals"]),
            step_h=float(meta["step_h"]),
            mean=arrays["mean"],
            std=arrays["std"],
            loadings=arrays["loadings"],
            eigvals=arrays["eigvals"],
            t2_limit=arrays["t2_limit"],
            spe_limit=arrays["spe_limit"],
            config=dict(meta["config"]),
            train_batches=list(meta.get("train_batches", [])),
            limit_scale=float(meta.get("limit_scale", 1.0)),
            info=dict(meta.get("info", {})),
        )

    def save(self, fs, base_path: str) -> tuple[str, str]:
        """Write ``<base>.npz`` and ``<base>.json`` with an fsspec filesystem."""
        parent = base_path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        fs.pipe(base_path + ".npz", self.to_npz_bytes())
        fs.pipe(base_path + ".json", json.dumps(self.to_json_dict(), indent=1).encode())
        return base_path + ".npz", base_path + ".json"

    @classmethod
    def load(cls, fs, base_path: str) -> MSPCModel:
        """Read ``<base>.json`` and ``<base>.npz`` with an fsspec filesystem."""
        meta = json.loads(fs.cat(base_path + ".json"))
        return cls.from_parts(meta, fs.cat(base_path + ".npz"))


# ----------------------------------------------------------------- the model in the lake
MODEL_NAME = "mspc_bem"


def model_dir(lake) -> str:
    """URI of the MSPC model folder ``models/mspc_bem`` of a :class:`~lakehouse.storage.Lake`."""
    return lake.uri("models", MODEL_NAME)


def save_to_lake(lake, model: MSPCModel, version: str) -> str:
    """Write ``models/mspc_bem/<version>.npz`` + ``.json`` (no pickle) and point
    ``latest.json`` at it; returns the base path (without extension)."""
    fs = lake.filesystem()
    base = lake.fs_path(model_dir(lake)) + "/" + version
    model.save(fs, base)
    fs.pipe(lake.fs_path(model_dir(lake)) + "/latest.json", json.dumps({"version": version}).encode())
    return base


def load_latest_from_lake(lake) -> tuple[MSPCModel, str]:
    """The model ``latest.json`` points at and its version; :class:`FileNotFoundError` when none."""
    fs = lake.filesystem()
    d = lake.fs_path(model_dir(lake))
    if not fs.exists(d + "/latest.json"):
        raise FileNotFoundError("no MSPC model yet: materialize ['golden', 'mspc_model'] first")
    version = json.loads(fs.cat(d + "/latest.json"))["version"]
    return MSPCModel.load(fs, d + "/" + version), version


# -------------------------------------------------------------------- internals
def _smooth(a: np.ndarray, w: int) -> np.ndarray:
    """NaN-aware moving average along axis 0 over ±w steps."""
    if w <= 0:
        return a
    fin = np.isfinite(a)
    v = np.where(fin, a, 0.0)
    c = np.cumsum(np.concatenate([np.zeros((1,) + a.shape[1:]), v]), axis=0)
    n = np.cumsum(np.concatenate([np.zeros((1,) + a.shape[1:]), fin.astype(float)]), axis=0)
    K = a.shape[0]
    lo = np.clip(np.arange(K) - w, 0, K)
    hi = np.clip(np.arange(K) + w + 1, 0, K)
    s = c[hi] - c[lo]
    m = n[hi] - n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / m
    return np.where(m > 0, out, np.nan)


def _ffill_rows(a: np.ndarray) -> np.ndarray:
    """Forward- then back-fill NaN rows along axis 0 (per column)."""
    out = a.copy()
    K = out.shape[0]
    for k in range(1, K):
        bad = ~np.isfinite(out[k])
        out[k, bad] = out[k - 1, bad]
    for k in range(K - 2, -1, -1):
        bad = ~np.isfinite(out[k])
        out[k, bad] = out[k + 1, bad]
    return out


def _trajectory_stats(X: np.ndarray, cfg: MSPCConfig) -> tuple[np.ndarray, np.ndarray]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        n = np.isfinite(X).sum(axis=0)
        mean = np.nanmean(X, axis=0)
        std = np.nanstd(X, axis=0, ddof=1)
    few = n < max(2, cfg.min_batches_per_step)
    mean[few] = np.nan
    std[few] = np.nan
    # the mean stays per step (it follows step changes such as the feed start and the
    # temperature shift); the variance is pooled over ±smooth_window steps for stability
    mean = _ffill_rows(mean)
    std = _ffill_rows(np.sqrt(_smooth(std**2, cfg.smooth_window)))
    # floor: a fraction of the signal's typical spread (between-batch over time) + absolute eps
    typical = np.nanmedian(np.where(np.isfinite(std), std, np.nan), axis=0)
    level = np.nanmedian(np.abs(mean), axis=0)
    floor = np.maximum(cfg.std_floor_frac * np.nan_to_num(typical, nan=0.0), 1e-6 * (1 + np.nan_to_num(level)))
    if cfg.std_floor_global_frac > 0:  # a signal that is constant at some steps (a flow that is off)
        overall = np.nanstd(X.reshape(-1, X.shape[2]), axis=0)
        floor = np.maximum(floor, cfg.std_floor_global_frac * np.nan_to_num(overall, nan=0.0))
    floor = np.maximum(floor, 1e-9)
    std = np.maximum(np.nan_to_num(std, nan=0.0), floor[None, :])
    mean = np.nan_to_num(mean, nan=0.0)
    return mean, std


def _steps_index(K_data: int, K_model: int) -> np.ndarray:
    return np.minimum(np.arange(K_data), K_model - 1)


def _scale(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaled data and a mask of observed steps (any signal present)."""
    idx = _steps_index(X.shape[1], mean.shape[0])
    Z = (X - mean[idx][None]) / std[idx][None]
    observed = np.isfinite(X).any(axis=2)
    Z = np.where(np.isfinite(Z), Z, 0.0)
    return Z, observed


def _ewma(Z: np.ndarray, observed: np.ndarray, lam: float) -> np.ndarray:
    if lam >= 1.0:
        return Z
    out = np.empty_like(Z)
    prev = np.zeros(Z.shape[::2])  # (N, J)
    for k in range(Z.shape[1]):
        cur = lam * Z[:, k] + (1 - lam) * prev
        obs = observed[:, k][:, None]
        cur = np.where(obs, cur, prev)
        out[:, k] = cur
        prev = cur
    return out


def _fit_pca(Z: np.ndarray, observed: np.ndarray, cfg: MSPCConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs = Z[observed]  # (M, J)
    J = obs.shape[1]
    _, s, vt = np.linalg.svd(obs, full_matrices=False)
    var = s**2 / max(obs.shape[0] - 1, 1)
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    if cfg.n_components:
        A = int(cfg.n_components)
    else:
        A = int(np.searchsorted(np.cumsum(ratio), cfg.explained_variance) + 1)
    A = max(1, min(A, cfg.max_components, J - 1 if J > 1 else 1))
    return vt[:A].T.copy(), var[:A].copy(), ratio


def _stats(Z: np.ndarray, P: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    T = Z @ P  # (N, K, A)
    E = Z - T @ P.T
    t2 = np.sum(T**2 / lam, axis=-1)
    spe = np.sum(E**2, axis=-1)
    return t2, spe, T, E


def _run_length_alarm(over: np.ndarray, k: int) -> np.ndarray:
    """True at steps where the last ``k`` steps (inclusive) were all over the limit."""
    run = np.zeros(over.shape, dtype=np.int32)
    cur = np.zeros(over.shape[0], dtype=np.int32)
    for t in range(over.shape[1]):
        cur = np.where(over[:, t], cur + 1, 0)
        run[:, t] = cur
    return run >= k


def _empirical_limits(S: np.ndarray, valid: np.ndarray, alpha: float, w: int, K: int) -> np.ndarray:
    lim = np.full(K, np.nan)
    for k in range(K):
        lo, hi = max(0, k - w), min(S.shape[1], k + w + 1)
        if lo >= hi:
            continue
        v = S[:, lo:hi][valid[:, lo:hi]]
        if v.size:
            lim[k] = np.quantile(v, alpha)
    return _ffill_rows(lim[:, None])[:, 0]


def _batch_alarm_factor(ratio: np.ndarray, observed: np.ndarray, persistence: int, warmup: int) -> np.ndarray:
    """Per batch: the largest limit factor at which the persistence rule would still fire.

    ``ratio`` = max(T²/limit, SPE/limit) per step; a rule of k consecutive steps fires at
    factor s iff some window of k observed steps has min(ratio) > s.
    """
    r = np.where(observed, ratio, 0.0)
    r[:, :warmup] = 0.0
    k = max(1, int(persistence))
    if r.shape[1] < k:
        return np.zeros(r.shape[0])
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(r, k, axis=1).min(axis=2)
    return win.max(axis=1)


def _calibrate_scale(m_b: np.ndarray, target: float) -> tuple[float, dict]:
    """Limit factor giving a batch-level false-alarm probability ``target``.

    ``m_b`` are the cross-validated good batches' alarm factors (see
    :func:`_batch_alarm_factor`). The factor is the larger of the empirical order statistic
    that lets at most ``target`` of them alarm and the ``1 − target`` quantile of a lognormal
    fitted to them (smooths the tail when there are few batches).
    """
    from statistics import NormalDist

    m = np.asarray(m_b, dtype=float)
    m = m[np.isfinite(m) & (m > 0)]
    if m.size < 5:
        return 1.0, {"method": "none", "n": int(m.size)}
    lm = np.log(m)
    mu, sd = float(np.mean(lm)), float(np.std(lm, ddof=1))
    q_ln = float(np.exp(mu + NormalDist().inv_cdf(1.0 - target) * sd))
    allowed = int(np.floor(target * m.size + 1e-9))  # batches allowed to alarm
    q_emp = float(np.sort(m)[::-1][min(allowed, m.size - 1)])
    scale = max(q_ln, q_emp)
    return scale, {
        "method": "max(empirical, lognormal) quantile",
        "log_mean": mu,
        "log_sd": sd,
        "lognormal_factor": q_ln,
        "empirical_factor": q_emp,
        "n": int(m.size),
        "target": target,
    }


# -------------------------------------------------------------------------- fitting
def _fit_core(X: np.ndarray, cfg: MSPCConfig):
    mean, std = _trajectory_stats(X, cfg)
    Z, observed = _scale(X, mean, std)
    P, lam, ratio = _fit_pca(Z, observed, cfg)
    return mean, std, P, lam, ratio


def _score_arrays(X: np.ndarray, mean, std, P, lam, ewma_lambda: float):
    Z, observed = _scale(X, mean, std)
    Zf = _ewma(Z, observed, ewma_lambda)
    t2, spe, T, E = _stats(Zf, P, lam)
    return t2, spe, T, E, Zf, observed


def _fit_and_cv(X: np.ndarray, cfg: MSPCConfig):
    """Fit on all of ``X`` and compute K-fold cross-validated T²/SPE, limits and alarm factors."""
    N, K = X.shape[0], X.shape[1]
    mean, std, P, lam, evr = _fit_core(X, cfg)
    rng = np.random.default_rng(cfg.seed)
    folds = np.array_split(rng.permutation(N), min(max(2, cfg.cv_folds), N))
    t2_cv = np.full((N, K), np.nan)
    spe_cv = np.full((N, K), np.nan)
    cfg_cv = MSPCConfig(**{**asdict(cfg), "n_components": P.shape[1]})
    for test in folds:
        train = np.setdiff1d(np.arange(N), test)
        m, s, Pf, lf, _ = _fit_core(X[train], cfg_cv)
        t2, spe, *_ = _score_arrays(X[test], m, s, Pf, lf, cfg.ewma_lambda)
        t2_cv[test], spe_cv[test] = t2, spe
    observed = np.isfinite(X).any(axis=2)
    t2_lim = _empirical_limits(t2_cv, observed, cfg.alpha, cfg.limit_window, K)
    spe_lim = _empirical_limits(spe_cv, observed, cfg.alpha, cfg.limit_window, K)
    # the factor on both limits at which each CV batch would just raise an alarm
    r = np.maximum(t2_cv / t2_lim[None], spe_cv / spe_lim[None])
    m_b = _batch_alarm_factor(r, observed, cfg.persistence, cfg.warmup_steps)
    m_loo = _loo_alarm_factors(t2_cv, spe_cv, observed, cfg) if cfg.phase1_leave_one_out else m_b
    return mean, std, P, lam, evr, t2_lim, spe_lim, m_b, m_loo


def _loo_alarm_factors(t2_cv: np.ndarray, spe_cv: np.ndarray, observed: np.ndarray, cfg: MSPCConfig) -> np.ndarray:
    """Phase I evidence: each reference batch's alarm factor against limits from the OTHER batches.

    With its own values in the pooled quantile a batch with a gross unrecorded deviation inflates
    the limits it is judged by (and masks itself and hides later faults); left out, it stands out."""
    N, K = t2_cv.shape
    w = cfg.limit_window
    out = np.zeros(N)
    lim_t2 = np.full((N, K), np.nan)
    lim_spe = np.full((N, K), np.nan)
    for k in range(K):
        lo, hi = max(0, k - w), min(K, k + w + 1)
        v = observed[:, lo:hi]
        for S, L in ((t2_cv, lim_t2), (spe_cv, lim_spe)):
            vals = S[:, lo:hi]
            for i in range(N):
                rest = np.delete(vals, i, axis=0)[np.delete(v, i, axis=0)]
                if rest.size:
                    L[i, k] = np.quantile(rest, cfg.alpha)
    for L in (lim_t2, lim_spe):
        L[:] = _ffill_rows(L.T).T
    r = np.maximum(t2_cv / lim_t2, spe_cv / lim_spe)
    out = _batch_alarm_factor(np.nan_to_num(r, nan=0.0), observed, cfg.persistence, cfg.warmup_steps)
    return out


def fit_mspc(aligned: AlignedBatches, cfg: MSPCConfig, batch_ids: Sequence[str] | None = None) -> MSPCModel:
    """Fit the monitoring model on good batches, with cross-validated time-varying limits."""
    sub = aligned.subset(batch_ids) if batch_ids is not None else aligned
    sub = sub.select_signals(cfg.signals)
    X = sub.values
    N = X.shape[0]
    if N < 4:
        raise ValueError(f"MSPC needs at least 4 good batches, got {N}")
    # grid length: where at least min_batches_per_step good batches still have data
    n_at = np.isfinite(X).any(axis=2).sum(axis=0)
    enough = np.nonzero(n_at >= min(cfg.min_batches_per_step, N))[0]
    K = int(cfg.n_steps or (enough.max() + 1 if enough.size else X.shape[1]))
    X = X[:, :K] if X.shape[1] >= K else np.concatenate([X, np.full((N, K - X.shape[1], X.shape[2]), np.nan)], axis=1)
    # drop signals the good batches never report
    present = np.isfinite(X).any(axis=(0, 1))
    if not present.all():
        X = X[:, :, present]
        signals = [s for s, p in zip(cfg.signals, present) if p]
    else:
        signals = list(cfg.signals)
    refs = aligned.extras.get("landmark_ref_h", cfg.landmark_ref_h)
    cfg_used = MSPCConfig(
        **{
            **asdict(cfg),
            "signals": signals,
            "n_steps": K,
            "landmark_ref_h": None if refs is None else [float(r) for r in refs],
        }
    )

    ids = list(sub.batch_ids)
    excluded: list[dict] = []
    for round_ in range(max(0, cfg.phase1_rounds) + 1):
        mean, std, P, lam, evr, t2_lim, spe_lim, m_b, m_loo = _fit_and_cv(X, cfg_used)
        if round_ == cfg.phase1_rounds or len(ids) <= 4:
            break
        # Phase I: drop reference batches that are themselves far out of control (a deviation
        # nobody recorded); robust threshold on log(alarm factor): median + k * 1.4826 * MAD
        lm = np.log(np.maximum(m_loo, 1e-12))
        med = float(np.median(lm))
        mad = float(np.median(np.abs(lm - med))) * 1.4826
        thr = med + cfg.phase1_mad_k * max(mad, 0.05)
        out = np.nonzero(lm > thr)[0]
        if out.size == 0 or len(ids) - out.size < 4:
            break
        excluded += [{"batch_id": ids[i], "alarm_factor": float(m_loo[i]), "round": round_ + 1} for i in out]
        keep = np.setdiff1d(np.arange(len(ids)), out)
        X = X[keep]
        ids = [ids[i] for i in keep]
    N = len(ids)
    A = P.shape[1]
    scale, fit_info = _calibrate_scale(m_b, cfg.batch_false_alarm_target)
    fa0 = float(np.mean(m_b > 1.0))
    info = {
        "n_train_batches": N,
        "n_components": A,
        "explained_variance_ratio": evr[:A].tolist(),
        "cumulative_explained_variance": float(np.sum(evr[:A])),
        "cv_batch_alarm_fraction_unscaled": fa0,
        "cv_batch_alarm_fraction": float(np.mean(m_b > scale)),
        "limit_calibration": fit_info,
        "phase1_excluded": excluded,
        "dropped_signals": [s for s, p in zip(cfg.signals, present) if not p],
    }
    return MSPCModel(
        signals=signals,
        step_h=float(cfg.step_h),
        mean=mean,
        std=std,
        loadings=P,
        eigvals=lam,
        t2_limit=t2_lim * scale,
        spe_limit=spe_lim * scale,
        config=asdict(cfg_used),
        train_batches=ids,
        limit_scale=float(scale),
        info=info,
    )


# -------------------------------------------------------------------------- scoring
@dataclass
class MSPCScores:
    """T², SPE, their limits and the alarm state of scored batches per time step."""

    batch_ids: list[str]
    signals: list[str]
    step_h: float
    t2: np.ndarray  # (N, K)
    spe: np.ndarray
    t2_limit: np.ndarray  # (K,)
    spe_limit: np.ndarray
    observed: np.ndarray  # (N, K) bool
    over: np.ndarray  # (N, K) bool
    alarm: np.ndarray  # (N, K) bool: persistence rule satisfied at this step
    contrib_spe: np.ndarray  # (N, K, J)
    contrib_t2: np.ndarray  # (N, K, J)
    real_age: np.ndarray | None = None  # (N, K) culture age (unwarped) at the end of each bin

    def age_h(self) -> np.ndarray:
        """Aligned (model) axis at the end of each bin, shape (K,)."""
        return (np.arange(self.t2.shape[1]) + 1) * self.step_h

    def culture_age(self) -> np.ndarray:
        """Real culture age at which each bin is known online (end of the bin), shape (N, K)."""
        if self.real_age is not None:
            return self.real_age
        return np.tile(self.age_h(), (self.t2.shape[0], 1))

    def first_alarm_h(self) -> dict[str, float]:
        """Culture age (h) of each batch's first alarm (NaN: never alarmed)."""
        age = self.culture_age()
        out = {}
        for i, b in enumerate(self.batch_ids):
            hit = np.nonzero(self.alarm[i])[0]
            out[b] = float(age[i, hit[0]]) if hit.size else float("nan")
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long frame: one row per batch and time step with T², SPE, limits and alarm flags."""
        N, K = self.t2.shape
        idx = np.minimum(np.arange(K), len(self.t2_limit) - 1)
        df = pd.DataFrame(
            {
                "batch_id": np.repeat(np.asarray(self.batch_ids, dtype=object), K),
                "step": np.tile(np.arange(K, dtype=np.int32), N),
                "aligned_age_h": np.tile(self.age_h(), N),
                "culture_age_h": self.culture_age().reshape(-1),
                "t2": self.t2.reshape(-1),
                "t2_limit": np.tile(self.t2_limit[idx], N),
                "spe": self.spe.reshape(-1),
                "spe_limit": np.tile(self.spe_limit[idx], N),
                "over_limit": self.over.reshape(-1),
                "alarm": self.alarm.reshape(-1),
            }
        )
        df["t2_ratio"] = df["t2"] / df["t2_limit"]
        df["spe_ratio"] = df["spe"] / df["spe_limit"]
        return df[self.observed.reshape(-1)].reset_index(drop=True)


def score(model: MSPCModel, aligned: AlignedBatches) -> MSPCScores:
    """T², SPE, limits, over-limit flags, persistence alarms and contributions per batch/step."""
    X = aligned.select_signals(model.signals).values
    cfg = MSPCConfig.from_dict(model.config)
    t2, spe, T, E, Zf, observed = _score_arrays(
        X, model.mean, model.std, model.loadings, model.eigvals, cfg.ewma_lambda
    )
    K = X.shape[1]
    idx = _steps_index(K, model.n_steps)
    t2_lim, spe_lim = model.t2_limit[idx], model.spe_limit[idx]
    over = ((t2 > t2_lim[None]) | (spe > spe_lim[None])) & observed
    over[:, : cfg.warmup_steps] = False
    alarm = _run_length_alarm(over, cfg.persistence)
    contrib_spe = E**2
    contrib_t2 = Zf * ((T / model.eigvals) @ model.loadings.T)
    # back from the aligned axis to real culture age (see ml.golden.warp_to_landmarks)
    w_end = (np.arange(K) + 1) * model.step_h
    real = np.tile(w_end, (X.shape[0], 1))
    lm = aligned.extras.get("landmarks") or {}
    refs = aligned.extras.get("landmark_ref_h")
    if refs:
        from ml.golden import unwarp_ages

        for i, b in enumerate(aligned.batch_ids):
            real[i] = unwarp_ages(w_end, lm.get(b), refs)
    if "culture_age_at_bin" in aligned.extras:  # another axis: when each bin is known (NaN bins: none)
        known = np.asarray(aligned.extras["culture_age_at_bin"], float)[:, :K]
        real = np.where(np.isfinite(known), known, np.nan)
    return MSPCScores(
        list(aligned.batch_ids),
        list(model.signals),
        model.step_h,
        t2,
        spe,
        model.t2_limit,
        model.spe_limit,
        observed,
        over,
        alarm,
        contrib_spe,
        contrib_t2,
        real_age=real,
    )


def alarm_events(scores: MSPCScores, top_n: int = 3) -> pd.DataFrame:
    """One row per alarm event (start of each run of over-limit steps that satisfies the rule).

    Columns: ``batch_id, culture_age_h`` (when the rule fired), ``first_over_h`` (start of the
    run), ``statistic`` (T2, SPE or both), ``t2_ratio, spe_ratio`` (stat / limit at firing),
    ``top_signals`` (comma-separated, most to blame first), ``contributions`` (JSON: signal →
    share of the contribution over the steps that fired the rule).
    """
    rows = []
    ages = scores.culture_age()
    K = scores.t2.shape[1]
    idx = np.minimum(np.arange(K), len(scores.t2_limit) - 1)
    t2r = scores.t2 / scores.t2_limit[idx][None]
    sper = scores.spe / scores.spe_limit[idx][None]
    for i, b in enumerate(scores.batch_ids):
        al = scores.alarm[i]
        prev = np.concatenate([[False], al[:-1]])
        fire = np.nonzero(al & ~prev)[0]
        age = ages[i]
        for k in fire:
            start = k
            while start > 0 and scores.over[i, start - 1]:
                start -= 1
            win = slice(start, k + 1)
            t2_hit = bool((t2r[i, win] > 1).any())
            spe_hit = bool((sper[i, win] > 1).any())
            c = np.zeros(len(scores.signals))
            if spe_hit:
                cs = scores.contrib_spe[i, win].mean(axis=0)
                c += cs / max(cs.sum(), 1e-12)
            if t2_hit:
                ct = np.clip(scores.contrib_t2[i, win].mean(axis=0), 0, None)
                c += ct / max(ct.sum(), 1e-12)
            c = c / max(c.sum(), 1e-12)
            order = np.argsort(-c)
            top = [scores.signals[j] for j in order[:top_n] if c[j] > 0]
            rows.append(
                {
                    "batch_id": b,
                    "culture_age_h": float(age[k]),
                    "first_over_h": float(age[start]),
                    "statistic": "T2+SPE" if (t2_hit and spe_hit) else ("T2" if t2_hit else "SPE"),
                    "t2_ratio": float(t2r[i, k]),
                    "spe_ratio": float(sper[i, k]),
                    "top_signals": ",".join(top),
                    "contributions": json.dumps(
                        {scores.signals[j]: round(float(c[j]), 4) for j in order if c[j] > 0.005}
                    ),
                }
            )
    cols = [
        "batch_id",
        "culture_age_h",
        "first_over_h",
        "statistic",
        "t2_ratio",
        "spe_ratio",
        "top_signals",
        "contributions",
    ]
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------- evaluation
def evaluate_alarms(alarms: pd.DataFrame, truth: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Detection, lead time and false alarms against ground truth.

    ``truth``: one row per evaluated batch with ``batch_id, deviating`` (bool), ``onset_h``
    (culture age of the deviation onset; NaN for normal batches) and ``visible_h`` (culture age
    at which the deviation became visible in an assay result or the batch was lost).

    A deviating batch is *detected* when an alarm fires at or after its onset; its lead time is
    ``visible_h − first alarm after onset``. A normal batch with any alarm is a false alarm.
    Alarms on a deviating batch before its onset are counted separately (``pre_onset_alarms``).
    """
    first_any = alarms.groupby("batch_id")["culture_age_h"].min() if len(alarms) else pd.Series(dtype=float)
    rows = []
    for r in truth.itertuples(index=False):
        b = r.batch_id
        a = alarms.loc[alarms["batch_id"] == b, "culture_age_h"].to_numpy() if len(alarms) else np.array([])
        if bool(r.deviating):
            after = a[a >= r.onset_h - 1e-9]
            first = float(after.min()) if after.size else np.nan
            rows.append(
                {
                    "batch_id": b,
                    "deviating": True,
                    "deviation_type": getattr(r, "deviation_type", None),
                    "onset_h": float(r.onset_h),
                    "visible_h": float(r.visible_h),
                    "first_alarm_h": first,
                    "detected": bool(after.size),
                    "delay_h": first - float(r.onset_h) if after.size else np.nan,
                    "lead_h": float(r.visible_h) - first if after.size else np.nan,
                    "pre_onset_alarm": bool((a < r.onset_h - 1e-9).any()),
                }
            )
        else:
            rows.append(
                {
                    "batch_id": b,
                    "deviating": False,
                    "deviation_type": None,
                    "onset_h": np.nan,
                    "visible_h": np.nan,
                    "first_alarm_h": float(first_any.get(b, np.nan)),
                    "detected": False,
                    "delay_h": np.nan,
                    "lead_h": np.nan,
                    "pre_onset_alarm": False,
                    "false_alarm": bool(a.size),
                }
            )
    per = pd.DataFrame(rows)
    if "false_alarm" not in per.columns:
        per["false_alarm"] = False
    per["false_alarm"] = per["false_alarm"].fillna(False).astype(bool)
    dev = per[per["deviating"]]
    nor = per[~per["deviating"]]
    metrics = {
        "n_deviating": len(dev),
        "n_normal": len(nor),
        "detected_fraction": float(dev["detected"].mean()) if len(dev) else float("nan"),
        "median_lead_h": float(dev["lead_h"].median()) if dev["detected"].any() else float("nan"),
        "median_delay_h": float(dev["delay_h"].median()) if dev["detected"].any() else float("nan"),
        "false_alarm_fraction": float(nor["false_alarm"].mean()) if len(nor) else float("nan"),
        "pre_onset_alarm_fraction": float(dev["pre_onset_alarm"].mean()) if len(dev) else float("nan"),
    }
    return metrics, per


# ----------------------------------------------------------------------------- plots
def plot_control_charts(
    scores: MSPCScores, batch_id: str, onset_h: float | None = None, title: str | None = None
) -> bytes:
    """PNG: T² and SPE of one batch against their time-varying limits, alarms marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i = scores.batch_ids.index(batch_id)
    age = scores.culture_age()[i]
    obs = scores.observed[i]
    K = scores.t2.shape[1]
    idx = np.minimum(np.arange(K), len(scores.t2_limit) - 1)
    fig, axes = plt.subplots(2, 1, figsize=(8, 4.8), sharex=True)
    for ax, stat, lim, name in (
        (axes[0], scores.t2[i], scores.t2_limit[idx], "Hotelling T²"),
        (axes[1], scores.spe[i], scores.spe_limit[idx], "SPE (DModX²)"),
    ):
        ax.plot(age[obs], stat[obs], lw=1, color="tab:blue", label=name)
        ax.plot(age, lim, lw=1, color="tab:red", ls="--", label="limit")
        al = scores.alarm[i] & obs
        if al.any():
            ax.scatter(age[al], stat[al], s=8, color="tab:red", zorder=3, label="alarm")
        if onset_h is not None and np.isfinite(onset_h):
            ax.axvline(onset_h, color="k", lw=0.8, ls=":", label="deviation onset")
        ax.set_yscale("log")
        ax.set_ylabel(name, fontsize=8)
        ax.legend(fontsize=6, loc="upper left")
    axes[1].set_xlabel("culture age (h)")
    fig.suptitle(title or f"Batch evolution monitoring — {batch_id}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def visibility(
    truth: pd.DataFrame,
    assays: pd.DataFrame,
    good_batch_ids: Sequence[str],
    z: float = 3.0,
) -> pd.Series:
    """Culture age at which each deviation became visible: first out-of-envelope assay result
    after the onset, the batch being lost (aborted), or — if neither — the harvest."""
    from ml.golden import assay_envelope, assay_visible_h

    env = assay_envelope(assays, good_batch_ids)
    dev = truth[truth["deviating"]]
    vis = assay_visible_h(assays, env, dict(zip(dev["batch_id"], dev["onset_h"])), z=z)
    out = {}
    for r in dev.itertuples(index=False):
        cands = [vis.get(r.batch_id, np.nan)]
        cands.append(r.end_h)  # lost (abort) or harvest: visible at the latest then
        out[r.batch_id] = float(np.nanmin(cands))
    return pd.Series(out, name="visible_h")


# ------------------------------------------------------------------------ goals check
#: goals of the alarm evaluation (config ``mspc.evaluation.goals`` overrides)
DEFAULT_ALARM_GOALS = {"detected_fraction_min": 0.8, "median_lead_h_min": 24.0, "false_alarm_fraction_max": 0.05}


def alarm_goal_outcome(per_batch: pd.DataFrame | None, goals: dict | None = None) -> dict:
    """Whether an alarm evaluation (:func:`evaluate_alarms`' per-batch frame) meets its goals.

    Returns ``state`` — ``passed``, ``failed`` or ``not_evaluated`` (nothing to judge: no
    evaluation rows, e.g. a real plant without ground truth; never a pass) — with ``reason``,
    the figures, and the goals that could not be judged (``not_evaluated_goals``: detection and
    lead time need deviating batches, the false-alarm rate normal ones).
    """
    g = {**DEFAULT_ALARM_GOALS, **(goals or {})}
    if per_batch is None or len(per_batch) == 0:
        return {
            "state": "not_evaluated",
            "reason": "no evaluated batches (no ground truth to evaluate against)",
            "goals": g,
        }
    dev, nor = per_batch[per_batch["deviating"]], per_batch[~per_batch["deviating"]]
    det = float(dev["detected"].mean()) if len(dev) else float("nan")
    lead = float(dev["lead_h"].median()) if len(dev) and dev["detected"].any() else float("nan")
    fa = float(nor["false_alarm"].mean()) if len(nor) else float("nan")
    figures = {
        "detected_fraction": det,
        "median_lead_h": lead,
        "false_alarm_fraction": fa,
        "n_deviating": len(dev),
        "n_normal": len(nor),
    }
    judged, skipped, failures = [], [], []
    if len(dev):
        judged += ["detected_fraction_min", "median_lead_h_min"]
        if not det >= g["detected_fraction_min"]:
            failures.append(f"detected fraction {det:.3g} < {g['detected_fraction_min']}")
        if not lead >= g["median_lead_h_min"]:
            failures.append(f"median lead {lead:.3g} h < {g['median_lead_h_min']} h")
    else:
        skipped += ["detected_fraction_min", "median_lead_h_min"]
    if len(nor):
        judged.append("false_alarm_fraction_max")
        if not fa <= g["false_alarm_fraction_max"]:
            failures.append(f"false-alarm fraction {fa:.3g} > {g['false_alarm_fraction_max']}")
    else:
        skipped.append("false_alarm_fraction_max")
    state = "failed" if failures else "passed"
    reason = "; ".join(failures) if failures else f"{len(judged)} goal(s) met"
    if skipped:
        reason += f"; not evaluated: {', '.join(skipped)} (no {'deviating' if not len(dev) else 'normal'} batches)"
    return {"state": state, "reason": reason, "goals": g, "not_evaluated_goals": skipped, **figures}
