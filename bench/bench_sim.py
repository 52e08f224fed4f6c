"""Benchmark of the digital twin: site simulation throughput and in-silico batch throughput.

* ``sim_readings_per_s``: historian readings per second of the *whole* default site run
  (4 bioreactors, 90 days, 60 s interval: simulate every culture + downstream + write every
  landing file as CSV/JSON/parquet to a temporary local folder), end to end.
* ``sim_insilico_batches_per_s``: whole 12-16 day batches per second of one
  ``simulate_batches`` call with 1000 recipes sampled in the design space (default resolution:
  RK4 at 0.25 h, hourly records).

Run: ``python -m bench.bench_sim`` (prints JSON) or through ``make bench``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time

import numpy as np


def bench_site() -> dict[str, float]:
    from twin.site import SiteConfig, simulate_site

    out = tempfile.mkdtemp(prefix="bench-sim-")
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = simulate_site(out, SiteConfig())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "sim_readings_per_s": round(summary.historian_readings / wall),
        "sim_default_site_s": round(wall, 2),
        "sim_default_site_cpu_s": round(cpu, 2),  # CPU of all threads: robust on a shared host
        "sim_historian_readings": summary.historian_readings,
        "sim_bytes_written": summary.bytes_written,
    }


def bench_insilico(n: int = 1000, seed: int = 0) -> dict[str, float]:
    from twin.bioreactor import DESIGN_SPACE, simulate_batches

    rng = np.random.default_rng(seed)
    recipes = {k: rng.uniform(lo, hi, n) for k, (lo, hi) in DESIGN_SPACE.items()}
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate_batches(recipes, seed=seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert res.n_batches == n
    return {
        "sim_insilico_batches_per_s": round(n / wall, 1),
        "insilico_1000_batches_s": round(wall, 2),
        "insilico_1000_batches_cpu_s": round(cpu, 2),
    }


def run() -> dict[str, float]:
    out = bench_site()
    out.update(bench_insilico())
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
