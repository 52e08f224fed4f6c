"""The aligned grid's contract: its columns, types and constants, shared by every engine.

The rules are in :mod:`lakehouse.transforms.alignment` (the single-node reference); the Spark
port (:mod:`lakehouse.spark.transforms`) imports only this module, so neither engine imports
the other. The signal columns are not listed here: they are the plant's signal catalog
(:mod:`lakehouse.catalog`; default: :func:`default_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

KEY_COLUMNS: tuple[str, ...] = ("batch_id", "unit_id", "ts", "culture_age_h", "maturity_pct", "phase")
GOOD_QUALITY = 192
US_PER_HOUR = 3_600_000_000.0
ENGINES = ("default", "spark")


def default_parameters() -> tuple[str, ...]:
    """The signals of the default catalog (the twin site's), in column order."""
    from lakehouse.catalog import default_catalog

    return tuple(default_catalog().names())


def output_columns(parameters: Sequence[str] | None = None) -> tuple[str, ...]:
    """Columns of the aligned table: the keys, then one per signal (default: the default catalog's)."""
    return KEY_COLUMNS + tuple(default_parameters() if parameters is None else parameters)


def output_schema(parameters: Sequence[str] | None = None) -> pa.Schema:
    """Arrow schema of the aligned table (``fct_process_readings`` without lineage)."""
    params = default_parameters() if parameters is None else tuple(parameters)
    return pa.schema(
        [
            ("batch_id", pa.string()),
            ("unit_id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("culture_age_h", pa.float64()),
            ("maturity_pct", pa.float64()),
            ("phase", pa.string()),
        ]
        + [(p, pa.float64()) for p in params]
    )


def grid_us(grid_minutes: int | None = 1, grid_seconds: int | None = None) -> int:
    """The grid step in µs from ``grid_seconds`` or else ``grid_minutes`` (positive, whole)."""
    if grid_seconds is not None:
        s = int(grid_seconds)
        if s != grid_seconds or s < 1:
            raise ValueError(f"grid_seconds must be a positive whole number of seconds, got {grid_seconds!r}")
        return s * 1_000_000
    if grid_minutes is None or int(grid_minutes) < 1 or int(grid_minutes) != grid_minutes:
        raise ValueError("grid_minutes must be a positive whole number of minutes")
    return int(grid_minutes) * 60_000_000


def phase_codes(phase_signal: object) -> tuple[str, dict[int, str]] | None:
    """``(signal, {code: phase})`` of a :class:`lakehouse.plant.PhaseSignal` or a mapping
    ``{"signal": …, "codes": {…}}``; None stays None."""
    if phase_signal is None:
        return None
    if isinstance(phase_signal, Mapping):
        sig, codes = phase_signal["signal"], phase_signal["codes"]
    else:
        sig, codes = phase_signal.signal, phase_signal.codes  # type: ignore[attr-defined]
    return str(sig), {int(k): str(v) for k, v in dict(codes).items()}


def phase_case_sql(column: str, codes: Mapping[int, str]) -> str:
    """``CASE CAST(round(column) AS INT) WHEN code THEN 'phase' … END`` (DuckDB and Spark SQL)."""
    quote = "'"
    whens = " ".join(f"WHEN {int(k)} THEN '{str(v).replace(quote, quote * 2)}'" for k, v in sorted(codes.items()))
    return f"CASE CAST(round({column}) AS INT) {whens} END"
