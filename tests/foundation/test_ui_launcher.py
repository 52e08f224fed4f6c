"""`make ui` leaves nothing behind, and the shipped instance config waits long enough for a
slow code server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dagster as dg

from orchestration.run import dagster_home
from orchestration.ui import process_group


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours still answers kill(0): ask its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[1].split()[0] != "Z"


def test_the_process_group_is_gone_after_a_failure(tmp_path):
    pids = tmp_path / "pids"
    # a leader with two grandchildren (like dagster dev with its code servers), then a failure
    script = f"sleep 300 & echo $! >> {pids}; sleep 300 & echo $! >> {pids}; wait"
    try:
        with process_group(["sh", "-c", script]) as proc:
            for _ in range(100):
                if pids.exists() and len(pids.read_text().split()) == 2:
                    break
                time.sleep(0.05)
            raise RuntimeError("code server did not start")
    except RuntimeError:
        pass
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in [proc.pid, *children]):
        time.sleep(0.1)
    assert not any(_alive(p) for p in children), "orphans left behind"
    assert proc.poll() is not None


def test_instance_waits_ten_minutes_for_the_code_server(tmp_path):
    home = dagster_home({"DAGSTER_HOME": str(tmp_path)})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.code_server_process_startup_timeout == 600


def test_ui_launcher_help():
    out = subprocess.run([sys.executable, "-m", "orchestration.ui", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--port" in out.stdout
