"""One plant, its YAML bundle: the ML steps the wiring (``lakehouse run --plant``, Dagster) calls.

A plant bundle ``config/plants/<name>/`` holds, next to the tag map, catalog and import config of
the ingestion side, the ML settings (schemas in docs/ml.md and docs/golden-batch.md):

* ``softsensor.yaml`` — :class:`ml.config.SoftSensorConfig` (feature lists default to the catalog);
* ``golden.yaml`` — golden batch and MSPC (signals default to the catalog);
* ``pdm.yaml`` — :class:`ml.config.PdMConfig` (optional: without it PdM is off for the plant).

Entry points (plain Python on a :class:`lakehouse.storage.Lake`; every outcome is a state with a
reason — ``promoted`` / ``rejected`` / ``skipped`` — never a crash on a plant that lacks data):

* :func:`load_plant_ml` — the three configs of a bundle, resolved against the plant's catalog;
* :func:`run_softsensors` — features → train (select, gate, fault batches apart) → register →
  promotion gate → scores (``scores/titer``, ``scores/harvest_cqa``) for the champions;
* :func:`run_pdm` — the same for PdM, or ``skipped`` with the reason;
* :func:`fit_monitoring` — golden-batch qualification, MSPC model, scores and alarms as frames
  (the wiring writes them where the golden-batch assets do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.config import PdMConfig, SoftSensorConfig, load_pdm_config, load_softsensor_config

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

    from lakehouse.plant import PlantBundle
    from lakehouse.storage import Lake


@dataclass
class PlantML:
    """The ML settings of one plant bundle (:class:`lakehouse.plant.PlantBundle`)."""

    name: str
    root: Path
    softsensor: SoftSensorConfig
    golden: dict
    pdm: PdMConfig


def bundle_of(plant: Any = None) -> PlantBundle:
    """``plant`` as a loaded :class:`~lakehouse.plant.PlantBundle`: a bundle is returned as it is,
    a folder or bundle name is loaded (``lakehouse.plant.load_plant``), None is the default plant."""
    from lakehouse.plant import PlantBundle, default_plant, load_plant

    if isinstance(plant, PlantBundle):
        return plant
    return default_plant() if plant is None else load_plant(plant)


def softsensor_config(plant: Any = None, path: str | Path | None = None) -> SoftSensorConfig:
    """The plant's soft-sensor config (``path`` if given, else its bundle's ``softsensor.yaml`` —
    ``models.softsensor`` of ``plant.yaml``), feature lists it leaves out from its catalog."""
    bundle = bundle_of(plant)
    path = path or bundle.models.get("softsensor")
    if path is None:
        raise FileNotFoundError(f"plant bundle {bundle.root} has no softsensor.yaml (models.softsensor)")
    return load_softsensor_config(path, bundle.catalog)


def pdm_config(plant: Any = None, path: str | Path | None = None) -> PdMConfig:
    """The plant's PdM config (``path``, else its bundle's ``pdm.yaml``); PdM is off (``enabled:
    false``) for a plant whose bundle has none."""
    bundle = bundle_of(plant)
    path = path or bundle.models.get("pdm")
    return load_pdm_config(path) if path else PdMConfig(enabled=False)


def golden_config(plant: Any = None, path: str | Path | None = None) -> dict:
    """The plant's golden-batch / MSPC config (``path``, else its bundle's ``golden.yaml``; the
    built-in defaults without one), signal lists it leaves out from its catalog."""
    from ml import golden as gb

    bundle = bundle_of(plant)
    # a bundle without golden.yaml: the built-in defaults (load_config reads no missing file)
    return gb.load_config(path or bundle.models.get("golden") or bundle.root / "golden.yaml", catalog=bundle.catalog)


def load_plant_ml(plant: Any = None) -> PlantML:
    """The ML settings of a plant bundle: ``softsensor.yaml``, ``golden.yaml`` and (optional)
    ``pdm.yaml``, resolved against the plant's signal catalog.

    Parameters
    ----------
    plant
        A :class:`lakehouse.plant.PlantBundle` (as ``LakeResource.get_plant()`` gives it), a bundle
        folder or a bundle name under ``config/plants/``; None: the default plant (``cho-twin``).

    Raises
    ------
    FileNotFoundError
        The bundle has no soft-sensor config.
    """
    bundle = bundle_of(plant)
    return PlantML(bundle.name, bundle.root, softsensor_config(bundle), golden_config(bundle), pdm_config(bundle))


def held_out_summary(model) -> dict:
    """The held-out evaluation of a trained model as ``lakehouse train`` prints it."""
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


def _outcome(model, rec, decision: dict | None) -> dict:
    m = model.metrics
    out = {
        "model_name": model.name,
        "held_out": held_out_summary(model),
    }
    if model.kind != "classifier":
        out |= {
            "selected": m.get("selection", {}).get("chosen"),
            "n_fault_batches": m.get("n_fault_batches", 0),
            "test_rmse": m["test"]["rmse"],
            "baseline_rmse": m["baseline_test"]["rmse"],
            "mean_trajectory_rmse": m.get("baseline_mean_trajectory_test", {}).get("rmse"),
            "interval_coverage": m["interval"]["coverage_test"],
            "fault": {k: m[k] for k in ("fault", "fault_post_onset") if k in m},
        }
    if rec is None:
        return out | {"state": "trained", "reason": "not registered (dry run)"}
    return out | {
        "registered_version": rec.version,
        "promotion": decision,
        "state": "promoted" if decision["promoted"] else "rejected",
        "reason": decision["reason"],
        "champion_in_service": decision["has_champion_after"],
    }


def run_softsensors(
    lake: Lake,
    cfg: SoftSensorConfig,
    *,
    targets: list[str] | None = None,
    register: bool = True,
    build_features: bool = True,
    explain: str = "exact",
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Train, gate, register and score the soft sensors of ``cfg`` on the lake's gold tables.

    Fault batches (``cfg.batches``) are kept out of training and reported per model. A target
    without enough data is ``skipped`` with the reason. Scores are written for the champions
    (``scores/titer`` for the online sensor, ``scores/harvest_cqa``) after the gate.

    Parameters
    ----------
    targets
        Assay targets to train (default: the titer target and every harvest target).
    register
        False: evaluate only (no registry row, no gate, no scores).
    build_features
        Build ``features/softsensor`` from gold first (False: use the table as it is).

    Returns
    -------
    dict
        Per model name: ``state`` (``promoted`` / ``rejected`` / ``skipped`` / ``trained``),
        ``reason``, the held-out evaluation (``held_out``) next to both baselines, the
        fault-batch figures, the promotion decision and, when written, ``scores_version``.
    """
    from ml import pipeline
    from ml.train import InsufficientData

    say = progress or (lambda _msg: None)
    if build_features:
        say("features/softsensor")
        pipeline.materialize_softsensor_features(lake, cfg)
    conditions = pipeline.lake_conditions(lake, cfg)
    out: dict[str, dict] = {}
    every = [cfg.titer.target, *[t for t in cfg.harvest.targets if t != cfg.titer.target]]
    for t in targets or every:
        name = cfg.titer.name if t == cfg.titer.target else f"{cfg.harvest.name_prefix}{t}"
        say(f"train {name}")
        try:
            trained = pipeline.train_softsensor_models(
                lake, cfg, targets=[t], do_register=register, conditions=conditions
            )
        except InsufficientData as exc:
            out[name] = {"model_name": name, "state": "skipped", "reason": str(exc)}
            continue
        ((model, rec),) = trained.values()
        out[name] = _outcome(model, rec, pipeline.gate(lake, model.name, rec.version) if register else None)
    if register:
        if out.get(cfg.titer.name, {}).get("champion_in_service"):
            say("scores/titer")
            _, out[cfg.titer.name]["scores_version"] = pipeline.score_titer_table(lake, cfg, explain=explain)
        if any(o.get("champion_in_service") for n, o in out.items() if n != cfg.titer.name):
            say("scores/harvest_cqa")
            _, v = pipeline.score_harvest_table(lake, cfg, explain=explain)
            for n, o in out.items():
                if n != cfg.titer.name and o.get("champion_in_service"):
                    o["scores_version"] = v
    return out


