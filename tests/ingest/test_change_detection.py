"""Change detection by content: a corrected re-export with the old size and mtime (``cp -p``,
``rsync -a``) is ingested, a touched but identical file is not ingested twice, and the same
content under another name is recognised and recorded in quarantine instead of doubling bronze."""

from __future__ import annotations

import os

import polars as pl
from ingest_testdata import T0, historian_csv, lims_csv, write

from lakehouse.ingest.writer import ingest_landing, list_landing, pending_files, read_log, table_uri
from lakehouse.storage import Lake

DAY = T0.date()


def _bronze(lake: Lake, table: str) -> pl.DataFrame:
    return pl.from_arrow(lake.read_delta(table_uri(lake, table)))


def _path(lake: Lake, rel: str) -> str:
    return lake.uri("landing", rel)


def test_corrected_file_with_the_same_size_and_mtime_is_ingested(lake_local: Lake):
    lake, rel = lake_local, f"historian/BR-101/{DAY.isoformat()}.csv"
    data, n = historian_csv("BR-101", DAY, minutes=10)
    write(lake, rel, data)
    first = ingest_landing(lake, run_id="v1")
    assert first.rows_written["historian_readings"] == n
    st = os.stat(_path(lake, rel))

    # the plant re-exports the day with one corrected reading: same size, and `cp -p` keeps the mtime
    corrected = data.replace(b",36.800,", b",36.900,", 1)
    assert corrected != data and len(corrected) == len(data)
    tmp = _path(lake, rel) + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(corrected)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, _path(lake, rel))
    assert (os.stat(_path(lake, rel)).st_size, os.stat(_path(lake, rel)).st_mtime_ns) == (st.st_size, st.st_mtime_ns)

    files, _ = list_landing(lake, ["historian"])
    assert [f.rel_path for f in pending_files(lake, files)] == [rel]
    second = ingest_landing(lake, run_id="v2")
    assert second.rows_written["historian_readings"] == n  # the new version, all its rows
    bronze = _bronze(lake, "historian_readings")
    assert bronze.height == 2 * n
    assert bronze.filter(pl.col("_run_id") == "v2")["value"].to_list().count(36.9) == 1

    # touched again, content unchanged: read and hashed once more, nothing written
    os.utime(_path(lake, rel))
    third = ingest_landing(lake, run_id="v3")
    assert (third.files_already_committed, third.rows_written["historian_readings"]) == (1, 0)
    assert _bronze(lake, "historian_readings").height == 2 * n
    assert ingest_landing(lake, run_id="v4").files_skipped_unchanged == 1  # the log knows it now


def test_the_same_content_under_another_name_is_recorded_not_ingested_twice(lake: Lake):
    data, n = lims_csv(DAY, n_days=1)
    write(lake, f"lims/{DAY.isoformat()}.csv", data)
    assert ingest_landing(lake, run_id="r1").rows_written["lims_results"] == n

    # the same export dropped again under another name, plus a genuinely new one in the same run
    write(lake, f"lims/{DAY.isoformat()}-copy.csv", data)
    other, m = lims_csv(DAY, batch_id="BR102-0001", n_days=1)
    write(lake, "lims/other.csv", other)
    report = ingest_landing(lake, run_id="r2")
    assert report.rows_written["lims_results"] == m
    assert [r["file"] for r in report.files_rejected] == [f"lims/{DAY.isoformat()}-copy.csv"]
    assert f"as lims/{DAY.isoformat()}.csv" in report.files_rejected[0]["reason"]
    assert _bronze(lake, "lims_results").height == n + m
    q = _bronze(lake, "_quarantine")
    assert q.height == 1 and q["reason"][0].startswith("duplicate file: same content")
    assert q["source_file"][0].endswith("-copy.csv")
    # read = bronze + quarantine, per run
    assert report.rows_read["lims_results"] == m + 1 == report.rows_valid["lims_results"] + 1
    log = read_log(lake)
    assert log.height == 3

    # two copies arriving in the same run: the first in path order is ingested, the other recorded
    fresh, k = lims_csv(DAY, batch_id="BR103-0001", n_days=1)
    write(lake, "lims/x1.csv", fresh)
    write(lake, "lims/x2.csv", fresh)
    report = ingest_landing(lake, run_id="r3")
    assert report.rows_written["lims_results"] == k
    assert [r["file"] for r in report.files_rejected] == ["lims/x2.csv"]


def test_identical_header_only_exports_are_not_duplicates(lake_local: Lake):
    data, n = historian_csv("BR-101", DAY, minutes=0)
    assert n == 0
    write(lake_local, f"historian/BR-101/{DAY.isoformat()}.csv", data)
    write(lake_local, f"historian/BR-102/{DAY.isoformat()}.csv", data)
    report = ingest_landing(lake_local, run_id="idle")
    assert not [r for r in report.files_rejected if r["reason"].startswith("duplicate")]
