"""A cheap guard against accidental renames: the code location's asset keys (group,
partitioning, upstream keys), asset checks, jobs, schedules and sensors equal a committed
snapshot (``code_location.snapshot.json``).

A deliberate change (a new asset, a renamed check) updates the snapshot on purpose::

    LAKEHOUSE_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/foundation/test_code_location_snapshot.py

and the diff of the JSON file shows the change in review.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("code_location.snapshot.json")
UPDATE = "LAKEHOUSE_UPDATE_SNAPSHOT"


def code_location_outline(defs) -> dict:
    """What the snapshot holds, from a ``dg.Definitions``."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
        }
    return {
        "assets": assets,
        "checks": sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys),
        "jobs": sorted(j.name for j in repo.get_all_jobs()),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        "sensors": sorted(s.name for s in repo.sensor_defs),
    }


def test_code_location_matches_snapshot():
    from orchestration.build import build_defs
    from orchestration.settings import Settings

    got = json.dumps(code_location_outline(build_defs(Settings())), indent=1, sort_keys=True) + "\n"
    if os.environ.get(UPDATE):
        SNAPSHOT.write_text(got)
    want = SNAPSHOT.read_text()
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "snapshot", "now", n=1))
        raise AssertionError(
            f"The code location changed (asset keys, checks, jobs, schedules or sensors):\n{diff}\n"
            f"If the change is deliberate, update the snapshot: {UPDATE}=1 .venv/bin/python -m pytest "
            f"tests/foundation/test_code_location_snapshot.py (and commit {SNAPSHOT.name})."
        )