def run_pdm(
    lake: Lake, cfg: PdMConfig, *, register: bool = True, build_features: bool = True, explain: str = "exact"
) -> dict:
    """PdM for a plant: ``skipped`` with the reason (disabled, no CMMS data, too few failures or
    days), else features → train → register → gate → ``scores/pdm`` (for a champion)."""
    from ml import pipeline
    from ml.train import InsufficientData

    reason = pipeline.pdm_skip_reason(lake, cfg)
    if reason:
        return {"model_name": cfg.model.name, "state": "skipped", "reason": reason}
    if build_features:
        pipeline.materialize_equipment_features(lake, cfg)
    try:
        model, rec = pipeline.train_pdm_model(lake, cfg, do_register=register)
    except InsufficientData as exc:
        return {"model_name": cfg.model.name, "state": "skipped", "reason": str(exc)}
    out = _outcome(model, rec, pipeline.gate(lake, model.name, rec.version) if register else None)
    if out.get("champion_in_service"):
        _, out["scores_version"] = pipeline.score_pdm_table(lake, cfg, explain=explain)
    return out


def fit_monitoring(
    readings: pl.DataFrame, batches: pl.DataFrame, deviations: pl.DataFrame | None, cfg: dict
) -> dict[str, Any]:
    """Golden batch + MSPC of a plant from gold-shaped frames (the wiring writes the results).

    Returns ``qualification`` (who qualifies and why), ``reference_batches`` (in spec and normal),
    ``model`` (:class:`ml.mspc.MSPCModel`), ``scores`` (T²/SPE per batch and bin) and ``alarms``;
    with fewer than 4 reference batches ``state`` is ``skipped`` with the reason.
    """
    import polars as pl

    from ml import golden as gb
    from ml import mspc

    qual = gb.qualify_batches(batches, cfg)
    ref = gb.mspc_reference_ids(qual, batches, deviations, cfg)
    if len(ref) < 4:
        return {
            "state": "skipped",
            "qualification": qual,
            "reference_batches": ref,
            "reason": f"insufficient data: {len(ref)} reference batch(es) (in spec, normal status, nothing "
            "recorded), MSPC needs >= 4",
        }
    mcfg = mspc.MSPCConfig.from_dict(cfg["mspc"])
    model = mspc.fit_mspc(mspc.align_for(mcfg, readings.filter(pl.col("batch_id").is_in(ref)), batch_ids=ref), mcfg)
    sc = mspc.score(model, mspc.align_for(model, readings))
    frame = sc.to_frame()
    frame["in_training"] = frame["batch_id"].isin(model.train_batches)
    return {
        "state": "fitted",
        "reason": f"{len(model.train_batches)} reference batches",
        "qualification": qual,
        "reference_batches": ref,
        "model": model,
        "scores": frame,
        "alarms": mspc.alarm_events(sc),
    }
