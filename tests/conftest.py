"""Shared fixtures: a REAL S3 server (SeaweedFS) for the session, lakes on S3 and local disk."""

from __future__ import annotations

import os
import uuid

import pytest

from lakehouse.s3server import S3Server, start_s3_server
from lakehouse.storage import Lake, S3Settings

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """SeaweedFS `weed mini` on 127.0.0.1 with random ports and credentials; torn down after."""
    server = start_s3_server(bucket="lake")
    try:
        yield server
    finally:
        server.stop()


def s3_lake(server: S3Server, prefix: str | None = None) -> Lake:
    prefix = prefix or f"t-{uuid.uuid4().hex[:10]}"
    return Lake(
        server.uri(prefix),
        S3Settings(
            endpoint_url=server.endpoint_url,
            access_key_id=server.access_key,
            secret_access_key=server.secret_key,
            region=server.region,
        ),
    )


@pytest.fixture
def lake_s3(s3_server: S3Server) -> Lake:
    """A fresh lake under a unique prefix of the S3 server's bucket."""
    return s3_lake(s3_server)


@pytest.fixture
def lake_local(tmp_path) -> Lake:
    """A fresh lake in a temporary local folder."""
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def clean_dbt_run_targets():
    """Remove the dbt target folders a test's runs created (dbt_project/target/runs/<id>: one
    per lake + warehouse, see assets/transform/dbt_models.py:run_target_path)."""
    import shutil

    from lakehouse.warehouse import DBT_PROJECT_DIR

    runs = DBT_PROJECT_DIR / "target" / "runs"
    before = set(runs.iterdir()) if runs.exists() else set()
    yield
    for path in (set(runs.iterdir()) if runs.exists() else set()) - before:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["local", "s3"])
def lake(request) -> Lake:
    """Parametrised: the same test on local disk and on the S3 server."""
    if request.param == "local":
        return request.getfixturevalue("lake_local")
    return request.getfixturevalue("lake_s3")


# delta-rs/Arrow scanner threads can abort the interpreter at exit ("terminate called without
# an active exception", exit 134: delta-io/delta-rs#2184) AFTER every test has passed and the
# summary is printed. Leave with pytest's own exit status before interpreter teardown, so a
# green run stays green and a red one stays red.
_EXIT_STATUS: dict[str, int] = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "status" in _EXIT_STATUS and not hasattr(config, "workerinput"):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["status"])
