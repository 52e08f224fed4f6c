"""Golden batch: which historical batches qualify, and their trajectory envelope.

Framework-free (no Dagster). Inputs are frames shaped like the gold marts:

- ``dim_batches``-like: ``batch_id, status, harvest_titer_g_l`` and the harvest CQA columns
  (``g0f_pct, g1f_pct, g2f_pct, man5_pct, afucosylation_pct, hmw_pct, harvest_viability_pct``).
- ``fct_process_readings``-like: ``batch_id, culture_age_h, maturity_pct`` and one column per
  canonical signal (``temperature, ph, dissolved_oxygen, ...``; null where the plant lacks it).

The aligned 1-minute grid is binned to a coarser axis (default 1 h of culture age, 1 % of
maturity): bin ``k`` holds the mean of the grid rows with ``k*step <= axis < (k+1)*step``, so
its value is known online at ``(k+1)*step`` — the time an alarm on that bin can be raised.

Configuration (spec limits, how many batches qualify, signals, bands) lives in
``config/golden.yaml``; :func:`load_config` reads it.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "golden.yaml"


def all_signals() -> tuple[str, ...]:
    """The signals of the default plant's catalog (``config/plants/cho-twin/signals.yaml``): the
    wide columns of its ``fct_process_readings``, in column order."""
    from lakehouse.catalog import default_catalog

    return tuple(default_catalog().names())


#: Harvest CQA columns of ``dim_batches``.
CQA_COLUMNS: tuple[str, ...] = (
    "g0f_pct",
    "g1f_pct",
    "g2f_pct",
    "man5_pct",
    "afucosylation_pct",
    "hmw_pct",
    "harvest_viability_pct",
)

_DEFAULT_CONFIG: dict[str, Any] = {
    "qualification": {
        "statuses": ["complete"],
        "titer_column": "harvest_titer_g_l",  # null: no titer ranking (every in-spec batch qualifies)
        "top_titer_fraction": 0.5,
        "min_golden_batches": 5,
        "exclude_deviation_work_orders": True,
    },
    "cqa_specs": {},
    "profile": {
        "signals": [],  # empty: the MSPC signals (from the plant's catalog when mspc.signals is empty)
        "culture_age_step_h": 1.0,
        "maturity_step_pct": 1.0,
        "band_pct": [5.0, 95.0],
        "sigma": 3.0,
    },
    "mspc": {
        "signals": [],  # empty: every catalog signal of a monitored kind
        "derived": {},
        "evaluation": {"visible_z": 3.0},
    },
    "doe": {},
    "calibration": {},
}
#: catalog kinds MSPC monitors by default (setpoints help, as they carry the recipe, but none is needed;
#: state codes step: they are alignment landmarks, not monitored values)
MSPC_DEFAULT_KINDS = ("process_value", "setpoint", "flow", "rate", "totaliser")


# --------------------------------------------------------------------------- config
def _deep_update(base: dict, upd: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (upd or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_update(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(path: str | Path | None = None, overrides: dict | None = None, catalog: Any = None) -> dict[str, Any]:
    """The golden-batch configuration (``config/golden.yaml`` or a plant bundle's ``golden.yaml``
    merged over built-in defaults).

    Parameters
    ----------
    path
        YAML file (default ``config/golden.yaml``).
    overrides
        Nested dict merged last.
    catalog
        The plant's signal catalog: an empty ``mspc.signals`` becomes every catalog signal of a
        kind in :data:`MSPC_DEFAULT_KINDS` minus ``mspc.exclude``; an empty ``profile.signals`` the
        MSPC signals.
    """
    import yaml

    path = Path(path) if path is not None else CONFIG_PATH
    cfg = copy.deepcopy(_DEFAULT_CONFIG)
    if path.exists():
        cfg = _deep_update(cfg, yaml.safe_load(path.read_text()) or {})
    if overrides:
        cfg = _deep_update(cfg, overrides)
    m = cfg["mspc"]
    if not m.get("signals"):
        from ml.config import catalog_signals

        if catalog is None:  # the default plant's catalog (config/plants/cho-twin)
            from lakehouse.catalog import default_catalog

            catalog = default_catalog()

        skip = set(m.get("exclude") or [])
        m["signals"] = [
            s.name for s in catalog_signals(catalog) if str(s.kind) in MSPC_DEFAULT_KINDS and s.name not in skip
        ] + [d for d in (m.get("derived") or {}) if d not in skip]
    if not cfg["profile"].get("signals"):
        cfg["profile"]["signals"] = [s for s in m["signals"] if s not in (m.get("derived") or {})]
    return cfg


def batch_condition_config(cfg: dict):
    """The golden config's reference-batch rule as :class:`ml.batches.BatchConditionConfig`
    (``qualification.statuses`` are the normal statuses; ``exclude_deviation_work_orders`` keeps
    batches with recorded deviations out)."""
    from ml.config import BatchConditionConfig

    q = cfg["qualification"]
    return BatchConditionConfig(
        normal_statuses=tuple(q.get("statuses") or ()),
        exclude_recorded_deviations=bool(q.get("exclude_deviation_work_orders", True)),
    )


def mspc_reference_ids(
    qual: pd.DataFrame, batches: pd.DataFrame | pl.DataFrame, deviations: pl.DataFrame | None, cfg: dict
) -> list[str]:
    """The batches MSPC trains on: in spec (:func:`qualify_batches`) and normal — normal status and
    nothing recorded against them (:func:`ml.batches.batch_conditions`)."""
    from ml.batches import batch_conditions, normal_batch_ids

    b = _to_polars(batches)
    normal = set(normal_batch_ids(batch_conditions(b, deviations, batch_condition_config(cfg))))
    return sorted(set(qual.loc[qual["in_spec"], "batch_id"].astype(str)) & normal)


def spec_limits(cfg: dict) -> dict[str, tuple[float | None, float | None]]:
    """``{cqa: (min, max)}`` from the config's ``cqa_specs`` (None = unbounded)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, lim in (cfg.get("cqa_specs") or {}).items():
        lim = lim or {}
        lo, hi = lim.get("min"), lim.get("max")
        out[name] = (None if lo is None else float(lo), None if hi is None else float(hi))
    return out


