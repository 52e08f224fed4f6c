"""What is new in the landing zone? (used by the sensor; no Dagster here)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from lakehouse.ingest.readers import SYSTEMS
from lakehouse.ingest.writer import list_landing, pending_files, read_log
from lakehouse.storage import Lake


@dataclass(frozen=True)
class PendingRun:
    """A run the landing sensor should request: system, run key, the files (path, fingerprint)
    it covers and, for the historian, its partition range.
    """

    system: str
    run_key: str
    files: tuple[tuple[str, str], ...]  # (rel_path, fingerprint)
    partition_range: tuple[str, str] | None = None  # historian: first, last day


def file_set_key(items: Iterable[tuple[str, str]]) -> str:
    """Stable key of a set of (relative path, fingerprint) pairs."""
    h = hashlib.sha256()
    for rel, fp in sorted(items):
        h.update(f"{rel}\0{fp}\n".encode())
    return h.hexdigest()[:24]


def _day_ranges(days: list[str]) -> list[tuple[str, str]]:
    """Contiguous runs of ISO days."""
    out: list[tuple[str, str]] = []
    for d in sorted(set(days)):
        if out and dt.date.fromisoformat(d) - dt.date.fromisoformat(out[-1][1]) == dt.timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def plan_runs(
    lake: Lake,
    inflight: dict[str, str] | None = None,
    systems: Iterable[str] | None = None,
    min_day: str | None = None,
    max_day: str | None = None,
) -> tuple[list[PendingRun], list[str]]:
    """Runs to request for new/changed landing files not already launched (``inflight``:
    rel_path → fingerprint launched earlier). Historian files are grouped into contiguous day
    ranges (one run per range, single-run backfill policy). Returns (runs, skipped paths)."""
    inflight = inflight or {}
    systems = list(systems or SYSTEMS)
    files, _ = list_landing(lake, systems)
    log = read_log(lake, systems)
    new = [f for f in pending_files(lake, files, log) if inflight.get(f.rel_path) != f.fingerprint]
    runs: list[PendingRun] = []
    skipped: list[str] = []
    by_system = defaultdict(list)
    for f in new:
        by_system[f.system].append(f)
    for system in systems:
        fs = by_system.get(system, [])
        if not fs:
            continue
        if system == "historian":
            by_day = defaultdict(list)
            for f in fs:
                day = f.meta.get("day")
                if day is None or (min_day and day < min_day) or (max_day and day > max_day):
                    skipped.append(f.rel_path)
                    continue
                by_day[day].append(f)
            for a, b in _day_ranges(list(by_day)):
                items = tuple(
                    sorted((f.rel_path, f.fingerprint) for d, group in by_day.items() if a <= d <= b for f in group)
                )
                runs.append(PendingRun(system, f"{system}:{a}:{b}:{file_set_key(items)}", items, (a, b)))
        else:
            items = tuple(sorted((f.rel_path, f.fingerprint) for f in fs))
            runs.append(PendingRun(system, f"{system}:{file_set_key(items)}", items))
    return runs, skipped


def prune_inflight(lake: Lake, inflight: dict[str, str]) -> dict[str, str]:
    """Drop entries the ingest log now holds (same fingerprint): their runs are done."""
    if not inflight:
        return {}
    log = read_log(lake)
    done = set(zip(log.get_column("rel_path").to_list(), log.get_column("fingerprint").to_list()))
    return {k: v for k, v in inflight.items() if (k, v) not in done}


def dumps_cursor(inflight: dict[str, str], launched_at: dict[str, float]) -> str:
    """The sensor cursor (in-flight file sets and their launch times) as a string."""
    return json.dumps({"inflight": inflight, "launched_at": launched_at}, sort_keys=True)


def loads_cursor(cursor: str | None) -> tuple[dict[str, str], dict[str, float]]:
    """Parse a sensor cursor written by :func:`dumps_cursor` (empty when ``None``)."""
    if not cursor:
        return {}, {}
    d = json.loads(cursor)
    return dict(d.get("inflight", {})), dict(d.get("launched_at", {}))
