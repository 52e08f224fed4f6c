"""``lakehouse plant serve`` and ``lakehouse plant collect`` through the CLI entry point
(subprocesses, real OPC UA on 127.0.0.1, a local lake): progress lines, clean stop on
SIGTERM / SIGINT, and what was collected (readings + batch context) equals what was served."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import polars as pl
from live_testutil import ROOT, bronze

from lakehouse.live import read_status
from lakehouse.live.context import read_context, running_batches
from lakehouse.storage import Lake

CLI = [sys.executable, "-m", "bioprocess_cli"]


def _start(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*CLI, *args], cwd=ROOT, env=env, text=True, **kw)


def _stop(p: subprocess.Popen, sig: int, timeout: float = 60.0) -> tuple[str, str]:
    p.send_signal(sig)
    out, err = p.communicate(timeout=timeout)
    return out, err


def test_plant_serve_and_collect_cli(tmp_path, live_plan):
    lake_root = tmp_path / "lake"
    # 1 bioreactor, 60 s interval, one simulated hour per wall second
    server = _start(
        ["plant", "serve", "--port", "0", "--units", "1", "--days", "4", "--speed", "3600"]
        + [
            "--site-start",
            "2026-01-01",
            "--start",
            "2026-01-02T00:00:00Z",
            "--history-window",
            "345600",
            "--log-every",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    collector = None
    try:
        first = json.loads(server.stdout.readline())
        assert first["event"] == "listening" and first["tags"] == 19
        endpoint = first["endpoint"]
        collector = _start(
            ["plant", "collect", "--endpoint", endpoint, "--lake", str(lake_root), "--flush-interval", "0.5"]
            + ["--log-every", "1", "--backfill", "-1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # wait until it runs and committed (the status file), then a few more flushes
        deadline = time.monotonic() + 90.0
        while time.monotonic() < deadline and collector.poll() is None:
            st = read_status(Lake.open(str(lake_root)))
            if st and st["state"] == "running" and st["rows_committed"] > 0:
                break
            time.sleep(0.5)
        time.sleep(4.0)
        out, err = _stop(collector, signal.SIGINT)
        assert collector.returncode == 0, err[-2000:]
        final = json.loads(out.strip().splitlines()[-1])
        assert final["state"] == "stopped" and final["rows_committed"] > 0
        assert "rows committed" in err  # the progress lines
        sout, serr = _stop(server, signal.SIGTERM)
        assert server.returncode == 0, serr[-2000:]
        lines = [json.loads(x) for x in sout.strip().splitlines()]
        assert any(x["event"] == "progress" for x in lines) and lines[-1]["event"] == "stopped"
    finally:
        for p in (collector, server):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()

    lake = Lake.open(str(lake_root))
    got = bronze(lake)
    assert got.height == final["rows_committed"]
    assert got.select(pl.struct("tag", "ts").is_unique().all()).item()
    # the batch context: BR101-0001 is inoculated at 26.7 h (site time), the run starts at 24 h
    # and the collector starts some simulated hours later (process start-up at 1 h/s)
    b = live_plan.batches[0]
    ctx = read_context(lake)
    assert set(ctx["unit_id"]) == {"BR-101"} and set(ctx["batch_id"]) == {b.batch_id}
    assert "Batch" in set(ctx["phase"]) and set(ctx["phase"]) <= {"Prepare", "Inoculate", "Batch"}
    run = running_batches(ctx)
    assert run["batch_id"].to_list() == [b.batch_id] and run["phase"][0] == "Batch"
    inoc = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=round(b.inoc * 3_600_000))
    assert run["culture_start"][0] == inoc
    assert run["temperature_c"][0] == b.recipe.temperature_c
    assert run["duration_days"][0] == b.recipe.duration_days
