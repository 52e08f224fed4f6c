"""`make ui`: ``dagster dev`` for the project's workspace, in its own process group, so that no
code server or daemon outlives it — on Ctrl-C, on a code server that never came up, or on any
other failure the whole group is interrupted, then terminated, then killed.

The startup timeout of the code server is the instance's ``code_servers.local_startup_timeout``
(``orchestration/dagster.yaml``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from orchestration.settings import PROJECT_ROOT


def stop_group(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """Stop ``proc`` and every process of its group: SIGINT, then SIGTERM, then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # the whole group is gone
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader exited: anything left of its group gets the next signal
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return


@contextmanager
def process_group(cmd: Sequence[str], **popen_kwargs) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` as the leader of a new session; the whole group is stopped on exit."""
    proc = subprocess.Popen(list(cmd), start_new_session=True, **popen_kwargs)
    try:
        yield proc
    finally:
        stop_group(proc)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestration.ui [--host H] [--port P]``: the exit status of ``dagster dev``."""
    p = argparse.ArgumentParser(prog="make ui", description="Dagster UI for the project's workspace")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", default="3000")
    args = p.parse_args(argv)
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "dev", "-h", args.host, "-p", str(args.port), "-w", str(PROJECT_ROOT / "workspace.yaml")]
    with process_group(cmd, cwd=PROJECT_ROOT) as proc:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            print("\nstopping the Dagster UI and its code server ...", flush=True)
            return 130


if __name__ == "__main__":
    sys.exit(main())