def in_spec(
    values: pd.DataFrame, specs: dict[str, tuple[float | None, float | None]], margin: float = 0.0
) -> pd.Series:
    """Row-wise: every CQA inside its limits (missing value = not in spec)."""
    ok = pd.Series(True, index=values.index)
    for name, (lo, hi) in specs.items():
        if name not in values.columns:
            ok &= False
            continue
        v = pd.to_numeric(values[name], errors="coerce")
        cond = v.notna()
        if lo is not None:
            cond &= v >= lo + margin
        if hi is not None:
            cond &= v <= hi - margin
        ok &= cond
    return ok


# --------------------------------------------------------------------- qualification
def qualify_batches(batches: pd.DataFrame | pl.DataFrame, cfg: dict) -> pd.DataFrame:
    """One row per batch: did it qualify as a golden batch, and why (not).

    Rules, in order: the status is one of ``qualification.statuses``; every CQA of
    ``cqa_specs`` is present and inside its limits; the harvest titer is present; and the titer
    ranks in the top ``top_titer_fraction`` of the batches that passed so far (at least
    ``min_golden_batches`` of them when enough exist).

    Columns: ``batch_id, qualified, in_spec, reason, harvest_titer_g_l, titer_rank,
    titer_cut_g_l`` (``in_spec`` — status OK and CQAs in spec — is what the MSPC model trains on).
    """
    df = batches.to_pandas() if isinstance(batches, pl.DataFrame) else batches.copy()
    q = cfg["qualification"]
    specs = spec_limits(cfg)
    titer_col = q.get("titer_column", "harvest_titer_g_l")
    statuses = set(q.get("statuses") or [])

    reasons: list[list[str]] = [[] for _ in range(len(df))]
    ok = np.ones(len(df), dtype=bool)
    status = df["status"].astype(str).to_numpy() if "status" in df.columns else np.array([""] * len(df))
    for i in range(len(df)):
        if statuses and status[i] not in statuses:
            ok[i] = False
            reasons[i].append(f"status {status[i]!r} not in {sorted(statuses)}")
    for name, (lo, hi) in specs.items():
        vals = (
            pd.to_numeric(df[name], errors="coerce").to_numpy(float) if name in df.columns else np.full(len(df), np.nan)
        )
        for i, v in enumerate(vals):
            if not np.isfinite(v):
                ok[i] = False
                reasons[i].append(f"{name} missing")
            elif lo is not None and v < lo:
                ok[i] = False
                reasons[i].append(f"{name} {v:.3g} < min {lo:g}")
            elif hi is not None and v > hi:
                ok[i] = False
                reasons[i].append(f"{name} {v:.3g} > max {hi:g}")
    titer = (
        pd.to_numeric(df[titer_col], errors="coerce").to_numpy(float)
        if titer_col and titer_col in df.columns
        else np.full(len(df), np.nan)
    )
    for i, v in enumerate(titer):
        if titer_col and not np.isfinite(v):
            ok[i] = False
            reasons[i].append(f"{titer_col} missing")
    in_spec_mask = ok.copy()
    if not titer_col:  # no titer ranking: every batch in spec qualifies
        titer = np.zeros(len(df))

    frac = float(q.get("top_titer_fraction", 0.5))
    min_n = int(q.get("min_golden_batches", 5))
    n_ok = int(in_spec_mask.sum())
    qualified = np.zeros(len(df), dtype=bool)
    cut = np.nan
    rank = np.full(len(df), np.nan)
    if n_ok:
        order = np.argsort(-titer[in_spec_mask], kind="stable")
        r = np.empty(n_ok)
        r[order] = np.arange(1, n_ok + 1)
        rank[in_spec_mask] = r
        n_keep = max(int(np.ceil(frac * n_ok)), min(min_n, n_ok))
        cut = float(np.sort(titer[in_spec_mask])[::-1][n_keep - 1])
        qualified = in_spec_mask & (titer >= cut)
    for i in range(len(df)):
        if qualified[i] and not titer_col:
            reasons[i].append("qualified: status and CQAs in spec (no titer ranking configured)")
        elif qualified[i]:
            reasons[i].append(f"qualified: CQAs in spec, titer {titer[i]:.3g} g/L >= top-{frac:.0%} cut {cut:.3g}")
        elif in_spec_mask[i]:
            reasons[i].append(f"titer {titer[i]:.3g} g/L below top-{frac:.0%} cut {cut:.3g}")
    return pd.DataFrame(
        {
            "batch_id": df["batch_id"].astype(str).to_numpy(),
            "qualified": qualified,
            "in_spec": in_spec_mask,
            "reason": ["; ".join(r) for r in reasons],
            "harvest_titer_g_l": titer,
            "titer_rank": rank,
            "titer_cut_g_l": np.full(len(df), cut),
        }
    )


