"""Fixtures of the live tests: a small planned twin site (1 bioreactor, 60 s interval)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from live_testutil import SITE, UNKNOWN_SUFFIX

from twin.site import SitePlan, plan_site


@pytest.fixture(scope="session")
def live_plan() -> SitePlan:
    return plan_site(SITE)


@pytest.fixture
def tagmap_without_vibration(tmp_path) -> Path:
    """The twin's tag map minus one signal: its readings must go to quarantine."""
    root = Path(__file__).resolve().parents[2]
    d = yaml.safe_load((root / "config/tagmaps/twin.yaml").read_text())
    d["suffixes"].pop(UNKNOWN_SUFFIX)
    d["catalog"] = str((root / "config/tagmaps" / d["catalog"]).resolve())  # the copy lives elsewhere
    out = tmp_path / "tagmap.yaml"
    out.write_text(yaml.safe_dump(d))
    return out
