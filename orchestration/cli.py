"""Subcommands of the `lakehouse` console script that live outside twin/ (see twin/cli.py):
`run` (the main job), `train` (ML from gold tables)."""

from __future__ import annotations

from ml.cli import TRAIN_HELP, add_train_arguments, train_command
from orchestration.run import add_run_arguments, run_command
from twin.cli import register_command

register_command("run", run_command, help="simulate the default site and materialize the whole asset graph",
                 add_arguments=add_run_arguments)
register_command("train", train_command, help=TRAIN_HELP, add_arguments=add_train_arguments)