# ------------------------------------------------------------------------ alignment
@dataclass
class AlignedBatches:
    """Batches binned on one axis: ``values[batch, step, signal]`` (NaN = no data)."""

    batch_ids: list[str]
    signals: list[str]
    axis: str
    step: float
    grid: np.ndarray  # left edge of each bin, shape (K,)
    values: np.ndarray  # (N, K, J)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        """Number of grid steps (bins) on the alignment axis."""
        return int(self.grid.shape[0])

    def index(self, batch_id: str) -> int:
        """Row index of ``batch_id``."""
        return self.batch_ids.index(batch_id)

    def subset(self, batch_ids: Iterable[str]) -> AlignedBatches:
        """The same alignment restricted to ``batch_ids`` (in that order)."""
        pos = {b: i for i, b in enumerate(self.batch_ids)}
        keep = [b for b in batch_ids if b in pos]
        idx = np.array([pos[b] for b in keep], dtype=int)
        return AlignedBatches(
            keep,
            list(self.signals),
            self.axis,
            self.step,
            self.grid.copy(),
            self.values[idx] if len(idx) else self.values[:0],
            dict(self.extras),
        )

    def select_signals(self, signals: Sequence[str]) -> AlignedBatches:
        """The same alignment with only ``signals`` (missing ones all-NaN)."""
        pos = {s: j for j, s in enumerate(self.signals)}
        vals = np.full(self.values.shape[:2] + (len(signals),), np.nan)
        for j, s in enumerate(signals):
            if s in pos:
                vals[:, :, j] = self.values[:, :, pos[s]]
        return AlignedBatches(
            list(self.batch_ids), list(signals), self.axis, self.step, self.grid.copy(), vals, dict(self.extras)
        )

    def last_step(self) -> np.ndarray:
        """Index of the last bin with any data per batch (-1 if none)."""
        has = np.isfinite(self.values).any(axis=2)
        last = np.where(has.any(axis=1), has.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1), -1)
        return last

    def to_frame(self) -> pd.DataFrame:
        """Long frame: one row per batch, step and signal value."""
        n, k, _ = self.values.shape
        out = pd.DataFrame(
            {
                "batch_id": np.repeat(np.asarray(self.batch_ids, dtype=object), k),
                self.axis: np.tile(self.grid, n),
            }
        )
        for jj, s in enumerate(self.signals):
            out[s] = self.values[:, :, jj].reshape(-1)
        return out


