"""The audit trail is append-only and tamper-evident: concurrent appends stay one chain, and an
entry edited, deleted, reordered or cut from the end — by rewriting the Delta table's files
behind its back — is named by ``verify``."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lakehouse.audit import AUDIT_SCHEMA, GENESIS, AuditLog, current_identity
from lakehouse.storage import Lake


def _log(tmp_path, n: int = 5) -> AuditLog:
    log = AuditLog(Lake(str(tmp_path / "lake")))
    for i in range(n):
        log.append("promotion", f"model:titer_softsensor:{i + 1}", {"rmse": 0.2 + i / 100, "reason": "beats champion"})
    return log


def _rewrite(log: AuditLog, fn) -> None:
    """Rewrite the table's data files in place (what an editor with file access could do)."""
    table = DeltaTable(log.uri)
    files = table.file_uris()
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    rows = fn(rows)
    for f in files:
        os.remove(f)
    pq.write_table(pa.Table.from_pylist(rows, schema=AUDIT_SCHEMA), files[0])
    for f in files[1:]:
        pq.write_table(AUDIT_SCHEMA.empty_table(), f)


def _swap_seq_2_3(rows):
    """Entries 2 and 3 change places (their sequence numbers are swapped)."""
    for r in rows:
        r["seq"] = {2: 3, 3: 2}.get(r["seq"], r["seq"])
    return rows


def test_entries_chain_and_verify(tmp_path):
    log = _log(tmp_path)
    entries = sorted(log.entries(), key=lambda e: e.seq)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS and all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    assert entries[2].details == {"reason": "beats champion", "rmse": 0.22}
    assert entries[0].actor == current_identity() and "@" in entries[0].actor
    assert log.verify().ok and log.verify().entries == 5
    assert log.head() == (5, entries[-1].entry_hash)
    with pytest.raises(Exception, match="append-only"):
        DeltaTable(log.uri).delete("seq = 3")


def test_identity_comes_from_the_environment():
    assert current_identity({"LAKEHOUSE_IDENTITY": "qa.reviewer@site"}) == "qa.reviewer@site"
    assert "@" in current_identity({})


def test_concurrent_appends_stay_one_chain(tmp_path):
    log = AuditLog(Lake(str(tmp_path / "lake")))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: log.append("config_change", f"config:{i}", {"i": i}), range(8)))
    assert sorted(e.seq for e in log.entries()) == list(range(1, 9))
    assert log.verify().ok


@pytest.mark.parametrize(
    ("tamper", "seq", "words"),
    [
        ("edit", 3, "edited"),
        ("delete", 3, "missing"),
        ("reorder", 2, "does not follow"),
        ("truncate", 5, "gone"),
        ("forge_chain", 3, "differs from what was committed"),
    ],
)
def test_tampering_is_named(tmp_path, tamper, seq, words):
    log = _log(tmp_path)

    def edit(rows):
        rows[2]["details_json"] = rows[2]["details_json"].replace("0.22", "0.12")
        return rows

    def forge(rows):  # edit entry 3 and recompute every hash after it (a consistent-looking chain)
        from lakehouse.audit import compute_hash

        rows = sorted(rows, key=lambda r: r["seq"])
        rows[2]["details_json"] = rows[2]["details_json"].replace("0.22", "0.12")
        prev = rows[1]["entry_hash"]
        for r in rows[2:]:
            r["prev_hash"] = prev
            r["entry_hash"] = prev = compute_hash(
                prev, r["seq"], r["at"], r["actor"], r["action"], r["subject"], r["details_json"]
            )
        return rows

    tampers = {
        "edit": edit,
        "delete": lambda rows: [r for r in rows if r["seq"] != 3],
        "reorder": _swap_seq_2_3,
        "truncate": lambda rows: [r for r in rows if r["seq"] != 5],
        "forge_chain": forge,
    }
    _rewrite(log, tampers[tamper])
    result = log.verify()
    assert not result.ok
    assert result.first_bad_seq == seq, result
    assert words in result.problem


def test_unknown_actions_are_refused(tmp_path):
    log = AuditLog(Lake(str(tmp_path / "lake")))
    with pytest.raises(ValueError, match="unknown audit action"):
        log.append("rename", "x")
    assert log.verify().ok and log.verify().entries == 0
    assert isinstance(dt.datetime.now(dt.UTC), dt.datetime)


def test_cli_verify_names_the_tampered_entry_and_errors_are_one_line(tmp_path, capsys):
    from bioprocess_cli.main import main

    log = _log(tmp_path, n=3)
    assert main(["audit", "verify", "--lake", log.lake.root]) == 0
    assert "intact: 3 entries" in capsys.readouterr().out
    _rewrite(log, lambda rows: [r for r in rows if r["seq"] != 2])
    assert main(["audit", "verify", "--lake", log.lake.root]) == 1
    assert "BROKEN at entry 2" in capsys.readouterr().out
    # an error the user can fix: one line, status 2, no backtrace
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() == 0:  # root ignores directory modes: use an unreachable S3 endpoint instead
            os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
            os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = "AK", "SK"
            code = main(["audit", "verify", "--lake", "s3://nowhere/lake"])
        else:
            code = main(["audit", "verify", "--lake", str(locked / "lake")])
    finally:
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.pop(k, None)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("lakehouse audit: error: "), err
