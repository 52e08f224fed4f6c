"""The Dagster code location of the workspace (``workspace.yaml``): ``defs`` for the settings
in the environment, built once when the code server loads this module.

The wiring itself is :func:`orchestration.build.build_defs` (explicit :class:`Settings`);
``lakehouse run`` calls it with its own settings and never imports this module.
"""

from __future__ import annotations

from orchestration.build import FULL_JOB, PLANT_JOB, TWIN_TRAINED_GROUPS, build_defs
from orchestration.settings import Settings

defs = build_defs(Settings.from_env())

__all__ = ["FULL_JOB", "PLANT_JOB", "TWIN_TRAINED_GROUPS", "build_defs", "defs"]