def _to_polars(df: pd.DataFrame | pl.DataFrame) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    return pl.from_pandas(df)


def with_derived(readings: pd.DataFrame | pl.DataFrame, derived: Mapping[str, str] | None) -> pl.DataFrame:
    """Add derived signals (``name -> SQL expression`` over canonical columns, e.g.
    ``temperature_error: "temperature - temperature_sp"``) evaluated by ``polars.sql_expr``.
    A derived signal whose inputs are missing is skipped (absent, i.e. NaN after alignment)."""
    df = _to_polars(readings)
    for name, expr in (derived or {}).items():
        try:
            df = df.with_columns(pl.sql_expr(expr).cast(pl.Float64).alias(name))
        except pl.exceptions.ColumnNotFoundError:  # an input the plant does not log; a bad expression raises
            continue
    return df


def shift_landmarks(
    readings: pd.DataFrame | pl.DataFrame, *, signal: str, axis: str = "culture_age_h", min_drop_c: float = 0.5
) -> dict[str, float]:
    """Per batch: culture age at which a setpoint ``signal`` makes its (downward) step change.

    The first time the setpoint leaves its initial value towards its final (lowest) value by
    more than 5 % of the step (the step must be at least ``min_drop_c``). Batches without a
    (visible) step are left out — e.g. a running batch that has not shifted yet. (The CHO
    twin's temperature shift: ``signal="temperature_sp"``.)
    """
    df = _to_polars(readings)
    if signal not in df.columns:
        return {}
    d = (
        df.lazy()
        .select(["batch_id", axis, signal])
        .drop_nulls()
        .sort(["batch_id", axis])
        .group_by("batch_id", maintain_order=True)
        .agg(pl.col(axis), pl.col(signal))
        .collect()
    )
    out = {}
    for b, t, v in zip(d["batch_id"].to_list(), d[axis].to_list(), d[signal].to_list()):
        t = np.asarray(t, float)
        v = np.asarray(v, float)
        if v.size < 3:
            continue
        v0, v1 = float(np.median(v[: min(5, v.size)])), float(np.min(v))
        if v0 - v1 < min_drop_c:
            continue
        hit = np.nonzero(v < v0 - 0.05 * (v0 - v1))[0]
        if hit.size:
            k = hit[0]
            out[str(b)] = float(t[k - 1]) if k > 0 else float(t[k])  # last sample still on the old setpoint
    return out


def condition_landmarks(
    readings: pd.DataFrame | pl.DataFrame, expr: str, axis: str = "culture_age_h"
) -> dict[str, float]:
    """Per batch: the first ``axis`` value where the SQL condition ``expr`` holds (e.g. a state
    code entering induction, ``step_code >= 4``); batches where it never holds are left out."""
    df = _to_polars(readings)
    try:
        hit = (
            df.lazy().filter(pl.sql_expr(expr).fill_null(False)).group_by("batch_id").agg(pl.col(axis).min()).collect()
        )
    except Exception as exc:
        raise ValueError(f"landmark condition {expr!r} cannot be evaluated on the readings: {exc}") from exc
    return {str(b): float(t) for b, t in zip(hit["batch_id"].to_list(), hit[axis].to_list()) if t is not None}


