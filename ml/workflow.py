"""Train (and by default register + gate) models from a lake's gold tables with one config
file: what ``lakehouse train`` runs (the command line itself is ``bioprocess_cli``).

    run_train(Lake("data/lake"), "config/ml/softsensor.yaml")
    run_train(lake, "config/ml/pdm.yaml", dry_run=True)
    run_train(lake, plant="config/plants/pichia")   # the bundle's soft sensors, then PdM (or skipped)

Training, gate, registry and scoring are :mod:`ml.plant`'s (``run_softsensors``, ``run_pdm``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lakehouse.jsonsafe import clean
from lakehouse.storage import Lake


def config_kind(path: str | Path) -> str:
    """``"pdm"`` or ``"softsensor"``: the kind of ML config file ``path``, from its keys."""
    with open(path) as fh:
        keys = set((yaml.safe_load(fh) or {}).keys())
    return "pdm" if keys & {"model", "evaluation"} and "titer" not in keys else "softsensor"


def _needs_features(lake, table: tuple[str, str], features_cfg, rebuild: bool, out: dict) -> bool:
    """Build the feature table when asked, when it is missing, or when its latest version was built
    with another feature config (e.g. by `lakehouse run` with the default config): training a
    plant's config on features of another config would miss its signals and labels."""
    from ml import pipeline

    if rebuild:
        out["features_rebuilt"] = "--rebuild-features"
        return True
    if not lake.delta_exists(lake.uri(*table)):
        out["features_rebuilt"] = "missing"
        return True
    reason = pipeline.features_config_mismatch(lake, *table, features_cfg)
    if reason:
        out["features_rebuilt"] = reason
        return True
    return False


def run_train(
    lake: Lake,
    config: str | Path | None = None,
    *,
    plant: Any = None,
    models: str = "all",
    rebuild_features: bool = False,
    dry_run: bool = False,
    explain: str = "exact",
) -> dict:
    """Train the models of ``config`` (or of a plant bundle) on ``lake``'s gold tables, gate and
    register them, and score with the champions; the held-out evaluation as a dict.

    Parameters
    ----------
    lake
        The lake with ``gold/*`` (feature tables are (re)built when missing, asked for, or built
        with another feature config).
    config
        A soft-sensor or PdM config file; the kind is detected from its keys (:func:`config_kind`).
        Default: the plant's ``softsensor.yaml`` (and then its PdM, or PdM ``skipped``).
    plant
        A plant bundle (folder, name under ``config/plants/`` or
        :class:`lakehouse.plant.PlantBundle`) whose signal catalog completes the config; None:
        the default plant (``cho-twin``: ``config/ml/softsensor.yaml``).
    models
        Soft sensor: comma list of targets (``"titer,g0f"``) or ``"all"``.
    rebuild_features
        Rebuild the feature table even if it fits.
    dry_run
        Evaluate only: do not register, promote or score.

    Returns
    -------
    dict
        JSON-safe: lake, config, kind, features info and per model its state (``promoted`` /
        ``rejected`` / ``skipped`` with the reason / ``trained``), held-out metrics, registered
        version, promotion decision and scores version.
    """
    from ml import pipeline
    from ml.plant import bundle_of, pdm_config, run_pdm, run_softsensors, softsensor_config

    bundle = bundle_of(plant)
    kind = config_kind(config) if config else "softsensor"
    out: dict = {"lake": lake.root, "plant": bundle.name, "kind": kind, "models": {}}
    if kind == "pdm":
        cfg = pdm_config(bundle, config)
        out["config"] = str(config)
        build = _needs_features(lake, pipeline.EQUIPMENT, cfg.features, rebuild_features, out)
        out["models"][cfg.model.name] = run_pdm(lake, cfg, register=not dry_run, build_features=build, explain=explain)
        return clean(out)
    cfg = softsensor_config(bundle, config)
    out["config"] = str(config or bundle.models.get("softsensor"))
    build = _needs_features(lake, pipeline.SOFTSENSOR, cfg.features, rebuild_features, out)
    targets = None if models == "all" else [t.strip() for t in models.split(",") if t.strip()]
    out["models"] = run_softsensors(
        lake, cfg, targets=targets, register=not dry_run, build_features=build, explain=explain
    )
    if config is None and models == "all":  # the whole plant: its PdM too (or why not)
        pcfg = pdm_config(bundle)
        build = pcfg.enabled and _needs_features(lake, pipeline.EQUIPMENT, pcfg.features, rebuild_features, {})
        out["models"][pcfg.model.name] = run_pdm(
            lake, pcfg, register=not dry_run, build_features=build, explain=explain
        )
    return clean(out)
