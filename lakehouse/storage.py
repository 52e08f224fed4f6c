"""One lake root URI — a local folder or ``s3://bucket/prefix`` — shared by every layer.

The :class:`Lake` is plain Python (no Dagster) so that library code and tests can use it
directly; :class:`assets.resources.LakeResource` builds one from configuration.
Credentials are passed in by the caller. The environment variables that hold them are named
once, in :data:`S3_ENV`: :meth:`S3Settings.from_env` (the command line) reads them, and the
Dagster ``lake`` resource binds the same names with ``dg.EnvVar`` (orchestration/settings.py).
Nothing else reads S3 settings from ``os.environ``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa


def _is_s3(uri: str) -> bool:
    return uri.startswith("s3://") or uri.startswith("s3a://")


#: S3Settings field -> the standard AWS environment variable that holds it.
S3_ENV: dict[str, str] = {
    "endpoint_url": "AWS_ENDPOINT_URL",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "region": "AWS_REGION",
}
DEFAULT_REGION = "us-east-1"
MLFLOW_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own variable: any tracking server / database


def is_s3_uri(uri: str) -> bool:
    """True for ``s3://`` and ``s3a://`` URIs."""
    return _is_s3(uri)


@dataclass(frozen=True)
class S3Settings:
    """Connection settings for an S3-compatible object store.

    Parameters
    ----------
    endpoint_url
        S3 endpoint (``http://127.0.0.1:8333``); ``None`` for AWS itself.
    access_key_id, secret_access_key
        Credentials; ``None`` lets the client look for them itself.
    region
        Region name (``us-east-1`` by default).
    allow_http
        Allow plain HTTP; ``None`` infers it from the endpoint's scheme.
    """

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = DEFAULT_REGION
    allow_http: bool | None = None  # None: infer from endpoint scheme

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        """S3 settings from the standard AWS environment variables (:data:`S3_ENV`).

        The one place the command line reads them; ``AWS_DEFAULT_REGION`` is the fallback
        region, then ``us-east-1``.
        """
        env = os.environ if environ is None else environ
        return cls(
            endpoint_url=env.get(S3_ENV["endpoint_url"]) or None,
            access_key_id=env.get(S3_ENV["access_key_id"]) or None,
            secret_access_key=env.get(S3_ENV["secret_access_key"]) or None,
            region=env.get(S3_ENV["region"]) or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        )


@dataclass(frozen=True)
class Lake:
    """A lake rooted at ``root`` (local path or ``s3://bucket/prefix``).

    ``mlflow_tracking_uri``: the MLflow tracking/registry store of its models (``None``: a SQLite
    file, see :mod:`ml.mlflow_store`)."""

    root: str
    s3: S3Settings = field(default_factory=S3Settings)
    mlflow_tracking_uri: str | None = None

    @classmethod
    def open(cls, root: str, environ: Mapping[str, str] | None = None) -> Lake:
        """A lake at ``root``; an ``s3://`` root gets the environment's S3 settings
        (:meth:`S3Settings.from_env`) and ``MLFLOW_TRACKING_URI`` its model registry — for
        command lines, never for Dagster resources."""
        env = os.environ if environ is None else environ
        s3 = S3Settings.from_env(env) if is_s3_uri(root) else S3Settings()
        return cls(root, s3, env.get(MLFLOW_ENV) or None)

    def __post_init__(self) -> None:
        root = self.root.rstrip("/")
        if not _is_s3(root):
            root = str(Path(root).expanduser().resolve())
        object.__setattr__(self, "root", root)

    # ------------------------------------------------------------------ paths
    @property
    def is_s3(self) -> bool:
        """True when the lake's root is on S3."""
        return _is_s3(self.root)

    def uri(self, *parts: str) -> str:
        """URI of a path under the root, e.g. ``lake.uri("bronze", "lims_results")``."""
        clean = [p.strip("/") for p in parts if p]
        if not clean:
            return self.root
        return posixpath.join(self.root, *clean) if self.is_s3 else str(Path(self.root, *clean))

    @property
    def landing(self) -> str:
        """URI of the landing zone (``<root>/landing``)."""
        return self.uri("landing")

    def table_uri(self, layer: str, name: str) -> str:
        """URI of table ``name`` in ``layer``."""
        return self.uri(layer, name)

    # ---------------------------------------------------------- credentials
    def delta_storage_options(self) -> dict[str, str]:
        """Storage options in the form delta-rs (``deltalake``) expects."""
        if not self.is_s3:
            return {}
        s3 = self.s3
        opts: dict[str, str] = {"AWS_REGION": s3.region}
        if s3.access_key_id:
            opts["AWS_ACCESS_KEY_ID"] = s3.access_key_id
        if s3.secret_access_key:
            opts["AWS_SECRET_ACCESS_KEY"] = s3.secret_access_key
        if s3.endpoint_url:
            opts["AWS_ENDPOINT_URL"] = s3.endpoint_url
            allow_http = s3.allow_http
            if allow_http is None:
                allow_http = s3.endpoint_url.startswith("http://")
            if allow_http:
                opts["AWS_ALLOW_HTTP"] = "true"
            # path-style addressing: SeaweedFS/MinIO style endpoints
            opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
        return opts

    def fsspec_storage_options(self) -> dict[str, Any]:
        """Storage options in the form s3fs / fsspec expects."""
        if not self.is_s3:
            return {}
        s3 = self.s3
        opts: dict[str, Any] = {"client_kwargs": {"region_name": s3.region}}
        if s3.access_key_id:
            opts["key"] = s3.access_key_id
        if s3.secret_access_key:
            opts["secret"] = s3.secret_access_key
        if s3.endpoint_url:
            opts["client_kwargs"]["endpoint_url"] = s3.endpoint_url
        return opts

    def filesystem(self) -> fsspec.AbstractFileSystem:
        """An fsspec filesystem for the lake root (local or s3fs)."""
        if self.is_s3:
            return fsspec.filesystem("s3", **self.fsspec_storage_options())
        return fsspec.filesystem("file")

    def fs_path(self, uri: str) -> str:
        """Path as the fsspec filesystem wants it (s3fs drops the scheme)."""
        if self.is_s3:
            return uri.split("://", 1)[1]
        return uri

    # ------------------------------------------------------------ delta I/O
    def delta_exists(self, uri: str) -> bool:
        """True when ``uri`` holds a Delta table."""
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(uri, storage_options=self.delta_storage_options())

    def delta_table(self, uri: str, version: int | None = None):
        """The ``deltalake.DeltaTable`` at ``uri`` (at ``version``, default the latest)."""
        from deltalake import DeltaTable

        return DeltaTable(uri, version=version, storage_options=self.delta_storage_options())

    def read_delta(self, uri: str, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
        """Read a Delta table (optionally some columns, at a version) as Arrow."""
        return self.delta_table(uri, version=version).to_pyarrow_table(columns=columns)

    def write_delta(self, uri: str, data: pa.Table, mode: str = "append", **kwargs: Any) -> None:
        """Write Arrow data to a Delta table (``write_deltalake`` with the lake's storage options)."""
        from deltalake import write_deltalake

        write_deltalake(uri, data, mode=mode, storage_options=self.delta_storage_options(), **kwargs)

    def ensure_bucket(self) -> None:
        """Create the S3 bucket of the root if it does not exist (no-op locally)."""
        fs = self.filesystem()
        if self.is_s3:
            bucket = self.fs_path(self.root).split("/", 1)[0]
            if not fs.exists(bucket):
                fs.mkdir(bucket)
        else:
            Path(self.root).mkdir(parents=True, exist_ok=True)
