"""dbt-duckdb plugin: offline Delta + S3 support for the lakehouse dbt project.

* Loads DuckDB's ``httpfs`` and ``delta`` extensions from the pinned ``duckdb-extension-httpfs``
  and ``duckdb-extension-delta`` wheels (``LOAD '<file>'``): no ``INSTALL`` from the internet.
* Creates a DuckDB S3 secret from the plugin config (rendered from environment variables in
  ``profiles.yml``) when a key id is configured, so ``delta_scan('s3://…')`` reaches any
  S3-compatible endpoint (path-style URLs; plain HTTP when the endpoint says ``http://``).

* Registers two SQL functions over the Delta log (``lakehouse/delta_changes.py``), the change
  capture of the incremental models: ``lakehouse_delta_version(uri)`` (newest version, -1 when
  the table does not exist) and ``lakehouse_delta_new_partitions(uri, since, upto, column)``
  (partition values of the data files committed after version ``since`` up to ``upto``).
  Commit order, not ingestion timestamps: an ingestion run that started earlier but committed
  later is never skipped.

Bronze sources are read with ``delta_scan()`` (see ``models/staging/*/_*__models.yml``), which
prunes partitions and pushes filters down, so incremental models read only new data.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin


def extension_file(name: str) -> str:
    """Path of the ``<name>.duckdb_extension`` shipped in the ``duckdb-extension-<name>`` wheel."""
    mod = importlib.import_module(f"duckdb_extension_{name}")
    path = os.path.join(
        os.path.dirname(mod.__file__), "extensions", f"v{duckdb.__version__}", f"{name}.duckdb_extension"
    )
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing: duckdb-extension-{name} must match duckdb {duckdb.__version__}")
    return path


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def s3_secret_sql(
    endpoint_url: str, key_id: str, secret: str, region: str = "us-east-1", name: str = "lakehouse_s3"
) -> str:
    """``CREATE SECRET`` for an S3 endpoint given as a URL (``http://host:port`` or empty for AWS)."""
    parts = [
        "TYPE s3",
        f"KEY_ID {_quote(key_id)}",
        f"SECRET {_quote(secret)}",
        f"REGION {_quote(region or 'us-east-1')}",
    ]
    if endpoint_url:
        use_ssl = not endpoint_url.startswith("http://")
        host = endpoint_url.split("://", 1)[-1].rstrip("/")
        parts += [f"ENDPOINT {_quote(host)}", "URL_STYLE 'path'", f"USE_SSL {str(use_ssl).lower()}"]
    return f"CREATE OR REPLACE SECRET {name} ({', '.join(parts)})"


def _delta_options(config: dict[str, Any], uri: str) -> dict[str, str]:
    from lakehouse.storage import Lake, S3Settings

    s3 = S3Settings(
        endpoint_url=config.get("s3_endpoint_url") or None,
        access_key_id=config.get("s3_access_key_id") or None,
        secret_access_key=config.get("s3_secret_access_key") or None,
        region=config.get("s3_region") or "us-east-1",
    )
    return Lake(uri, s3).delta_storage_options()


def register_change_capture(conn: duckdb.DuckDBPyConnection, config: dict[str, Any] | None = None) -> None:
    """``lakehouse_delta_version`` and ``lakehouse_delta_new_partitions`` on ``conn``."""
    from lakehouse.delta_changes import changes_since, table_version

    config = dict(config or {})

    def version(uri: str) -> int:
        return table_version(uri, _delta_options(config, uri))

    def new_partitions(uri: str, since: int, upto: int, column: str) -> list[str]:
        changes = changes_since(uri, int(since), _delta_options(config, uri), upto=int(upto))
        return list(changes.partitions.get(column, ()))

    conn.create_function("lakehouse_delta_version", version, ["VARCHAR"], "BIGINT", side_effects=True)
    conn.create_function(
        "lakehouse_delta_new_partitions",
        new_partitions,
        ["VARCHAR", "BIGINT", "BIGINT", "VARCHAR"],
        "VARCHAR[]",
        side_effects=True,
    )


def configure(conn: duckdb.DuckDBPyConnection, config: dict[str, Any] | None = None) -> None:
    """Load the extensions, create the S3 secret and the change-capture functions on a DuckDB connection."""
    config = config or {}
    for ext in ("httpfs", "delta"):
        conn.execute(f"LOAD {_quote(extension_file(ext))}")
    key_id = config.get("s3_access_key_id") or ""
    if key_id:
        conn.execute(
            s3_secret_sql(
                config.get("s3_endpoint_url") or "",
                key_id,
                config.get("s3_secret_access_key") or "",
                config.get("s3_region") or "us-east-1",
            )
        )
    register_change_capture(conn, config)


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.config = dict(plugin_config or {})

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        configure(conn, self.config)
