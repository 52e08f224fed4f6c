"""The code location loads, and the lake resource takes its settings from the environment."""

from __future__ import annotations

import datetime as dt

import dagster as dg


def test_definitions_load_and_validate():
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    # every asset job resolves (selection valid, resources bound)
    for job in repo.get_all_jobs():
        assert job.name
    dg.Definitions.validate_loadable(defs)


def test_lake_resource_defaults_to_local_folder(monkeypatch):
    for var in ("LAKEHOUSE_ROOT", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    from orchestration.settings import DEFAULT_LAKE_ROOT, lake_resource

    lake = lake_resource().get_lake()
    assert lake.root == str(DEFAULT_LAKE_ROOT)
    assert not lake.is_s3


def test_lake_resource_reads_s3_settings_from_env(monkeypatch, s3_server):
    monkeypatch.setenv("LAKEHOUSE_ROOT", s3_server.uri("from-env"))
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    from orchestration.settings import lake_resource

    resource = lake_resource()
    # secrets are EnvVar references, resolved only when the resource is initialised
    assert isinstance(resource.aws_secret_access_key, dg.EnvVar)
    assert resource.aws_secret_access_key == "AWS_SECRET_ACCESS_KEY"  # the name, not the value
    with dg.build_resources({"lake": resource}) as res:
        lake = res.lake.get_lake()
    assert lake.is_s3 and lake.root == s3_server.uri("from-env")
    assert lake.delta_storage_options()["AWS_ENDPOINT_URL"] == s3_server.endpoint_url


def test_settings_from_env_and_overrides_leave_the_environment_alone(monkeypatch):
    """`lakehouse run --lake X --days N` builds explicit settings; os.environ is not touched."""
    import os

    from orchestration.settings import DEFAULT_LAKE_ROOT, Settings
    from twin.site import SiteConfig

    for var in ("LAKEHOUSE_ROOT", "LAKEHOUSE_SITE_DAYS", "LAKEHOUSE_SOURCE", "LAKEHOUSE_START_DATE"):
        monkeypatch.delenv(var, raising=False)
    before = dict(os.environ)
    default = Settings.from_env()
    assert default.lake.root_uri == str(DEFAULT_LAKE_ROOT)
    d = SiteConfig()
    assert (
        default.site.start_date,
        default.site.days,
        default.site.bioreactors,
        default.site.interval_s,
        default.site.seed,
    ) == (d.start, d.days, d.bioreactors, d.interval_s, d.seed)
    s = Settings.from_env(
        {"LAKEHOUSE_SITE_DAYS": "12", "LAKEHOUSE_SOURCE": "external"},
        lake_root="/tmp/lake-x",
        bioreactors=2,
        start_date=None,
    )
    assert s.lake.root_uri == "/tmp/lake-x" and s.site.days == 12 and s.site.bioreactors == 2
    assert s.site.source == "external" and s.site.start_date == d.start
    first = dt.date.fromisoformat(d.start)
    assert s.partition_range() == (d.start, (first + dt.timedelta(days=11)).isoformat())
    assert dict(os.environ) == before
