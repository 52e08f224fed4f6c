"""The live plant in Dagster: running batches refreshed every minute from what the collector
landed in bronze (``lakehouse plant collect``), scored, monitored, forecast, and alerted on.

* ``live_refresh`` (multi-asset, group ``live``): ``silver/live_process_readings`` (the
  increment aligned), ``scores/live_softsensor``, ``scores/live_mspc``, ``scores/live_forecast``,
  ``scores/live_alerts`` — one call of :func:`ml.running.refresh_running`;
* job ``live_running_batches``: those assets only (never part of the full pipeline);
* sensor ``live_plant_sensor`` (every 60 s): requests a run when bronze moved since the last
  one and none is in flight; its cursor and the asset metadata show the collector's state and
  lag (``<lake>/_live/collector_status.json``);
* asset check ``live_alerts_raised_once``: one row per alert condition.
"""

import json

import dagster as dg
from pydantic import Field

from assets.resources import LakeResource, LiveAlertsResource
from assets.support import js, md_table, num

GROUP = "live"
JOB = "live_running_batches"
ALIGNED = dg.AssetKey(["silver", "live_process_readings"])
SOFTSENSOR = dg.AssetKey(["scores", "live_softsensor"])
MSPC = dg.AssetKey(["scores", "live_mspc"])
FORECAST = dg.AssetKey(["scores", "live_forecast"])
ALERTS = dg.AssetKey(["scores", "live_alerts"])
BRONZE = dg.AssetKey(["bronze", "historian_readings"])


class LiveConfig(dg.Config):
    """How the running batches are refreshed."""

    softsensor_config: str = Field(default="", description="Soft-sensor YAML (default config/ml/softsensor.yaml).")
    grid_s: float = Field(default=60.0, description="Alignment grid of the running batches [s].")
    n_draws: int = Field(default=100, description="Posterior draws of the twin mirror forecast.")
    forecast: bool = Field(default=True, description="Run the twin mirror forecast.")


