"""The ingestion never reads outside the landing zone: symbolic links (to files or
directories, inside or outside) are not followed — a link with a contract name becomes one
quarantine row with the reason and no content, any other link is listed as ignored."""

from __future__ import annotations

import os

import polars as pl
from ingest_testdata import T0, historian_csv, lims_csv, write

from lakehouse.ingest.writer import ingest_landing, table_uri
from lakehouse.storage import Lake

DAY = T0.date()


def test_symlinks_are_quarantined_without_reading_them(lake_local: Lake, tmp_path):
    lake = lake_local
    outside = tmp_path / "outside"
    (outside / "BR-109").mkdir(parents=True)
    secret = outside / "secret.csv"
    secret.write_bytes(b"sample_id,batch_id,TOPSECRET\n" + lims_csv(DAY)[0])
    (outside / "BR-109" / f"{DAY.isoformat()}.csv").write_bytes(historian_csv("BR-109", DAY, minutes=5)[0])
    good, n = lims_csv(DAY, n_days=1)
    write(lake, "lims/good.csv", good)
    landing = lake.uri("landing")
    os.symlink(secret, os.path.join(landing, "lims", "outside.csv"))  # a file outside
    os.symlink(os.path.join(landing, "lims", "good.csv"), os.path.join(landing, "lims", "inside.csv"))
    os.makedirs(os.path.join(landing, "historian"), exist_ok=True)
    os.symlink(outside / "BR-109", os.path.join(landing, "historian", "BR-109"))  # a directory outside

    report = ingest_landing(lake, run_id="links")
    assert report.rows_written["lims_results"] == n  # only the real file
    rejected = {r["file"]: r["reason"] for r in report.files_rejected}
    assert set(rejected) == {"lims/outside.csv", "lims/inside.csv"}
    assert all(r.startswith("symbolic link (not followed") for r in rejected.values())
    assert any(i.startswith("historian/BR-109") and "symbolic link" in i for i in report.files_ignored)
    assert "historian_readings" not in report.rows_written or report.rows_written["historian_readings"] == 0
    q = pl.from_arrow(lake.read_delta(table_uri(lake, "_quarantine")))
    assert q.height == 2 and q["raw_record"].is_null().all()
    assert (
        not q.select(pl.concat_str(pl.all().cast(pl.Utf8), ignore_nulls=True))
        .to_series()
        .str.contains("TOPSECRET")
        .any()
    )
    # exactly once: a second run records nothing new
    again = ingest_landing(lake, run_id="links-2")
    assert sum(again.rows_written.values()) == 0 and again.quarantine_written == 0
