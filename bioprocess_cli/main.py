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
plant serve     the twin's plant over OPC UA (accelerated clock)     :func:`twin.live.cli.serve_command`
plant collect   long-lived OPC UA collector into bronze              :func:`lakehouse.live.cli.collect_command`
approve         sign a model version awaiting approval               :func:`ml.approvals.approve`
report model    model validation report (HTML + PDF)                 :func:`ml.validation_report.write_model_report`
report batch    batch report(s) as HTML + PDF from the lake's tables :func:`lakehouse.reports.batch.write_batch_reports`
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
RUN_HELP = "simulate the default site (or import a plant bundle's exports) and materialize the whole asset graph"
TRAIN_HELP = "train, gate and register ML models from the lake's gold tables, score with the champions"

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
    p.add_argument(
        "--start-date",
        default=None,
        help="first UTC day of the site's data (default: twin.site.SiteConfig, 2025-07-01)",
    )
    p.add_argument("--bioreactors", type=int, default=None, help="override the default site size")
    p.add_argument("--days", type=int, default=None, help="override the default site duration")
    p.add_argument(
        "--plant",
        default=None,
        help="a plant bundle folder (or name under config/plants/; default $LAKEHOUSE_PLANT): imports its "
        "exports (import.yaml) and runs the whole graph for it — dbt, features, models, promotion gates, "
        "scores, golden batch, MSPC — on its softsensor/golden/pdm yamls (implies --source external)",
    )
    p.add_argument(
        "--data-dir", default=None, help="with --plant: the folder of its exports (default: import.yaml's data_dir)"
    )


