"""`lakehouse run`: the main job on the embedded default, from a fresh clone.

Simulates the default twin site into the lake's landing zone (if it is not there yet),
materializes the whole asset graph in ONE Dagster run (the daily partitions as one
single-run backfill range), and prints a summary. Runs land in the project-local Dagster
instance ($DAGSTER_HOME, `.dagster_home/`), so `make ui` shows them afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestration.settings import PROJECT_ROOT, Settings


def dagster_home(environ: dict[str, str] | None = None) -> Path:
    """The Dagster instance folder: ``$DAGSTER_HOME`` or the project's ``.dagster_home/``, with
    the project's ``dagster.yaml`` copied in when it has none."""
    env = os.environ if environ is None else environ
    home = Path(env.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text((PROJECT_ROOT / "orchestration" / "dagster.yaml").read_text())
    return home


def run_main_job(settings: Settings, home: Path | None = None) -> int:
    """Materialize the whole asset graph for ``settings`` in one run and print the summary.

    Returns the exit code: 1 when a step failed, else 0. A candidate a promotion gate rejects
    is a check result (WARN, with the gate's figures in the summary), not a failed step.
    """
    import dagster as dg

    from orchestration.build import FULL_JOB, PLANT_JOB, build_defs
    from orchestration.summary import print_summary

    instance = dg.DagsterInstance.from_config(str(home or dagster_home()))
    defs = build_defs(settings)
    start, end = settings.partition_range()
    t0 = time.perf_counter()
    print(f"Materializing the whole asset graph (daily partitions {start} .. {end}) in one run ...", flush=True)
    job = PLANT_JOB if settings.site.source == "external" else FULL_JOB
    result = run_full_pipeline(defs, instance, start, end, job=job)
    elapsed = time.perf_counter() - t0
    print_summary(defs, result, elapsed)
    broken = sorted(failed_steps(result))
    if broken:
        print("\nFAILED steps:")
        for step in broken:
            print(f"  - {step}")
    status = "FAILED" if broken else "succeeded"
    print(f"\nDagster run {result.run_id} {status} in {elapsed:.0f}s.")
    print("Open the UI with `make ui` → http://127.0.0.1:3000 (runs, asset graph, checks, plots).")
    return 1 if broken else 0


def run_full_pipeline(defs, instance, start: str, end: str, log_level: str = "INFO", job: str | None = None):
    """Execute a pipeline job (default: full_pipeline) in-process over the daily partition
    range [start, end]."""
    from orchestration.build import FULL_JOB

    return defs.resolve_job_def(job or FULL_JOB).execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        raise_on_error=False,
        # step-level progress on the console, without Dagster's DEBUG event stream
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def failed_steps(result) -> set[str]:
    """Step keys that failed in the run."""
    return {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