def landmark_times(
    readings: pd.DataFrame | pl.DataFrame, specs: Sequence[Mapping[str, Any]], axis: str = "culture_age_h"
) -> dict[str, list[float]]:
    """Per batch, the axis value of each landmark of ``specs`` in order.

    A spec is ``{"setpoint_change": <signal>, "min_step": <float>}`` (:func:`shift_landmarks`) or
    ``{"expr": <SQL condition>}`` (:func:`condition_landmarks`). A batch lists the landmarks it has
    reached in sequence (a later landmark that is missing or earlier than its predecessor ends the
    list: a running batch knows only the transitions it has made).
    """
    per: list[dict[str, float]] = []
    for spec in specs:
        if "setpoint_change" in spec:
            per.append(
                shift_landmarks(
                    readings,
                    signal=str(spec["setpoint_change"]),
                    axis=axis,
                    min_drop_c=float(spec.get("min_step", 0.5)),
                )
            )
        elif "expr" in spec:
            per.append(condition_landmarks(readings, str(spec["expr"]), axis=axis))
        else:
            raise ValueError(f"landmark {dict(spec)!r}: give 'setpoint_change: <signal>' or 'expr: <SQL condition>'")
    out: dict[str, list[float]] = {}
    for b in sorted(set().union(*per)) if per else []:
        times: list[float] = []
        for lm in per:
            t = lm.get(b)
            if t is None or (times and t < times[-1]):
                break
            times.append(t)
        if times:
            out[b] = times
    return out


def landmark_references(landmarks: Mapping[str, Sequence[float]], step: float) -> list[float]:
    """Where each landmark sits on the aligned axis: the first after the latest first landmark of
    the reference batches, each next one after the longest segment between them (whole ``step``s,
    one step of margin) — no reference batch is cut."""
    refs: list[float] = []
    depth = max((len(v) for v in landmarks.values()), default=0)
    for j in range(depth):
        if j == 0:
            span = max(v[0] for v in landmarks.values())
            refs.append(float(np.ceil(span / step) * step + step))
        else:
            seg = [v[j] - v[j - 1] for v in landmarks.values() if len(v) > j]
            refs.append(refs[-1] + float(np.ceil(max(seg) / step) * step + step))
    return refs


def warp_to_landmarks(
    readings: pd.DataFrame | pl.DataFrame,
    landmarks: Mapping[str, Sequence[float]],
    refs: Sequence[float],
    axis: str = "culture_age_h",
) -> pl.DataFrame:
    """Phase-wise alignment on landmarks (e.g. a temperature shift, state-code transitions).

    Before its first landmark a batch keeps its axis value; in segment ``j`` (from its ``j``-th
    landmark ``l_j`` on) its axis is ``refs[j] + (a − l_j)``, time since the landmark offset to the
    reference. Rows that would pass the next reference position are dropped (no reference batch
    was that late). Batches without landmarks keep their axis. Causal: uses only the batch's own
    past (the transitions it has already made).
    """
    df = _to_polars(readings)
    m = len(refs)
    if not landmarks or m == 0:
        return df
    ids = list(landmarks)
    lm = pl.DataFrame(
        {
            "batch_id": ids,
            **{f"_lm{j}": [float(landmarks[b][j]) if len(landmarks[b]) > j else None for b in ids] for j in range(m)},
        },
        schema={"batch_id": pl.Utf8, **{f"_lm{j}": pl.Float64 for j in range(m)}},
    )
    df = df.with_columns(pl.col("batch_id").cast(pl.Utf8)).join(lm, on="batch_id", how="left")
    a = pl.col(axis)
    seg = pl.sum_horizontal(
        [(pl.col(f"_lm{j}").is_not_null() & (a >= pl.col(f"_lm{j}"))).cast(pl.Int32) for j in range(m)]
    )
    warped = a
    keep = ~((seg == 0) & (a >= refs[0]))
    for j in range(m):
        w_j = a - pl.col(f"_lm{j}") + refs[j]
        warped = pl.when(seg == j + 1).then(w_j).otherwise(warped)
        if j + 1 < m:
            keep = keep & ~((seg == j + 1) & (w_j >= refs[j + 1]))
    df = df.with_columns(seg.alias("_seg")).filter(keep.fill_null(True) | pl.col("_lm0").is_null())
    return df.with_columns(pl.when(pl.col("_lm0").is_null()).then(a).otherwise(warped).alias(axis)).drop(
        [f"_lm{j}" for j in range(m)] + ["_seg"]
    )


def unwarp_ages(aligned: np.ndarray, landmarks: Sequence[float] | None, refs: Sequence[float] | None) -> np.ndarray:
    """Inverse of :func:`warp_to_landmarks` for one batch (aligned axis → original axis)."""
    x = np.asarray(aligned, float)
    if not landmarks or not refs:
        return x
    out = x.copy()
    for j, (lj, rj) in enumerate(zip(landmarks, refs, strict=False)):
        out = np.where(x >= rj, x - rj + lj, out) if j < len(landmarks) else out
    return out


