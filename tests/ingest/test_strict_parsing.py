"""Input the ingestion used to accept silently now goes to quarantine with a reason: a
duplicate CSV header (pyarrow kept one of the two columns), duplicate JSON keys (the last one
won), nested JSON where a string is expected (stored as a Python repr) and control characters
in values (NUL in an id)."""

from __future__ import annotations

import json

import polars as pl
from ingest_testdata import T0, cmms_csv, lims_csv, mes_json, write

from lakehouse.ingest.writer import ingest_landing, table_uri
from lakehouse.storage import Lake

DAY = T0.date()


def _table(lake: Lake, name: str) -> pl.DataFrame:
    return pl.from_arrow(lake.read_delta(table_uri(lake, name)))


def test_ambiguous_and_corrupted_input_is_quarantined_with_its_reason(lake_local: Lake):
    lake = lake_local
    lims, n_lims = lims_csv(DAY, n_days=1)
    lines = lims.decode().splitlines()
    # a duplicate header: two "value" columns — which one is the result?
    write(lake, "lims/dup-header.csv", ("\n".join([lines[0].replace(",unit,", ",value,")] + lines[1:]) + "\n").encode())
    # a NUL inside a sample id (one row) — every other row is fine
    lines2 = lims_csv(DAY, batch_id="BR102-0001", n_days=1)[0].decode().splitlines()
    lines2[2] = lines2[2].replace("S-BR1020001", "S-BR10\x0020001", 1)
    write(lake, "lims/nul.csv", ("\n".join(lines2) + "\n").encode())
    # an ESC in a free-text description
    cm, n_cm = cmms_csv(DAY)
    write(lake, "cmms/esc.csv", cm.replace(b"DO probe calibration", b"DO probe \x1b[31mcalibration"))

    # MES: duplicate key; nested list where a string is expected
    rec = json.loads(mes_json("BR101-0001")[0])
    write(lake, "mes/dup-key.json", json.dumps(rec)[:-1].encode() + b', "status": "aborted"}')
    nested = dict(rec, batch_id="BR101-0002", product=["mAb-A", "mAb-B"])
    write(lake, "mes/nested.json", json.dumps(nested).encode())

    report = ingest_landing(lake, run_id="strict")
    files = {r["file"]: r["reason"] for r in report.files_rejected}
    assert files["lims/dup-header.csv"] == "duplicate column(s) in header: value"
    assert files["mes/dup-key.json"].startswith("duplicate key(s) in a JSON object: status")
    assert set(files) == {"lims/dup-header.csv", "mes/dup-key.json"}

    q = _table(lake, "_quarantine")
    reasons = q.group_by("reason").len().sort("reason")
    row_reasons = dict(zip(reasons["reason"], reasons["len"], strict=True))
    assert row_reasons["control character in column sample_id"] == 1
    assert row_reasons["control character in column description"] == 1
    assert row_reasons["nested JSON value in field product (a string was expected)"] == 1
    # nothing was stored as a Python repr, no control character reached bronze
    lims_b = _table(lake, "lims_results")
    assert lims_b.height == n_lims - 1
    assert not lims_b["sample_id"].str.contains("\x00").any()
    assert _table(lake, "cmms_work_orders").height == n_cm - 1
    batches = _table(lake, "mes_batches")
    assert batches["batch_id"].to_list() == [] and not batches["product"].str.contains(r"\[").any()
    assert _table(lake, "mes_phases").filter(pl.col("batch_id") == "BR101-0002").height == 6  # its phases are fine
    # reconciliation per table: read = bronze + quarantine
    for t in ("lims_results", "cmms_work_orders", "mes_batches"):
        assert report.rows_read[t] == report.rows_valid[t] + report.rows_quarantined[t], t
