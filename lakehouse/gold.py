"""Publishing the dbt marts as gold Delta tables (``gold/<mart>`` in the lake).

The marts live in the DuckDB warehouse (``marts.<mart>``, what BI tools open); this module
copies them to Delta so that Spark, Polars, Databricks, Trino … read the same data from the
lake (local disk or S3). Arrow batches stream from DuckDB straight into ``write_deltalake``.

* Small marts are overwritten in one commit (``schema_mode='overwrite'``).
* ``fct_process_readings`` (big) is published incrementally: only batches whose rows changed
  since the last publication (``_loaded_at`` — when the warehouse rebuilt them, strictly
  increasing per dbt invocation — newer than the watermark stored in the Delta commit metadata) are replaced, with a ``batch_id IN (…)`` predicate overwrite — one
  new day of data does not rewrite history.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake

from lakehouse.storage import Lake
from lakehouse.warehouse import DBT_PROJECT_DIR, MARTS_SCHEMA, model_code_fingerprint

WATERMARK_KEY = "lakehouse.watermark"
CODE_KEY = "lakehouse.model_code"
# mart -> (replace key, watermark column) for marts published incrementally
INCREMENTAL_MARTS: dict[str, tuple[str, str]] = {
    "fct_process_readings": ("batch_id", "_loaded_at"),
}
BATCH_ROWS = 250_000


@dataclass
class PublishResult:
    """What publishing one mart did: mode (overwrite, incremental, unchanged), rows on both sides,
    Delta version, schema, replaced batches and a preview.
    """

    mart: str
    uri: str
    mode: str  # overwrite | incremental | unchanged
    rows: int  # rows of the gold Delta table after publishing
    warehouse_rows: int  # rows of marts.<mart> in DuckDB
    version: int
    schema: pa.Schema
    delta_columns: list[str] = field(default_factory=list)
    replaced_keys: list[str] = field(default_factory=list)
    preview: pa.Table | None = None


def connect_warehouse(path: str | Path, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB warehouse (read-only by default) in UTC."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")  # Arrow timestamps tz='UTC' (delta-rs rejects 'Etc/UTC')
    return con


def _sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _last_commit_meta(table: DeltaTable) -> tuple[str | None, str | None]:
    """(watermark, model code fingerprint) of the newest publication commit."""
    for commit in table.history(20):
        if WATERMARK_KEY in commit:
            return str(commit[WATERMARK_KEY]), (str(commit[CODE_KEY]) if CODE_KEY in commit else None)
    return None, None


def _delta_rows(table: DeltaTable) -> int:
    actions = table.get_add_actions(flatten=True)
    return int(sum(v for v in actions.column("num_records").to_pylist() if v is not None))


def _normalise(schema: pa.Schema) -> pa.Schema:
    """Field names and Arrow types comparable across writers (large/view strings -> string)."""

    def norm(t: pa.DataType) -> pa.DataType:
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pa.string()
        if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            return pa.binary()
        return t

    return pa.schema([pa.field(f.name, norm(f.type)) for f in schema])


def publish_mart(con: duckdb.DuckDBPyConnection, lake: Lake, mart: str, preview_rows: int = 5) -> PublishResult:
    """Copy ``marts.<mart>`` to ``gold/<mart>`` (Delta); incremental where configured."""
    relation = f"{MARTS_SCHEMA}.{mart}"
    uri = lake.uri("gold", mart)
    opts = lake.delta_storage_options()
    schema = con.execute(f"select * from {relation} limit 0").fetch_arrow_table().schema
    warehouse_rows = int(con.execute(f"select count(*) from {relation}").fetchone()[0])
    preview = con.execute(f"select * from {relation} limit {int(preview_rows)}").fetch_arrow_table()

    key_col, wm_col = INCREMENTAL_MARTS.get(mart, (None, None))
    new_wm = None
    if wm_col:
        new_wm = con.execute(f"select cast(max({wm_col}) as varchar) from {relation}").fetchone()[0]
    code = model_code_fingerprint()
    props = CommitProperties(
        custom_metadata={
            WATERMARK_KEY: new_wm or "",
            CODE_KEY: code,
            "lakehouse.operation": "publish-gold",
            "lakehouse.mart": mart,
        }
    )

    existing = DeltaTable(uri, storage_options=opts) if lake.delta_exists(uri) else None
    mode = "overwrite"
    replaced: list[str] = []
    if existing is not None and key_col:
        old_wm, old_code = _last_commit_meta(existing)
        same_schema = _normalise(pa.schema(existing.schema().to_arrow())) == _normalise(schema)
        # incremental only when the same model code produced the gold table (a changed model
        # rebuilt with --full-refresh restamps every row anyway, but republish all to be sure)
        if old_wm and same_schema and old_code == code:
            mode = "incremental"
            where = f"{wm_col} > cast({_sql_literal(old_wm)} as timestamptz)" if old_wm else "true"
            replaced = [
                r[0]
                for r in con.execute(f"select distinct {key_col} from {relation} where {where} order by 1").fetchall()
            ]
            if not replaced:
                mode = "unchanged"
            else:
                keys_sql = ", ".join(_sql_literal(k) for k in replaced)
                reader = con.execute(f"select * from {relation} where {key_col} in ({keys_sql})").fetch_record_batch(
                    BATCH_ROWS
                )
                write_deltalake(
                    existing, reader, mode="overwrite", predicate=f"{key_col} IN ({keys_sql})", commit_properties=props
                )
    if mode == "overwrite":
        reader = con.execute(f"select * from {relation}").fetch_record_batch(BATCH_ROWS)
        write_deltalake(
            uri, reader, mode="overwrite", schema_mode="overwrite", storage_options=opts, commit_properties=props
        )

    table = DeltaTable(uri, storage_options=opts)
    if mode != "overwrite" and _delta_rows(table) != warehouse_rows:
        # rows vanished from the mart (e.g. a batch record withdrawn) or a reset warehouse:
        # fall back to a full copy so that gold always equals the mart
        reader = con.execute(f"select * from {relation}").fetch_record_batch(BATCH_ROWS)
        write_deltalake(
            uri, reader, mode="overwrite", schema_mode="overwrite", storage_options=opts, commit_properties=props
        )
        mode, replaced = "overwrite", []
        table = DeltaTable(uri, storage_options=opts)
    return PublishResult(
        mart=mart,
        uri=uri,
        mode=mode,
        rows=_delta_rows(table),
        warehouse_rows=warehouse_rows,
        version=table.version(),
        schema=schema,
        delta_columns=list(pa.schema(table.schema().to_arrow()).names),
        replaced_keys=replaced,
        preview=preview,
    )


# ------------------------------------------------------------------- documentation + metadata
@lru_cache(maxsize=1)
def _manifest_nodes() -> dict[str, Any]:
    path = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not path.exists():
        return {}
    nodes = json.loads(path.read_text()).get("nodes", {})
    return {n["name"]: n for n in nodes.values() if n.get("resource_type") == "model"}


def mart_description(mart: str) -> str:
    """Description of a gold mart: the dbt model's description and where the Delta copy lives."""
    node = _manifest_nodes().get(mart, {})
    text = (node.get("description") or "").strip()
    return (text + "\n\n" if text else "") + f"Delta copy of the dbt mart `{MARTS_SCHEMA}.{mart}` at `gold/{mart}`."


def column_descriptions(mart: str) -> dict[str, str]:
    """Column name → description of a mart, from the dbt manifest."""
    node = _manifest_nodes().get(mart, {})
    return {name: (col.get("description") or "") for name, col in node.get("columns", {}).items()}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value).replace("|", "\\|").replace("\n", " ")[:60]


def markdown_preview(table: pa.Table) -> str:
    """An Arrow table as a markdown table (cells shortened)."""
    cols = table.column_names
    rows = table.to_pylist()
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def read_back_with_polars(lake: Lake, mart: str) -> tuple[int, list[str]]:
    """Row count and columns of ``gold/<mart>`` as an independent reader (Polars) sees them."""
    import polars as pl

    uri = lake.uri("gold", mart)
    if not lake.is_s3 and " " in uri:
        # polars' native Delta scan percent-encodes local file paths (a space becomes %20 and the
        # file is "not found", polars 2.1): read through its pyarrow path there
        df = pl.read_delta(uri, use_pyarrow=True)
        return df.height, list(df.columns)
    lf = pl.scan_delta(uri, storage_options=lake.delta_storage_options() or None)
    return int(lf.select(pl.len()).collect().item()), list(lf.collect_schema().names())
