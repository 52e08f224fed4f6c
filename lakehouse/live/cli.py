"""``python -m lakehouse.live`` / ``lakehouse plant collect``: collect an OPC UA server into
bronze (see :func:`collect`).

Environment (read by the callers of :func:`add_collect_arguments`' defaults only):
``LAKEHOUSE_ROOT`` (default lake) and, for ``s3://`` lakes, ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` (:meth:`Lake.open`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os

COLLECT_HELP = "collect an OPC UA server's tags (and batch context) into bronze, exactly once, until stopped"


def add_collect_arguments(p: argparse.ArgumentParser, default_lake: str | None = None) -> None:
    """Options of ``lakehouse plant collect`` (and ``python -m lakehouse.live``)."""
    p.add_argument("--endpoint", default="opc.tcp://127.0.0.1:4840", help="OPC UA endpoint")
    p.add_argument(
        "--lake",
        default=default_lake or os.environ.get("LAKEHOUSE_ROOT", "data/lake"),
        help="lake root: local folder or s3://bucket/prefix (default $LAKEHOUSE_ROOT or data/lake)",
    )
    p.add_argument("--tagmap", default="config/tagmaps/twin.yaml", help="tag map YAML (docs/ingestion.md)")
    p.add_argument("--tags", default=None, help="comma-separated tags (default: every historized numeric variable)")
    p.add_argument("--flush-interval", type=float, default=2.0, help="seconds between micro-batch commits")
    p.add_argument(
        "--backfill",
        type=float,
        default=3600.0,
        help="seconds of history to read for a tag without a cursor (negative: all the server has)",
    )
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--run-id", default=None, help="lineage run id (default live-<random>)")
    p.add_argument("--log-every", type=float, default=10.0, help="seconds between progress lines")


def collect_command(a: argparse.Namespace) -> int:
    """Collect until SIGINT/SIGTERM or ``--duration``; the final status as one JSON line."""
    from lakehouse.ingest.tagmap import load_tagmap
    from lakehouse.live.collector import collect
    from lakehouse.storage import Lake

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    lake = Lake.open(a.lake)
    lake.ensure_bucket()
    status = collect(
        lake,
        a.endpoint,
        tagmap=load_tagmap(a.tagmap),
        tags=a.tags.split(",") if a.tags else None,
        flush_interval_s=a.flush_interval,
        backfill_s=None if a.backfill < 0 else a.backfill,
        duration_s=a.duration,
        run_id=a.run_id,
        log_every_s=a.log_every,
    )
    s = status.as_dict()
    s.pop("tags", None)
    print(json.dumps(s, default=str), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run :func:`collect` until stopped."""
    p = argparse.ArgumentParser(prog="python -m lakehouse.live", description=COLLECT_HELP)
    add_collect_arguments(p)
    return collect_command(p.parse_args(argv))