def _collector_metadata(lake) -> dict:
    from lakehouse.live import read_status

    s = read_status(lake)
    if not s:
        return {"collector_state": "no collector status in this lake"}
    return {
        "collector_state": s.get("state"),
        "collector_max_lag_s": num(s.get("max_lag_s")),
        "collector_rows_committed": int(s.get("rows_committed") or 0),
        "collector_reconnects": int(s.get("reconnects") or 0),
        "collector_last_commit_at": str(s.get("last_commit_at")),
        "collector_server_time": str(s.get("server_time")),
        "collector_last_error": str(s.get("last_error") or ""),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ALIGNED,
            group_name=GROUP,
            kinds={"python", "delta"},
            deps=[BRONZE],
            description="Running batches' readings on the grid, appended as complete steps arrive.",
        ),
        dg.AssetSpec(
            SOFTSENSOR,
            group_name=GROUP,
            kinds={"xgboost", "delta"},
            deps=[ALIGNED],
            description="Champion soft-sensor predictions with intervals for every new grid step.",
        ),
        dg.AssetSpec(
            MSPC,
            group_name=GROUP,
            kinds={"python", "delta"},
            deps=[ALIGNED],
            description="MSPC of the partial batches: T², SPE, limits, alarms and top contributions.",
        ),
        dg.AssetSpec(
            FORECAST,
            group_name=GROUP,
            kinds={"python", "delta"},
            deps=[ALIGNED],
            description="Twin mirror: harvest titer / CQA forecasts with bands, updated each minute.",
        ),
        dg.AssetSpec(
            ALERTS,
            group_name=GROUP,
            kinds={"python", "delta"},
            deps=[MSPC, FORECAST],
            description="Alerts, once per condition, with evidence and the twin's ranked corrective scenarios.",
        ),
    ],
    check_specs=[dg.AssetCheckSpec("live_alerts_raised_once", asset=ALERTS)],
)
def live_refresh(context: dg.AssetExecutionContext, lake: LakeResource, alerts: LiveAlertsResource, config: LiveConfig):
    """One increment: align the new complete grid steps of the running batches and score them."""
    from lakehouse.live import alerts as live
    from ml.config import DEFAULT_SOFTSENSOR_CONFIG, load_softsensor_config
    from ml.running import refresh_running

    lk = lake.get_lake()
    cfg = load_softsensor_config(config.softsensor_config or DEFAULT_SOFTSENSOR_CONFIG)
    rep = refresh_running(
        lk,
        cfg,
        grid_s=config.grid_s,
        webhook_url=alerts.webhook_url or None,
        n_draws=config.n_draws,
        forecast=config.forecast,
    )
    context.log.info("running batches %s: %s", rep.batches, rep.seconds)
    common = {"running_batches": js(rep.batches), "skipped": js(rep.skipped), "versions": js(rep.versions)}
    yield dg.MaterializeResult(
        asset_key=ALIGNED,
        metadata={
            **common,
            "rows_added": rep.aligned["rows_added"],
            "steps_added": js(rep.aligned["steps_added"]),
            "complete_until": js(rep.aligned["complete_until"]),
            "increment_seconds": num(rep.seconds.get("total")),
            "seconds": js(rep.seconds),
            **_collector_metadata(lk),
        },
    )
    yield dg.MaterializeResult(
        asset_key=SOFTSENSOR,
        metadata={**common, "rows_added": rep.predictions, "latest": js(rep.latest)},
    )
    yield dg.MaterializeResult(asset_key=MSPC, metadata={**common, "steps_added": rep.mspc_steps})
    yield dg.MaterializeResult(asset_key=FORECAST, metadata={**common, "forecasts_added": rep.forecasts})
    table = live.read_live(lk, live.ALERTS)
    md = {
        **common,
        "alerts_new": len(rep.alerts_new),
        "alerts_total": table.height,
        "webhook_delivered": rep.webhook_delivered,
        "webhook_configured": bool(alerts.webhook_url),
    }
    if table.height:
        recent = table.sort("raised_at", descending=True).select(
            "raised_at", "batch_id", "severity", "what", "recommendation"
        )
        md["recent_alerts"] = dg.MetadataValue.md(md_table(recent.to_pandas(), n=10))
    yield dg.MaterializeResult(asset_key=ALERTS, metadata=md)
    import polars as pl

    dup = table.group_by("alert_id").len().filter(pl.col("len") > 1) if table.height else table
    yield dg.AssetCheckResult(
        check_name="live_alerts_raised_once",
        asset_key=ALERTS,
        passed=bool(table.height == 0 or dup.height == 0),
        metadata={"alerts": table.height, "duplicated_conditions": dup.height if table.height else 0},
    )


live_job = dg.define_asset_job(
    JOB,
    selection=dg.AssetSelection.groups(GROUP),
    description="Refresh the running batches: align the new data, soft sensors, MSPC, twin forecast, alerts.",
)


@dg.sensor(job=live_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def live_plant_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    """Run the running-batch job when the collector committed since the last run (and no run
    of it is in flight); the cursor keeps the bronze version and the collector's state."""
    from lakehouse.live import read_status

    lk = lake.get_lake()
    uri = lk.table_uri("bronze", "historian_readings")
    if not lk.delta_exists(uri):
        return dg.SkipReason("no bronze historian_readings yet: start `lakehouse plant collect`")
    version = lk.delta_table(uri).version()
    last = json.loads(context.cursor) if context.cursor else {}
    status = read_status(lk) or {}
    state = {
        "bronze_version": version,
        "collector_state": status.get("state"),
        "max_lag_s": status.get("max_lag_s"),
        "server_time": status.get("server_time"),
    }
    if last.get("bronze_version") == version:
        context.update_cursor(json.dumps({**last, **state}))
        return dg.SkipReason(f"bronze unchanged (v{version}); collector {status.get('state')}")
    in_flight = context.instance.get_runs(
        filters=dg.RunsFilter(
            job_name=JOB,
            statuses=[
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        ),
        limit=1,
    )
    if in_flight:
        return dg.SkipReason("a running-batch refresh is still in flight")
    context.update_cursor(json.dumps(state))
    return dg.RunRequest(run_key=f"live-bronze-v{version}", tags={"lakehouse/bronze_version": str(version)})


defs = dg.Definitions(assets=[live_refresh], jobs=[live_job], sensors=[live_plant_sensor])
