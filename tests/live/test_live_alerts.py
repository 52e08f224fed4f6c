"""The alerts table: one row per condition (MERGE on the condition id), also when the same
condition is offered again or by two writers; severity from the statistic/limit ratio."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from lakehouse.live import alerts as live
from ml.running import alert_id, new_alerts, severity


def _events(first_over_h: float, ratio: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "batch_id": "BR101-0001",
                "culture_age_h": first_over_h + 3.0,
                "first_over_h": first_over_h,
                "statistic": "SPE",
                "t2_ratio": 0.5,
                "spe_ratio": ratio,
                "top_signals": "temperature_error,temperature",
                "contributions": json.dumps({"temperature_error": 0.7, "temperature": 0.2}),
            }
        ]
    )


def test_alert_raised_once_per_condition(lake_local):
    ctx = {"BR101-0001": {"unit_id": "BR-101", "mspc_model_version": "v1"}}
    known = live.known_alert_ids(lake_local)
    rows = new_alerts(_events(42.0, 2.0), known, {}, {}, ctx)
    assert len(rows) == 1 and rows[0]["severity"] == "medium" and rows[0]["unit_id"] == "BR-101"
    assert json.loads(rows[0]["evidence_json"])["contributions"]["temperature_error"] == 0.7
    assert "no twin posterior" in rows[0]["recommendation"]  # said, not silently empty
    assert live.append_alerts(lake_local, rows) == 1
    # the next refresh sees the same event: nothing new (by id, and the MERGE would not insert it)
    assert new_alerts(_events(42.0, 2.5), live.known_alert_ids(lake_local), {}, {}, ctx) == []
    assert live.append_alerts(lake_local, rows) == 0
    # two writers racing with the same new condition store it once
    later = new_alerts(_events(60.0, 4.0), set(), {}, {}, ctx)
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda _: _retry_append(lake_local, later), range(2)))
    table = live.read_live(lake_local, live.ALERTS)
    assert table.height == 2 and table["alert_id"].n_unique() == 2
    assert set(table["severity"]) == {"medium", "high"}
    assert alert_id("BR101-0001", "mspc_alarm", "42.000") in set(table["alert_id"])
    assert severity(1.2) == "low" and severity(1.5) == "medium" and severity(3.0) == "high"
    assert table["raised_at"].max() <= dt.datetime.now(dt.UTC)


def _retry_append(lake, rows):
    from lakehouse.retry import retrying

    return retrying(lambda: live.append_alerts(lake, rows), "append alerts")
