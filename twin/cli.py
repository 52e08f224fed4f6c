"""The ``lakehouse`` console script: argparse subcommands from a registry.

Any module can add a subcommand without touching this file::

    from twin.cli import command

    def _args(p):                      # optional: add arguments to the subparser
        p.add_argument("--partition")

    @command("ingest", help="Ingest landing files into bronze", add_arguments=_args)
    def ingest(args) -> int:           # return an exit code (None = 0)
        ...

``main`` discovers such modules in two ways (import errors inside an existing module are
*not* swallowed):

1. the conventional modules in :data:`PLUGIN_MODULES` (``orchestration.cli``, ``assets.cli``,
   ``ml.cli``, ``lakehouse.cli``, ``ingest.cli``) are imported if they exist;
2. entry points in the group ``lakehouse.commands`` (``module`` or ``module:callable``; a
   callable is called with the registry).

Environment is read only here (never in library code): ``LAKEHOUSE_ROOT`` (default ``--out``)
and, for ``s3://`` outputs, ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, passed down as fsspec/s3fs ``storage_options``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ENTRY_POINT_GROUP = "lakehouse.commands"
PLUGIN_MODULES: tuple[str, ...] = ("orchestration.cli", "lakehouse.ingest.cli", "twin.foreign_export")

Handler = Callable[[argparse.Namespace], "int | None"]
ArgsFn = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler
    add_arguments: ArgsFn | None = None


#: name -> Command; filled by :func:`command` / :func:`register_command`.
COMMANDS: dict[str, Command] = {}


def register_command(name: str, handler: Handler, help: str = "", add_arguments: ArgsFn | None = None) -> Command:
    """Register (or replace) subcommand ``name``."""
    cmd = Command(name, help, handler, add_arguments)
    COMMANDS[name] = cmd
    return cmd


def command(name: str, help: str = "", add_arguments: ArgsFn | None = None) -> Callable[[Handler], Handler]:
    """Decorator form of :func:`register_command`."""

    def deco(fn: Handler) -> Handler:
        register_command(name, fn, help=help, add_arguments=add_arguments)
        return fn

    return deco


def _load_plugins() -> None:
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (mod == exc.name or mod.startswith(exc.name + ".")):
                raise
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if callable(obj):
            obj(COMMANDS)


def s3_storage_options_from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    """fsspec/s3fs storage options from the standard AWS environment variables."""
    env = dict(os.environ) if env is None else env
    opts: dict[str, Any] = {}
    if env.get("AWS_ACCESS_KEY_ID"):
        opts["key"] = env["AWS_ACCESS_KEY_ID"]
    if env.get("AWS_SECRET_ACCESS_KEY"):
        opts["secret"] = env["AWS_SECRET_ACCESS_KEY"]
    client: dict[str, Any] = {}
    if env.get("AWS_ENDPOINT_URL"):
        client["endpoint_url"] = env["AWS_ENDPOINT_URL"]
    if env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        client["region_name"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if client:
        opts["client_kwargs"] = client
    return opts


# --------------------------------------------------------------------------- simulate


def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=os.environ.get("LAKEHOUSE_ROOT", "data/lake"),
                   help="lake root: a local folder or s3://bucket/prefix (landing/ is written under it); "
                        "default $LAKEHOUSE_ROOT or data/lake")
    p.add_argument("--bioreactors", type=int, default=4, help="number of bioreactors BR-101, BR-102, ...")
    p.add_argument("--start", default="2026-01-01", help="first UTC day (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=90, help="number of days to simulate")
    p.add_argument("--interval", type=float, default=60.0, help="historian logging interval in seconds")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed => identical files)")
    p.add_argument("--workers", type=int, default=2, help="threads building historian files")
    p.add_argument("--no-trajectories", action="store_true", help="skip landing/_truth/trajectories/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _simulate(args: argparse.Namespace) -> int:
    from twin.site import SiteConfig, simulate_site

    out = str(args.out)
    storage_options = s3_storage_options_from_env() if out.startswith(("s3://", "s3a://")) else None
    if out.startswith("s3a://"):
        out = "s3://" + out[len("s3a://"):]
    cfg = SiteConfig(start=args.start, days=args.days, bioreactors=args.bioreactors, interval_s=args.interval,
                     seed=args.seed, workers=args.workers, write_trajectories=not args.no_trajectories)
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


register_command("simulate", _simulate, help="simulate the site and write the landing zone",
                 add_arguments=_simulate_args)


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description="Bioprocess lakehouse command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in sorted(COMMANDS):
        cmd = COMMANDS[name]
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        if cmd.add_arguments is not None:
            cmd.add_arguments(p)
        p.set_defaults(_handler=cmd.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lakehouse`` console script.

    Plugin modules (which may import heavy frameworks) are only loaded when the requested
    subcommand is not built in, or for ``--help``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first not in COMMANDS:
        _load_plugins()
    args = build_parser().parse_args(argv)
    rc = args._handler(args)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
