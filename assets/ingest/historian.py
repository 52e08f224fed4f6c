"""bronze/historian_readings — daily partitions (UTC), backfills of a range run as ONE run."""

import dagster as dg

from assets.ingest._common import (
    DEFAULT_LANDING_DEPS,
    DEFAULT_TAGMAP,
    GROUP,
    bronze_key,
    landing_deps,
    make_context,
    quarantine_check_spec,
    results,
    run_ingest,
)
from assets.resources import LakeResource
from twin.site.config import SiteConfig

DEFAULT_START_DATE = SiteConfig().start  # the site defaults live in twin.site.SiteConfig
TABLE = "historian_readings"


def historian_partitions(start_date: str | None = None, end_date: str | None = None) -> dg.DailyPartitionsDefinition:
    """UTC days from ``start_date`` (default: the site's default start date) up to ``end_date``
    (exclusive: where the data ends, e.g. a simulated site's last day + 1) or, without it, up to
    and including today (a plant whose historian keeps exporting)."""
    start = start_date or DEFAULT_START_DATE
    if end_date:
        return dg.DailyPartitionsDefinition(start_date=start, end_date=end_date, timezone="UTC")
    return dg.DailyPartitionsDefinition(start_date=start, timezone="UTC", end_offset=1)


class HistorianIngestConfig(dg.Config):
    tagmap: str = DEFAULT_TAGMAP  # path (relative to the project root) of the tag map YAML


def build_historian_asset(partitions: dg.DailyPartitionsDefinition, deps=DEFAULT_LANDING_DEPS) -> dg.AssetsDefinition:
    @dg.asset(
        key=bronze_key(TABLE),
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=landing_deps(deps),
        check_specs=[quarantine_check_spec(TABLE)],
        kinds={"delta", "python"},
        description="Historian long-format day files → bronze/historian_readings (canonical "
        "parameter + unit via the tag map), exactly once per file version; Delta "
        "partition column `date`. A range of days runs as one run.",
    )
    def historian_readings(context: dg.AssetExecutionContext, lake: LakeResource, config: HistorianIngestConfig):
        days = set(context.partition_keys)
        report = run_ingest(
            context,
            lake.get_lake(),
            ["historian"],
            make_context(config.tagmap),
            predicate=lambda f: f.meta.get("day") in days,
        )
        span = f"{min(days)}..{max(days)}" if len(days) > 1 else next(iter(days))
        yield from results(report, [TABLE], lake.get_lake(), extra={"partitions": span})

    return historian_readings
