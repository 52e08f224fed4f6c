"""``lakehouse train``: train (and by default register + gate) models from a lake's gold tables and
print the held-out evaluation as JSON.

    lakehouse train --lake PATH --config config/ml/softsensor.yaml
    lakehouse train --lake s3://bucket/prefix --config config/ml/pdm.yaml --dry-run

Wire with ``ml.cli.add_train_subcommand(subparsers)``. S3 credentials come from the usual
environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``), as for the Dagster ``lake`` resource.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml


TRAIN_HELP = "train ML models from the lake's gold tables, print held-out evaluation"


def add_train_subcommand(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help=TRAIN_HELP)
    add_train_arguments(p)
    p.set_defaults(func=train_command)
    return p


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lake", default=None, help="lake root (default: $LAKEHOUSE_ROOT or data/lake)")
    p.add_argument("--config", default=None,
                   help="ML config YAML: a soft-sensor config (config/ml/softsensor.yaml, default) or a PdM config "
                        "(config/ml/pdm.yaml); the kind is detected from its keys")
    p.add_argument("--models", default="all",
                   help="soft sensor: comma list of targets to train (e.g. 'titer,g0f'), default all configured")
    p.add_argument("--rebuild-features", action="store_true",
                   help="rebuild the feature table from gold even if it exists")
    p.add_argument("--dry-run", action="store_true", help="evaluate only: do not register or promote")


def _lake(root: str | None):
    from lakehouse.storage import Lake, S3Settings

    root = root or os.environ.get("LAKEHOUSE_ROOT") or str(Path(__file__).resolve().parents[1] / "data" / "lake")
    return Lake(root, S3Settings(endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
                                 access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
                                 secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
                                 region=os.environ.get("AWS_REGION", "us-east-1")))


def config_kind(path: str | Path) -> str:
    with open(path) as fh:
        keys = set((yaml.safe_load(fh) or {}).keys())
    return "pdm" if keys & {"model", "evaluation"} and "titer" not in keys else "softsensor"


def _summary(model) -> dict:
    m = model.metrics
    if model.kind == "classifier":
        keys = ("horizon_days", "threshold", "scale_pos_weight", "n_train_rows", "n_train_pos", "n_test_rows", "split",
                "test", "baseline_test", "threshold_selection_events", "top_signals")
    else:
        keys = ("target", "n_train_batches", "n_test_batches", "n_test_rows", "cv", "test", "baseline_test",
                "improvement_vs_baseline", "interval", "test_by_culture_day", "baseline_test_by_culture_day",
                "test_with_visible_result", "baseline_test_with_visible_result", "top_signals")
    return {k: m[k] for k in keys if k in m}


def _needs_features(lake, table: tuple[str, str], features_cfg, rebuild: bool, out: dict) -> bool:
    """Build the feature table when asked, when it is missing, or when its latest version was built
    with another feature config (e.g. by `lakehouse run` with the default config): training a
    plant's config on features of another config would miss its signals and labels."""
    from ml import pipeline

    if rebuild:
        out["features_rebuilt"] = "--rebuild-features"
        return True
    if not lake.delta_exists(lake.uri(*table)):
        out["features_rebuilt"] = "missing"
        return True
    reason = pipeline.features_config_mismatch(lake, *table, features_cfg)
    if reason:
        out["features_rebuilt"] = reason
        return True
    return False


def run_train(lake_root: str | None, config: str | None, *, models: str = "all", rebuild_features: bool = False,
              dry_run: bool = False) -> dict:
    from ml import pipeline
    from ml.config import (
        DEFAULT_SOFTSENSOR_CONFIG,
        load_pdm_config,
        load_softsensor_config,
    )
    from ml.dagster_support import clean

    lake = _lake(lake_root)
    config = config or str(DEFAULT_SOFTSENSOR_CONFIG)
    kind = config_kind(config)
    out: dict = {"lake": lake.root, "config": str(config), "kind": kind, "models": {}}
    if kind == "pdm":
        cfg = load_pdm_config(config)
        if _needs_features(lake, pipeline.EQUIPMENT, cfg.features, rebuild_features, out):
            _, v, _ = pipeline.materialize_equipment_features(lake, cfg)
            out["features_version"] = v
        model, rec = pipeline.train_pdm_model(lake, cfg, do_register=not dry_run)
        results = {model.name: (model, rec)}
    else:
        cfg = load_softsensor_config(config)
        if _needs_features(lake, pipeline.SOFTSENSOR, cfg.features, rebuild_features, out):
            _, v, _ = pipeline.materialize_softsensor_features(lake, cfg)
            out["features_version"] = v
        targets = None if models == "all" else [t.strip() for t in models.split(",") if t.strip()]
        results = pipeline.train_softsensor_models(lake, cfg, targets=targets, do_register=not dry_run)
    for name, (model, rec) in results.items():
        entry = {"held_out": _summary(model)}
        if rec is not None:
            entry["registered_version"] = rec.version
            entry["promotion"] = pipeline.gate(lake, name, rec.version)
        out["models"][name] = entry
    return clean(out)


def train_command(args: argparse.Namespace) -> int:
    result = run_train(args.lake, args.config, models=args.models, rebuild_features=args.rebuild_features,
                       dry_run=args.dry_run)
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_subcommand(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
