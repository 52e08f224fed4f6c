"""``lakehouse``: argparse subcommands, registered explicitly.

=============== ==================================================== ================================
command         what                                                 runs
=============== ==================================================== ================================
simulate        simulate the twin site into a lake's landing zone    :func:`twin.cli.simulate_command`
export-plant    the twin's site as a foreign plant's exports         :func:`twin.foreign_export.export_command`
import          a plant's exports into bronze (YAML config)          :func:`lakehouse.ingest.foreign.run_import_config`
run             the whole asset graph in one Dagster run             :func:`orchestration.run.run_main_job`
train           ML models from gold with a config file               :func:`ml.workflow.run_train`
audit           show / verify the hash-chained audit trail           :class:`lakehouse.audit.AuditLog`
report          batch report(s) as HTML + PDF from the lake's tables :func:`lakehouse.reports.batch.write_batch_reports`
=============== ==================================================== ================================

Errors a user can act on (disk full, permission denied, unreachable endpoint, invalid
configuration) end the command with one line and status 2 (:func:`lakehouse.errors.describe`);
anything else keeps its backtrace.

The environment is read here and in :meth:`orchestration.settings.Settings.from_env` only:
``LAKEHOUSE_ROOT`` (the default lake) and, for ``s3://`` lakes, the S3 settings through
:meth:`lakehouse.storage.S3Settings.from_env`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from twin.cli import SIMULATE_HELP, add_simulate_arguments
from twin.foreign_export import EXPORT_HELP, add_export_arguments

PROJECT_ROOT = Path(__file__).resolve().parents[1]
IMPORT_HELP = "import a plant's historian export, batch list and assay file (YAML config) into bronze"
RUN_HELP = "simulate the default site and materialize the whole asset graph"
TRAIN_HELP = "train ML models from the lake's gold tables, print held-out evaluation"

Handler = Callable[[argparse.Namespace], "int | None"]


def env_lake_root(default: str | None = "data/lake") -> str | None:
    """``$LAKEHOUSE_ROOT``, else ``default``."""
    return os.environ.get("LAKEHOUSE_ROOT") or default


def open_lake(root: str):
    """A :class:`~lakehouse.storage.Lake` at ``root``; ``s3://`` roots get the environment's S3 settings."""
    from lakehouse.storage import Lake

    return Lake.open(root)


# --------------------------------------------------------------------------- simulate / export-plant
def simulate(args: argparse.Namespace) -> int:
    """``lakehouse simulate``: the twin's simulate command with the environment's S3 settings."""
    from lakehouse.storage import is_s3_uri
    from twin.cli import simulate_command

    options = open_lake(str(args.out)).fsspec_storage_options() if is_s3_uri(str(args.out)) else None
    return simulate_command(args, storage_options=options)


def export_plant(args: argparse.Namespace) -> int:
    """``lakehouse export-plant``."""
    from twin.foreign_export import export_command

    return export_command(args)


# --------------------------------------------------------------------------- import
def add_import_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse import``."""
    p.add_argument("--config", required=True, help="import config YAML (see docs/ingestion.md)")
    p.add_argument(
        "--lake",
        default=env_lake_root(),
        help="lake root: local folder or s3://bucket/prefix (default $LAKEHOUSE_ROOT or data/lake)",
    )
    p.add_argument("--run-id", default=None, help="lineage run id (default: import-<site>-<time>)")
    p.add_argument("--dry-run", action="store_true", help="only list the files the config selects")


def run_import(args: argparse.Namespace) -> int:
    """``lakehouse import --config X.yaml --lake PATH_OR_S3``: a plant's own data, config only."""
    from lakehouse.ingest.foreign import ImportConfigError, plan_import, run_import_config
    from lakehouse.ingest.tagmap import TagMapError

    lake = open_lake(str(args.lake))
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


# --------------------------------------------------------------------------- run
def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse run`` (defaults: the environment, then :class:`twin.site.SiteConfig`)."""
    p.add_argument("--lake", default=None, help="lake root (default: $LAKEHOUSE_ROOT or data/lake)")
    p.add_argument(
        "--source",
        choices=["twin", "external"],
        default=None,
        help="twin (default): simulate the demo site; external: use the plant files already in "
        "the lake (landing/ exports or `lakehouse import`)",
    )
    p.add_argument("--start-date", default=None, help="first UTC day of the site's data (default 2026-01-01)")
    p.add_argument("--bioreactors", type=int, default=None, help="override the default site size")
    p.add_argument("--days", type=int, default=None, help="override the default site duration")


def run(args: argparse.Namespace) -> int:
    """``lakehouse run``: explicit settings (environment + options) → one Dagster run."""
    from orchestration.run import run_main_job
    from orchestration.settings import Settings

    settings = Settings.from_env(
        lake_root=args.lake,
        source=args.source,
        start_date=args.start_date,
        bioreactors=args.bioreactors or None,
        days=args.days or None,
    )
    return run_main_job(settings)


# --------------------------------------------------------------------------- train
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse train``."""
    p.add_argument("--lake", default=None, help="lake root (default: $LAKEHOUSE_ROOT or data/lake)")
    p.add_argument(
        "--config",
        default=None,
        help="ML config YAML: a soft-sensor config (config/ml/softsensor.yaml, default) or a PdM config "
        "(config/ml/pdm.yaml); the kind is detected from its keys",
    )
    p.add_argument(
        "--models",
        default="all",
        help="soft sensor: comma list of targets to train (e.g. 'titer,g0f'), default all configured",
    )
    p.add_argument(
        "--rebuild-features", action="store_true", help="rebuild the feature table from gold even if it exists"
    )
    p.add_argument("--dry-run", action="store_true", help="evaluate only: do not register or promote")


