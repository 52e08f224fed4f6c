"""Train (and by default register + gate) models from a lake's gold tables with one config
file: what ``lakehouse train`` runs (the command line itself is ``bioprocess_cli``).

    run_train(Lake("data/lake"), "config/ml/softsensor.yaml")
    run_train(lake, "config/ml/pdm.yaml", dry_run=True)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lakehouse.jsonsafe import clean
from lakehouse.storage import Lake


def config_kind(path: str | Path) -> str:
    """``"pdm"`` or ``"softsensor"``: the kind of ML config file ``path``, from its keys."""
    with open(path) as fh:
        keys = set((yaml.safe_load(fh) or {}).keys())
    return "pdm" if keys & {"model", "evaluation"} and "titer" not in keys else "softsensor"


def _summary(model) -> dict:
    m = model.metrics
    if model.kind == "classifier":
        keys = (
            "horizon_days",
            "threshold",
            "scale_pos_weight",
            "n_train_rows",
            "n_train_pos",
            "n_test_rows",
            "split",
            "test",
            "baseline_test",
            "threshold_selection_events",
            "top_signals",
        )
    else:
        keys = (
            "target",
            "n_train_batches",
            "n_test_batches",
            "n_test_rows",
            "cv",
            "test",
            "baseline_test",
            "improvement_vs_baseline",
            "interval",
            "test_by_culture_day",
            "baseline_test_by_culture_day",
            "test_with_visible_result",
            "baseline_test_with_visible_result",
            "top_signals",
        )
    return {k: m[k] for k in keys if k in m}


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
    lake: Lake, config: str | Path | None, *, models: str = "all", rebuild_features: bool = False, dry_run: bool = False
) -> dict:
    """Train the models of ``config`` on ``lake``'s gold tables; the held-out evaluation as a dict.

    Parameters
    ----------
    lake
        The lake with ``gold/*`` (feature tables are (re)built when missing, asked for, or built
        with another feature config).
    config
        A soft-sensor or PdM config file (default ``config/ml/softsensor.yaml``); the kind is
        detected from its keys (:func:`config_kind`).
    models
        Soft sensor: comma list of targets (``"titer,g0f"``) or ``"all"``.
    rebuild_features
        Rebuild the feature table even if it fits.
    dry_run
        Evaluate only: do not register or promote.

    Returns
    -------
    dict
        JSON-safe: lake, config, kind, features info and per model its held-out metrics,
        registered version and promotion decision.
    """
    from ml import pipeline
    from ml.config import (
        DEFAULT_SOFTSENSOR_CONFIG,
        load_pdm_config,
        load_softsensor_config,
    )

    config = config or str(DEFAULT_SOFTSENSOR_CONFIG)
    kind = config_kind(config)
    out: dict = {"lake": lake.root, "config": str(config), "kind": kind, "models": {}}
    if kind == "pdm":
        cfg = load_pdm_config(config)
        if _needs_features(lake, pipeline.EQUIPMENT, cfg.features, rebuild_features, out):
            _, v, _ = pipeline.materialize_equipment_features(lake, cfg)
            out["features_version"] = v
        model, rec = pipeline.train_pdm_model(lake, cfg, do_register=not dry_run)
        results = {model.name: (model, rec)}
    else:
        cfg = load_softsensor_config(config)
        if _needs_features(lake, pipeline.SOFTSENSOR, cfg.features, rebuild_features, out):
            _, v, _ = pipeline.materialize_softsensor_features(lake, cfg)
            out["features_version"] = v
        targets = None if models == "all" else [t.strip() for t in models.split(",") if t.strip()]
        results = pipeline.train_softsensor_models(lake, cfg, targets=targets, do_register=not dry_run)
    for name, (model, rec) in results.items():
        entry = {"held_out": _summary(model)}
        if rec is not None:
            entry["registered_version"] = rec.version
            entry["promotion"] = pipeline.gate(lake, name, rec.version)
        out["models"][name] = entry
    return clean(out)
