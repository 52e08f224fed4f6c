"""``lakehouse import --config X.yaml --lake PATH_OR_S3``: bring a plant's own data, config only.

Wiring: ``add_import_subcommand(subparsers)`` adds the subcommand to an argparse parser;
``run_import(args)`` runs it. When ``twin.cli`` is importable, importing this module also
registers the command in its registry (so listing ``lakehouse.ingest.cli`` among its plugin
modules is enough). Environment is read here only: ``LAKEHOUSE_ROOT`` (default lake) and, for
``s3://`` lakes, ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HELP = "import a plant's historian export, batch list and assay file (YAML config) into bronze"


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="import config YAML (see docs/ingestion.md)")
    p.add_argument("--lake", default=os.environ.get("LAKEHOUSE_ROOT", "data/lake"),
                   help="lake root: local folder or s3://bucket/prefix (default $LAKEHOUSE_ROOT or data/lake)")
    p.add_argument("--run-id", default=None, help="lineage run id (default: import-<site>-<time>)")
    p.add_argument("--dry-run", action="store_true", help="only list the files the config selects")


def add_import_subcommand(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("import", help=HELP, description=HELP)
    add_import_arguments(p)
    p.set_defaults(func=run_import, _handler=run_import)
    return p


def _lake(root: str):
    from lakehouse.storage import Lake, S3Settings

    if root.startswith(("s3://", "s3a://")):
        return Lake(root, S3Settings(endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
                                     access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
                                     secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
                                     region=os.environ.get("AWS_REGION", "us-east-1")))
    return Lake(root)


def run_import(args: argparse.Namespace) -> int:
    from lakehouse.ingest.foreign import ImportConfigError, plan_import, run_import_config
    from lakehouse.ingest.tagmap import TagMapError

    lake = _lake(str(args.lake))
    try:
        if getattr(args, "dry_run", False):
            plan = plan_import(args.config, lake)
            print(json.dumps({s: [f.uri for f in fs] for s, fs in plan.sections.items()}, indent=2))
            return 0
        lake.ensure_bucket()
        report = run_import_config(args.config, lake, run_id=args.run_id)
    except (ImportConfigError, TagMapError, FileNotFoundError) as exc:
        print(f"lakehouse import: {exc}", file=sys.stderr)
        return 2
    out = report.as_dict()
    out["files_rejected"] = out["files_rejected"][:20]
    print(json.dumps(out, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse-import", description=HELP)
    add_import_arguments(parser)
    return run_import(parser.parse_args(argv))


try:  # register in the `lakehouse` console script's registry when it is there
    from twin.cli import register_command
except ImportError:  # pragma: no cover
    register_command = None
if register_command is not None:
    register_command("import", run_import, help=HELP, add_arguments=add_import_arguments)

if __name__ == "__main__":
    sys.exit(main())
