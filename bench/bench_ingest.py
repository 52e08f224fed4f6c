"""Bronze ingestion throughput vs. a plain parquet write of the same rows.

``run()`` generates historian day files (long format, contract layout) in a temporary local
landing zone, then times

* baseline: read + ``pyarrow.csv`` parse (column types given) + ``pyarrow.parquet.write_table``
  of all rows (same compression as bronze: zstd level 1);
* ingest: ``lakehouse.ingest.ingest_landing`` — listing, sha256, parse, tag mapping + unit
  conversion, pandera validation, quarantine split, lineage, ``write_deltalake`` (partitioned
  by date) with app transactions, ingest log.

Prints JSON: ``ingest_rows_per_s``, ``parquet_rows_per_s``, ``ingest_vs_parquet_ratio`` …
Environment: ``BENCH_INGEST_UNITS`` (10), ``BENCH_INGEST_DAYS`` (11) → 19 tags × 1440 min ×
units × days rows (≈3.0M by default).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lakehouse.ingest.readers import HIST_TYPES  # noqa: E402
from lakehouse.ingest.tagmap import CONTRACT_SUFFIXES  # noqa: E402
from lakehouse.ingest.units import PARAMETERS  # noqa: E402
from lakehouse.storage import Lake  # noqa: E402


def _day_file(unit_id: str, day: dt.date, rng: np.random.Generator) -> bytes:
    sufs = list(CONTRACT_SUFFIXES)
    n_min = 1440
    start = np.datetime64(day.isoformat() + "T00:00:00", "ms")
    jitter = rng.integers(0, 900, n_min).astype("timedelta64[ms]")
    ts = start + (np.arange(n_min) * 60_000).astype("timedelta64[ms]") + jitter
    ts_s = np.char.add(np.datetime_as_string(ts, unit="ms").astype(str), "Z")
    k = len(sufs)
    tags = np.array([f"{unit_id}.{s}" for s in sufs])
    units = np.array([PARAMETERS[CONTRACT_SUFFIXES[s]][0] for s in sufs])
    base = np.array([36.8, 36.8, 7.0, 40.0, 120.0, 20.0, 1.0, 0.5, 18.0, 4.0, 30.0, 200.0, 40.0,
                     39.0, 5000.0, 1900.0, 0.3, 1.2, 4.0])[:k]
    vals = np.round(np.tile(base, n_min) * (1 + 0.01 * rng.standard_normal(n_min * k)), 4)
    tbl = pa.table({"timestamp": np.repeat(ts_s, k), "tag": np.tile(tags, n_min), "value": vals,
                    "unit": np.tile(units, n_min), "quality": np.full(n_min * k, 192, np.int16)})
    buf = io.BytesIO()
    pacsv.write_csv(tbl, buf, pacsv.WriteOptions(quoting_style="none"))
    return buf.getvalue()


def make_landing(root: Path, units: int, days: int) -> tuple[list[Path], int]:
    rng = np.random.default_rng(7)
    paths, rows = [], 0
    for u in range(units):
        uid = f"BR-{101 + u}"
        for d in range(days):
            day = dt.date(2026, 1, 1) + dt.timedelta(days=d)
            p = root / "landing" / "historian" / uid / f"{day.isoformat()}.csv"
            p.parent.mkdir(parents=True, exist_ok=True)
            data = _day_file(uid, day, rng)
            p.write_bytes(data)
            paths.append(p)
            rows += data.count(b"\n") - 1
    return paths, rows


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def baseline(paths: list[Path], out: Path) -> tuple[float, int, float, float]:
    """Read + parse (types given) + one ``pyarrow.parquet.write_table``.

    Returns (seconds, rows, cpu seconds, seconds of the read + parse part)."""
    t0, c0 = time.perf_counter(), _cpu()
    opts = pacsv.ConvertOptions(column_types=HIST_TYPES)
    tables = [pacsv.read_csv(io.BytesIO(p.read_bytes()), convert_options=opts) for p in paths]
    tbl = pa.concat_tables(tables)
    t_parse = time.perf_counter() - t0
    pq.write_table(tbl, out, compression="zstd", compression_level=1)
    return time.perf_counter() - t0, tbl.num_rows, _cpu() - c0, t_parse


def run(units: int | None = None, days: int | None = None, repeats: int = 2) -> dict:
    from lakehouse.ingest.writer import ingest_landing, table_uri

    units = units or int(os.environ.get("BENCH_INGEST_UNITS", 10))
    days = days or int(os.environ.get("BENCH_INGEST_DAYS", 11))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        paths, rows = make_landing(tmp, units, days)
        best_pq, best_ing = float("inf"), float("inf")
        cpu_pq, cpu_ing, best_wide = float("inf"), float("inf"), float("inf")
        for r in range(repeats):  # alternate, keep the best of each (noisy host)
            t, n, c, t_parse = baseline(paths, tmp / f"baseline-{r}.parquet")
            assert n == rows
            best_pq, cpu_pq = min(best_pq, t), min(cpu_pq, c)
            lake_root = tmp / f"lake-{r}"
            shutil.copytree(tmp / "landing", lake_root / "landing")
            lake = Lake(str(lake_root))
            t0, c0 = time.perf_counter(), _cpu()
            rep = ingest_landing(lake, ["historian"], run_id=f"bench-{r}")
            t_ing = time.perf_counter() - t0
            cpu_ing = min(cpu_ing, _cpu() - c0)
            assert rep.rows_written["historian_readings"] == rows, rep.as_dict()
            best_ing = min(best_ing, t_ing)
            bronze = lake.read_delta(table_uri(lake, "historian_readings"))
            assert bronze.num_rows == rows
            # a second reference: the same parse + a plain parquet write of the SAME bronze
            # rows and columns (mapping, lineage) - isolates the cost of Delta + exactly-once +
            # validation from the cost of the wider output
            t0 = time.perf_counter()
            pq.write_table(bronze, tmp / f"wide-{r}.parquet", compression="zstd", compression_level=1)
            best_wide = min(best_wide, t_parse + time.perf_counter() - t0)
            del bronze
            shutil.rmtree(lake_root)
        return {
            "rows": rows, "files": len(paths),
            "parquet_rows_per_s": round(rows / best_pq),
            "ingest_rows_per_s": round(rows / best_ing),
            "ingest_vs_parquet_ratio": round(best_pq / best_ing, 3),
            "ingest_vs_parquet_same_columns_ratio": round(best_wide / best_ing, 3),
            "parquet_seconds": round(best_pq, 3), "ingest_seconds": round(best_ing, 3),
            # CPU seconds (all threads): less sensitive to other load on a shared host, but
            # blind to the parallelism the wall-clock ratio rewards
            "parquet_cpu_seconds": round(cpu_pq, 3), "ingest_cpu_seconds": round(cpu_ing, 3),
            "ingest_vs_parquet_cpu_ratio": round(cpu_pq / cpu_ing, 3),
            "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
