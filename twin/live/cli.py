"""``python -m twin.live`` / ``lakehouse plant serve``: serve a twin site over OPC UA
(see :func:`twin.live.server.serve`)."""

from __future__ import annotations

import argparse
import logging

SERVE_HELP = "serve the twin's plant over OPC UA (127.0.0.1 by default), optionally on an accelerated clock"


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse plant serve`` (and ``python -m twin.live``)."""
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4840, help="TCP port (0: any free port; default 4840)")
    p.add_argument("--units", type=int, default=2, help="bioreactors (default 2)")
    p.add_argument("--interval", type=float, default=60.0, help="historian interval in seconds (>= 1; default 60)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=30, help="simulated days to plan (default 30)")
    p.add_argument("--site-start", default=None, help="first day of the site (default: twin.site.SiteConfig.start)")
    p.add_argument(
        "--start",
        default=None,
        help="simulated start time: ISO time, 'now' (simulated = wall time at speed 1), default site start + 2 days",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per wall second (3600 = one simulated hour per second)",
    )
    p.add_argument(
        "--history-window",
        type=float,
        default=86_400.0,
        help="seconds of simulated time served by HistoryRead (default 86400)",
    )
    p.add_argument("--tick", type=float, default=0.25, help="wall seconds between publications")
    p.add_argument(
        "--wall-anchor",
        type=float,
        default=None,
        help="epoch seconds at which simulated time was --start (continue a clock after a restart)",
    )
    p.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="UNIT.SUFFIX:OFFSET:AFTER_S[:DURATION_S[:RAMP_S]]",
        help="inject a deviation: add OFFSET to a tag from AFTER_S simulated seconds after the start "
        "(e.g. BR-101.TEMP.PV:+2.5:86400:172800:3600); repeatable",
    )
    p.add_argument("--log-every", type=float, default=10.0, help="seconds between progress lines")


def serve_command(a: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; progress as JSON lines on stdout."""
    from twin.live.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    serve(
        host=a.host,
        port=a.port,
        units=a.units,
        interval_s=a.interval,
        seed=a.seed,
        days=a.days,
        site_start=a.site_start,
        start=a.start,
        speed=a.speed,
        history_window_s=a.history_window,
        tick_s=a.tick,
        wall_anchor=a.wall_anchor,
        log_every_s=a.log_every,
        injections=a.inject,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve the plant until stopped."""
    p = argparse.ArgumentParser(prog="python -m twin.live", description=SERVE_HELP)
    add_serve_arguments(p)
    return serve_command(p.parse_args(argv))
