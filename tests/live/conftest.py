"""Fixtures of the live tests: a small planned twin site (1 bioreactor, 60 s interval)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from twin.site import SiteConfig, SitePlan, plan_site

SITE = SiteConfig(bioreactors=1, days=4, interval_s=60.0, seed=7)
SIM_START = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)   # one simulated day after the site start
UNKNOWN_SUFFIX = "AGIT.VIB"                                     # left out of the test tag map


@pytest.fixture(scope="session")
def live_plan() -> SitePlan:
    return plan_site(SITE)


@pytest.fixture
def tagmap_without_vibration(tmp_path) -> Path:
    """The twin's tag map minus one signal: its readings must go to quarantine."""
    root = Path(__file__).resolve().parents[2]
    d = yaml.safe_load((root / "config/tagmaps/twin.yaml").read_text())
    d["suffixes"].pop(UNKNOWN_SUFFIX)
    out = tmp_path / "tagmap.yaml"
    out.write_text(yaml.safe_dump(d))
    return out
