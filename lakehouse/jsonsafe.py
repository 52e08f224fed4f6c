"""The one JSON cleaner: Python/numpy values → what ``json.dumps`` writes without surprises.

Used for run summaries, model metadata, Dagster metadata and the twin's JSON exports.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def clean(value: Any, digits: int | None = None) -> Any:
    """A JSON-safe copy of ``value``.

    Parameters
    ----------
    value
        Nested dicts, lists, tuples, numpy arrays and scalars, floats, …
    digits
        Round floats to this many decimals (``None``: keep them as they are).

    Returns
    -------
    Any
        Dict keys as ``str``, tuples and arrays as lists, numpy scalars as Python scalars,
        NaN and ±inf as ``None``.
    """
    if isinstance(value, dict):
        return {str(k): clean(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist(), digits)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, digits) if digits is not None else value
    return value