def warp_to_landmark(
    readings: pd.DataFrame | pl.DataFrame, landmarks: Mapping[str, float], ref_h: float, axis: str = "culture_age_h"
) -> pl.DataFrame:
    """:func:`warp_to_landmarks` with one landmark per batch (e.g. the temperature shift)."""
    return warp_to_landmarks(readings, {b: [t] for b, t in landmarks.items()}, [ref_h], axis)


def unwarp_age(aligned_age: np.ndarray, landmark: float | None, ref_h: float | None) -> np.ndarray:
    """Inverse of :func:`warp_to_landmark` for one batch (aligned axis → culture age)."""
    if landmark is None or ref_h is None:
        return aligned_age
    return unwarp_ages(aligned_age, [landmark], [ref_h])


def align(
    readings: pd.DataFrame | pl.DataFrame,
    signals: Sequence[str],
    axis: str = "culture_age_h",
    step: float = 1.0,
    n_steps: int | None = None,
    batch_ids: Sequence[str] | None = None,
    derived: Mapping[str, str] | None = None,
    reduce: str = "mean",
) -> AlignedBatches:
    """Bin aligned readings to ``step`` on ``axis`` (mean per bin) into a dense 3-D array.

    ``n_steps`` fixes the grid length (bins past it are dropped); by default it covers the
    longest batch. ``batch_ids`` fixes the batch order (batches without rows get all-NaN).
    Signals absent from the frame come back as NaN columns. ``derived`` signals are computed
    on the fine grid first (see :func:`with_derived`). ``reduce``: ``mean`` (default) or ``max``
    of the rows in a bin.
    """
    df = with_derived(readings, derived)
    present = [s for s in signals if s in df.columns]
    k = (pl.col(axis) / step).floor().cast(pl.Int64).alias("_k")
    lf = df.lazy().select(
        [
            pl.col("batch_id").cast(pl.Utf8),
            pl.col(axis).cast(pl.Float64),
            *[pl.col(s).cast(pl.Float64) for s in present],
        ]
    )
    lf = lf.filter(pl.col(axis).is_not_null() & (pl.col(axis) >= 0)).with_columns(k)
    if n_steps is not None:
        lf = lf.filter(pl.col("_k") < n_steps)
    agg = {"mean": pl.Expr.mean, "max": pl.Expr.max}[reduce]
    binned = lf.group_by(["batch_id", "_k"]).agg([agg(pl.col(s)) for s in present]).collect()
    if batch_ids is None:
        batch_ids = sorted(binned["batch_id"].unique().to_list())
    batch_ids = [str(b) for b in batch_ids]
    if n_steps is None:
        n_steps = int(binned["_k"].max()) + 1 if binned.height else 0
    pos = {b: i for i, b in enumerate(batch_ids)}
    vals = np.full((len(batch_ids), n_steps, len(signals)), np.nan)
    if binned.height:
        bi = binned["batch_id"].replace_strict(pos, default=-1, return_dtype=pl.Int64).to_numpy()
        kk = binned["_k"].to_numpy()
        sel = bi >= 0
        for s in present:
            j = list(signals).index(s)
            col = binned[s].to_numpy().astype(float)
            vals[bi[sel], kk[sel], j] = col[sel]
    grid = np.arange(n_steps, dtype=float) * step
    return AlignedBatches(list(batch_ids), list(signals), axis, float(step), grid, vals)


