"""Single-node reference implementations of the heavy transforms (DuckDB)."""
