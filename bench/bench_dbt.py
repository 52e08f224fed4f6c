"""Benchmark of the dbt process model (dbt-duckdb over bronze Delta tables).

Figures (``run() -> dict``; ``python bench/bench_dbt.py`` prints JSON):

* ``dbt_build_s`` — wall time of a full ``dbt build`` (models, data tests, unit tests) on a
  lake holding N days of bronze data (default N = 30, 4 bioreactors, 19 tags at 1-minute
  resolution ≈ 3.3 M historian rows);
* ``incremental_day_ratio`` — time of the ``dbt build`` that adds one more day to the N-day
  lake divided by the time of the same build adding the same day to a lake of 1 day (target
  ≤ 1.5: a new day must not rebuild history). Both lakes receive identical day files (the
  1-day lake holds day N only), each measured ``repeats`` times (days N+1, N+2, …; median).
* ``incremental_day_ratio_models`` — the same ratio on the summed model execution times from
  dbt's run_results.json (without dbt's fixed start-up/parse cost).

dbt runs exactly as the Dagster asset runs it: the dbt CLI in a subprocess, the lake root and
DuckDB file passed through the environment (``lakehouse.warehouse.dbt_env``). The
bronze data come from the transform tests' fixture generator (``tests/transform``).
Environment knobs: BENCH_DBT_DAYS, BENCH_DBT_UNITS, BENCH_DBT_REPEATS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "transform"))

import bronze_fixture as bf

from lakehouse.storage import Lake
from lakehouse.warehouse import DBT_PROJECT_DIR, dbt_env, missing_bronze_tables

DBT = str(Path(sys.executable).parent / "dbt")


def _dbt_build(lake: Lake, warehouse: Path, target: Path) -> dict:
    env = {**os.environ, **dbt_env(lake, warehouse, missing_bronze_tables(lake))}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [DBT, "build", "--target-path", str(target)],
        cwd=DBT_PROJECT_DIR,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{proc.stdout[-4000:]}")
    results = json.loads((target / "run_results.json").read_text())["results"]
    models = sum(r["execution_time"] for r in results if r["unique_id"].startswith("model."))
    return {"wall_s": wall, "models_s": models, "nodes": len(results)}


def run(n_days: int | None = None, n_units: int | None = None, repeats: int | None = None) -> dict:
    n_days = n_days or int(os.environ.get("BENCH_DBT_DAYS", "30"))
    n_units = n_units or int(os.environ.get("BENCH_DBT_UNITS", "4"))
    repeats = repeats or int(os.environ.get("BENCH_DBT_REPEATS", "2"))
    # 4-day batches (3.5 d culture), units staggered by a day: one batch closes every day
    plant = bf.Plant(n_units=n_units, culture_days=3.5, turnaround_h=12.0, stagger_h=24.0)
    first = dt.date(2026, 1, 1)
    last = first + dt.timedelta(days=n_days - 1)

    with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
        tmp = Path(tmp)
        big, small = Lake(str(tmp / "lake_n")), Lake(str(tmp / "lake_1"))
        t0 = time.perf_counter()
        counts = bf.write_bulk(big, first, n_days, plant)
        bf.write_bulk(small, last, 1, plant)  # the 1-day lake holds day N only
        gen_s = time.perf_counter() - t0

        wh_big, wh_small = tmp / "big.duckdb", tmp / "small.duckdb"
        tgt_big, tgt_small = tmp / "target_big", tmp / "target_small"
        full_big = _dbt_build(big, wh_big, tgt_big)
        full_small = _dbt_build(small, wh_small, tgt_small)

        inc_big, inc_small = [], []
        for i in range(1, repeats + 1):
            day = last + dt.timedelta(days=i)
            for lake, wh, tgt, out in ((big, wh_big, tgt_big, inc_big), (small, wh_small, tgt_small, inc_small)):
                bf.write_days(lake, day, 1, plant)
                out.append(_dbt_build(lake, wh, tgt))

    med = lambda xs, k: statistics.median(x[k] for x in xs)
    return {
        "dbt_build_s": round(full_big["wall_s"], 2),
        "incremental_day_ratio": round(med(inc_big, "wall_s") / med(inc_small, "wall_s"), 3),
        "incremental_day_ratio_models": round(med(inc_big, "models_s") / med(inc_small, "models_s"), 3),
        "incremental_day_s_n_days": round(med(inc_big, "wall_s"), 2),
        "incremental_day_s_1_day": round(med(inc_small, "wall_s"), 2),
        "dbt_build_models_s": round(full_big["models_s"], 2),
        "dbt_build_1_day_s": round(full_small["wall_s"], 2),
        "n_days": n_days,
        "n_units": n_units,
        "dbt_bench_repeats": repeats,
        "historian_rows": counts.get("historian_readings", 0),
        "dbt_nodes": full_big["nodes"],
        "data_generation_s": round(gen_s, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
