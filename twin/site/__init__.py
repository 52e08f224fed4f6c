"""Site simulator: N fed-batch bioreactors, Protein A capture and UF/DF over a date range.

It plans every unit's time line (preparation, inoculation, culture, harvest, turnaround),
lets equipment degrade and fail (``twin.equipment``), injects process deviations
(``twin.deviations``), integrates all batches in one vectorised call
(``twin.bioreactor.simulate_batches``), runs the downstream steps on the harvests
(``twin.downstream``) and writes the landing zone exactly as ``docs/contracts.md`` specifies,
plus the simulator's ground truth under ``landing/_truth/``.

Everything is deterministic for a seed: every random stream is derived from
``(seed, stream, unit, ...)`` so that output files are byte-identical between runs.

Modules: :mod:`twin.site.config` (``SiteConfig``: the site defaults; recipe variation),
:mod:`twin.site.plan` (planning and simulation), :mod:`twin.site.write` (the landing zone).
Entry points: :func:`simulate_site` (write the landing zone) and :func:`plan_site` (the planned,
simulated site in memory: what a live server plays, see ``twin.live``).

Names are imported on first use (PEP 562): ``twin.site.config`` alone (what the Dagster
resources need for ``SiteConfig``) does not load the planner, the historian and pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECIPE_VARIATION": "twin.site.config",
    "ProgressFn": "twin.site.config",
    "SiteConfig": "twin.site.config",
    "vary_recipe": "twin.site.config",
    "vary_recipes": "twin.site.config",
    "Failure": "twin.site.plan",
    "PlannedBatch": "twin.site.plan",
    "SitePlan": "twin.site.plan",
    "WorkOrderRec": "twin.site.plan",
    "_Planner": "twin.site.plan",
    "plan_site": "twin.site.plan",
    "SiteSummary": "twin.site.write",
    "simulate_site": "twin.site.write",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its submodule on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'twin.site' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The exported names (for completion and ``help``)."""
    return sorted(set(globals()) | set(_EXPORTS))
