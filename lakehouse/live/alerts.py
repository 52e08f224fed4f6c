"""Live tables of the running batches (``scores/live_*``), the alerts table and its webhook.

An alert is a row of ``scores/live_alerts`` keyed by ``alert_id`` (a hash of the condition):
:func:`append_alerts` MERGEs on it (insert when not matched), so a condition seen again by the
next refresh — or by two refreshes racing — is stored once. :func:`post_webhook` POSTs new
alerts as JSON to a URL the caller got from the environment (never logged: it may hold a token).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import write_deltalake

from lakehouse.live.context import read_rows
from lakehouse.storage import Lake

log = logging.getLogger(__name__)

#: the live tables under ``scores/``
SOFTSENSOR = "live_softsensor"
MSPC = "live_mspc"
FORECAST = "live_forecast"
ALERTS = "live_alerts"
TS = pa.timestamp("us", tz="UTC")
ALERT_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("batch_id", pa.string()),
        ("unit_id", pa.string()),
        ("kind", pa.string()),
        ("what", pa.string()),
        ("culture_age_h", pa.float64()),
        ("severity", pa.string()),
        ("evidence_json", pa.string()),
        ("recommendation", pa.string()),
        ("recommendations_json", pa.string()),
        ("raised_at", TS),
    ]
)


def table_uri(lake: Lake, name: str) -> str:
    """URI of ``scores/<name>``."""
    return lake.table_uri("scores", name)


def read_live(lake: Lake, name: str, batch_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Rows of a live table (of ``batch_ids`` if given); empty when the table does not exist."""
    return read_rows(lake, table_uri(lake, name), batch_ids)


def append_live(lake: Lake, name: str, df: pl.DataFrame, metadata: Mapping[str, str] | None = None) -> int | None:
    """Append rows to ``scores/<name>`` (schema may gain columns); returns the new version."""
    if df.height == 0:
        return None
    uri = table_uri(lake, name)
    from deltalake import CommitProperties

    write_deltalake(
        uri,
        df.to_arrow(),
        mode="append",
        schema_mode="merge",
        storage_options=lake.delta_storage_options(),
        commit_properties=CommitProperties(
            custom_metadata={"lakehouse.operation": f"live-{name}", **dict(metadata or {})}
        ),
    )
    return lake.delta_table(uri).version()


def known_alert_ids(lake: Lake) -> set[str]:
    """Ids of every alert raised so far."""
    df = read_live(lake, ALERTS)
    return set(df["alert_id"].to_list()) if df.height else set()


def append_alerts(lake: Lake, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert alerts whose ``alert_id`` is not in the table yet (MERGE); returns rows inserted."""
    if not rows:
        return 0
    data = pa.Table.from_pylist([dict(r) for r in rows], schema=ALERT_SCHEMA)
    uri = table_uri(lake, ALERTS)
    opts = lake.delta_storage_options()
    if not lake.delta_exists(uri):
        from deltalake import DeltaTable

        DeltaTable.create(uri, ALERT_SCHEMA, mode="ignore", storage_options=opts, name=ALERTS)
    metrics = (
        lake.delta_table(uri)
        .merge(data, predicate="t.alert_id = s.alert_id", source_alias="s", target_alias="t")
        .when_not_matched_insert_all()
        .execute()
    )
    return int(metrics.get("num_target_rows_inserted", 0))


def post_webhook(url: str, rows: Sequence[Mapping[str, Any]], timeout_s: float = 10.0) -> int:
    """POST each alert as JSON (``{"alert": {...}}``) to ``url``; returns how many were accepted
    (2xx). Failures are logged without the URL and do not raise: the alert is in the lake."""
    ok = 0
    for r in rows:
        body = json.dumps({"alert": dict(r)}, default=str).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                ok += int(200 <= resp.status < 300)
        except Exception as exc:  # the webhook is a notification; the alerts table is the record
            log.error("alert webhook failed for %s: %s", r.get("alert_id"), type(exc).__name__)
    return ok
