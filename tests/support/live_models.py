"""Models for the live tests: a small MSPC model fitted on twin batches and a titer soft-sensor
champion trained (fast settings) on the synthetic ML site — real fits and a real registry,
small enough for a test."""

from __future__ import annotations

from pathlib import Path

import yaml

from lakehouse.storage import Lake

ROOT = Path(__file__).resolve().parents[2]
FAST_PARAMS = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.2, "n_jobs": 1, "seed": 0}


def fast_softsensor_config(out_dir: Path) -> Path:
    """config/ml/softsensor.yaml with small models (same features)."""
    ss = yaml.safe_load((ROOT / "config" / "ml" / "softsensor.yaml").read_text())
    ss["titer"]["params"] = FAST_PARAMS
    ss["harvest"]["params"] = FAST_PARAMS
    ss["validation"]["n_splits"] = 3
    ss["features"]["step_minutes"] = 120
    out = out_dir / "softsensor.yaml"
    out.write_text(yaml.safe_dump(ss))
    return out


def train_live_models(lake: Lake, cfg_dir: Path, n_mspc_batches: int = 24) -> dict:
    """Register a titer soft-sensor champion and save an MSPC model into ``lake``."""
    from ml import mspc
    from ml.golden import load_config
    from ml.pipeline import write_table
    from ml.workflow import run_train
    from tests.support.ml_site import make_site
    from tests.support.monitoring_set import simulate_monitoring_set

    lake.ensure_bucket()
    site = make_site(n_batches=12, n_units=3, grid_minutes=10, seed=3, health_days=300)
    for name, df in site.gold().items():
        write_table(lake, "gold", name, df)
    trained = run_train(lake, fast_softsensor_config(cfg_dir), models="titer")
    history = simulate_monitoring_set(n_mspc_batches, 0, seed=101, prefix="H")
    good = history["truth"].loc[~history["truth"]["deviating"], "batch_id"].tolist()
    mcfg = mspc.MSPCConfig.from_dict(load_config()["mspc"])
    model = mspc.fit_mspc(mspc.align_for(mcfg, history["readings"]), mcfg, batch_ids=good)
    mspc.save_to_lake(lake, model, "v1")
    return {"train": trained, "mspc_batches": len(good)}
