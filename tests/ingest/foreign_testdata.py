"""A (fictional) plant's exports: own tag names and units, local time, wide assay sheet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SIGNALS = [  # their tag, value in THEIR unit, their unit string, canonical parameter, canonical value
    ("FERM-01.TEMP.PV", 310.15, "K", "temperature", 37.0),
    ("FERM-01.DO.PV", 0.4, "fraction", "dissolved_oxygen", 40.0),
    ("FERM-01.FEED.PV", 1.2, "L/h", "feed_flow", 20.0),
    ("FERM-01.PRESS.PV", 300.0, "mbar", "pressure", 0.3),
    ("FERM-01.PH.PV", 7.05, "pH", "ph", 7.05),
    ("FERM-01_WEIGHT", 1_850_000.0, "g", "weight", 1850.0),
]


def write_exports(folder: Path, minutes: int = 30) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    # day 1: CSV, plant column names, naive local timestamps (Europe/Berlin = UTC+1 in February)
    lines = ["Time,TagName,Value,EU"]
    t0 = dt.datetime(2026, 2, 1, 9, 0)
    for m in range(minutes):
        ts = (t0 + dt.timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M:%S")
        for tag, v, unit, _, _ in SIGNALS:
            lines.append(f"{ts},{tag},{v},{unit}")
    lines.append(f"{t0:%Y-%m-%d %H:%M:%S},FERM-01.TEMP.PV,36.9,degC")  # wrong unit -> quarantine
    lines.append(f"{t0:%Y-%m-%d %H:%M:%S},FERM-01.UNKNOWN.PV,1.0,bar")  # not in tag map
    (folder / "historian_2026-02-01.csv").write_text("\n".join(lines))  # no final newline: fine here
    # day 2: Parquet with a naive datetime column
    rows = [
        (dt.datetime(2026, 2, 2, 9, 0) + dt.timedelta(minutes=m), tag, v, unit)
        for m in range(minutes)
        for tag, v, unit, _, _ in SIGNALS
    ]
    pq.write_table(
        pa.table(
            {
                "Time": [r[0] for r in rows],
                "TagName": [r[1] for r in rows],
                "Value": [r[2] for r in rows],
                "EU": [r[3] for r in rows],
            }
        ),
        folder / "historian_2026-02-02.parquet",
    )
    (folder / "batches.csv").write_text(
        "Batch,Vessel,Start,End,Product\n"
        "F01-2026-001,FERM-01,2026-02-01 08:00:00,2026-02-15 08:00:00,mAb-X\n"
        "F01-2026-002,FERM-01,2026-02-16 08:00:00,not a date,mAb-X\n"
    )
    (folder / "assays.csv").write_text(
        "Sample,Batch,Sampled,Released,VCD,Titer,Glucose,IgG_HPLC\n"
        "S1,F01-2026-001,2026-02-03 08:00:00,2026-02-03 12:00:00,55.0,,4200,\n"
        "S2,F01-2026-001,2026-02-08 08:00:00,2026-02-09 10:00:00,120.0,2.5,3100,2.4\n"
        "S3,F01-2026-001,2026-02-14 08:00:00,2026-02-15 10:00:00,98.0,4.1,n.d.,4.0\n"
    )
    return {
        "historian_rows": 2 * minutes * len(SIGNALS),  # good rows in bronze
        "historian_quarantined": 2,
        "batches": 1,
        "batches_quarantined": 1,
        "assays": 9,
        "assays_quarantined": 1,  # 10 filled cells, 'n.d.' set aside
    }


CONFIG = """\
site: example-plant
timezone: Europe/Berlin
historian:
  files: [exports/historian_*.csv, exports/historian_*.parquet]
  tagmap: {tagmap}
  columns: {{timestamp: Time, tag: TagName, value: Value, unit: EU}}
batches:
  files: [exports/batches.csv]
  columns: {{batch_id: Batch, unit_id: Vessel, start: Start, end: End, product: Product}}
  inoculate_hours: 1.0
  harvest_hours: 4.0
  output_lot: "HCCF-{{batch_id}}"
assays:
  files: [exports/assays.csv]
  layout: wide
  columns: {{sample_id: Sample, batch_id: Batch, sample_time: Sampled, result_time: Released}}
  analytes:
    VCD: {{analyte: vcd, unit: 1e5 cells/mL}}
    Titer: {{analyte: titer, unit: mg/mL}}
    Glucose: {{analyte: glucose, unit: mg/L}}
    IgG_HPLC: {{analyte: igg_hplc, unit: g/L, range: [0, 30]}}
"""
