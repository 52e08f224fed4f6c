"""Where the dbt project and the DuckDB warehouse live, and how the lake reaches dbt.

Plain Python (no Dagster): used by the dbt asset, the gold publisher, tests and the benchmark.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.ingest.schemas import BRONZE_SCHEMAS
from lakehouse.storage import Lake

if TYPE_CHECKING:  # pragma: no cover
    from lakehouse.plant import PlantBundle

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DEFAULT_DUCKDB_PATH = PROJECT_ROOT / "data" / "warehouse.duckdb"

# Bronze tables the dbt sources read: every table of the bronze schema (without _quarantine).
BRONZE_TABLES = list(BRONZE_SCHEMAS)

# Gold marts: published to gold/<mart> (Delta) and kept as marts.<mart> in the DuckDB file.
GOLD_MARTS = [
    "dim_batches",
    "dim_equipment",
    "fct_batch_phases",
    "fct_process_readings",
    "fct_assay_results",
    "fct_chromatography_runs",
    "fct_filtration_runs",
    "fct_lot_genealogy",
    "fct_equipment_health_daily",
    "fct_work_orders",
]
MARTS_SCHEMA = "marts"


def duckdb_path(configured: str | Path | None = None) -> Path:
    """The warehouse file: ``configured`` (the lake resource's ``duckdb_path``, from
    ``LAKEHOUSE_DUCKDB_PATH``) or ``data/warehouse.duckdb``; relative paths are taken from the
    project root."""
    path = Path(configured).expanduser() if configured else DEFAULT_DUCKDB_PATH
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    return path


@functools.lru_cache(maxsize=1)
def dbt_project_vars() -> dict:
    """``vars`` of dbt_project.yml (assay as-of tolerance, test windows, …)."""
    import yaml

    return dict(yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text()).get("vars") or {})


# Which lake — and which model code — each dbt build of a warehouse file was made from. The
# incremental models keep rows from earlier builds, so a warehouse built from another lake (or
# before this table existed) must be rebuilt from scratch (`dbt build --full-refresh`) —
# otherwise stale batches of the other lake would stay in the incremental marts — and so must
# one built by other model code (an incremental model whose columns or logic changed would
# otherwise fail on its schema or keep rows computed the old way).
BUILD_STATE = "lakehouse_state.dbt_builds"


def plant_model_code(manifest: Path | None, plant: PlantBundle) -> str:
    """What a dbt build of ``plant`` is made from: the model code (:func:`model_code_fingerprint`)
    and the plant's catalog, grid, phase and equipment signals (:meth:`PlantBundle.fingerprint`).
    A warehouse built from another value is rebuilt from scratch (the aligned models' columns
    are the plant's signals)."""
    return f"{model_code_fingerprint(manifest)}:{plant.fingerprint()}"


def model_code_fingerprint(manifest: Path | None = None) -> str:
    """Hash of every dbt model checksum and project macro in the manifest (default: the
    project's ``target/manifest.json``): changes with any model or macro code."""
    path = Path(manifest) if manifest else DBT_PROJECT_DIR / "target" / "manifest.json"
    return _fingerprint(str(path), path.stat().st_mtime if path.exists() else 0.0)


@functools.lru_cache(maxsize=4)
def _fingerprint(path: str, mtime: float) -> str:
    import hashlib
    import json

    if not mtime:
        return ""
    manifest = json.loads(Path(path).read_text())
    parts = sorted(
        f"{k}:{v.get('checksum', {}).get('checksum', '')}"
        for k, v in manifest.get("nodes", {}).items()
        if v.get("resource_type") == "model"
    )
    parts += sorted(
        f"{k}:{hashlib.sha1(v.get('macro_sql', '').encode()).hexdigest()}"
        for k, v in manifest.get("macros", {}).items()
        if v.get("package_name") == "bioprocess_lakehouse"
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def needs_full_refresh(warehouse: Path, step: str, lake_root: str, model_code: str | None = None) -> str | None:
    """Why ``step`` must rebuild ``warehouse`` from scratch (``None``: it need not).

    A full refresh is needed when the file holds dbt models that ``step`` did not build from
    ``lake_root`` (another lake, or unknown origin) or — when ``model_code`` is given — that
    other model code built.
    """
    import duckdb

    if not Path(warehouse).exists():
        return None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {
            r[0]
            for r in con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
        }
        has_models = any(t.split(".")[0] in ("staging", "intermediate", "marts") for t in tables)
        row = None
        if BUILD_STATE in tables:
            cols = {
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'lakehouse_state' and table_name = 'dbt_builds'"
                ).fetchall()
            }
            code_col = "model_code" if "model_code" in cols else "null"
            row = con.execute(f"select lake_root, {code_col} from {BUILD_STATE} where step = ?", [step]).fetchone()
        if row is None:
            return "it holds models of unknown origin" if has_models else None
        if row[0] != lake_root:
            return f"it holds models built from another lake ({row[0]})"
        if model_code and row[1] != model_code:
            return "the dbt model code changed since its last build"
        return None
    finally:
        con.close()


def record_build(warehouse: Path, step: str, lake_root: str, model_code: str | None = None) -> None:
    """Remember that ``step`` built every one of its models in ``warehouse`` from ``lake_root``
    with the model code ``model_code``."""
    import duckdb

    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema if not exists lakehouse_state")
        con.execute(
            f"create table if not exists {BUILD_STATE} "
            "(step varchar primary key, lake_root varchar, built_at timestamptz)"
        )
        con.execute(f"alter table {BUILD_STATE} add column if not exists model_code varchar")
        con.execute(
            f"insert or replace into {BUILD_STATE} (step, lake_root, built_at, model_code) values (?, ?, now(), ?)",
            [step, lake_root, model_code],
        )
    finally:
        con.close()


def missing_bronze_tables(lake: Lake) -> list[str]:
    """Bronze tables that do not exist (yet) in the lake: dbt reads them as empty relations."""
    return [t for t in BRONZE_TABLES if not lake.delta_exists(lake.uri("bronze", t))]


def dbt_env(
    lake: Lake, warehouse: Path | None = None, missing_bronze: list[str] | None = None, plant: PlantBundle | None = None
) -> dict[str, str]:
    """Environment variables ``profiles.yml``, the sources and the models read (see
    dbt_project/profiles.yml, macros/lakehouse.sql).

    ``plant`` (default: the default bundle, the twin site) gives the signal columns, grid,
    phase signal and equipment signals (:meth:`lakehouse.plant.PlantBundle.dbt_env`).

    The lake root goes in ``LAKEHOUSE_ROOT`` (sources: ``delta_scan('<root>/bronze/<table>')``);
    S3 endpoint and credentials become a DuckDB S3 secret (path-style URLs, HTTP when the
    endpoint says so). The secret key uses dbt's ``DBT_ENV_SECRET_`` prefix so that dbt
    scrubs it from its logs. Local lakes get empty S3 settings.
    """
    s3 = lake.s3 if lake.is_s3 else None
    return {
        "LAKEHOUSE_ROOT": lake.root,
        "LAKEHOUSE_DUCKDB_PATH": str(warehouse or duckdb_path()),  # what profiles.yml reads
        "LAKEHOUSE_MISSING_BRONZE": ",".join(missing_bronze or []),
        "LAKEHOUSE_S3_ENDPOINT_URL": (s3.endpoint_url or "") if s3 else "",
        "LAKEHOUSE_S3_ACCESS_KEY_ID": (s3.access_key_id or "") if s3 else "",
        "DBT_ENV_SECRET_LAKEHOUSE_S3_SECRET_ACCESS_KEY": (s3.secret_access_key or "") if s3 else "",
        "LAKEHOUSE_S3_REGION": (s3.region or "us-east-1") if s3 else "us-east-1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        **(plant or _default_plant()).dbt_env(),
    }


def _default_plant() -> PlantBundle:
    from lakehouse.plant import default_plant

    return default_plant()


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (the dbt subprocess inherits
    ``os.environ`` when it is started), then restore the previous values."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
