"""How long loading the code location takes: what every CLI call, UI reload and test pays.

``definitions_import_s``: a fresh interpreter imports ``orchestration.definitions`` (which
builds ``defs`` for the environment's settings) with a built dbt manifest (prepared once
before the timing; goal ≤ 5 s). ``definitions_dagster_floor_s``: the same fresh interpreter
importing only ``dagster`` and ``dagster_dbt`` — the part no project change can remove —
measured in the same run, so the ratio shows the project's own share on a busy machine.
Median of ``BENCH_DEFS_REPEATS`` (default 3) fresh processes each; the 1-minute load average
is reported next to the figures.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TIMED = (
    "import time, warnings; warnings.simplefilter('ignore'); t = time.perf_counter(); {stmt}; "
    "print('@@', time.perf_counter() - t)"
)


def _seconds(stmt: str) -> tuple[float, float]:
    """Wall seconds of the import inside a fresh interpreter, and the CPU seconds (user + system)
    of that whole child process (interpreter start-up included: an upper bound of the import's)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(stmt=stmt)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return float(next(ln for ln in out.stdout.splitlines() if ln.startswith("@@")).split()[1]), cpu


def run(repeats: int | None = None) -> dict:
    """Figures ``definitions_import_s``, ``definitions_dagster_floor_s`` (wall, median), their CPU
    seconds ``definitions_import_cpu_s`` / ``definitions_dagster_floor_cpu_s`` (what a quiet
    machine's wall time would be: far less sensitive to other load) and ``definitions_load_avg_1m``."""
    repeats = repeats or int(os.environ.get("BENCH_DEFS_REPEATS", "3"))
    # build the manifest first (a fresh clone parses once; that is not what is measured)
    subprocess.run(
        [sys.executable, "-c", "from assets.transform.dbt_models import prepared_manifest; prepared_manifest()"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    load = [os.getloadavg()[0]]
    full = [_seconds("import orchestration.definitions") for _ in range(repeats)]
    floor = [_seconds("import dagster, dagster_dbt.asset_decorator") for _ in range(repeats)]
    full_cpu, floor_cpu = [c for _, c in full], [c for _, c in floor]
    full, floor = [w for w, _ in full], [w for w, _ in floor]
    load.append(os.getloadavg()[0])
    return {
        "definitions_import_s": round(statistics.median(full), 2),
        "definitions_dagster_floor_s": round(statistics.median(floor), 2),
        "definitions_import_cpu_s": round(statistics.median(full_cpu), 2),
        "definitions_dagster_floor_cpu_s": round(statistics.median(floor_cpu), 2),
        "definitions_load_avg_1m": round(max(load), 2),
    }


if __name__ == "__main__":
    print(run())
