"""Live collection soak: the twin's OPC UA server and the real collector, killed twice.

``run()`` starts, as separate processes on 127.0.0.1:

* the twin's server (``python -m twin.live``): ``BENCH_LIVE_UNITS`` (16) bioreactors × 19 tags
  = 304 tags (the issue's 10 × 30 = 300 tags, with the twin's 19 tags per unit) logged every
  ``BENCH_LIVE_INTERVAL`` (1) s, in real time (speed 1, simulated time = wall time), HistoryRead
  over the last ``BENCH_LIVE_HISTORY_S`` (4 days: the site then starts 5 days before now, so
  most vessels are mid-batch when the soak runs);
* the collector (``python -m lakehouse.live``, a local lake, micro-batches every 2 s, no
  backfill) three times over ``BENCH_LIVE_SECONDS`` (180) s: the first two runs are SIGKILLed
  (at 1/3 and 2/3 of the soak), each immediately restarted; the third is stopped with SIGTERM.

Then the server's own record — an independent HistoryRead of every tag — is compared with
bronze:

* ``live_readings_lost``: served readings between a tag's first committed reading and its
  committed cursor that are not in bronze; ``live_readings_duplicated``: bronze rows minus
  distinct (tag, ts). Both must be 0.
* ``live_commit_latency_p50_s`` / ``_p95_s``: source timestamp → the Delta commit that made the
  row visible (the commit's timestamp, found through its ``lakehouse.source_hash``), over every
  row of the soak, including the catch-up after each kill; ``live_commit_latency_steady_p95_s``
  leaves out the first commit of each run (the catch-up).
* ``live_readings_per_s``: committed readings per second of soak (the offered load is
  tags / interval); ``live_collector_cpu_s_per_1k_readings``: CPU of the three collector
  processes per 1000 committed readings; ``live_restart_to_first_commit_s``: mean time from a
  restart to its first commit (process start, connect, browse, HistoryRead of the gap, commit).
* ``live_load_avg_1m_start`` / ``_end``: the host's load average around the soak (2 shared cores).

Running-batch refresh during the soak (``BENCH_LIVE_SCORING=0`` turns it off): a lake with real
models (``tests.support.live_models``: a titer soft-sensor champion, an MSPC model), and
:func:`ml.running.refresh_running` — what the Dagster job runs — every ``BENCH_LIVE_REFRESH_S``
(60) s, as the sensor would, in this process while the collector runs and is killed:

* ``live_freshness_p50_s`` / ``_p95_s``: reading source timestamp → its soft-sensor prediction
  row in the lake (``scored_at`` of the row of the reading's grid step; every reading of the
  step, at the 1 s interval); the goal is p95 ≤ 120 s;
* ``live_increment_s`` (median) / ``live_increment_max_s``: one refresh = about one minute of
  new data through alignment, soft sensors, MSPC, twin forecast and alerts (the first refresh,
  which catches up from the soak start, is left out); ``live_running_batches``: batches scored.

The twin forecast accuracy (``forecast_titer_day7_mape``) is ``bench_forecast``'s figure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lakehouse.live.collector import app_id
from lakehouse.storage import Lake


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _wait_for_line(path: Path, key: str, proc: subprocess.Popen, timeout: float) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}): {path.read_text()[-3000:]}")
        for line in path.read_text().splitlines():
            if line.startswith("{") and f'"event": "{key}"' in line:
                return json.loads(line)
        time.sleep(0.2)
    raise TimeoutError(f"no {key!r} line in {path} after {timeout} s")


async def _served(endpoint: str, tags: list[str], since: dt.datetime) -> pl.DataFrame:
    from asyncua import Client, ua

    from twin.live.server import NAMESPACE_URI

    out: dict[str, list] = {"tag": [], "ts": [], "value": [], "status": []}
    async with Client(endpoint, timeout=60, watchdog_intervall=30) as c:
        ns = await c.get_namespace_index(NAMESPACE_URI)
        for tag in tags:
            hist = await c.get_node(ua.NodeId(tag, ns)).read_raw_history(since, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
            for dv in hist:
                out["tag"].append(tag)
                out["ts"].append(dv.SourceTimestamp)
                out["value"].append(dv.Value.Value)
                out["status"].append(dv.StatusCode.value)
    return pl.DataFrame(
        out, schema={"tag": pl.Utf8, "ts": pl.Datetime("us", "UTC"), "value": pl.Float64, "status": pl.Int64}
    )


class _Refresher:
    """The running-batch refresh every ``period_s`` in a thread (what the Dagster sensor runs)."""

    def __init__(self, lake: Lake, cfg, period_s: float) -> None:
        self.lake, self.cfg, self.period_s = lake, cfg, period_s
        self.stop = threading.Event()
        self.reports: list = []
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from ml.running import refresh_running

        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                self.reports.append(refresh_running(self.lake, self.cfg))
            except Exception as exc:  # reported as a failure of the bench, never as a figure
                self.errors.append(repr(exc))
            self.stop.wait(max(0.0, self.period_s - (time.monotonic() - t0)))


def run(units: int | None = None, interval_s: float | None = None, seconds: float | None = None) -> dict:
    from twin.historian import TAG_NAMES

    units = units or int(os.environ.get("BENCH_LIVE_UNITS", 16))
    interval_s = interval_s or float(os.environ.get("BENCH_LIVE_INTERVAL", 1.0))
    seconds = seconds or float(os.environ.get("BENCH_LIVE_SECONDS", 300.0))
    scoring = os.environ.get("BENCH_LIVE_SCORING", "1") != "0"
    refresh_s = float(os.environ.get("BENCH_LIVE_REFRESH_S", 60.0))
    # `--start now` lays the site out history + 1 day before now: 4 days puts most vessels mid-batch
    history_s = float(os.environ.get("BENCH_LIVE_HISTORY_S", 4 * 86_400.0))
    tags = [f"BR-{101 + u}.{s}" for u in range(units) for s in TAG_NAMES]
    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    lake = Lake(str(tmp / "lake"))
    refresher = None
    if scoring:
        from ml.config import load_softsensor_config
        from tests.support.live_models import train_live_models

        train_live_models(lake, tmp)
        refresher = _Refresher(lake, load_softsensor_config(tmp / "softsensor.yaml"), refresh_s)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    load_start = os.getloadavg()[0]
    server_log = tmp / "server.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin.live",
            "--port",
            "0",
            "--units",
            str(units),
            "--interval",
            str(interval_s),
            "--start",
            "now",
            "--speed",
            "1",
            "--days",
            "2",
            "--history-window",
            str(history_s),
            "--log-every",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=server_log.open("w"),
        stderr=subprocess.STDOUT,
    )
    runs: list[dict] = []
    try:
        endpoint = _wait_for_line(server_log, "listening", server, 180)["endpoint"]
        cpu0 = _cpu_children()
        soak_t0 = time.time()
        if refresher is not None:
            refresher.thread.start()
        for k, (until, sig) in enumerate(((1 / 3, signal.SIGKILL), (2 / 3, signal.SIGKILL), (1.0, signal.SIGTERM))):
            log_path = tmp / f"collector-{k}.log"
            started = time.time()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lakehouse.live",
                    "--endpoint",
                    endpoint,
                    "--lake",
                    lake.root,
                    "--backfill",
                    "0",
                    "--flush-interval",
                    "2",
                    "--run-id",
                    f"soak-{k}",
                    "--log-every",
                    "30",
                ],
                cwd=ROOT,
                env=env,
                stdout=log_path.open("w"),
                stderr=subprocess.STDOUT,
            )
            # stop at the scheduled time, but never before the run collects (a loaded host may
            # take longer than a short soak's third to start a process)
            while time.time() - soak_t0 < seconds * until or "collecting" not in log_path.read_text():
                if proc.poll() is not None:
                    raise RuntimeError(f"collector run {k} exited early: {log_path.read_text()[-3000:]}")
                if time.time() - started > 300:
                    raise RuntimeError(f"collector run {k} did not start collecting: {log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            proc.send_signal(sig)
            rc = proc.wait(120)
            if sig == signal.SIGTERM and rc != 0:
                raise RuntimeError(f"collector run {k} failed ({rc}): {log_path.read_text()[-3000:]}")
            runs.append({"run_id": f"soak-{k}", "started": started, "signal": int(sig), "rc": rc})
        soak_s = time.time() - soak_t0
        collector_cpu = _cpu_children() - cpu0
        if refresher is not None:
            refresher.stop.set()
            refresher.thread.join(600)
        # simulated time = wall time (speed 1, --start now): everything since a minute before the soak
        since = dt.datetime.fromtimestamp(soak_t0 - 60.0, dt.UTC)
        served = asyncio.run(_served(endpoint, tags, since))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    load_end = os.getloadavg()[0]
    try:
        out = _figures(
            lake, endpoint, tags, served, runs, soak_s, collector_cpu, units, interval_s, load_start, load_end
        )
        if refresher is not None:
            if refresher.errors:
                raise RuntimeError(f"running-batch refresh failed: {refresher.errors[:3]}")
            out |= _freshness(lake, refresher.reports, interval_s, refresh_s)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _figures(
    lake: Lake,
    endpoint: str,
    tags: list[str],
    served: pl.DataFrame,
    runs: list[dict],
    soak_s: float,
    collector_cpu: float,
    units: int,
    interval_s: float,
    load_start: float,
    load_end: float,
) -> dict:
    uri = lake.table_uri("bronze", "historian_readings")
    dtab = lake.delta_table(uri)
    bronze = pl.from_arrow(dtab.to_pyarrow_table(columns=["tag", "ts", "value", "_source_hash", "_run_id"]))
    cursors = pl.DataFrame({"tag": tags, "cursor": [dtab.transaction_version(app_id(endpoint, t)) for t in tags]})
    first = bronze.group_by("tag").agg(pl.col("ts").min().dt.epoch("us").alias("first"))
    span = cursors.join(first, on="tag", how="left")
    missing_tags = span.filter(pl.col("cursor").is_null() | pl.col("first").is_null()).height
    expected = served.join(span, on="tag").filter(
        (pl.col("ts").dt.epoch("us") >= pl.col("first")) & (pl.col("ts").dt.epoch("us") <= pl.col("cursor"))
    )
    distinct = bronze.select("tag", "ts").unique()
    lost = expected.join(distinct, on=["tag", "ts"], how="anti").height
    extra = distinct.join(served.select("tag", "ts"), on=["tag", "ts"], how="anti").height
    # commit timestamps per micro-batch
    commits = [
        (h["lakehouse.source_hash"], h["timestamp"] / 1000.0, h["version"])
        for h in dtab.history()
        if "lakehouse.source_hash" in h
    ]
    ctab = pl.DataFrame(
        {
            "_source_hash": [c[0] for c in commits],
            "committed": [c[1] for c in commits],
            "version": [c[2] for c in commits],
        }
    )
    rows = bronze.join(ctab, on="_source_hash", how="left")
    lat = rows.select(pl.col("committed") - pl.col("ts").dt.epoch("us") / 1e6, "_run_id", "version")
    firsts = lat.group_by("_run_id").agg(pl.col("version").min().alias("first_version"))
    steady = lat.join(firsts, on="_run_id").filter(pl.col("version") != pl.col("first_version"))
    restart_first = []
    for r in runs[1:]:
        v = ctab.join(rows.filter(pl.col("_run_id") == r["run_id"]).select("_source_hash").unique(), on="_source_hash")[
            "committed"
        ].min()
        if v is not None:  # a run killed before its first commit (short soak, loaded host) has none
            restart_first.append(v - r["started"])
    a = lat["committed"].to_numpy()
    s = steady["committed"].to_numpy()
    n = bronze.height
    return {
        "live_readings_lost": int(lost),
        "live_readings_duplicated": int(n - distinct.height),
        "live_readings_not_served": int(extra),
        "live_tags_without_cursor": int(missing_tags),
        "live_readings_committed": int(n),
        "live_tags": len(tags),
        "live_units": units,
        "live_interval_s": interval_s,
        "live_soak_s": round(soak_s, 1),
        "live_collector_restarts": len(runs) - 1,
        "live_readings_per_s": round(n / soak_s, 1),
        "live_offered_readings_per_s": round(len(tags) / interval_s, 1),
        "live_collector_cpu_s_per_1k_readings": round(1000.0 * collector_cpu / max(n, 1), 3),
        "live_commit_latency_p50_s": round(float(np.percentile(a, 50)), 2),
        "live_commit_latency_p95_s": round(float(np.percentile(a, 95)), 2),
        "live_commit_latency_steady_p95_s": round(float(np.percentile(s, 95)), 2) if s.size else None,
        "live_restart_to_first_commit_s": round(float(np.mean(restart_first)), 2) if restart_first else None,
        "live_load_avg_1m_start": round(load_start, 2),
        "live_load_avg_1m_end": round(load_end, 2),
    }


def _freshness(lake: Lake, reports: list, interval_s: float, refresh_s: float) -> dict:
    """Reading → prediction-row latency over every reading of every scored grid step."""
    from lakehouse.live import alerts as live

    preds = live.read_live(lake, live.SOFTSENSOR)
    if preds.height == 0:
        raise RuntimeError(f"no live prediction written in the soak: {[r.skipped for r in reports]}")
    preds = preds.filter(pl.col("target") == "titer")
    step_s = (preds["data_until"] - preds["ts"]).dt.total_seconds().max()
    base = (preds["scored_at"] - preds["ts"]).dt.total_microseconds().to_numpy() / 1e6
    offsets = np.arange(0.0, float(step_s), interval_s)  # the readings of a step: ts + offset
    lat = (base[:, None] - offsets[None, :]).ravel()
    inc = [r.seconds.get("total") for r in reports[1:] if r.seconds.get("total") is not None]
    return {
        "live_freshness_p50_s": round(float(np.percentile(lat, 50)), 1),
        "live_freshness_p95_s": round(float(np.percentile(lat, 95)), 1),
        "live_freshness_max_s": round(float(lat.max()), 1),
        "live_increment_s": round(float(np.median(inc)), 2) if inc else None,
        "live_increment_max_s": round(float(np.max(inc)), 2) if inc else None,
        "live_refreshes": len(reports),
        "live_refresh_period_s": refresh_s,
        "live_running_batches": len({b for r in reports for b in r.batches}),
        "live_predictions": int(preds.height),
        "live_increment_parts_s": {
            k: round(float(np.median([r.seconds[k] for r in reports[1:] if k in r.seconds])), 2)
            for k in ("align", "softsensor", "mspc", "forecast", "alerts")
            if any(k in r.seconds for r in reports[1:])
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
