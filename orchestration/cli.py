"""`lakehouse run` registered into the `lakehouse` console script (see twin/cli.py)."""

from __future__ import annotations

from twin.cli import register_command

from orchestration.run import add_run_arguments, run_command

register_command("run", run_command, help="simulate the default site and materialize the whole asset graph",
                 add_arguments=add_run_arguments)
