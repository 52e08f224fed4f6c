"""`make bench`: run every benchmark module, merge the figures into bench/results.json.

Each module runs in its own subprocess (clean memory, no shared warm caches between
benchmarks). A benchmark that fails is reported as failed with its error — never as a
zero figure — and the command exits non-zero. ``python -m bench integrity --quick``: the
benchmarks that honour ``BENCH_QUICK`` run small sizes (a smoke run, not figures to keep).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = [
    "bench_definitions",
    "bench_sim",
    "bench_ingest",
    "bench_integrity",
    "bench_dbt",
    "bench_ml",
    "bench_golden",
    "bench_plant2",
    "bench_forecast",
    "bench_spark",
    "bench_live",
]


def main(argv: list[str]) -> int:
    # --quick: small sizes for the benchmarks that honour BENCH_QUICK (a smoke run, not figures to keep)
    env = {**os.environ, "BENCH_QUICK": "1"} if "--quick" in argv else None
    argv = [a for a in argv if a != "--quick"]
    selected = [a if a.startswith("bench_") else f"bench_{a}" for a in argv] or [
        m for m in MODULES if (HERE / f"{m}.py").exists()
    ]
    unknown = [m for m in selected if m not in MODULES]
    if unknown:  # `python -m bench ml spark` = bench_ml + bench_spark
        print(f"unknown benchmark(s) {unknown}; choose from {MODULES} (the bench_ prefix is optional)")
        return 2
    results: dict[str, object] = {}
    failures: dict[str, str] = {}
    for i, name in enumerate(selected, 1):
        print(f"[{i}/{len(selected)}] {name} ...", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", f"import json, bench.{name} as m; print('@@' + json.dumps(m.run()))"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            env=env,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
        if proc.returncode != 0 or not lines:
            failures[name] = (proc.stderr or proc.stdout)[-2000:]
            print(f"    FAILED after {time.perf_counter() - t0:.0f}s:\n{failures[name]}", flush=True)
            continue
        figures = json.loads(lines[-1][2:])
        clash = sorted(set(figures) & set(results))
        if clash:  # one key, one figure: two benchmarks must not report under the same name
            failures[name] = f"figure names already reported by another benchmark: {clash}"
            print(f"    FAILED: {failures[name]}", flush=True)
            continue
        results.update(figures)
        print(f"    done in {time.perf_counter() - t0:.0f}s: {json.dumps(figures)}", flush=True)
    out = HERE / "results.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))
    print(f"wrote {out}")
    if failures:
        print(f"failed benchmarks: {sorted(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
