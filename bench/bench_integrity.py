"""Integrity of the raw layer under stress (issue 17 "Nothing lost, nothing altered").

Every figure that counts rows lost, rows duplicated or crashes must be 0; the latencies are
figures to watch. All S3 work runs on a private SeaweedFS server started here (it is killed
and restarted in one section), never on a shared one.

Sections (``run()`` runs them all; ``BENCH_INTEGRITY_SECTIONS=concurrency,fuzz`` a subset):

* ``concurrency`` — ``concurrency_writers`` threads × ``concurrency_commits_per_writer``
  ingestion calls on ONE bronze table (``lims_results``) on the S3 server, through the real
  path: each writer ingests its own small LIMS landing file per call
  (``ingest_landing(lake, ["lims"], predicate=<that file>)``: listing, ingest-log read, fetch,
  parse, validation, bronze commit, log commit). ``concurrency_commits`` = bronze commits in
  the table's history; ``concurrency_rows_lost`` / ``_rows_duplicated``: bronze and
  quarantine compared row by row with a clean single-run reference ingestion of the same
  files on local disk. Latencies: ``concurrency_commit_p50_s`` / ``_p95_s`` (one call),
  ``concurrency_bronze_commit_p50_s`` / ``_p95_s`` (the bronze commit step alone, retries
  included), ``concurrency_first10_p50_s`` vs ``concurrency_last10_p50_s`` (median of the
  first/last 10 calls of every writer, and their p95) and their ratio; ``concurrency_retries`` (commit
  conflicts and transient faults retried).
* ``race`` — ``race_ingest_runs`` / 2 processes (spawn) ingest the same landing zone of a
  new lake (no table exists yet) at the same moment, on local disk, then again on S3:
  ``race_ingest_duplicates``, ``race_ingest_rows_lost`` (vs the reference) and
  ``race_ingest_crashes`` (runs that raised or did not exit 0).
* ``s3_restart`` — one ingestion (2 files per batch: many commits) while the S3 server is
  SIGKILLed after every 3rd bronze commit and restarted 3 s later, ``s3_restarts`` times (the
  next kill only once it is back): ``s3_restart_rows_lost``, ``s3_restart_rows_duplicated`` vs
  the reference, ``s3_restart_outage_median_s`` / ``_max_s`` (kill → server answering again,
  its start-up included: longer on a loaded host).
* ``fuzz`` — ``fuzz_cases`` distinct files over the nine source kinds (the eight landing
  kinds mutated by the hypothesis strategy of ``tests/ingest/test_parsers_property.py``,
  plus generated Parquet exports for the importer's historian kind), ingested for real into
  a local lake in batches of 100: ``fuzz_crashes`` = files whose ingestion raised (a batch
  that raises is re-run file by file to find them), ``fuzz_rows_unaccounted`` = Σ over
  tables |rows read − (bronze rows + quarantine rows)|, counted in the Delta tables.
* ``sigkill`` — ``sigkill_trials`` new lakes, each: an ingestion process SIGKILLed at a
  random moment (uniform over the time a whole run takes in such a process), then a new run:
  ``sigkill_rows_lost``, ``sigkill_rows_duplicated`` vs the reference; ``sigkill_interrupted``
  = trials where the kill had left work undone.

The reference of race, restart and SIGKILL is one clean ingestion of the same landing zone
(every kind, good rows, bad rows, unreadable files) on local disk; rows are compared as
multisets of whole rows (source file relative to the landing zone, without run id and
ingestion time).

Knobs: ``BENCH_INTEGRITY_QUICK=1`` (or ``--quick``: 4 × 10 writers, small sizes, ~3 min),
``BENCH_INTEGRITY_WRITERS`` (16), ``BENCH_INTEGRITY_COMMITS`` (50),
``BENCH_INTEGRITY_RACE_RUNS`` (8), ``BENCH_INTEGRITY_RESTARTS`` (3),
``BENCH_INTEGRITY_FUZZ_CASES`` (3000), ``BENCH_INTEGRITY_SIGKILLS`` (8),
``BENCH_INTEGRITY_BASELINE=1`` (the concurrency section as before the commit-latency fix: no
ingest-log compaction, checkpoint interval 100; ``concurrency_baseline`` = 1 — for the
before/after figures of docs/ingestion.md "Performance"). The load average of
the host is reported at the start and at the end (``integrity_load_average_1m_*``).

Run: ``python -m bench integrity`` or ``python -m bench.bench_integrity [--quick] [sections]``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import multiprocessing as mp
import os
import queue
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests" / "ingest"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

SECTIONS = ["concurrency", "race", "s3_restart", "fuzz", "sigkill"]


@dataclass(frozen=True)
class Sizes:
    writers: int = 16
    commits: int = 50
    race_runs: int = 8
    restarts: int = 3
    fuzz_cases: int = 3000
    sigkills: int = 8

    @classmethod
    def from_env(cls, quick: bool = False) -> Sizes:
        quick = quick or any(os.environ.get(v, "") not in ("", "0") for v in ("BENCH_INTEGRITY_QUICK", "BENCH_QUICK"))
        base = cls(writers=4, commits=10, race_runs=4, restarts=1, fuzz_cases=360, sigkills=2) if quick else cls()
        env = {
            "writers": "WRITERS",
            "commits": "COMMITS",
            "race_runs": "RACE_RUNS",
            "restarts": "RESTARTS",
            "fuzz_cases": "FUZZ_CASES",
            "sigkills": "SIGKILLS",
        }
        return cls(**{k: int(os.environ.get(f"BENCH_INTEGRITY_{v}", getattr(base, k))) for k, v in env.items()})


def _progress(msg: str) -> None:
    print(f"[integrity {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


# ====================================================================== lakes and comparison
def _s3_lake(server, prefix: str):
    from lakehouse.storage import Lake, S3Settings

    return Lake(
        server.uri(prefix),
        S3Settings(
            endpoint_url=server.endpoint_url,
            access_key_id=server.access_key,
            secret_access_key=server.secret_key,
            region=server.region,
        ),
    )


def _landing(lake) -> None:
    """The landing zone of the race, restart and SIGKILL sections: every landing kind, good
    rows, bad rows and unreadable files (docs/contracts.md layouts, byte-exact)."""
    from ingest_testdata import bad_landing, good_landing

    good_landing(lake, days=3, units=("BR-101", "BR-102"), minutes=30)
    bad_landing(lake)


def lake_rows(lake) -> dict[str, object]:
    """Every bronze table and ``_quarantine`` as polars frames comparable across lakes: the
    source file relative to the landing zone instead of its URI, without run id and
    ingestion time (those differ between two correct ingestions)."""
    import polars as pl

    from lakehouse.ingest.schemas import BRONZE_SCHEMAS, QUARANTINE_TABLE
    from lakehouse.ingest.writer import table_uri

    prefix = lake.landing.rstrip("/") + "/"
    out = {}
    for table in [*BRONZE_SCHEMAS, QUARANTINE_TABLE]:
        uri = table_uri(lake, table)
        if not lake.delta_exists(uri):
            continue
        df = pl.from_arrow(lake.read_delta(uri))
        src = "source_file" if table == QUARANTINE_TABLE else "_source_file"
        df = df.with_columns(pl.col(src).str.strip_prefix(prefix).alias(src))
        out[table] = df.drop([c for c in ("_run_id", "_ingested_at") if c in df.columns])
    return out


def diff_rows(reference: dict, got: dict) -> tuple[int, int]:
    """(rows lost, rows duplicated) of ``got`` against ``reference``, per table as multisets
    of whole rows: a row the reference holds k times and ``got`` j times is lost max(k−j, 0)
    times and duplicated max(j−k, 0) times (a changed value counts as one lost + one extra)."""
    import polars as pl

    lost = dup = 0
    for table in sorted(set(reference) | set(got)):
        ref, new = reference.get(table), got.get(table)
        if ref is None or new is None:
            lost += ref.height if ref is not None else 0
            dup += new.height if new is not None else 0
            continue
        cols = ref.columns
        a = ref.group_by(cols).len("n_ref")
        b = new.select(cols).group_by(cols).len("n_got")
        j = a.join(b, on=cols, how="full", coalesce=True, nulls_equal=True).fill_null(0)
        lost += int(j.select((pl.col("n_ref") - pl.col("n_got")).clip(lower_bound=0).sum()).item())
        dup += int(j.select((pl.col("n_got") - pl.col("n_ref")).clip(lower_bound=0).sum()).item())
    return lost, dup


def _reference(tmp: Path, fill) -> dict:
    """Rows of a clean, single, uninterrupted ingestion of the landing zone ``fill`` writes."""
    from lakehouse.ingest.writer import ingest_landing
    from lakehouse.storage import Lake

    lake = Lake(str(tmp / f"reference-{fill.__name__}"))
    fill(lake)
    ingest_landing(lake, run_id="reference")
    return lake_rows(lake)


class _RetryCounter(logging.Handler):
    """Counts the retries ``lakehouse.retry`` logs (commit conflicts, transient faults)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reasons: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        self.reasons[msg.split("failed (", 1)[-1].split(":", 1)[0]] += 1

    def __enter__(self) -> _RetryCounter:
        logging.getLogger("lakehouse.retry").addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger("lakehouse.retry").removeHandler(self)


