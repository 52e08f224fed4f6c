"""Test harness: run the live collector (``python -m lakehouse.live`` arguments) in a subprocess
and die (``os._exit(77)``, no cleanup: like a kill -9) at a chosen commit point.

``LIVE_CRASH_AFTER`` (read ONLY here, never by the library) is ``<event>:<n>``: exit right
after the n-th ``quarantine_committed`` (rejected readings committed, their valid neighbours
not yet: mid-batch) or ``bronze_committed`` hook event. Without it the collector runs normally.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lakehouse.live import collector
from lakehouse.live.cli import main

CRASH_AFTER = os.environ.get("LIVE_CRASH_AFTER", "")
_seen: dict[str, int] = {}


def _hook(event: str, info: dict) -> None:
    name, _, nth = CRASH_AFTER.partition(":")
    if event != name:
        return
    _seen[event] = _seen.get(event, 0) + 1
    if _seen[event] >= int(nth or 1):
        print(f"crashing after {event} #{_seen[event]}", flush=True)
        os._exit(77)


if __name__ == "__main__":
    if CRASH_AFTER:
        collector.HOOKS.append(_hook)
    sys.exit(main(sys.argv[1:]))
