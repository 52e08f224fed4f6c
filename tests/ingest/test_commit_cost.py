"""What a run reads before it commits stays bounded however many small runs came before.

* Every run reads the whole ingest log (which files are new, which contents are known); one
  file per commit made that read — and with it every run — slower with every commit (issue
  17: 16 writers × 50 calls on S3). The writer of every LOG_COMPACT_EVERY-th log version
  compacts it.
* Every commit opens its table and looks its file ids up, each replaying the JSON commits
  since the last checkpoint: bronze tables are checkpointed every CHECKPOINT_INTERVAL commits.
"""

from __future__ import annotations

import json

from deltalake import DeltaTable
from ingest_testdata import T0, lims_csv, write

from lakehouse.ingest import writer
from lakehouse.ingest.schemas import CHECKPOINT_INTERVAL, INGEST_LOG_TABLE


def _log_table(lake) -> DeltaTable:
    return DeltaTable(writer.table_uri(lake, INGEST_LOG_TABLE), storage_options=lake.delta_storage_options())


def test_many_small_runs_keep_the_log_small_and_complete(lake, monkeypatch):
    monkeypatch.setattr(writer, "LOG_COMPACT_EVERY", 4)
    runs = 11
    for i in range(runs):
        data, _ = lims_csv(T0.date(), batch_id=f"BR101-{i:04d}", n_days=1)
        write(lake, f"lims/run-{i:02d}.csv", data)
        report = writer.ingest_landing(lake, ["lims"], run_id=f"small-{i}")
        assert report.files_ingested == 1 and report.files_skipped_unchanged == i
    log = _log_table(lake)
    # every file version logged once, nothing lost to the rewrites
    rows = log.to_pyarrow_table(columns=["rel_path"]).column("rel_path").to_pylist()
    assert sorted(rows) == [f"lims/run-{i:02d}.csv" for i in range(runs)]
    # versions count the compactions too: appends 1-4, compaction 5, appends 6-8, compaction 9,
    # appends 10-12, compaction 13, append 14
    ops = [h.get("lakehouse.operation") for h in reversed(log.history())]
    assert ops.count("compact-ingest-log") == 3 and ops[5] == ops[9] == ops[13] == "compact-ingest-log"
    assert len(log.file_uris()) == 2  # the compacted file + the last append
    # the compacted log still tells what is done: a new run reads nothing again
    again = writer.ingest_landing(lake, ["lims"], run_id="again")
    assert again.files_skipped_unchanged == runs and again.files_ingested == 0
    bronze = DeltaTable(writer.table_uri(lake, "lims_results"), storage_options=lake.delta_storage_options())
    assert bronze.to_pyarrow_table().num_rows == runs * 4
    # bronze: versions 0 (create) .. 11, checkpointed at version 9 (every 10 commits)
    assert CHECKPOINT_INTERVAL == 10 and bronze.version() == runs
    assert bronze.metadata().configuration["delta.checkpointInterval"] == "10"
    last = lake.filesystem().cat(lake.fs_path(lake.uri("bronze", "lims_results", "_delta_log", "_last_checkpoint")))
    assert json.loads(last)["version"] == 9


def test_compaction_can_be_switched_off(lake_local, monkeypatch):
    monkeypatch.setattr(writer, "LOG_COMPACT_EVERY", 0)
    for i in range(3):
        data, _ = lims_csv(T0.date(), batch_id=f"BR101-{i:04d}", n_days=1)
        write(lake_local, f"lims/run-{i:02d}.csv", data)
        writer.ingest_landing(lake_local, ["lims"], run_id=f"off-{i}")
    log = _log_table(lake_local)
    assert len(log.file_uris()) == 3
    assert "compact-ingest-log" not in [h.get("lakehouse.operation") for h in log.history()]
