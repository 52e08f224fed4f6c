"""The live plant end to end: the twin's OPC UA server (``lakehouse plant serve``, with a
deviation injected mid-batch) and the collector (``lakehouse plant collect``) as real processes
on 127.0.0.1, the running-batch refresh as the real Dagster multi-asset, real models (a titer
soft-sensor champion in the registry, an MSPC model fitted on twin batches), a local webhook.

Asserts: the running batch gets soft-sensor predictions with intervals, MSPC scores and twin
forecasts before any titer result of it exists; the injected temperature fault raises exactly
one alert (repeated refreshes do not raise it again), with contributions naming the temperature
and at least one ranked corrective scenario; the webhook receives that alert once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import dagster as dg
import polars as pl
import pytest
from live_testutil import ROOT

from assets.live import live_refresh
from assets.resources import LakeResource, LiveAlertsResource
from lakehouse.live import alerts as live
from lakehouse.live import read_status
from lakehouse.storage import Lake
from tests.support.live_models import train_live_models
from twin.site import SiteConfig, plan_site
from twin.site.config import LIMS_TITER, LIMS_TITER_FROM_DAY

SITE = SiteConfig(bioreactors=1, days=8, interval_s=60.0, seed=7)
CULTURE_AT_START_H = 12.0  # culture age of BR101-0001 when the server starts
INJECT_AFTER_H = 30.0  # the fault starts 30 simulated hours later (culture age ~42 h)
WEBHOOK_ENV = "LAKEHOUSE_TEST_ALERT_WEBHOOK"
# no titer result of a batch exists before its first titer sample (day 3) plus the lab's shortest delay
FIRST_TITER_RESULT_H = LIMS_TITER_FROM_DAY * 24.0 + LIMS_TITER[6][0]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bioprocess_cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def webhook():
    _Hook.received = []
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_port}/alerts"
    srv.shutdown()


def test_running_batch_scored_live_and_deviation_alerted_once(tmp_path, webhook, monkeypatch):
    lake = Lake.open(str(tmp_path / "lake"))
    train_live_models(lake, tmp_path)
    batch = plan_site(SITE).batches[0]
    t0 = dt.datetime.fromisoformat(SITE.start).replace(tzinfo=dt.UTC)
    inoc = t0 + dt.timedelta(hours=batch.inoc)
    start = inoc + dt.timedelta(hours=CULTURE_AT_START_H)
    onset_age_h = CULTURE_AT_START_H + INJECT_AFTER_H
    server = _cli(
        ["plant", "serve", "--port", "0", "--units", "1", "--days", str(SITE.days), "--speed", "1800"]
        + ["--start", start.isoformat(), "--log-every", "3600"]
        + ["--inject", f"BR-101.TEMP.PV:+3.0:{INJECT_AFTER_H * 3600:.0f}:{200 * 3600}:3600"]
    )
    collector = None
    monkeypatch.setenv(WEBHOOK_ENV, webhook)
    resources = {
        "lake": LakeResource(root_uri=lake.root),
        "alerts": LiveAlertsResource(webhook_url=dg.EnvVar(WEBHOOK_ENV)),
    }
    run_config = {
        "ops": {"live_refresh": {"config": {"n_draws": 30, "softsensor_config": str(tmp_path / "softsensor.yaml")}}}
    }
    refreshes = []
    try:
        endpoint = json.loads(server.stdout.readline())["endpoint"]
        collector = _cli(
            ["plant", "collect", "--endpoint", endpoint, "--lake", lake.root, "--flush-interval", "1"]
            + ["--backfill", "-1", "--log-every", "3600"]
        )
        deadline = time.monotonic() + 240.0
        after_alert = 0
        while time.monotonic() < deadline and after_alert < 3:
            time.sleep(2.0)
            res = dg.materialize([live_refresh], resources=resources, run_config=run_config)
            assert res.success
            checks = res.get_asset_check_evaluations()
            assert checks and all(c.passed for c in checks)
            refreshes.append(time.monotonic())
            if live.read_live(lake, live.ALERTS).height:
                after_alert += 1
        status = read_status(lake)
    finally:
        for p in (collector, server):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
    assert collector.returncode == 0 and server.returncode == 0
    assert status["rows_committed"] > 0

    bid = batch.batch_id
    preds = live.read_live(lake, live.SOFTSENSOR)
    mspc = live.read_live(lake, live.MSPC)
    fc = live.read_live(lake, live.FORECAST)
    # before any titer result of the batch exists
    early = preds.filter((pl.col("batch_id") == bid) & (pl.col("culture_age_h") < FIRST_TITER_RESULT_H))
    assert early.height > 100
    assert (early["pi_lower"] < early["prediction"]).all() and (early["prediction"] < early["pi_upper"]).all()
    assert set(early["model_name"]) == {"titer_softsensor"} and set(early["model_version"]) == {1}
    assert early["data_until"].null_count() == 0 and early["aligned_version"].min() >= 0
    assert (early["scored_at"] >= early["data_until"]).all()  # traceable: what data, which model, when
    # one prediction per grid step, never twice
    assert preds.select(pl.struct("batch_id", "ts", "target").is_unique().all()).item()
    m_early = mspc.filter(pl.col("culture_age_h") < FIRST_TITER_RESULT_H)
    assert m_early.height >= 20 and (m_early["t2_limit"] > 0).all() and (m_early["spe_limit"] > 0).all()
    assert mspc.select(pl.struct("batch_id", "step").is_unique().all()).item()
    assert (
        fc.filter(
            (pl.col("as_of_h") < FIRST_TITER_RESULT_H) & (pl.col("kind") == "harvest") & (pl.col("quantity") == "titer")
        ).height
        >= 1
    )

    # exactly one alert for the injected fault, after its onset, raised once across refreshes
    alerts = live.read_live(lake, live.ALERTS)
    assert alerts.height == 1, alerts
    a = alerts.row(0, named=True)
    assert a["batch_id"] == bid and a["kind"] == "mspc_alarm"
    assert onset_age_h <= a["culture_age_h"] <= onset_age_h + 24.0
    ev = json.loads(a["evidence_json"])
    assert max(ev["t2_ratio"], ev["spe_ratio"]) > 1.0
    top = list(ev["contributions"])[:2]
    assert {"temperature_error", "temperature"} & set(top), ev["contributions"]
    recs = json.loads(a["recommendations_json"])
    assert len(recs) >= 1 and a["recommendation"] == recs[0]["rationale"]
    assert [r["rank"] for r in recs] == sorted(r["rank"] for r in recs)  # ranked by the expected in-spec titer
    assert all(recs[i]["score"] >= recs[i + 1]["score"] for i in range(len(recs) - 1))
    # no MSPC alarm on the batch before the fault started
    assert not mspc.filter(pl.col("alarm") & (pl.col("culture_age_h") < onset_age_h)).height
    # the webhook got it once
    assert [r["alert"]["alert_id"] for r in _Hook.received] == [a["alert_id"]]
