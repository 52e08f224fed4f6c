"""Small helpers shared by the ML Dagster assets (config, metadata). Imported only by ``assets/``."""

from __future__ import annotations

import json
import math
import os

import dagster as dg
from pydantic import Field

from ml.config import (
    DEFAULT_PDM_CONFIG,
    DEFAULT_SOFTSENSOR_CONFIG,
    load_pdm_config,
    load_softsensor_config,
)


class MLConfig(dg.Config):
    """Which ML config files to use. Empty: ``$LAKEHOUSE_ML_SOFTSENSOR_CONFIG`` /
    ``$LAKEHOUSE_ML_PDM_CONFIG`` if set, else ``config/ml/softsensor.yaml`` / ``config/ml/pdm.yaml``."""

    softsensor_config: str = Field(default="", description="Path of the soft-sensor YAML config.")
    pdm_config: str = Field(default="", description="Path of the PdM YAML config.")
    explain: str = Field(default="exact", description="Scoring explanations: exact | approx | none.")

    def softsensor(self):
        return load_softsensor_config(self.softsensor_config or os.environ.get("LAKEHOUSE_ML_SOFTSENSOR_CONFIG")
                                      or DEFAULT_SOFTSENSOR_CONFIG)

    def pdm(self):
        return load_pdm_config(self.pdm_config or os.environ.get("LAKEHOUSE_ML_PDM_CONFIG") or DEFAULT_PDM_CONFIG)


def clean(v):
    """JSON-safe (NaN → None) copy."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return clean(v.item())
    return v


def num(v) -> dg.MetadataValue:
    v = clean(v)
    return dg.MetadataValue.float(float(v)) if isinstance(v, (int, float)) else dg.MetadataValue.text("n/a")


def js(v) -> dg.MetadataValue:
    return dg.MetadataValue.json(clean(v))


def by_day_markdown(model_by_day: dict, base_by_day: dict | None) -> str:
    lines = ["| culture day | n | RMSE model | RMSE baseline |", "|---|---|---|---|"]
    for day in sorted(model_by_day, key=lambda d: int(d)):
        m = model_by_day[day]
        b = (base_by_day or {}).get(day, {})
        lines.append(f"| {day} | {m['n']} | {m['rmse']:.4g} | {b.get('rmse', float('nan')):.4g} |")
    return "\n".join(lines)


def dumps(v) -> str:
    return json.dumps(clean(v), default=str)
