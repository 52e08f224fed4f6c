"""The main job's one small real run, shared by the integration tests of this folder (session
scope: the pipeline runs once): twin site → landing → bronze → dbt → gold → features → models →
scores, golden batch, twin experiments and batch reports, on the real S3 server, recorded in a
persistent Dagster instance (``DAGSTER_HOME`` in a temporary folder) so the UI test can serve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.resources import LakeResource
from lakehouse.storage import Lake
from ml.envelope import DEFAULT_ENVELOPE_CONFIG, ENVELOPE_ENV
from orchestration.build import build_defs
from orchestration.run import dagster_home, run_full_pipeline
from orchestration.settings import Settings, site_partition_range
from tests.support.main_site import SITE


@dataclass
class MainRun:
    """The run and what it ran against: the code location's environment reproduces its settings."""

    defs: dg.Definitions
    result: object
    lake: Lake
    home: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def main_run_ctx(s3_server, tmp_path_factory) -> MainRun:
    prefix = "main-job"
    warehouse = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    env = {
        "LAKEHOUSE_ROOT": s3_server.uri(prefix),
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "LAKEHOUSE_DUCKDB_PATH": str(warehouse),
        "LAKEHOUSE_SOURCE": SITE.source,
        "LAKEHOUSE_START_DATE": SITE.start_date,
        "LAKEHOUSE_SITE_DAYS": str(SITE.days),
        "LAKEHOUSE_SITE_BIOREACTORS": str(SITE.bioreactors),
        "LAKEHOUSE_SITE_INTERVAL_S": str(SITE.interval_s),
        "LAKEHOUSE_SITE_SEED": str(SITE.seed),
    }
    lake_res = LakeResource(
        root_uri=env["LAKEHOUSE_ROOT"],
        s3_endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        duckdb_path=str(warehouse),
    )
    defs = build_defs(Settings(lake=lake_res, site=SITE))
    home = dagster_home({"DAGSTER_HOME": str(tmp_path_factory.mktemp("dagster_home"))})
    # this small site holds out 2 batches (2 harvest rows) per model; the default envelope's floor
    # is 2 batches and 3 rows: the run lowers the row floor so harvest models can be promoted too
    envelope = yaml.safe_load(DEFAULT_ENVELOPE_CONFIG.read_text())
    envelope["evidence"] |= {"min_heldout_batches": 2, "min_heldout_rows": 2}
    envelope_path = warehouse.with_name("envelope.yaml")
    envelope_path.write_text(yaml.safe_dump(envelope))
    env[ENVELOPE_ENV] = str(envelope_path)
    start, end = site_partition_range(SITE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENVELOPE_ENV, str(envelope_path))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = run_full_pipeline(defs, instance, start, end, log_level="WARNING")
    return MainRun(defs, result, lake_res.get_lake(), home, env)


@pytest.fixture(scope="session")
def main_run(main_run_ctx):
    """(defs, result, lake) of the shared run."""
    return main_run_ctx.defs, main_run_ctx.result, main_run_ctx.lake