def train(args: argparse.Namespace) -> int:
    """``lakehouse train``: print the held-out evaluation as JSON."""
    from ml.workflow import run_train

    root = args.lake or env_lake_root(str(PROJECT_ROOT / "data" / "lake"))
    result = run_train(
        open_lake(root), args.config, models=args.models, rebuild_features=args.rebuild_features, dry_run=args.dry_run
    )
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


# --------------------------------------------------------------------------- parser
#: name -> (help, add_arguments, handler), in the order of ``lakehouse --help``.
# --------------------------------------------------------------------------- audit
AUDIT_HELP = "show or verify the lake's hash-chained audit trail (promotions, approvals, config changes)"


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse audit``."""
    p.add_argument("action", choices=["verify", "show"], help="verify: recompute the chain; show: list the entries")
    p.add_argument(
        "--lake",
        default=env_lake_root(),
        help="lake root: local folder or s3://bucket/prefix (default $LAKEHOUSE_ROOT or data/lake)",
    )


def audit(args: argparse.Namespace) -> int:
    """``lakehouse audit verify|show``: exit status 1 when the chain is broken."""
    from lakehouse.audit import AuditLog

    log = AuditLog(open_lake(args.lake))
    if args.action == "show":
        for e in log.entries():
            print(
                f"{e.seq:6d}  {e.at:%Y-%m-%d %H:%M:%S}Z  {e.actor:24s}  {e.action:16s}  {e.subject}  {e.details_json}"
            )
        return 0
    result = log.verify()
    seq, head = log.head() if result.ok else (None, None)
    if result.ok:
        print(f"audit trail intact: {result.entries} entries, head {seq} {head}")
        return 0
    print(f"audit trail BROKEN at entry {result.first_bad_seq}: {result.problem}")
    return 1


# --------------------------------------------------------------------------- report
REPORT_HELP = "write batch reports (HTML + PDF) from the lake's gold, golden and score tables"


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse report batch``."""
    p.add_argument("kind", choices=["batch"], help="batch: the batch report (docs/reports.md)")
    p.add_argument("batch_ids", nargs="*", metavar="BATCH_ID", help="batch id(s); none with --all")
    p.add_argument("--all", action="store_true", help="every batch of gold/dim_batches")
    p.add_argument(
        "--lake",
        default=env_lake_root(),
        help="lake root: local folder or s3://bucket/prefix (default $LAKEHOUSE_ROOT or data/lake)",
    )
    p.add_argument("--out", default=None, help="local folder for the files (default: reports/batch/ inside the lake)")


def report(args: argparse.Namespace) -> int:
    """``lakehouse report batch BATCH_ID ...``: one line per written report, the paths last."""
    from lakehouse.reports.batch import write_batch_reports

    if not args.batch_ids and not args.all:
        print("lakehouse report: give BATCH_ID(s) or --all", file=sys.stderr)
        return 2

    def progress(i: int, n: int, batch_id: str) -> None:
        print(f"[{i}/{n}] {batch_id}", flush=True)

    try:
        files = write_batch_reports(
            open_lake(args.lake), None if args.all else args.batch_ids, out_dir=args.out, progress=progress
        )
    except KeyError as exc:
        print(f"lakehouse report: {exc.args[0]}", file=sys.stderr)
        return 2
    for batch_id, f in files.items():
        print(f"{batch_id}: {f.html_uri}  {f.pdf_uri}")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "export-plant": (EXPORT_HELP, add_export_arguments, export_plant),
    "import": (IMPORT_HELP, add_import_arguments, run_import),
    "run": (RUN_HELP, add_run_arguments, run),
    "simulate": (SIMULATE_HELP, lambda p: add_simulate_arguments(p, default_out=env_lake_root()), simulate),
    "train": (TRAIN_HELP, add_train_arguments, train),
    "audit": (AUDIT_HELP, add_audit_arguments, audit),
    "report": (REPORT_HELP, add_report_arguments, report),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``lakehouse`` parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="lakehouse", description="Bioprocess lakehouse command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(_handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lakehouse`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._handler(args) or 0)
    except Exception as exc:
        from lakehouse.errors import describe

        line = describe(exc)
        if line is None:
            raise
        print(f"lakehouse {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
