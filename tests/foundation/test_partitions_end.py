"""The historian's daily partitions end where the data ends: the simulated site's last day
(the catalog shows no "missing" days past it); a plant's own historian runs on to today."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets.resources import SiteResource
from orchestration.build import build_defs
from orchestration.settings import Settings

HIST = dg.AssetKey(["bronze", "historian_readings"])


def _keys(settings: Settings) -> list[str]:
    return build_defs(settings).resolve_assets_def(HIST).partitions_def.get_partition_keys()


def test_twin_partitions_end_with_the_sites_data():
    settings = Settings(site=SiteResource(source="twin", start_date="2026-01-01", days=90))
    keys = _keys(settings)
    assert (keys[0], keys[-1]) == settings.partition_range() == ("2026-01-01", "2026-03-31")
    assert len(keys) == 90


def test_a_plants_partitions_run_to_today():
    settings = Settings(site=SiteResource(source="external", start_date="2026-01-01", days=10))
    assert settings.partition_end_exclusive() is None
    assert _keys(settings)[-1] == dt.datetime.now(dt.UTC).date().isoformat()
