"""Gold rows -> the twin's live mirror (``twin.mirror``): inputs, CQA specs, tidy output frames.

Thin adapters for the orchestration layer, no Dagster. A running batch's gold rows are
``dim_batches`` (setpoints, ``inoculation_ts``), ``fct_process_readings`` (aligned online
signals with ``culture_age_h``) and ``fct_assay_results`` (``analyte, value, culture_age_h,
result_delay_h``); the CQA specs come from ``config/golden.yaml`` (``cqa_specs``, the
``dim_batches`` column names) and are mapped to the twin's harvest keys here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.doe import OUTCOME_COLUMNS
from ml.golden import spec_limits
from twin.bioreactor import SETPOINT_KEYS
from twin.mirror import ONLINE_SIGNALS as ONLINE_COLUMNS  # the twin's inputs: the twin names them
from twin.mirror import BatchData, Forecast, Posterior, Prior, Recommendation, estimate, forecast


def twin_specs(cfg: Mapping[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """The golden-batch config's CQA specs keyed by twin harvest key (``g0f_pct`` -> ``g0f``).

    Parameters
    ----------
    cfg : Mapping
        ``ml.golden.load_config()``.

    Returns
    -------
    dict
        ``{harvest key: (min, max)}``; a spec on a column the twin does not forecast is an error.
    """
    to_twin = {col: key for key, col in OUTCOME_COLUMNS.items()}
    out = {}
    for col, lim in spec_limits(dict(cfg)).items():
        if col not in to_twin:
            raise ValueError(f"cqa_specs.{col} has no twin forecast (known: {sorted(to_twin)})")
        out[to_twin[col]] = lim
    return out


def batch_data_from_gold(batch: Mapping[str, Any], readings: pd.DataFrame, assays: pd.DataFrame) -> BatchData:
    """A running batch's gold rows as :class:`twin.mirror.BatchData`.

    Parameters
    ----------
    batch : Mapping
        Its ``dim_batches`` row (``batch_id`` and the setpoint columns; a missing setpoint takes
        the twin's nominal value, ``duration_h`` the planned culture length if known).
    readings : pandas.DataFrame
        ``fct_process_readings``-like rows (``batch_id, culture_age_h`` + online columns); rows of
        other batches are ignored.
    assays : pandas.DataFrame
        ``fct_assay_results``-like rows (``batch_id, analyte, value, culture_age_h,
        result_delay_h``); rows of other batches are ignored.

    Returns
    -------
    BatchData
    """
    bid = str(batch["batch_id"])
    recipe = {}
    for k in SETPOINT_KEYS:
        v = pd.to_numeric(pd.Series([batch.get(k)]), errors="coerce").iloc[0]
        if np.isfinite(v):
            recipe[k] = float(v)
    dur = pd.to_numeric(pd.Series([batch.get("duration_h")]), errors="coerce").iloc[0]
    if np.isfinite(dur):
        recipe["duration_days"] = float(dur) / 24.0
    r = readings[readings["batch_id"] == bid]
    online = r[["culture_age_h", *[c for c in ONLINE_COLUMNS if c in r.columns]]].reset_index(drop=True)
    a = assays[assays["batch_id"] == bid]
    missing = {"analyte", "value", "culture_age_h", "result_delay_h"} - set(a.columns)
    if missing:
        raise ValueError(f"{bid}: assay rows lack {sorted(missing)}")
    a = pd.DataFrame(
        {
            "analyte": a["analyte"].to_numpy(),
            "value": pd.to_numeric(a["value"], errors="coerce").to_numpy(float),
            "culture_age_h": pd.to_numeric(a["culture_age_h"], errors="coerce").to_numpy(float),
            "result_age_h": (
                pd.to_numeric(a["culture_age_h"], errors="coerce") + pd.to_numeric(a["result_delay_h"], errors="coerce")
            ).to_numpy(float),
        }
    )
    first = a["culture_age_h"][(a["culture_age_h"] >= 0) & (a["culture_age_h"] < 24.0)]
    offset = float(first.min()) if len(first) else 2.0
    return BatchData(batch_id=bid, recipe=recipe, online=online, assays=a, sample_offset_h=offset)


def culture_age_h(batches: pd.DataFrame, now: pd.Timestamp | str) -> pd.Series:
    """Culture age [h] of each batch at ``now`` (from ``inoculation_ts``), indexed like ``batches``."""
    now_ts = pd.Timestamp(now)
    inoc = pd.to_datetime(batches["inoculation_ts"], utc=now_ts.tzinfo is not None)
    return (now_ts - inoc).dt.total_seconds() / 3600.0


def mirror_batches(
    batches: pd.DataFrame,
    readings: pd.DataFrame,
    assays: pd.DataFrame,
    as_of_h: Sequence[float] | np.ndarray,
    prior: Prior | None = None,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    n_draws: int = 100,
    seed: int = 0,
) -> tuple[list[Posterior], list[Forecast], pd.DataFrame]:
    """Estimate and forecast the running batches (one vectorised twin run each).

    Parameters
    ----------
    batches : pandas.DataFrame
        ``dim_batches`` rows of the running batches.
    readings, assays : pandas.DataFrame
        Their gold rows (see :func:`batch_data_from_gold`).
    as_of_h : sequence of float
        Culture age of each batch now (:func:`culture_age_h`).
    prior : twin.mirror.Prior, optional
        E.g. ``Prior(base=ml.doe.kinetic_params(calibrated))``.
    previous : Mapping, optional
        ``batch_id -> Posterior.to_dict()`` of the last update (warm start).
    n_draws : int
        Posterior draws of the forecast.
    seed : int
        Seed of the draws.

    Returns
    -------
    tuple
        (posteriors, forecasts, one tidy frame of :meth:`twin.mirror.Forecast.summary` rows).
    """
    data = [batch_data_from_gold(row, readings, assays) for row in batches.to_dict("records")]
    prior = prior or Prior()
    prev = []
    for d in data:
        p = (previous or {}).get(d.batch_id)
        # a posterior of another parameter set (the prior changed) is not a warm start
        prev.append(Posterior.from_dict(p, prior) if p and tuple(p["names"]) == prior.names else None)
    posts = estimate(data, as_of_h, prior=prior, previous=prev)
    fcs = forecast(posts, n_draws=n_draws, seed=seed)
    frame = pd.concat([f.summary() for f in fcs], ignore_index=True)
    return posts, fcs, frame


def recommendations_frame(recs: Sequence[Recommendation]) -> pd.DataFrame:
    """Ranked corrective scenarios as rows (``Recommendation.to_record``) for an alerts table."""
    return pd.DataFrame([r.to_record() for r in recs])
