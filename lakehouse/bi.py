"""BI access to the warehouse with the ``duckdb`` command-line client the install provides.

``pip install`` gives the DuckDB CLI (``duckdb-cli`` wheel, same version as the Python
package) and the ``delta``/``httpfs`` extensions as wheels — nothing is downloaded at run time.
:func:`init_sql` writes the statements that load those extension files (and, for a lake on S3,
create the secret from the environment), so the CLI reads the DuckDB file and the gold Delta
tables offline::

    .venv/bin/python -m lakehouse.bi                      # interactive, read-only
    .venv/bin/python -m lakehouse.bi -c "select count(*) from marts.dim_batches"
    make sql                                              # the same as the first line

The command it runs is printed first, so it can be reused verbatim (``duckdb -readonly -init
<file> data/warehouse.duckdb``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def extension_file(name: str) -> str:
    """The ``<name>.duckdb_extension`` shipped in the ``duckdb-extension-<name>`` wheel."""
    import importlib

    import duckdb

    mod = importlib.import_module(f"duckdb_extension_{name}")
    path = Path(mod.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: duckdb-extension-{name} must match duckdb {duckdb.__version__}")
    return str(path)


def init_sql(env: Mapping[str, str] | None = None) -> str:
    """Statements that prepare a DuckDB session for the lake: load the offline extensions, UTC,
    and an S3 secret when ``AWS_ACCESS_KEY_ID`` (or ``LAKEHOUSE_S3_ACCESS_KEY_ID``) is set."""
    env = dict(os.environ if env is None else env)
    lines = [f"LOAD {_quote(extension_file(ext))};" for ext in ("httpfs", "delta")]
    lines.append("SET TimeZone = 'UTC';")
    key = env.get("LAKEHOUSE_S3_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID")
    if key:
        secret = env.get("LAKEHOUSE_S3_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY") or ""
        endpoint = env.get("LAKEHOUSE_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or ""
        parts = [
            "TYPE s3",
            f"KEY_ID {_quote(key)}",
            f"SECRET {_quote(secret)}",
            f"REGION {_quote(env.get('AWS_REGION') or 'us-east-1')}",
        ]
        if endpoint:
            host = endpoint.split("://", 1)[-1].rstrip("/")
            parts += [
                f"ENDPOINT {_quote(host)}",
                "URL_STYLE 'path'",
                f"USE_SSL {'false' if endpoint.startswith('http://') else 'true'}",
            ]
        lines.append(f"CREATE OR REPLACE SECRET lake ({', '.join(parts)});")
    return "\n".join(lines) + "\n"


def duckdb_cli() -> str:
    """The ``duckdb`` executable next to this interpreter (the ``duckdb-cli`` wheel), else on PATH."""
    local = Path(sys.executable).parent / "duckdb"
    found = str(local) if local.exists() else shutil.which("duckdb")
    if not found:
        raise FileNotFoundError("the duckdb command-line client is not installed (pip install duckdb-cli==1.5.5)")
    return found


def cli_command(warehouse: str | Path, init_file: str | Path, args: Sequence[str] = ()) -> list[str]:
    """``duckdb -readonly -init <init_file> <warehouse> [args…]``."""
    return [duckdb_cli(), "-readonly", "-init", str(init_file), str(warehouse), *args]


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - interactive
    """Open the DuckDB CLI on the warehouse (read-only, extensions and S3 secret loaded)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    warehouse = os.environ.get("LAKEHOUSE_DUCKDB_PATH") or str(
        Path(__file__).resolve().parents[1] / "data" / "warehouse.duckdb"
    )
    if not Path(warehouse).exists():
        print(f"no warehouse at {warehouse}: run `make run` first (or set LAKEHOUSE_DUCKDB_PATH)", file=sys.stderr)
        return 1
    fd, init = tempfile.mkstemp(prefix="lakehouse-duckdb-", suffix=".sql")
    with os.fdopen(fd, "w") as fh:
        fh.write(init_sql())
    cmd = cli_command(warehouse, init, argv)
    print("$ " + " ".join(cmd), file=sys.stderr)
    os.execv(cmd[0], cmd)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
