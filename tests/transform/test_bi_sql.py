"""BI for real: the example SQL of docs/data-model.md runs verbatim with the ``duckdb``
command-line client the install provides, read-only against the warehouse file, with the Delta
extension loaded offline (``lakehouse/bi.py``) — and the lake is not written to."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import bronze_fixture as bf
from transform_helpers import FIRST_DAY, PLANT, materialize_transform

from lakehouse.bi import cli_command, init_sql
from lakehouse.storage import Lake

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"


def _sql_blocks(section: str) -> list[str]:
    text = DOC.read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", body, flags=re.S)


def _statements(block: str) -> list[str]:
    lines = [ln for ln in block.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def test_the_documented_sql_runs_verbatim_in_the_duckdb_cli(tmp_path):
    lake = Lake(str(tmp_path / "data" / "lake"))  # the documented relative path data/lake
    for i in range(3):
        for name, table in bf.day_tables(PLANT, FIRST_DAY + dt.timedelta(days=i)).items():
            kwargs = {"partition_by": ["date"]} if name == "historian_readings" else {}
            lake.write_delta(lake.uri("bronze", name), table, mode="append", **kwargs)
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    result = materialize_transform(lake, warehouse)
    assert result.success
    init = tmp_path / "init.sql"
    init.write_text(init_sql(env={}))

    blocks = _sql_blocks("### The DuckDB file") + _sql_blocks("### The Delta tables")
    statements = [s for b in blocks for s in _statements(b)]
    assert len(statements) >= 6
    with_rows = 0
    for sql in statements:
        proc = subprocess.run(
            cli_command("data/warehouse.duckdb", init, ["-csv", "-c", sql]),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0 and "Error" not in proc.stderr, (sql, proc.stderr[-2000:])
        with_rows += proc.stdout.strip().count("\n") >= 1  # a header and at least one row
    # the fixture plant has other batch ids than the twin's 'BR101-0001': that one may be empty
    assert with_rows >= len(statements) - 1
    # read-only: a write is refused
    proc = subprocess.run(
        cli_command(warehouse, init, ["-c", "create table marts.x as select 1"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 or "read-only" in (proc.stderr + proc.stdout).lower()
