"""Units at the ingestion boundary: the analyte catalog of the twin's LIMS.

Unit parsing and conversion live in :mod:`lakehouse.units` (the project's pint registry);
the names below are re-exported for the ingestion code and its callers.
"""

from __future__ import annotations

from lakehouse.units import (
    ALIASES,
    Conversion,
    UnitError,
    conversion,
    convert,
    dimension,
    normalise_unit,
    parse_unit,
    preferred_unit,
    unit_key,
)

__all__ = [
    "ALIASES",
    "ANALYTES",
    "Conversion",
    "UnitError",
    "conversion",
    "convert",
    "dimension",
    "normalise_unit",
    "parse_unit",
    "preferred_unit",
    "unit_key",
]

# canonical LIMS analytes: analyte -> (unit, lo, hi). A plant may add its own analytes in an
# import config (with their unit and range); unknown analytes in the twin's LIMS files are
# quarantined (not in the analyte catalog).
ANALYTES: dict[str, tuple[str, float, float]] = {
    "vcd": ("1e6 cells/mL", 0.0, 500.0),
    "viability": ("%", 0.0, 100.0),
    "glucose": ("g/L", 0.0, 100.0),
    "lactate": ("g/L", 0.0, 100.0),
    "glutamine": ("mM", 0.0, 200.0),
    "ammonia": ("mM", 0.0, 200.0),
    "osmolality": ("mOsm/kg", 0.0, 3000.0),
    "ph_offline": ("pH", 0.0, 14.0),
    "po2_offline": ("%", 0.0, 500.0),
    "titer": ("g/L", 0.0, 100.0),
    "g0f": ("%", 0.0, 100.0),
    "g1f": ("%", 0.0, 100.0),
    "g2f": ("%", 0.0, 100.0),
    "man5": ("%", 0.0, 100.0),
    "afucosylation": ("%", 0.0, 100.0),
    "hmw": ("%", 0.0, 100.0),
}