# ----------------------------------------------------------------------- profile
def golden_profile(
    aligned: AlignedBatches,
    batch_ids: Sequence[str] | None = None,
    band_pct: Sequence[float] = (5.0, 95.0),
    sigma: float = 3.0,
    min_batches: int = 3,
) -> pd.DataFrame:
    """Per-signal envelope of the golden batches on the aligned axis (long format).

    Columns: ``axis, position, signal, n_batches, median, p_lo, p_hi, mean, std, lo_sigma,
    hi_sigma, band_lo_pct, band_hi_pct``. Positions where fewer than ``min_batches`` golden
    batches have data are dropped.
    """
    sub = aligned.subset(batch_ids) if batch_ids is not None else aligned
    v = sub.values
    lo_q, hi_q = float(band_pct[0]), float(band_pct[1])
    frames = []
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            n = np.isfinite(v).sum(axis=0)  # (K, J)
            med = np.nanmedian(v, axis=0)
            plo = np.nanpercentile(v, lo_q, axis=0)
            phi = np.nanpercentile(v, hi_q, axis=0)
            mean = np.nanmean(v, axis=0)
            std = np.nanstd(v, axis=0, ddof=1)
    for j, s in enumerate(sub.signals):
        keep = n[:, j] >= min_batches
        if not keep.any():
            continue
        frames.append(
            pd.DataFrame(
                {
                    "axis": sub.axis,
                    "position": sub.grid[keep],
                    "signal": s,
                    "n_batches": n[keep, j].astype(np.int64),
                    "median": med[keep, j],
                    "p_lo": plo[keep, j],
                    "p_hi": phi[keep, j],
                    "mean": mean[keep, j],
                    "std": std[keep, j],
                    "lo_sigma": mean[keep, j] - sigma * std[keep, j],
                    "hi_sigma": mean[keep, j] + sigma * std[keep, j],
                    "band_lo_pct": lo_q,
                    "band_hi_pct": hi_q,
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            columns=[
                "axis",
                "position",
                "signal",
                "n_batches",
                "median",
                "p_lo",
                "p_hi",
                "mean",
                "std",
                "lo_sigma",
                "hi_sigma",
                "band_lo_pct",
                "band_hi_pct",
            ]
        )
    return pd.concat(frames, ignore_index=True)


def build_golden(
    batches: pd.DataFrame | pl.DataFrame, readings: pd.DataFrame | pl.DataFrame, cfg: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Qualification table and the golden profile on both axes (culture age and % maturity)."""
    qual = qualify_batches(batches, cfg)
    golden_ids = qual.loc[qual["qualified"], "batch_id"].tolist()
    p = cfg["profile"]
    signals = list(p["signals"])
    frames = []
    for axis, step in (
        ("culture_age_h", float(p["culture_age_step_h"])),
        ("maturity_pct", float(p["maturity_step_pct"])),
    ):
        n_steps = int(np.ceil(100.0 / step)) + 1 if axis == "maturity_pct" else None
        al = align(readings, signals, axis=axis, step=step, n_steps=n_steps, batch_ids=golden_ids)
        frames.append(
            golden_profile(
                al,
                band_pct=p["band_pct"],
                sigma=float(p.get("sigma", 3.0)),
                min_batches=min(3, max(1, len(golden_ids))),
            )
        )
    profile = pd.concat(frames, ignore_index=True)
    return qual, profile


def envelope_excursions(profile: pd.DataFrame, aligned: AlignedBatches, band: str = "pct") -> pd.DataFrame:
    """Per batch and signal: fraction of bins outside the golden band (``pct`` or ``sigma``)."""
    lo_col, hi_col = ("p_lo", "p_hi") if band == "pct" else ("lo_sigma", "hi_sigma")
    prof = profile[profile["axis"] == aligned.axis]
    rows = []
    for j, s in enumerate(aligned.signals):
        ps = prof[prof["signal"] == s]
        if ps.empty:
            continue
        k = np.rint(ps["position"].to_numpy() / aligned.step).astype(int)
        k_ok = k < aligned.n_steps
        k = k[k_ok]
        lo, hi = ps[lo_col].to_numpy()[k_ok], ps[hi_col].to_numpy()[k_ok]
        x = aligned.values[:, k, j]
        fin = np.isfinite(x)
        out = fin & ((x < lo) | (x > hi))
        for i, b in enumerate(aligned.batch_ids):
            n = int(fin[i].sum())
            rows.append(
                {"batch_id": b, "signal": s, "n_bins": n, "fraction_outside": float(out[i].sum() / n) if n else np.nan}
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ plots
def plot_envelope(
    profile: pd.DataFrame,
    batch: AlignedBatches | None = None,
    signals: Sequence[str] | None = None,
    axis: str = "culture_age_h",
    title: str | None = None,
    units: Mapping[str, str] | None = None,
) -> bytes:
    """PNG: golden median and bands per signal, with one batch overlaid (optional); each panel
    titled with the signal and its unit (``units``: signal -> unit, e.g. the plant's catalog)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prof = profile[profile["axis"] == axis]
    signals = list(signals or [s for s in prof["signal"].unique()])[:9]
    ncol = 3
    nrow = max(1, int(np.ceil(len(signals) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 2.6 * nrow), squeeze=False)
    for ax, s in zip(axes.ravel(), signals):
        ps = prof[prof["signal"] == s].sort_values("position")
        x = ps["position"].to_numpy()
        ax.fill_between(x, ps["lo_sigma"], ps["hi_sigma"], color="tab:blue", alpha=0.10, label="±3σ")
        ax.fill_between(
            x,
            ps["p_lo"],
            ps["p_hi"],
            color="tab:blue",
            alpha=0.25,
            label=f"{ps['band_lo_pct'].iloc[0]:g}–{ps['band_hi_pct'].iloc[0]:g}%" if len(ps) else None,
        )
        ax.plot(x, ps["median"], color="tab:blue", lw=1.2, label="golden median")
        if batch is not None and s in batch.signals and batch.axis == axis:
            j = batch.signals.index(s)
            ax.plot(batch.grid, batch.values[0, :, j], color="tab:red", lw=1.0, label=batch.batch_ids[0])
        unit = (units or {}).get(s)
        ax.set_title(f"{s} ({unit})" if unit else s, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(signals) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6, loc="upper left")  # not "best": its search over every point is slow
    fig.supxlabel("culture age (h)" if axis == "culture_age_h" else "maturity (%)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str = "plot") -> str:
    """Markdown that embeds a PNG inline (Dagster renders it in asset metadata)."""
    import base64

    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def assay_envelope(assays: pd.DataFrame, batch_ids: Sequence[str], step_h: float = 24.0) -> pd.DataFrame:
    """Mean/SD of each in-process assay per culture-age bin over the given (good) batches."""
    a = assays[assays["batch_id"].isin(list(batch_ids))].copy()
    a["_bin"] = np.floor(a["culture_age_h"] / step_h).astype(int)
    g = a.groupby(["analyte", "_bin"])["value"].agg(["mean", "std", "count"]).reset_index()
    return g


def assay_visible_h(
    assays: pd.DataFrame,
    envelope: pd.DataFrame,
    onset_h: Mapping[str, float],
    z: float = 3.0,
    step_h: float = 24.0,
    analytes: Sequence[str] | None = None,
) -> dict[str, float]:
    """Per batch: culture age at which a deviation first shows in an approved assay result.

    The first result (at ``result_age_h``) of a sample drawn at or after the onset whose value
    lies more than ``z`` SD from the good batches' mean at that culture age. NaN if never.
    """
    env = envelope.set_index(["analyte", "_bin"])
    a = assays[assays["batch_id"].isin(list(onset_h))].copy()
    if analytes is not None:
        a = a[a["analyte"].isin(list(analytes))]
    a["_bin"] = np.floor(a["culture_age_h"] / step_h).astype(int)
    a = a.join(env, on=["analyte", "_bin"])
    sd = a["std"].where(a["std"] > 0)
    a["z"] = (a["value"] - a["mean"]) / sd
    res_col = "result_age_h" if "result_age_h" in a.columns else "culture_age_h"
    out = {}
    for b, on in onset_h.items():
        sub = a[(a["batch_id"] == b) & (a["culture_age_h"] >= on) & (a["z"].abs() > z)]
        out[b] = float(sub[res_col].min()) if len(sub) else float("nan")
    return out


# ------------------------------------------------------------------ lake-level helpers
def deviation_truth(lake) -> pd.DataFrame | None:
    """The twin's deviation ground truth (``landing/_truth/batches.parquet``, evaluation only)
    with onset and culture end as culture age in hours; ``None`` when the lake has none (a real
    plant)."""
    import pyarrow.parquet as pq

    fs = lake.filesystem()
    path = lake.fs_path(lake.uri("landing", "_truth", "batches.parquet"))
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as f:
        t = pq.read_table(f).to_pandas()
    inoc = pd.to_datetime(t["inoculation"], utc=True)
    onset = pd.to_datetime(t["deviation_onset"], utc=True)
    end = pd.to_datetime(t["culture_end"], utc=True)
    dev = t["deviation_type"].fillna("").astype(str)
    return pd.DataFrame(
        {
            "batch_id": t["batch_id"].astype(str),
            "deviation_type": dev,
            "deviating": dev != "",
            "onset_h": (onset - inoc).dt.total_seconds() / 3600.0,
            "end_h": (end - inoc).dt.total_seconds() / 3600.0,
            "lost": t["lost"].astype(bool),
        }
    )
