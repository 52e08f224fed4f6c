"""Fixtures of the twin tests: one small simulated site shared by the module tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from twin.site import SiteConfig, _Planner, simulate_site

SITE_DAYS = 60
SITE_UNITS = 3


def _seed_with_bearing_failure(days: int, units: int) -> int:
    """First seed whose plan has an agitator bearing failure with >= 3 weeks of history."""
    for seed in range(1, 200):
        cfg = SiteConfig(seed=seed, days=days, bioreactors=units)
        wos: list = []
        failures: list = []
        for u in range(units):
            _Planner(cfg, u, days * 24.0, wos, failures).plan()
        if any(
            f.failure_mode == "bearing_failure"
            and 25 * 24.0 <= f.failure_time <= (days - 3) * 24.0
            and f.degradation_start >= 0.0
            for f in failures
        ):
            return seed
    raise RuntimeError("no seed with a bearing failure found")


@pytest.fixture(scope="session")
def site_config() -> SiteConfig:
    seed = _seed_with_bearing_failure(SITE_DAYS, SITE_UNITS)
    return SiteConfig(seed=seed, days=SITE_DAYS, bioreactors=SITE_UNITS, interval_s=300.0)


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory, site_config: SiteConfig) -> Path:
    out = tmp_path_factory.mktemp("site")
    simulate_site(str(out), site_config)
    return out / "landing"


#: a small site for determinism / S3 / CLI tests
SMALL = SiteConfig(seed=11, days=5, bioreactors=2, interval_s=600.0)


@pytest.fixture(scope="session")
def small_config() -> SiteConfig:
    return SMALL


def _tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def tree_digest() -> Callable[[Path], dict[str, str]]:
    return _tree_digest


def _read_historian(path: Path) -> pd.DataFrame:
    """One historian CSV with typed columns (timestamp as UTC)."""
    t = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={
                "timestamp": pa.timestamp("ms", tz="UTC"),
                "tag": pa.string(),
                "value": pa.float64(),
                "unit": pa.string(),
                "quality": pa.int16(),
            }
        ),
    )
    return t.to_pandas()


@pytest.fixture(scope="session")
def read_historian() -> Callable[[Path], pd.DataFrame]:
    return _read_historian
