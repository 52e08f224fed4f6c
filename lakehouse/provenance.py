"""Which code wrote something: the version recorded with every commit that matters.

Ingestion, maintenance and model commits carry ``lakehouse.code_version``: the git commit of
the working tree when the project runs from a checkout (``+dirty`` when it has uncommitted
changes), else the installed package version.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git:<sha>[+dirty]`` of the project checkout, or ``pkg:<version>``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return f"git:{sha}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"pkg:{version('bioprocess-lakehouse')}"
        except PackageNotFoundError:
            return "unknown"
