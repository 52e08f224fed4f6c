"""The twin's own command line, ``python -m twin``: the simulator standalone.

    python -m twin simulate --out data/lake --days 30
    python -m twin export-plant --out data/demo-plant-export

The product's ``lakehouse`` command (``bioprocess_cli``) offers the same two subcommands with
the same options (it reuses :func:`add_simulate_arguments` and :func:`simulate_command`) and
adds the S3 settings of the environment for ``s3://`` outputs. Standalone, an ``s3://``
output uses what s3fs finds itself (the standard AWS variables).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from twin.foreign_export import EXPORT_HELP, add_export_arguments, export_command
from twin.site import SiteConfig

SIMULATE_HELP = "simulate the site and write the landing zone"


def add_simulate_arguments(p: argparse.ArgumentParser, default_out: str = "data/lake") -> None:
    """Options of ``simulate`` (defaults: :class:`twin.site.SiteConfig`)."""
    d = SiteConfig()
    p.add_argument(
        "--out",
        default=default_out,
        help="lake root: a local folder or s3://bucket/prefix (landing/ is written under it); "
        "default $LAKEHOUSE_ROOT or data/lake",
    )
    p.add_argument("--bioreactors", type=int, default=d.bioreactors, help="number of bioreactors BR-101, BR-102, ...")
    p.add_argument("--start", default=d.start, help="first UTC day (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=d.days, help="number of days to simulate")
    p.add_argument("--interval", type=float, default=d.interval_s, help="historian logging interval in seconds")
    p.add_argument(
        "--full-resolution-days",
        type=int,
        default=d.full_resolution_days,
        help="the last N days are logged every --interval, the days before every --history-interval "
        "(0 or >= --days: every day at --interval)",
    )
    p.add_argument(
        "--history-interval",
        type=float,
        default=d.history_interval_s,
        help="historian interval in seconds before the full-resolution days",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (same seed => identical files)")
    p.add_argument("--workers", type=int, default=d.workers, help="threads building historian files")
    p.add_argument("--no-trajectories", action="store_true", help="skip landing/_truth/trajectories/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def simulate_command(args: argparse.Namespace, storage_options: dict[str, Any] | None = None) -> int:
    """Simulate the site of ``args`` into ``args.out`` and print the summary as JSON.

    Parameters
    ----------
    args
        Parsed :func:`add_simulate_arguments` options.
    storage_options
        fsspec/s3fs options for an ``s3://`` output (``None``: s3fs defaults).
    """
    from twin.site import simulate_site

    out = str(args.out)
    if out.startswith("s3a://"):
        out = "s3://" + out[len("s3a://") :]
    cfg = SiteConfig(
        start=args.start,
        days=args.days,
        bioreactors=args.bioreactors,
        interval_s=args.interval,
        full_resolution_days=args.full_resolution_days or None,
        history_interval_s=args.history_interval,
        seed=args.seed,
        workers=args.workers,
        write_trajectories=not args.no_trajectories,
    )
    bar = None
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, unit="file", desc="simulate", dynamic_ncols=True)

        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.n = done
            bar.refresh()

    try:
        summary = simulate_site(out, cfg, storage_options=storage_options, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    info = {k: v for k, v in vars(summary).items() if k != "timings"}
    info["readings_per_s"] = round(summary.readings_per_s)
    info["seconds"] = round(summary.seconds, 2)
    info["timings"] = {k: round(v, 2) for k, v in summary.timings.items()}
    print(json.dumps(info, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """``python -m twin`` with the subcommands ``simulate`` and ``export-plant``."""
    parser = argparse.ArgumentParser(prog="python -m twin", description="Digital twin of a mAb site")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("simulate", help=SIMULATE_HELP, description=SIMULATE_HELP)
    add_simulate_arguments(p)
    p.set_defaults(_handler=simulate_command)
    p = sub.add_parser("export-plant", help=EXPORT_HELP, description=EXPORT_HELP)
    add_export_arguments(p)
    p.set_defaults(_handler=export_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twin``."""
    args = build_parser().parse_args(argv)
    return int(args._handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