# ====================================================================== concurrency
def _baseline(on: bool):
    """Context: with ``on``, ingestion as before the commit-latency fix (no ingest-log
    compaction, delta-rs' default checkpoint interval of 100 for new bronze tables)."""
    import contextlib

    from lakehouse.ingest import schemas, writer

    @contextlib.contextmanager
    def ctx():
        if not on:
            yield
            return
        every, interval = writer.LOG_COMPACT_EVERY, schemas.BRONZE_TABLE_PROPERTIES["delta.checkpointInterval"]
        writer.LOG_COMPACT_EVERY, schemas.BRONZE_TABLE_PROPERTIES["delta.checkpointInterval"] = 0, "100"
        try:
            yield
        finally:
            writer.LOG_COMPACT_EVERY, schemas.BRONZE_TABLE_PROPERTIES["delta.checkpointInterval"] = every, interval

    return ctx()


def bench_concurrency(server, tmp: Path, writers: int, commits: int, baseline: bool = False) -> dict:
    from ingest_testdata import lims_csv

    from lakehouse.ingest import writer

    day = dt.date(2026, 1, 5)
    files = {}
    for w in range(writers):
        for i in range(commits):
            files[(w, i)] = (f"lims/w{w:02d}-{i:03d}.csv", lims_csv(day, batch_id=f"W{w:02d}-{i:04d}", n_days=1)[0])

    def fill(lake) -> None:
        fs = lake.filesystem()
        paths = {lake.fs_path(lake.uri("landing", rel)): data for rel, data in files.values()}
        if lake.is_s3:
            fs.pipe(paths)
        else:
            for p, data in paths.items():
                Path(p).parent.mkdir(parents=True, exist_ok=True)
                Path(p).write_bytes(data)

    reference = _reference(tmp, fill)
    lake = _s3_lake(server, "concurrency")
    fill(lake)
    call_s: dict[int, list[float]] = defaultdict(list)
    # where a call's time goes, per stage and writer, in call order: reading the ingest log,
    # the bronze commit (retries included), the log commit (+ a compaction when it is due)
    stage_s: dict[str, dict[int, list[float]]] = {s: defaultdict(list) for s in ("log_read", "bronze", "log_commit")}
    started: dict[str, float] = {}
    errors: list[str] = []
    lock = threading.Lock()
    read_log = writer.read_log

    def timed_read_log(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return read_log(*args, **kwargs)
        finally:
            name = threading.current_thread().name
            if name.startswith("writer-"):
                stage_s["log_read"][int(name[7:])].append(time.perf_counter() - t0)

    def hook(event: str, info: dict) -> None:
        run_id = info.get("run_id", "")
        if not run_id.startswith("conc-w"):
            return
        w, now = int(run_id[6:8]), time.perf_counter()
        with lock:
            if event == "bronze_committing" and info.get("table") == "lims_results":
                started[run_id] = now
            elif event == "bronze_committed" and info.get("table") == "lims_results" and run_id in started:
                stage_s["bronze"][w].append(now - started[run_id])
                started[run_id] = now
            elif event == "log_committed" and run_id in started:
                stage_s["log_commit"][w].append(now - started.pop(run_id))

    def work(w: int) -> None:
        try:
            for i in range(commits):
                rel = files[(w, i)][0]
                t0 = time.perf_counter()
                rep = writer.ingest_landing(
                    lake, ["lims"], run_id=f"conc-w{w:02d}-{i:03d}", predicate=lambda f, rel=rel: f.rel_path == rel
                )
                call_s[w].append(time.perf_counter() - t0)
                if rep.files_ingested != 1:
                    errors.append(f"writer {w} call {i}: {rep.as_dict()}")
                if (i + 1) % 10 == 0 and w == 0:
                    _progress(f"concurrency: writer 0 at {i + 1}/{commits} calls, last {call_s[w][-1]:.1f} s")
        except Exception as exc:
            errors.append(f"writer {w}: {type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}")

    writer.HOOKS.append(hook)
    writer.read_log = timed_read_log  # timing only: the same function is called
    try:
        with _RetryCounter() as retries, _baseline(baseline):
            threads = [threading.Thread(target=work, args=(w,), name=f"writer-{w}") for w in range(writers)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
    finally:
        writer.HOOKS.remove(hook)
        writer.read_log = read_log
    if errors:
        raise RuntimeError(f"{len(errors)} writer errors; first: {errors[0]}")
    lost, dup = diff_rows(reference, lake_rows(lake))
    table = lake.delta_table(writer.table_uri(lake, "lims_results"))
    n_commits = sum(1 for h in table.history() if h.get("operation") == "WRITE")
    calls = [x for v in call_s.values() for x in v]
    k = min(10, commits // 2)
    first = [x for v in call_s.values() for x in v[:k]]
    last = [x for v in call_s.values() for x in v[-k:]]
    bronze_s = [x for v in stage_s["bronze"].values() for x in v]
    stages = {}
    for stage, per_writer in stage_s.items():
        for end, pick in (("first10", lambda v: v[:k]), ("last10", lambda v: v[-k:])):
            xs = [x for v in per_writer.values() for x in pick(v)]
            stages[f"concurrency_{stage}_{end}_p50_s"] = round(statistics.median(xs), 2) if xs else None
    return {
        "concurrency_writers": writers,
        "concurrency_commits_per_writer": commits,
        "concurrency_commits": n_commits,
        "concurrency_rows_lost": lost,
        "concurrency_rows_duplicated": dup,
        "concurrency_commit_p50_s": round(statistics.median(calls), 2),
        "concurrency_commit_p95_s": round(_pct(calls, 0.95), 2),
        "concurrency_bronze_commit_p50_s": round(statistics.median(bronze_s), 2),
        "concurrency_bronze_commit_p95_s": round(_pct(bronze_s, 0.95), 2),
        "concurrency_first10_p50_s": round(statistics.median(first), 2),
        "concurrency_last10_p50_s": round(statistics.median(last), 2),
        "concurrency_first10_p95_s": round(_pct(first, 0.95), 2),
        "concurrency_last10_p95_s": round(_pct(last, 0.95), 2),
        "concurrency_last_vs_first_ratio": round(statistics.median(last) / statistics.median(first), 2),
        **stages,
        "concurrency_baseline": int(baseline),
        "concurrency_retries": sum(retries.reasons.values()),
        "concurrency_seconds": round(wall, 1),
    }


# ====================================================================== child processes
def _child_ingest(jobs: list[tuple], ready, out) -> None:
    """A separate ingestion process (spawned): signal ``ready`` once the imports are done, then
    for each job (root, S3 settings, run id, max batch files, go event) wait for ``go``, ingest
    the whole landing zone and put (run id, "ok" | error text) on ``out``."""
    from lakehouse.ingest.writer import ingest_landing
    from lakehouse.storage import Lake, S3Settings

    ready.set()
    for root, s3, run_id, max_batch_files, go in jobs:
        go.wait(600)
        try:
            ingest_landing(
                Lake(root, S3Settings(**s3) if s3 else S3Settings()), run_id=run_id, max_batch_files=max_batch_files
            )
            out.put((run_id, "ok"))
        except BaseException as exc:
            out.put((run_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"))


def _spawn(ctx, jobs_per_process: list[list[tuple]], out) -> list:
    """Start one spawned process per job list and wait until all have done their imports (so
    that what follows measures ingestion, not interpreter start-up)."""
    procs, readies = [], []
    for jobs in jobs_per_process:
        ready = ctx.Event()
        p = ctx.Process(target=_child_ingest, args=(jobs, ready, out), daemon=True)
        p.start()
        procs.append(p)
        readies.append(ready)
    for r in readies:
        if not r.wait(600):
            raise RuntimeError("an ingestion process did not start within 600 s")
    return procs


def _results(out, n: int, timeout: float) -> dict[str, str]:
    got: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            run_id, status = out.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        got[run_id] = status
    return got


def _s3_kwargs(lake) -> dict | None:
    if not lake.is_s3:
        return None
    s = lake.s3
    return {
        "endpoint_url": s.endpoint_url,
        "access_key_id": s.access_key_id,
        "secret_access_key": s.secret_access_key,
        "region": s.region,
    }


def bench_race(server, tmp: Path, runs: int, reference: dict) -> dict:
    """``runs`` processes ingest the same new lake at once, first on local disk, then on S3."""
    from lakehouse.ingest.writer import DEFAULT_BATCH_FILES
    from lakehouse.storage import Lake

    ctx = mp.get_context("spawn")
    lakes = {"local": Lake(str(tmp / "race-lake")), "s3": _s3_lake(server, "race")}
    gos = {store: ctx.Event() for store in lakes}
    for lake in lakes.values():
        _landing(lake)
    out = ctx.Queue()
    procs = _spawn(
        ctx,
        [
            [
                (lake.root, _s3_kwargs(lake), f"race-{store}-{k}", DEFAULT_BATCH_FILES, gos[store])
                for store, lake in lakes.items()
            ]
            for k in range(runs)
        ],
        out,
    )
    figures: dict[str, object] = {"race_ingest_runs": len(lakes) * runs}
    lost = dups = crashes = 0
    for store, lake in lakes.items():
        t0 = time.perf_counter()
        gos[store].set()  # every run starts at the same moment, on a lake without any table
        results = _results(out, runs, 600)
        wall = time.perf_counter() - t0
        errors = [v for v in results.values() if v != "ok"]
        store_crashes = len(errors) + runs - len(results)
        if errors:
            _progress(f"race {store}: {len(errors)} runs failed; first: {errors[0][:1500]}")
        store_lost, store_dup = diff_rows(reference, lake_rows(lake))
        lost, dups, crashes = lost + store_lost, dups + store_dup, crashes + store_crashes
        figures[f"race_ingest_{store}_seconds"] = round(wall, 1)
        _progress(
            f"race {store}: {runs} runs in {wall:.0f} s, lost {store_lost}, duplicated {store_dup}, "
            f"crashed {store_crashes}"
        )
    for p in procs:
        p.join(60)
    crashes += sum(1 for p in procs if p.exitcode != 0)
    return {**figures, "race_ingest_duplicates": dups, "race_ingest_rows_lost": lost, "race_ingest_crashes": crashes}


# ====================================================================== S3 restarts
def bench_s3_restart(server, restarts: int, reference: dict, down_s: float = 3.0, every: int = 3) -> dict:
    """Kill the server after every ``every``-th bronze commit (once the previous restart is
    done), restart it ``down_s`` s later (plus its own start-up time)."""
    from lakehouse.ingest import writer

    lake = _s3_lake(server, "restart")
    _landing(lake)
    state = {"commits": 0, "kills": 0, "up": threading.Event(), "outages": []}
    state["up"].set()
    restarters: list[threading.Thread] = []

    def restart_later(t_down: float) -> None:
        time.sleep(down_s)
        server.start()
        state["outages"].append(time.monotonic() - t_down)
        state["up"].set()

    def hook(event: str, info: dict) -> None:
        if event != "bronze_committed" or not state["up"].is_set() or state["kills"] >= restarts:
            return
        state["commits"] += 1
        if state["commits"] % every == 0:
            state["up"].clear()
            state["kills"] += 1
            t_down = time.monotonic()
            server.kill()
            th = threading.Thread(target=restart_later, args=(t_down,), daemon=True)
            th.start()
            restarters.append(th)

    writer.HOOKS.append(hook)
    try:
        with _RetryCounter() as retries:
            t0 = time.perf_counter()
            writer.ingest_landing(lake, run_id="restart", max_batch_files=2)
            wall = time.perf_counter() - t0
    finally:
        writer.HOOKS.remove(hook)
        for th in restarters:
            th.join(120)
    if not state["up"].is_set():
        raise RuntimeError("the S3 server did not come back")
    lost, dup = diff_rows(reference, lake_rows(lake))
    return {
        "s3_restarts": state["kills"],
        "s3_restart_rows_lost": lost,
        "s3_restart_rows_duplicated": dup,
        "s3_restart_outage_median_s": round(statistics.median(state["outages"]), 1) if state["outages"] else 0.0,
        "s3_restart_outage_max_s": round(max(state["outages"], default=0.0), 1),
        "s3_restart_retries": sum(retries.reasons.values()),
        "s3_restart_seconds": round(wall, 1),
    }


# ====================================================================== SIGKILL
def bench_sigkill(tmp: Path, kills: int, reference: dict, seed: int = 17) -> dict:
    """``kills`` trials, each on a new lake: an ingestion process is SIGKILLed at a random
    moment (uniform over the duration of a whole run in such a process, timed first), then a
    new run resumes; the lake must then hold exactly the reference rows.
    ``sigkill_interrupted``: trials whose killed run had left work undone (the recovery run
    had something to repair)."""
    from lakehouse.ingest.writer import ingest_landing
    from lakehouse.storage import Lake

    rng = random.Random(seed)
    lakes = [Lake(str(tmp / f"sigkill-{k}")) for k in range(kills + 1)]  # lakes[0]: the timing run
    for lake in lakes:
        _landing(lake)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    gos = [ctx.Event() for _ in lakes]
    procs = _spawn(ctx, [[(lake.root, None, f"killed-{k}", 4, gos[k])] for k, lake in enumerate(lakes)], out)
    t0 = time.perf_counter()
    gos[0].set()
    if _results(out, 1, 600) != {"killed-0": "ok"}:
        raise RuntimeError("the timing run of the SIGKILL section failed")
    run_s = time.perf_counter() - t0
    interrupted = lost = dup = 0
    for p, go, lake in zip(procs[1:], gos[1:], lakes[1:]):
        go.set()
        time.sleep(rng.uniform(0.0, run_s))
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        interrupted += diff_rows(reference, lake_rows(lake))[0] > 0
        ingest_landing(lake, run_id="after-kill", max_batch_files=4)
        trial_lost, trial_dup = diff_rows(reference, lake_rows(lake))
        lost, dup = lost + trial_lost, dup + trial_dup
    procs[0].join(60)
    return {
        "sigkill_trials": kills,
        "sigkill_interrupted": interrupted,
        "sigkill_rows_lost": lost,
        "sigkill_rows_duplicated": dup,
        "sigkill_run_seconds": round(run_s, 1),
    }


# ====================================================================== fuzz
def _parquet_cases(n: int, seed: int = 17) -> list[bytes]:
    """Historian Parquet exports for the importer (contract column names), generated with
    hypothesis: random column subsets, types (strings, floats, ints, naive/zoned timestamps,
    all-null), values (NaN, ±inf, huge, control characters) and, in one case of ten, random
    byte damage."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    ts = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
    values = {
        "string": st.text(max_size=12) | st.sampled_from(["BR-101.TEMP.PV", "BR-101.PH.PV", "degC", "pH", "192"]),
        "float": st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([36.8, 7.0, 1e308]),
        "int": st.integers(-(2**63), 2**63 - 1),
        "ts": ts,
        "null": st.none(),
    }
    types = {
        "string": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "ts": pa.timestamp("us"),
        "null": pa.null(),
    }
    cols = ["timestamp", "tag", "value", "unit", "quality", "extra"]
    out: list[bytes] = []

    @st.composite
    def table(draw) -> bytes:
        n = draw(st.integers(0, 6))
        data = {}
        for c in draw(st.lists(st.sampled_from(cols), unique=True, min_size=1)):
            kind = draw(st.sampled_from(list(values)))
            vals = draw(st.lists(values[kind] | st.none(), min_size=n, max_size=n))
            arr = pa.array(vals, types[kind])
            if kind == "ts" and draw(st.booleans()):
                arr = arr.cast(pa.timestamp("us", tz="UTC"))
            data[c] = arr
        buf = io.BytesIO()
        pq.write_table(pa.table(data), buf)
        raw = buf.getvalue()
        if draw(st.integers(0, 9)) == 0:
            pos = draw(st.integers(0, len(raw) - 1))
            raw = raw[:pos] + draw(st.binary(max_size=8)) + raw[pos + draw(st.integers(0, 16)) :]
        return raw

    @settings(max_examples=n, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(table())
    def collect(raw: bytes) -> None:
        out.append(raw)

    collect()
    return out


def _fuzz_cases(total: int) -> dict[str, list[bytes]]:
    """Fuzzed contents per kind: up to ``total`` / 9 distinct contents each."""
    from hypothesis import HealthCheck, given, settings
    from test_parsers_property import SAMPLES, mutated

    per_kind = max(1, total // (len(SAMPLES) + 1))

    def draw_all(sample: bytes) -> list[bytes]:
        got: list[bytes] = []

        # hypothesis repeats small examples (about half are duplicates): draw twice as many
        @settings(
            max_examples=2 * per_kind,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=mutated(sample))
        def collect(data: bytes) -> None:
            got.append(data)

        collect()
        return got

    cases = {kind: draw_all(sample) for kind, (_, sample) in sorted(SAMPLES.items())}
    cases["import_historian"] = _parquet_cases(2 * per_kind)
    return {k: list(dict.fromkeys(v))[:per_kind] for k, v in cases.items()}  # one file per content


def bench_fuzz(tmp: Path, total: int, batch_files: int = 100) -> dict:
    import polars as pl
    from test_parsers_property import SAMPLES

    import lakehouse.ingest.foreign  # noqa: F401 - registers the importer's kinds
    from lakehouse.ingest.readers import KINDS, SourceFile
    from lakehouse.ingest.schemas import QUARANTINE_TABLE
    from lakehouse.ingest.writer import ingest_files, table_uri
    from lakehouse.storage import Lake

    # what counts as a crash: any exception, and a Rust panic surfacing through pyo3
    # (``pyo3_runtime.PanicException`` derives from BaseException; registered once polars is loaded)
    crash = (Exception, *(c for c in BaseException.__subclasses__() if c.__name__ == "PanicException"))
    t0 = time.perf_counter()
    cases = _fuzz_cases(total)
    gen_s = time.perf_counter() - t0
    lake = Lake(str(tmp / "fuzz-lake"))
    rows_read: Counter = Counter()
    crashes: list[str] = []
    n_cases = 0

    def source(kind: str, j: int, data: bytes) -> SourceFile:
        if kind == "import_historian":
            rel, meta = f"fuzz/historian/case-{j:05d}.parquet", {"format": "parquet"}
        else:
            rel = SAMPLES[kind][0]
            meta = KINDS[kind].match(rel) or {}
        # the sample's own path (parsers check the path against the content), one version per
        # content: the file id is <rel_path>@<sha256>
        return SourceFile(
            uri=lake.uri("landing", rel),
            rel_path=rel,
            size=len(data),
            kind=kind,
            meta=dict(meta),
            data=data,
            fingerprint=f"fuzz:{kind}:{j}",
        )

    for kind, contents in cases.items():
        for a in range(0, len(contents), batch_files):
            chunk = [source(kind, a + j, d) for j, d in enumerate(contents[a : a + batch_files])]
            n_cases += len(chunk)
            try:
                rep = ingest_files(lake, chunk, run_id=f"fuzz-{kind}-{a}", namespace="fuzz", skip_logged=False)
                rows_read.update(rep.rows_read)
            except crash:
                for j, f in enumerate(chunk):
                    f = source(kind, a + j, contents[a + j])
                    try:
                        rep = ingest_files(
                            lake, [f], run_id=f"fuzz-{kind}-{a}-{j}", namespace="fuzz", skip_logged=False
                        )
                        rows_read.update(rep.rows_read)
                    except crash as exc:
                        crashes.append(f"{kind} case {a + j}: {type(exc).__name__}: {str(exc)[:300]}")
        _progress(f"fuzz: {kind} {len(contents)} cases, {len(crashes)} crashes so far")
    # rows read (as the parser counted them) against the rows in the Delta tables
    q = (
        pl.from_arrow(lake.read_delta(table_uri(lake, QUARANTINE_TABLE), columns=["table"]))
        if lake.delta_exists(table_uri(lake, QUARANTINE_TABLE))
        else pl.DataFrame({"table": []}, schema={"table": pl.Utf8})
    )
    quarantined = dict(q.group_by("table").len().iter_rows())
    unaccounted = 0
    for table in sorted(set(rows_read) | set(quarantined)):
        uri = table_uri(lake, table)
        bronze = lake.delta_table(uri).to_pyarrow_dataset().count_rows() if lake.delta_exists(uri) else 0
        unaccounted += abs(rows_read[table] - bronze - quarantined.get(table, 0))
    for c in crashes[:5]:
        _progress(f"fuzz crash: {c}")
    return {
        "fuzz_cases": n_cases,
        "fuzz_kinds": len(cases),
        "fuzz_crashes": len(crashes),
        "fuzz_rows_read": sum(rows_read.values()),
        "fuzz_rows_unaccounted": unaccounted,
        "fuzz_generate_seconds": round(gen_s, 1),
        "fuzz_seconds": round(time.perf_counter() - t0, 1),
    }


# ====================================================================== driver
def run(sections: list[str] | None = None, quick: bool = False) -> dict:
    import shutil

    from lakehouse.s3server import start_s3_server

    sizes = Sizes.from_env(quick)
    env_sections = [s for s in os.environ.get("BENCH_INTEGRITY_SECTIONS", "").split(",") if s]
    sections = sections or env_sections or SECTIONS
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    out: dict[str, object] = {
        "integrity_load_average_1m_start": round(os.getloadavg()[0], 2),
        "integrity_cpus": os.cpu_count(),
    }
    t_all = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-integrity-"))
    server = start_s3_server(bucket="integrity") if set(sections) - {"fuzz", "sigkill"} else None
    try:
        reference = _reference(tmp, _landing) if set(sections) & {"race", "s3_restart", "sigkill"} else {}
        for name in SECTIONS:
            if name not in sections:
                continue
            _progress(f"{name} ...")
            t0 = time.perf_counter()
            if name == "concurrency":
                baseline = os.environ.get("BENCH_INTEGRITY_BASELINE", "") not in ("", "0")
                figures = bench_concurrency(server, tmp, sizes.writers, sizes.commits, baseline)
            elif name == "race":
                figures = bench_race(server, tmp, sizes.race_runs, reference)
            elif name == "s3_restart":
                figures = bench_s3_restart(server, sizes.restarts, reference)
            elif name == "fuzz":
                figures = bench_fuzz(tmp, sizes.fuzz_cases)
            else:
                figures = bench_sigkill(tmp, sizes.sigkills, reference)
            _progress(f"{name} done in {time.perf_counter() - t0:.0f} s: {json.dumps(figures)}")
            out.update(figures)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out.update(
        integrity_load_average_1m_end=round(os.getloadavg()[0], 2),
        integrity_seconds=round(time.perf_counter() - t_all, 1),
    )
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(run([a for a in args if not a.startswith("--")] or None, quick="--quick" in args), indent=2))
