"""The deployment files never publish a port on every interface: the webserver has no login
and Spark no authentication (infra/README.md, "Exposing the stack")."""

from __future__ import annotations

from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_compose_publishes_ports_on_loopback_only():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    published = {name: svc.get("ports", []) for name, svc in compose["services"].items()}
    assert any(published.values())
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    for internal in ("lakehouse-code", "postgres", "spark-worker"):
        assert not published.get(internal), f"{internal} must not be published"
