"""Bronze ingestion throughput vs. a plain parquet write of the same rows, in the same run.

``run()`` generates historian day files (long format, contract layout) in a temporary local
landing zone, ingests them once untimed (warm-up; its bronze table is read back as the
reference rows), then runs ``BENCH_INGEST_REPEATS`` (default 3) repetitions of four timed
sides, in a rotating order so that load drift on the shared host hits every side alike:

* ``ingest``: ``lakehouse.ingest.ingest_landing(lake, ["historian"])`` into a fresh lake —
  listing, reading the bytes, sha256, CSV parse, tag mapping + unit conversion, pandera
  validation, quarantine split, lineage columns, the parquet files (one per ``date``) and
  their Delta commit with one app transaction per file, ingest log. Everything the asset does.
* ``parquet`` (the reference of ``ingest_vs_parquet_ratio``): read the same CSV bytes, parse
  them with ``pyarrow.csv.read_csv`` (column types given, pyarrow defaults), then ONE
  ``pyarrow.parquet.write_table`` (zstd level 1, as bronze) of the **bronze rows**: the 12
  columns of ``historian_readings`` (``ts, unit_id, tag, parameter, value, eng_unit, quality,
  date`` + ``_source_file, _source_hash, _run_id, _ingested_at``), exactly the rows and
  values the warm-up ingest produced, as a Delta reader gets them (strings as ``string``).
  The derivation of the extra columns (mapping, lineage) is NOT timed on this side — it is a
  plain write of the same rows; parsing is timed on both sides because it is the same work.
* ``parquet_dict``: the same, with the bronze rows' string columns dictionary-encoded (how the
  ingest hands them to its writer) — pyarrow writes dictionary arrays without re-hashing
  them, so this is the strictest reference.
* ``parquet_5col``: the same parse + ``write_table`` of the 5 parsed CSV columns only
  (``timestamp, tag, value, unit, quality``): the previous definition of the ratio. Not the
  same rows: bronze rows are 12 columns wide, 7 of them strings.

Every figure is a median over the repetitions; a ratio is the median of the per-repetition
ratios (both sides timed back to back in that repetition), wall clock (``perf_counter``) and
CPU (``time.process_time``: all threads of this process — less sensitive to other load on
a shared host, but blind to the parallelism the wall-clock ratio rewards). ``*_range`` give
the min–max of the per-repetition ratios.

Environment: ``BENCH_INGEST_UNITS`` (10), ``BENCH_INGEST_DAYS`` (11) → 19 tags × 1440 min ×
units × days rows (≈3.0 M by default), ``BENCH_INGEST_REPEATS`` (3).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lakehouse.ingest.tagmap import TagMap
from lakehouse.storage import Lake

# the baseline's parse: the landing contract's column types, pyarrow defaults otherwise
CSV_TYPES = {
    "timestamp": pa.timestamp("us", tz="UTC"),
    "tag": pa.string(),
    "value": pa.float64(),
    "unit": pa.string(),
    "quality": pa.int16(),
}
PARQUET_OPTS = {"compression": "zstd", "compression_level": 1}


def _day_file(unit_id: str, day: dt.date, rng: np.random.Generator) -> bytes:
    table = TagMap.contract_default().suffix_table()  # the twin's tags: suffix -> (signal, unit)
    sufs = list(table)
    n_min = 1440
    start = np.datetime64(day.isoformat() + "T00:00:00", "ms")
    jitter = rng.integers(0, 900, n_min).astype("timedelta64[ms]")
    ts = start + (np.arange(n_min) * 60_000).astype("timedelta64[ms]") + jitter
    ts_s = np.char.add(np.datetime_as_string(ts, unit="ms").astype(str), "Z")
    k = len(sufs)
    tags = np.array([f"{unit_id}.{s}" for s in sufs])
    units = np.array([table[s][1] for s in sufs])
    base = np.array(
        [
            36.8,
            36.8,
            7.0,
            40.0,
            120.0,
            20.0,
            1.0,
            0.5,
            18.0,
            4.0,
            30.0,
            200.0,
            40.0,
            39.0,
            5000.0,
            1900.0,
            0.3,
            1.2,
            4.0,
        ]
    )[:k]
    vals = np.round(np.tile(base, n_min) * (1 + 0.01 * rng.standard_normal(n_min * k)), 4)
    tbl = pa.table(
        {
            "timestamp": np.repeat(ts_s, k),
            "tag": np.tile(tags, n_min),
            "value": vals,
            "unit": np.tile(units, n_min),
            "quality": np.full(n_min * k, 192, np.int16),
        }
    )
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


def _parse(paths: list[Path]) -> pa.Table:
    opts = pacsv.ConvertOptions(column_types=CSV_TYPES)
    return pa.concat_tables([pacsv.read_csv(io.BytesIO(p.read_bytes()), convert_options=opts) for p in paths])


def baseline(paths: list[Path], out: Path, rows: pa.Table | None = None) -> tuple[float, float, int]:
    """Read + parse (types given) + one ``pyarrow.parquet.write_table``.

    Writes the parsed 5 columns, or ``rows`` (the bronze rows) when given: the parse is timed
    either way. Returns (wall seconds, CPU seconds, rows parsed)."""
    t0, c0 = time.perf_counter(), time.process_time()
    parsed = _parse(paths)
    pq.write_table(parsed if rows is None else rows, out, **PARQUET_OPTS)
    return time.perf_counter() - t0, time.process_time() - c0, parsed.num_rows


def _dictionary_strings(tbl: pa.Table) -> pa.Table:
    for i, f in enumerate(tbl.schema):
        if f.type == pa.string():
            tbl = tbl.set_column(i, f.name, tbl.column(i).dictionary_encode())
    return tbl


def run(units: int | None = None, days: int | None = None, repeats: int | None = None) -> dict:
    from lakehouse.ingest.writer import ingest_landing, table_uri

    units = units or int(os.environ.get("BENCH_INGEST_UNITS", 10))
    days = days or int(os.environ.get("BENCH_INGEST_DAYS", 11))
    repeats = max(3, repeats or int(os.environ.get("BENCH_INGEST_REPEATS", 3)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        paths, rows = make_landing(tmp, units, days)
        counter = iter(range(10**6))

        def ingest() -> tuple[float, float, int]:
            i = next(counter)
            lake_root = tmp / f"lake-{i}"
            shutil.copytree(tmp / "landing", lake_root / "landing")
            lake = Lake(str(lake_root))
            t0, c0 = time.perf_counter(), time.process_time()
            rep = ingest_landing(lake, ["historian"], run_id=f"bench-{i}")
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert rep.rows_written["historian_readings"] == rows, rep.as_dict()
            assert rep.rows_quarantined["historian_readings"] == 0, rep.as_dict()
            bronze = lake.read_delta(table_uri(lake, "historian_readings"))
            assert bronze.num_rows == rows
            shutil.rmtree(lake_root)
            return wall, cpu, rows

        # warm-up (untimed): its bronze table is the reference rows of the bronze-shaped sides
        lake_root = tmp / "lake-ref"
        shutil.copytree(tmp / "landing", lake_root / "landing")
        lake = Lake(str(lake_root))
        ingest_landing(lake, ["historian"], run_id="bench-ref")
        bronze = lake.read_delta(table_uri(lake, "historian_readings"))
        assert bronze.num_rows == rows and len(bronze.column_names) == 12
        bronze = bronze.combine_chunks()
        bronze_dict = _dictionary_strings(bronze)
        shutil.rmtree(lake_root)

        sides: dict[str, Callable[[], tuple[float, float, int]]] = {
            "ingest": ingest,
            "parquet": lambda: baseline(paths, tmp / "bronze.parquet", bronze),
            "parquet_dict": lambda: baseline(paths, tmp / "bronze-dict.parquet", bronze_dict),
            "parquet_5col": lambda: baseline(paths, tmp / "parsed.parquet"),
        }
        names = list(sides)
        wall: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
                w, c, n = sides[name]()
                assert n == rows
                wall[name].append(w)
                cpu[name].append(c)

        def ratio(ref: str, kind: dict[str, list[float]]) -> list[float]:
            return [b / i for b, i in zip(kind[ref], kind["ingest"])]

        med = statistics.median
        out: dict[str, object] = {
            "ingest_bench_rows": rows,
            "ingest_bench_files": len(paths),
            "ingest_bench_repeats": repeats,
            "ingest_rows_per_s": round(rows / med(wall["ingest"])),
            "parquet_rows_per_s": round(rows / med(wall["parquet"])),
            "parquet_5col_rows_per_s": round(rows / med(wall["parquet_5col"])),
        }
        for ref, key in [
            ("parquet", "ingest_vs_parquet"),
            ("parquet_dict", "ingest_vs_parquet_dict"),
            ("parquet_5col", "ingest_vs_parquet_5col"),
        ]:
            rw, rc = ratio(ref, wall), ratio(ref, cpu)
            out[f"{key}_ratio"] = round(med(rw), 3)
            out[f"{key}_ratio_range"] = [round(min(rw), 3), round(max(rw), 3)]
            out[f"{key}_cpu_ratio"] = round(med(rc), 3)
        for name in names:
            out[f"{name}_seconds"] = round(med(wall[name]), 3)
            out[f"{name}_cpu_seconds"] = round(med(cpu[name]), 3)
        out.update(ingest_bench_load_average_1m=round(os.getloadavg()[0], 2), ingest_bench_cpus=os.cpu_count())
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
