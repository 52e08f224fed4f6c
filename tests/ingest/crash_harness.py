"""Test harness: run ingestion in a subprocess and die (os._exit) at a chosen commit point.

    python crash_harness.py <lake_root> <mode: library|dagster> [partition_key]

``INGEST_CRASH_AFTER`` (read ONLY here, never by the library) names the hook event after
which the process exits with status 77: ``quarantine_committed``,
``bronze_committed:<table>`` or ``log_committed``. S3 settings come from ``AWS_*`` variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))

from lakehouse.ingest import writer  # noqa: E402
from lakehouse.storage import Lake, S3Settings  # noqa: E402

CRASH_AFTER = os.environ.get("INGEST_CRASH_AFTER", "")


def _hook(event: str, info: dict) -> None:
    key = f"{event}:{info.get('table')}" if event == "bronze_committed" else event
    if key == CRASH_AFTER or event == CRASH_AFTER:
        sys.stdout.flush()
        os._exit(77)  # no cleanup, no finally blocks: like a kill -9 right after the commit


def main() -> None:
    root, mode = sys.argv[1], sys.argv[2]
    writer.HOOKS.append(_hook)
    s3 = S3Settings(
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )
    if mode == "library":
        writer.ingest_landing(Lake(root, s3), run_id="crashing-run")
    else:
        import dagster as dg

        from assets.ingest import build_ingest_defs
        from assets.resources import LakeResource

        defs = build_ingest_defs("2026-01-01")
        hist = defs.get_assets_def(dg.AssetKey(["bronze", "historian_readings"]))
        res = LakeResource(
            root_uri=root,
            s3_endpoint_url=s3.endpoint_url,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key,
        )
        dg.materialize([hist], resources={"lake": res}, partition_key=sys.argv[3])
    print("finished without crashing")


if __name__ == "__main__":
    main()
