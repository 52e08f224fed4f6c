"""Where a lake's MLflow tracking + model registry lives, and the client for it.

* ``lake.mlflow_tracking_uri`` (the ``lake`` resource binds ``MLFLOW_TRACKING_URI`` with
  ``dg.EnvVar``; :meth:`lakehouse.storage.Lake.open` reads it for the command line): any MLflow
  server or database — it wins.
* Otherwise a SQLite file: ``<lake root>/mlflow/mlflow.db`` for a local lake; for a lake on S3
  (SQLite needs a local file) ``<warehouse folder>/mlflow/<bucket>__<prefix>.db`` next to the
  DuckDB warehouse.
* Artifacts (the logged models) always go under the lake root: ``<root>/mlflow/artifacts/<model>``
  (one MLflow experiment per model name). They are written through the lake's own filesystem
  (local or S3 with the lake's credentials), so no second set of credentials is needed to log.

A new SQLite database is a copy of an empty, fully migrated template (made once per MLflow
version in the temp folder): MLflow's schema migrations take 5–15 s, a copy milliseconds.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from lakehouse.storage import Lake

_LOCK = threading.Lock()
MLFLOW_DIR = "mlflow"
ARTIFACTS_DIR = "artifacts"


def tracking_uri(lake: Lake) -> str:
    """The MLflow tracking (= registry) URI of ``lake``; creates a missing SQLite file."""
    configured = getattr(lake, "mlflow_tracking_uri", None)
    if configured:
        if configured.startswith("sqlite:///"):
            _ensure_sqlite(Path(configured[len("sqlite:///") :]))
        return configured
    if lake.is_s3:
        from lakehouse.warehouse import duckdb_path

        return s3_lake_sqlite_uri(lake, duckdb_path().parent)
    return sqlite_uri(Path(lake.root) / MLFLOW_DIR / "mlflow.db")


def sqlite_uri(db: Path) -> str:
    """``sqlite:///<db>`` (the file created from the migrated template when missing)."""
    _ensure_sqlite(Path(db))
    return f"sqlite:///{db}"


def s3_lake_sqlite_uri(lake: Lake, folder: Path) -> str:
    """The default store of a lake on S3 (SQLite needs a local file): ``<folder>/mlflow/<bucket>__<prefix>.db``
    — ``folder`` is the DuckDB warehouse's folder of the lake resource."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "__", lake.root.split("://", 1)[1]).strip("_")
    return sqlite_uri(Path(folder) / MLFLOW_DIR / f"{slug}.db")


def artifact_root(lake: Lake) -> str:
    """Where the logged models go: ``<lake root>/mlflow/artifacts``."""
    return lake.uri(MLFLOW_DIR, ARTIFACTS_DIR)


def _ensure_sqlite(db: Path) -> None:
    if db.exists():
        return
    with _LOCK:
        if db.exists():
            return
        db.parent.mkdir(parents=True, exist_ok=True)
        tmp = db.with_name(f".{db.name}.{os.getpid()}.{threading.get_ident()}")
        shutil.copyfile(_template(), tmp)
        try:
            os.link(tmp, db)  # atomic and never replaces a database another process created first
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)


def _template() -> Path:
    """An empty, migrated MLflow SQLite database for this MLflow version (made once)."""
    import mlflow

    path = Path(tempfile.gettempdir()) / f"lakehouse-mlflow-template-{mlflow.__version__}.db"
    if path.exists():
        return path
    import logging

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    store = SqlAlchemyStore(f"sqlite:///{tmp}", str(Path(tempfile.gettempdir()) / "mlruns"))
    store.engine.dispose()
    os.replace(tmp, path)
    return path


def client(lake: Lake):
    """An ``mlflow.MlflowClient`` on ``lake``'s tracking and registry store."""
    from mlflow import MlflowClient

    uri = tracking_uri(lake)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def local_path(uri: str) -> str:
    """A ``file:`` URI as a plain path (other URIs unchanged)."""
    return uri[len("file://") :] if uri.startswith("file://") else uri
