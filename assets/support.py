"""Small helpers shared by the Dagster assets: ML run config (:class:`MLConfig`), metadata
(numbers, JSON, markdown tables) and the skip on insufficient data (:func:`skip_on_insufficient_data`)."""

from __future__ import annotations

import functools
import os

import dagster as dg
from pydantic import Field

from lakehouse.errors import InsufficientData
from lakehouse.jsonsafe import clean


class MLConfig(dg.Config):
    """Which ML config files to use. Empty: ``$LAKEHOUSE_ML_SOFTSENSOR_CONFIG`` /
    ``$LAKEHOUSE_ML_PDM_CONFIG`` if set, else the plant bundle's (``LakeResource.plant``:
    ``models.softsensor`` / ``models.pdm`` of its ``plant.yaml``; the default plant's are
    ``config/ml/softsensor.yaml`` / ``config/ml/pdm.yaml``). Feature lists a plant's YAML leaves
    out come from its signal catalog; a plant without a PdM config has PdM off."""

    softsensor_config: str = Field(default="", description="Path of the soft-sensor YAML config.")
    pdm_config: str = Field(default="", description="Path of the PdM YAML config.")
    explain: str = Field(default="exact", description="Scoring explanations: exact | approx | none.")

    def softsensor(self, plant=None):
        """The soft-sensor config of ``plant`` (a :class:`lakehouse.plant.PlantBundle`; None: default)."""
        from ml.plant import softsensor_config

        return softsensor_config(plant, self.softsensor_config or os.environ.get("LAKEHOUSE_ML_SOFTSENSOR_CONFIG"))

    def pdm(self, plant=None):
        """The PdM config of ``plant`` (None: the default plant)."""
        from ml.plant import pdm_config

        return pdm_config(plant, self.pdm_config or os.environ.get("LAKEHOUSE_ML_PDM_CONFIG"))


SKIPPED = "skipped"


def skipped(context, key: dg.AssetKey | list[str], reason: str) -> dg.AssetObservation:
    """An asset that had nothing (or too little) to work on: not materialized — Dagster then skips
    what depends on it — but observed with ``state: skipped`` and the reason, which the run's
    summary prints. Use with ``output_required=False`` and ``yield``."""
    key = dg.AssetKey(key) if not isinstance(key, dg.AssetKey) else key
    context.log.warning(f"{key.to_user_string()} skipped: {reason}")
    return dg.AssetObservation(asset_key=key, metadata={"state": SKIPPED, "reason": reason})


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


def md_table(df, n: int = 10) -> str:
    """The first ``n`` rows of a pandas frame as a markdown table (floats to 4 significant digits)."""
    d = df.head(n)
    head = "| " + " | ".join(map(str, d.columns)) + " |\n|" + "---|" * len(d.columns) + "\n"

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "/")

    return head + "\n".join("| " + " | ".join(cell(v) for v in r) + " |" for r in d.itertuples(index=False))


def skip_on_insufficient_data(fn):
    """Wrap an asset's body (declared with ``output_required=False``): when it raises
    :class:`~lakehouse.errors.InsufficientData` the asset is not materialized but observed with
    ``state: skipped`` and the reason (what ``orchestration.summary.skipped_assets`` reads; Dagster
    skips its checks and everything downstream; the run succeeds). Any other exception fails the
    step as before."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        context = kwargs.get("context", args[0] if args else None)
        try:
            result = fn(*args, **kwargs)
        except InsufficientData as exc:
            yield skipped(context, context.asset_key, str(exc))
            return
        yield result

    return wrapper
