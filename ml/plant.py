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
from typing import Any

import pandas as pd
import polars as pl

from lakehouse.storage import Lake
from ml.config import PdMConfig, SoftSensorConfig, load_pdm_config, load_softsensor_config
from ml.train import InsufficientData

SOFTSENSOR_FILE, GOLDEN_FILE, PDM_FILE = "softsensor.yaml", "golden.yaml", "pdm.yaml"


@dataclass
class PlantML:
    """The ML settings of one plant bundle."""

    root: Path
    softsensor: SoftSensorConfig
    golden: dict
    pdm: PdMConfig


def load_plant_ml(plant_dir: str | Path, catalog: Any = None) -> PlantML:
    """Read a plant bundle's ``softsensor.yaml``, ``golden.yaml`` and (optional) ``pdm.yaml``.

    Parameters
    ----------
    plant_dir
        The bundle folder (``config/plants/<name>``).
    catalog
        The plant's signal catalog (``lakehouse.catalog.load_catalog``); feature and MSPC signal
        lists the YAML leaves out are generated from it.
    """
    from ml import golden as gb

    root = Path(plant_dir)
    ss_path = root / SOFTSENSOR_FILE
    if not ss_path.exists():
        raise FileNotFoundError(f"plant bundle {root} has no {SOFTSENSOR_FILE}")
    pdm = load_pdm_config(root / PDM_FILE) if (root / PDM_FILE).exists() else PdMConfig(enabled=False)
    return PlantML(
        root, load_softsensor_config(ss_path, catalog), gb.load_config(root / GOLDEN_FILE, catalog=catalog), pdm
    )


def _outcome(model, rec, decision: dict | None) -> dict:
    m = model.metrics
    out = {
        "model_name": model.name,
        "model_version": rec.version if rec else None,
        "selected": m.get("selection", {}).get("chosen"),
        "n_train_batches": m["n_train_batches"],
        "n_test_batches": m["n_test_batches"],
        "n_fault_batches": m.get("n_fault_batches", 0),
        "test_rmse": m["test"]["rmse"],
        "baseline_rmse": m["baseline_test"]["rmse"],
        "mean_trajectory_rmse": m.get("baseline_mean_trajectory_test", {}).get("rmse"),
        "interval_coverage": m["interval"]["coverage_test"],
        "fault": {k: m[k] for k in ("fault", "fault_post_onset") if k in m},
    }
    if decision is not None:
        out |= {
            "state": "promoted" if decision["promoted"] else "rejected",
            "reason": decision["reason"],
            "champion_in_service": decision["has_champion_after"],
        }
    else:
        out |= {"state": "trained", "reason": "not registered (dry run)"}
    return out


def run_softsensors(
    lake: Lake,
    cfg: SoftSensorConfig,
    *,
    register: bool = True,
    explain: str = "exact",
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Train, gate, register and score every soft sensor of ``cfg`` on the lake's gold tables.

    Fault batches (``cfg.batches``) are kept out of training and reported per model. A target
    without enough data is ``skipped`` with the reason. Scores are written for the champions
    (``scores/titer`` for the online sensor, ``scores/harvest_cqa``) after the gate.

    Returns
    -------
    dict
        Per model name: ``state`` (``promoted`` / ``rejected`` / ``skipped`` / ``trained``),
        ``reason``, held-out figures next to both baselines, the fault-batch figures and, when
        written, ``scores_version``.
    """
    from ml import pipeline

    say = progress or (lambda _msg: None)
    say("features/softsensor")
    pipeline.materialize_softsensor_features(lake, cfg)
    conditions = pipeline.lake_conditions(lake, cfg)
    out: dict[str, dict] = {}
    targets = [cfg.titer.target, *[t for t in cfg.harvest.targets if t != cfg.titer.target]]
    for t in targets:
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
        decision = pipeline.gate(lake, model.name, rec.version) if register else None
        out[name] = _outcome(model, rec, decision)
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


def run_pdm(lake: Lake, cfg: PdMConfig, *, register: bool = True, explain: str = "exact") -> dict:
    """PdM for a plant: ``skipped`` with the reason (disabled, no CMMS data, too few failures or
    days), else features → train → register → gate → ``scores/pdm``."""
    from ml import pipeline

    reason = pipeline.pdm_skip_reason(lake, cfg)
    if reason:
        return {"model_name": cfg.model.name, "state": "skipped", "reason": reason}
    pipeline.materialize_equipment_features(lake, cfg)
    try:
        model, rec = pipeline.train_pdm_model(lake, cfg, do_register=register)
    except InsufficientData as exc:
        return {"model_name": cfg.model.name, "state": "skipped", "reason": str(exc)}
    out = {
        "model_name": model.name,
        "model_version": rec.version if rec else None,
        "test_pr_auc": model.metrics["test"]["pr_auc"],
        "baseline_pr_auc": model.metrics["baseline_test"]["pr_auc"],
    }
    if not register:
        return out | {"state": "trained", "reason": "not registered (dry run)"}
    d = pipeline.gate(lake, model.name, rec.version)
    out |= {
        "state": "promoted" if d["promoted"] else "rejected",
        "reason": d["reason"],
        "champion_in_service": d["has_champion_after"],
    }
    if d["has_champion_after"]:
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
    frame: pd.DataFrame = sc.to_frame()
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
