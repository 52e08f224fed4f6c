"""The audit trail: an append-only, hash-chained log of the decisions that change what the
lakehouse serves — promotions, approvals and rejections, configuration and envelope changes,
quarantine releases.

Each entry carries a sequence number, the UTC time, the acting identity (from the environment
or the OS user, never typed in by code), the action, its subject, its details (JSON) and two
hashes: ``prev_hash`` (the previous entry's hash; 64 zeros for the first) and ``entry_hash`` =
sha256 over all of that. The log is a Delta table (``audit/log``) created append-only; every
append commits exactly one entry together with

* a Delta app transaction ``audit`` = its sequence number, so two writers that both read entry
  N conflict and the loser re-reads and appends N + 2 (no fork, no gap), and
* the entry's sequence number and hash in the commit metadata, an anchor outside the rows.

:meth:`AuditLog.verify` recomputes the chain and names the first entry that was edited
(its hash no longer matches its content), deleted (a gap, or a hash the next entry does not
point to), reordered (moved sequence numbers: an entry no longer follows its predecessor) or
cut from the end (a commit anchor for an entry that is gone). Whoever can rewrite both the data files *and* the commit log can
forge a consistent history; export :meth:`AuditLog.head` to another system (a ticket, a signed
mail) to anchor it outside the lake.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lakehouse.jsonsafe import clean
from lakehouse.retry import DEFAULT_POLICY, RetryPolicy, retrying
from lakehouse.storage import Lake

GENESIS = "0" * 64
AUDIT_LAYER, AUDIT_TABLE = "audit", "log"
AUDIT_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),
        ("action", pa.string()),
        ("subject", pa.string()),
        ("details_json", pa.string()),
        ("prev_hash", pa.string()),
        ("entry_hash", pa.string()),
    ]
)
AUDIT_PROPERTIES = {
    "delta.appendOnly": "true",
    "delta.logRetentionDuration": "interval 36500 days",
    "delta.enableExpiredLogCleanup": "false",
}
ACTIONS = (
    "promotion",
    "demotion",
    "approval",
    "rejection",
    "config_change",
    "envelope_change",
    "quarantine_release",
    "maintenance",
)


def current_identity(environ: Mapping[str, str] | None = None) -> str:
    """Who is acting: ``LAKEHOUSE_IDENTITY`` (set by the deployment, e.g. from SSO), else the
    OS user at this host. Never a value the code or a config file types in."""
    env = os.environ if environ is None else environ
    ident = env.get("LAKEHOUSE_IDENTITY", "").strip()
    if ident:
        return ident
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, NaN-free: the byte-stable form that is hashed."""
    return json.dumps(clean(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit trail."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details_json: str
    prev_hash: str
    entry_hash: str

    @property
    def details(self) -> dict[str, Any]:
        """The details as a dict."""
        return json.loads(self.details_json)

    def expected_hash(self) -> str:
        """The hash this entry's content and predecessor give."""
        return compute_hash(self.prev_hash, self.seq, self.at, self.actor, self.action, self.subject, self.details_json)


def compute_hash(
    prev_hash: str, seq: int, at: datetime, actor: str, action: str, subject: str, details_json: str
) -> str:
    """sha256 over the canonical form of an entry and its predecessor's hash."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    blob = canonical_json([prev_hash, int(seq), stamp, actor, action, subject, details_json])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verification:
    """The result of :meth:`AuditLog.verify`.

    Attributes
    ----------
    ok : bool
        The chain is intact.
    entries : int
        Entries read.
    first_bad_seq : int or None
        The first entry found edited, deleted, reordered or missing.
    problem : str
        One line naming what is wrong (empty when ok).
    """

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


class AuditLog:
    """The audit trail of a lake (``<root>/audit/log``).

    Parameters
    ----------
    lake : Lake
        The lake.
    policy : RetryPolicy
        Retries for commit conflicts and transient storage faults.
    """

    def __init__(self, lake: Lake, policy: RetryPolicy = DEFAULT_POLICY):
        self.lake = lake
        self.uri = lake.uri(AUDIT_LAYER, AUDIT_TABLE)
        self.policy = policy

    # ------------------------------------------------------------------ write
    def _table(self):
        from deltalake import DeltaTable

        opts = self.lake.delta_storage_options()
        if not self.lake.delta_exists(self.uri):
            try:
                DeltaTable.create(
                    self.uri, AUDIT_SCHEMA, mode="ignore", storage_options=opts, configuration=dict(AUDIT_PROPERTIES)
                )
            except Exception:
                if not self.lake.delta_exists(self.uri):
                    raise
        return DeltaTable(self.uri, storage_options=opts)

    def append(
        self, action: str, subject: str, details: Mapping[str, Any] | None = None, actor: str | None = None
    ) -> AuditEntry:
        """Append one entry (exactly once, in order, under concurrency).

        Parameters
        ----------
        action : str
            One of :data:`ACTIONS`.
        subject : str
            What it is about (``"model:titer_softsensor:7"``, ``"config:plants/cho-twin/golden.yaml"``).
        details : mapping, optional
            Evidence: hashes, reasons, before/after values (JSON-able).
        actor : str, optional
            Default :func:`current_identity`; code passes it only to record a system actor
            (e.g. ``"system:promotion-gate"``).
        """
        from deltalake import CommitProperties, Transaction, write_deltalake

        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r} (one of {', '.join(ACTIONS)})")
        who = actor or current_identity()
        body = canonical_json(dict(details or {}))

        def attempt() -> AuditEntry:
            table = self._table()
            last = _last_entry(table)
            seq = (last.seq + 1) if last else 1
            prev = last.entry_hash if last else GENESIS
            at = datetime.now(UTC)
            entry = AuditEntry(
                seq, at, who, action, subject, body, prev, compute_hash(prev, seq, at, who, action, subject, body)
            )
            row = {k: getattr(entry, k) for k in AUDIT_SCHEMA.names}
            write_deltalake(
                table,
                pa.Table.from_pylist([row], schema=AUDIT_SCHEMA),
                mode="append",
                commit_properties=CommitProperties(
                    app_transactions=[Transaction("audit", seq, int(at.timestamp() * 1000))],
                    custom_metadata={
                        "lakehouse.operation": "audit",
                        "lakehouse.audit_seq": str(seq),
                        "lakehouse.audit_head": entry.entry_hash,
                    },
                ),
            )
            return entry

        return retrying(attempt, f"append to the audit trail ({action} {subject})", self.policy)

    # ------------------------------------------------------------------ read
    def entries(self) -> list[AuditEntry]:
        """Every entry, in sequence order."""
        if not self.lake.delta_exists(self.uri):
            return []
        table = self.lake.read_delta(self.uri)
        return sorted((AuditEntry(**r) for r in table.to_pylist()), key=lambda e: e.seq)

    def head(self) -> tuple[int, str]:
        """(sequence number, hash) of the newest entry — the value to anchor outside the lake."""
        entries = sorted(self.entries(), key=lambda e: e.seq)
        return (entries[-1].seq, entries[-1].entry_hash) if entries else (0, GENESIS)

    def verify(self) -> Verification:
        """Recompute the chain; name the first entry that was edited, deleted or reordered."""
        from deltalake import DeltaTable

        if not self.lake.delta_exists(self.uri):
            return Verification(True, 0)
        rows, altered_files = self._forensic_rows()
        # the order of the log is its sequence numbers: a reordering changes them, and then an
        # entry no longer follows the one before it
        by_seq = sorted(rows, key=lambda e: e.seq)
        seen: set[int] = set()
        for e in rows:
            if e.seq in seen:
                return Verification(False, len(rows), e.seq, f"entry {e.seq} appears twice (inserted or copied)")
            seen.add(e.seq)
        prev_hash, expected_seq = GENESIS, 1
        for e in by_seq:
            if e.seq != expected_seq:
                return Verification(False, len(rows), expected_seq, f"entry {expected_seq} is missing (deleted)")
            if e.prev_hash != prev_hash:
                return Verification(
                    False,
                    len(rows),
                    e.seq,
                    f"entry {e.seq} does not follow entry {e.seq - 1} (an entry before it was deleted, edited or reordered)",
                )
            if e.expected_hash() != e.entry_hash:
                return Verification(
                    False, len(rows), e.seq, f"entry {e.seq} was edited (its hash does not match its content)"
                )
            prev_hash, expected_seq = e.entry_hash, expected_seq + 1
        # commit anchors: every recorded (seq, head) must still be there, unchanged
        hashes = {e.seq: e.entry_hash for e in by_seq}
        table = DeltaTable(self.uri, storage_options=self.lake.delta_storage_options())
        anchors = {
            int(c["lakehouse.audit_seq"]): str(c["lakehouse.audit_head"])
            for c in table.history()
            if "lakehouse.audit_seq" in c
        }
        for seq in sorted(anchors):  # the earliest entry that differs from its commit
            if seq not in hashes:
                return Verification(
                    False, len(rows), seq, f"entry {seq} was committed but is gone (deleted from the end)"
                )
            if hashes[seq] != anchors[seq]:
                return Verification(False, len(rows), seq, f"entry {seq} differs from what was committed (rewritten)")
        if altered_files:
            return Verification(
                False,
                len(rows),
                None,
                f"data file {altered_files[0]} differs from the size the log recorded (altered outside Delta)",
            )
        return Verification(True, len(rows))

    def _forensic_rows(self) -> tuple[list[AuditEntry], list[str]]:
        """Every row of the data files of the current snapshot, read file by file straight from
        storage (not through a reader that trusts the sizes in the log), and the files whose
        size differs from what the log recorded."""
        import pyarrow.parquet as pq
        from deltalake import DeltaTable

        table = DeltaTable(self.uri, storage_options=self.lake.delta_storage_options())
        actions = pa.table(table.get_add_actions(flatten=True))
        fs = self.lake.filesystem()
        rows: list[AuditEntry] = []
        altered: list[str] = []
        for rel, size in zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(), strict=True):
            path = self.lake.fs_path(self.lake.uri(AUDIT_LAYER, AUDIT_TABLE, rel))
            if fs.size(path) != size:
                altered.append(rel)
            with fs.open(path, "rb") as fh:
                rows += [AuditEntry(**r) for r in pq.read_table(fh).to_pylist()]
        return rows, altered


def _last_entry(table) -> AuditEntry | None:
    data = table.to_pyarrow_table()
    if data.num_rows == 0:
        return None
    rows = sorted(data.to_pylist(), key=lambda r: r["seq"])
    return AuditEntry(**rows[-1])
