"""Fixtures for the ML tests: a small synthetic site shaped like the gold marts, fast configs,
and lakes (local and the real SeaweedFS S3 server from tests/conftest.py) holding its gold tables."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import yaml

from lakehouse.storage import Lake
from ml.config import load_pdm_config, load_softsensor_config
from tests.support.ml_site import SyntheticSite, make_site

warnings.filterwarnings("ignore", category=UserWarning)

FAST_PARAMS = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.2, "n_jobs": 1, "seed": 0}


@pytest.fixture(scope="session")
def site() -> SyntheticSite:
    return make_site(n_batches=12, n_units=3, grid_minutes=10, seed=3, health_days=300)


@pytest.fixture(scope="session")
def config_paths(tmp_path_factory) -> tuple[Path, Path]:
    """Copies of config/ml/*.yaml with small models (fast tests), same features."""
    root = Path(__file__).resolve().parents[2] / "config" / "ml"
    out = tmp_path_factory.mktemp("mlcfg")
    ss = yaml.safe_load((root / "softsensor.yaml").read_text())
    ss["titer"]["params"] = FAST_PARAMS
    ss["harvest"]["params"] = FAST_PARAMS
    ss["harvest"]["targets"] = ["g0f", "hmw"]
    ss["validation"]["n_splits"] = 3
    ss["features"]["step_minutes"] = 120
    pdm = yaml.safe_load((root / "pdm.yaml").read_text())
    pdm["model"]["params"] = FAST_PARAMS
    (out / "softsensor.yaml").write_text(yaml.safe_dump(ss))
    (out / "pdm.yaml").write_text(yaml.safe_dump(pdm))
    return out / "softsensor.yaml", out / "pdm.yaml"


@pytest.fixture(scope="session")
def ss_cfg(config_paths):
    return load_softsensor_config(config_paths[0])


@pytest.fixture(scope="session")
def pdm_cfg(config_paths):
    return load_pdm_config(config_paths[1])


@pytest.fixture(scope="session")
def ss_features(site, ss_cfg):
    from ml.features import build_softsensor_features

    return build_softsensor_features(
        site.fct_process_readings, site.dim_batches, ss_cfg.features, site.fct_assay_results
    )


@pytest.fixture(scope="session")
def eq_features(site, pdm_cfg):
    from ml.features import build_equipment_health_features

    return build_equipment_health_features(site.fct_equipment_health_daily, site.fct_work_orders, pdm_cfg.features)


def write_gold(lake: Lake, site: SyntheticSite) -> None:
    from ml.pipeline import write_table

    lake.ensure_bucket()
    for name, df in site.gold().items():
        write_table(lake, "gold", name, df)


@pytest.fixture
def gold_lake_local(lake_local, site) -> Lake:
    write_gold(lake_local, site)
    return lake_local


def replace(obj, **kw):
    return dataclasses.replace(obj, **kw)


@pytest.fixture
def gold_writer():
    """``gold_writer(lake, site)`` writes the site's gold tables into a lake."""
    return write_gold
