"""The aligned grid's contract: its columns, types and constants, shared by every engine.

The rules are in :mod:`lakehouse.transforms.alignment` (the single-node reference); the Spark
port (:mod:`lakehouse.spark.transforms`) imports only this module, so neither engine imports
the other.
"""

from __future__ import annotations

import pyarrow as pa

PARAMETERS: tuple[str, ...] = (
    "temperature",
    "temperature_sp",
    "ph",
    "dissolved_oxygen",
    "agitation",
    "air_flow",
    "o2_flow",
    "co2_flow",
    "offgas_o2",
    "offgas_co2",
    "capacitance",
    "base_total",
    "feed_flow_sp",
    "feed_flow",
    "feed_total",
    "weight",
    "pressure",
    "vibration",
    "motor_current",
)
KEY_COLUMNS: tuple[str, ...] = ("batch_id", "unit_id", "ts", "culture_age_h", "maturity_pct", "phase")
OUTPUT_COLUMNS: tuple[str, ...] = KEY_COLUMNS + PARAMETERS
GOOD_QUALITY = 192
US_PER_HOUR = 3_600_000_000.0
ENGINES = ("default", "spark")


def output_schema(parameters: tuple[str, ...] = PARAMETERS) -> pa.Schema:
    """Arrow schema of the aligned table (``fct_process_readings`` without lineage)."""
    return pa.schema(
        [
            ("batch_id", pa.string()),
            ("unit_id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("culture_age_h", pa.float64()),
            ("maturity_pct", pa.float64()),
            ("phase", pa.string()),
        ]
        + [(p, pa.float64()) for p in parameters]
    )
