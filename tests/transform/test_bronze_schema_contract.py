"""The bronze schema is defined once, in ``lakehouse/ingest/schemas.py``; what dbt says about
bronze must agree with it (names and types):

* ``bronze_columns()`` in ``dbt_project/macros/bronze.sql`` — the empty stand-in of a bronze
  table that does not exist yet — lists exactly the schema's columns, in order, with the
  DuckDB type of each Arrow type;
* every ``cast(<bronze column> as <type>)`` in the staging models casts to that same type.

No dbt run: the macro is rendered with Jinja (its ``return()`` captured) and the staging SQL is
read as text, so the test is fast and fails with the column that disagrees.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pyarrow as pa
import pytest

from lakehouse.ingest.schemas import BRONZE_SCHEMAS

DBT = Path(__file__).resolve().parents[2] / "dbt_project"

# Arrow type of the bronze schema -> the DuckDB type dbt must use for it
DUCKDB_TYPES: dict[pa.DataType, str] = {
    pa.string(): "varchar",
    pa.float64(): "double",
    pa.int64(): "bigint",
    pa.int32(): "integer",
    pa.int16(): "smallint",
    pa.date32(): "date",
    pa.timestamp("us", tz="UTC"): "timestamptz",
}


def duckdb_type(t: pa.DataType) -> str:
    assert t in DUCKDB_TYPES, f"no DuckDB type known for Arrow {t}: extend DUCKDB_TYPES"
    return DUCKDB_TYPES[t]


def bronze_columns_macro() -> dict[str, list[list[str]]]:
    captured: dict = {}

    def _return(value):
        captured["value"] = value
        return ""

    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    src = (DBT / "macros" / "bronze.sql").read_text()
    env.from_string(src + "{{ bronze_columns() }}").render(**{"return": _return})
    return captured["value"]


def test_bronze_columns_macro_is_the_bronze_schema():
    macro = bronze_columns_macro()
    assert set(macro) == set(BRONZE_SCHEMAS)
    for table, schema in BRONZE_SCHEMAS.items():
        want = [[f.name, duckdb_type(f.type)] for f in schema]
        assert [list(c) for c in macro[table]] == want, table


_CAST = re.compile(
    r"""cast\(\s*(?:"?(?P<col>\w+)"?|\{\{\s*canonical_value\('(?P<canon>\w+)'[^}]*\}\})\s+as\s+(?P<type>\w+)\s*\)""",
    re.IGNORECASE,
)
_BRONZE = re.compile(r"bronze\('\w+',\s*'(?P<table>\w+)'\)")


def _staging_models() -> list[Path]:
    return sorted((DBT / "models" / "staging").rglob("*.sql"))


@pytest.mark.parametrize("model", _staging_models(), ids=lambda p: p.stem)
def test_staging_casts_follow_the_bronze_schema(model: Path):
    sql = model.read_text()
    tables = set(_BRONZE.findall(sql))
    assert len(tables) == 1, f"{model.name}: expected one bronze source, found {tables}"
    schema = BRONZE_SCHEMAS[tables.pop()]
    types = {f.name: duckdb_type(f.type) for f in schema}
    checked = 0
    for m in _CAST.finditer(sql):
        col = m.group("col") or m.group("canon")
        if col not in types:
            continue  # a derived expression, not a bronze column
        checked += 1
        assert m.group("type").lower() == types[col], (
            f"{model.name}: cast({col} as {m.group('type')}) but bronze has {types[col]} (lakehouse/ingest/schemas.py)"
        )
    # every bronze column the model types explicitly was compared: at least the lineage column
    # and the table's own columns, so the check cannot pass on a model it failed to parse
    assert checked >= min(3, len(types)), f"{model.name}: only {checked} casts of bronze columns found"