def run(args: argparse.Namespace) -> int:
    """``lakehouse run``: explicit settings (environment + options) → one Dagster run; with
    ``--plant`` the bundle's import first (each file is ingested once: a rerun adds nothing)."""
    from orchestration.run import run_main_job
    from orchestration.settings import PLANT_ENV, Settings

    plant = args.plant or os.environ.get(PLANT_ENV)
    source = args.source
    if plant:
        from lakehouse.plant import PlantBundleError, load_plant

        try:
            bundle = load_plant(plant)
        except PlantBundleError as exc:
            print(f"lakehouse run: {exc}", file=sys.stderr)
            return 2
        plant, source = str(bundle.root), "external"
        if bundle.import_path is not None:
            from lakehouse.ingest.foreign import run_import_config

            lake = open_lake(args.lake or env_lake_root())
            lake.ensure_bucket()
            print(f"Importing plant {bundle.name}'s exports ({bundle.import_path}) ...", flush=True)
            report = run_import_config(bundle.import_path, lake, data_dir=args.data_dir).as_dict()
            print(json.dumps({k: report.get(k) for k in ("rows_read", "rows_quarantined", "reasons")}), flush=True)
    settings = Settings.from_env(
        lake_root=args.lake,
        plant=plant,
        source=source,
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
    p.add_argument("--dry-run", action="store_true", help="evaluate only: do not register, promote or score")
    p.add_argument(
        "--plant",
        default=None,
        help="plant bundle folder (or name under config/plants/; default $LAKEHOUSE_PLANT, else the twin site): "
        "its softsensor.yaml (unless --config) and signal catalog; without --config its PdM too (or why not)",
    )


def train(args: argparse.Namespace) -> int:
    """``lakehouse train``: train, gate, register and score (champions); print the held-out
    evaluation and each model's state as JSON."""
    from ml.workflow import run_train
    from orchestration.settings import PLANT_ENV

    root = args.lake or env_lake_root(str(PROJECT_ROOT / "data" / "lake"))
    result = run_train(
        open_lake(root),
        args.config,
        plant=args.plant or os.environ.get(PLANT_ENV),
        models=args.models,
        rebuild_features=args.rebuild_features,
        dry_run=args.dry_run,
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


# --------------------------------------------------------------------------- plant
PLANT_HELP = "the live plant: serve the twin over OPC UA, collect it into bronze (docs/live.md)"


def add_plant_arguments(p: argparse.ArgumentParser) -> None:
    """``lakehouse plant serve|collect`` (the options of :mod:`twin.live.cli` and :mod:`lakehouse.live.cli`)."""
    from lakehouse.live.cli import COLLECT_HELP, add_collect_arguments, collect_command
    from twin.live.cli import SERVE_HELP, add_serve_arguments, serve_command

    sub = p.add_subparsers(dest="plant_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help=SERVE_HELP, description=SERVE_HELP)
    add_serve_arguments(serve)
    serve.set_defaults(_plant=serve_command)
    collect = sub.add_parser("collect", help=COLLECT_HELP, description=COLLECT_HELP)
    add_collect_arguments(collect, default_lake=env_lake_root())
    collect.set_defaults(_plant=collect_command)


def plant(args: argparse.Namespace) -> int:
    """``lakehouse plant serve|collect``: both run until SIGINT/SIGTERM and exit 0 after a clean stop."""
    return int(args._plant(args) or 0)


# --------------------------------------------------------------------------- approve / report model
APPROVE_HELP = "sign a model version awaiting approval (identity: $LAKEHOUSE_IDENTITY or the OS user)"
REPORT_HELP = "write a report (HTML + PDF): a model version's validation report, or batch reports"


def _lake_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lake",
        default=env_lake_root(),
        help="lake root: local folder or s3://bucket/prefix (default $LAKEHOUSE_ROOT or data/lake)",
    )


def add_approve_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse approve``."""
    p.add_argument("model", help="model name, e.g. titer_softsensor")
    p.add_argument("version", type=int, help="model version")
    p.add_argument("--meaning", required=True, choices=["approved", "rejected"], help="what the signature means")
    p.add_argument("--reason", required=True, help="why (recorded with the signature)")
    p.add_argument("--envelope", default=None, help="envelope config (default config/ml/envelope.yaml)")
    _lake_option(p)


def approve(args: argparse.Namespace) -> int:
    """``lakehouse approve MODEL VERSION --meaning approved|rejected --reason ...``: the signature as
    JSON; a refused signature (self-approval, wrong state, not an approver) is one line, exit 1."""
    from ml.approvals import ApprovalError
    from ml.approvals import approve as sign
    from ml.envelope import load_envelope

    try:
        out = sign(
            open_lake(args.lake), args.model, args.version, args.meaning, args.reason, load_envelope(args.envelope)
        )
    except (ApprovalError, KeyError) as exc:
        print(f"lakehouse approve: refused: {exc.args[0]}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``lakehouse report model|batch``."""
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    model = sub.add_parser("model", help="the validation report of a model version")
    model.add_argument("name", help="model name")
    model.add_argument("version", type=int, help="model version")
    _lake_option(model)
    model.set_defaults(_report=report_model)
    batch = sub.add_parser("batch", help="batch reports from the gold, golden and score tables (docs/reports.md)")
    batch.add_argument("batch_ids", nargs="*", metavar="BATCH_ID", help="batch id(s); none with --all")
    batch.add_argument("--all", action="store_true", help="every batch of gold/dim_batches")
    _lake_option(batch)
    batch.add_argument("--out", default=None, help="local folder for the files (default: reports/batch/ in the lake)")
    batch.set_defaults(_report=report_batch)


def report(args: argparse.Namespace) -> int:
    """``lakehouse report model NAME VERSION`` or ``lakehouse report batch BATCH_ID ...``."""
    return int(args._report(args) or 0)


def report_model(args: argparse.Namespace) -> int:
    """``lakehouse report model NAME VERSION``: writes the HTML and PDF, prints their paths."""
    from ml.validation_report import write_model_report

    print(f"building the validation report of {args.name} v{args.version} ...", file=sys.stderr)
    files = write_model_report(open_lake(args.lake), args.name, args.version)
    print(json.dumps(files, indent=2))
    return 0


def report_batch(args: argparse.Namespace) -> int:
    """``lakehouse report batch BATCH_ID ...``: one progress line per report, the paths last."""
    from lakehouse.reports.batch import write_batch_reports

    if not args.batch_ids and not args.all:
        print("lakehouse report: give BATCH_ID(s) or --all", file=sys.stderr)
        return 2

    def progress(i: int, n: int, batch_id: str) -> None:
        print(f"[{i}/{n}] {batch_id}", flush=True)

    try:
        from lakehouse.plant import default_plant, load_plant
        from orchestration.settings import PLANT_ENV

        plant = os.environ.get(PLANT_ENV)
        catalog = (load_plant(plant) if plant else default_plant()).catalog
        files = write_batch_reports(
            open_lake(args.lake),
            None if args.all else args.batch_ids,
            out_dir=args.out,
            progress=progress,
            units=catalog.units(),
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
    "plant": (PLANT_HELP, add_plant_arguments, plant),
    "approve": (APPROVE_HELP, add_approve_arguments, approve),
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


# Library notices a first run should not alarm anyone with (they say nothing about the user's
# data or setup): the beta status of Dagster's backfill policy, which the partitioned assets use
# on purpose, and pyspark's notice about the pandas 3 it is imported next to (the Spark engine
# exchanges data through Arrow, tests/spark).
QUIET_WARNINGS: tuple[tuple[str, str], ...] = (
    (r"Parameter `backfill_policy` .* is currently in beta", "dagster"),
    (r"PySpark does not yet fully support pandas >= 3", "pyspark"),
)


def _quiet_library_notices() -> None:
    import warnings

    for message, module in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module + r"(\..*)?")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lakehouse`` console script."""
    _quiet_library_notices()
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
