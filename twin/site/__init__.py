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
"""

from twin.site.config import RECIPE_VARIATION, ProgressFn, SiteConfig, vary_recipe, vary_recipes
from twin.site.plan import Failure, PlannedBatch, SitePlan, WorkOrderRec, _Planner, plan_site
from twin.site.write import SiteSummary, simulate_site

__all__ = [
    "RECIPE_VARIATION",
    "Failure",
    "PlannedBatch",
    "ProgressFn",
    "SiteConfig",
    "SitePlan",
    "SiteSummary",
    "WorkOrderRec",
    "_Planner",
    "plan_site",
    "simulate_site",
    "vary_recipe",
    "vary_recipes",
]
