"""``lakehouse export-plant``: a realistic *foreign* plant's exports, made from the twin.

The digital twin simulates a site into a temporary lake; this module then rewrites its landing
files the way ANOTHER vendor's systems would export them, so that the "bring your own data"
path (``lakehouse import`` with a tag map and an import config — no Python) can be exercised
at a realistic size:

* historian: long format, the plant's own tag names (``FERM-01.TEMP.PV``), its own units
  (temperature in K, DO as a fraction, feed in L/h, air in m3/h, totalisers in L, pressure
  in mbar), a subset of our signals (no capacitance probe, no off-gas analyser, no feed
  setpoint, no vibration/motor current), local plant time **without offset**
  (``Europe/Berlin``), ``;``-separated, its own column names, one CSV per local day — or
  one Parquet file with a naive timestamp column;
* a batch list (``batches.csv``: batch number, vessel, inoculation, harvest end, product,
  status) with the plant's own batch numbers;
* a wide LIMS sheet (``lims_results.csv``: one row per sample and method, one column per
  analyte) with its own column names and units, including the titer reported as
  ``IgG_HPLC`` in mg/mL — an analyte the twin does not have under that name.

Config that reads it: ``config/imports/demo-plant.yaml`` + ``config/tagmaps/demo-plant.yaml``;
soft sensor: ``config/ml/demo-plant-softsensor.yaml``; walkthrough:
``docs/bring-your-own-data.md``. The export uses the twin's landing files only, never
``landing/_truth``.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from twin.site import SiteConfig

TIMEZONE = "Europe/Berlin"
LOCAL_FMT = "%Y-%m-%d %H:%M:%S"

# our tag suffix -> (their signal name, their unit, value = ours * scale + offset)
SIGNALS: dict[str, tuple[str, str, float, float]] = {
    "TEMP.PV": ("TEMP.PV", "K", 1.0, 273.15),
    "TEMP.SP": ("TEMP.SP", "K", 1.0, 273.15),
    "PH.PV": ("PH.PV", "pH", 1.0, 0.0),
    "DO.PV": ("DO.PV", "fraction", 0.01, 0.0),
    "AGIT.PV": ("STIRRER.SPEED", "rpm", 1.0, 0.0),
    "AIR.FLOW": ("AIR.FLOW", "m3/h", 0.06, 0.0),  # L/min -> m3/h
    "O2.FLOW": ("O2.FLOW", "L/min", 1.0, 0.0),
    "CO2.FLOW": ("CO2.FLOW", "L/min", 1.0, 0.0),
    "BASE.TOT": ("BASE.TOTAL", "L", 0.001, 0.0),  # mL -> L
    "FEED.FLOW.PV": ("FEED.PV", "L/h", 0.06, 0.0),  # mL/min -> L/h
    "FEED.TOT": ("FEED.TOTAL", "L", 0.001, 0.0),  # mL -> L
    "WEIGHT.PV": ("WEIGHT.PV", "kg", 1.0, 0.0),
    "PRESS.PV": ("HEADSPACE.PRESS", "mbar", 1000.0, 0.0),  # bar -> mbar
}
# left out on purpose (the plant has no such instrument or does not export it):
# CAP.PV, OFFGAS.O2, OFFGAS.CO2, FEED.FLOW.SP, AGIT.VIB, AGIT.CURRENT

# our analyte -> (their column, their unit, value = ours * scale)
ANALYTES: dict[str, tuple[str, str, float]] = {
    "vcd": ("VCD", "1e5 cells/mL", 10.0),
    "viability": ("Viability", "%", 1.0),
    "glucose": ("Glucose", "mg/L", 1000.0),
    "lactate": ("Lactate", "g/L", 1.0),
    "ammonia": ("NH4", "mmol/L", 1.0),
    "titer": ("IgG_HPLC", "mg/mL", 1.0),  # g/L == mg/mL
    "g0f": ("G0F", "%", 1.0),
    "afucosylation": ("Afucosylation", "%", 1.0),
    "hmw": ("HMW_SEC", "%", 1.0),
}
# left out: glutamine, osmolality, ph_offline, po2_offline, g1f, g2f, man5

HISTORIAN_COLUMNS = ["TagName", "TimeStamp", "Value", "Units", "Quality"]


def vessel_name(unit_id: str, units: list[str]) -> str:
    """BR-101, BR-102, ... -> FERM-01, FERM-02, ... (the plant's vessel names)."""
    return f"FERM-{units.index(unit_id) + 1:02d}"


@dataclass
class ExportSummary:
    """What ``export-plant`` wrote: vessels, batches, historian rows and files, assay rows and values, timing."""

    out: str
    vessels: dict[str, str]
    batches: int
    historian_rows: int
    historian_files: int
    assay_rows: int
    assay_values: int
    seconds: float
    simulate_seconds: float

    def as_dict(self) -> dict:
        """The summary as a JSON-safe dict."""
        return dict(vars(self))


def _local(col: str) -> pl.Expr:
    """UTC timestamp column -> naive local plant time string (no offset)."""
    return pl.col(col).dt.convert_time_zone(TIMEZONE).dt.replace_time_zone(None).dt.strftime(LOCAL_FMT)


def _parse_utc(col: str) -> pl.Expr:
    return pl.col(col).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ms", time_zone="UTC")


def export_plant(
    out: str | Path,
    *,
    bioreactors: int = 3,
    days: int = 120,
    start: str = SiteConfig.start,
    seed: int = 11,
    interval_s: float = 300.0,
    historian_format: str = "csv",
    workers: int = 2,
) -> ExportSummary:
    """Simulate a site with the twin and write the foreign plant's exports into ``out``.

    ``out`` is (re)created: ``historian/`` (one CSV per local day, or ``historian.parquet``),
    ``batches.csv``, ``lims_results.csv``.
    """
    from twin.site import simulate_site

    if historian_format not in ("csv", "parquet"):
        raise ValueError("historian_format must be 'csv' or 'parquet'")
    t_start = time.perf_counter()
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="export-plant-") as tmp:
        cfg = SiteConfig(
            start=start,
            days=days,
            bioreactors=bioreactors,
            interval_s=interval_s,
            full_resolution_days=None,
            seed=seed,
            workers=workers,
            write_trajectories=False,
        )
        simulate_site(tmp, cfg)
        t_sim = time.perf_counter() - t_start
        landing = Path(tmp) / "landing"
        units = cfg.unit_ids()
        vessels = {u: vessel_name(u, units) for u in units}

        # ------------------------------------------------------------- batch list (from the MES records)
        recs = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(str(landing / "mes" / "*.json")))]
        recs = [r for r in recs if r.get("record_type") == "bioreactor"]
        rows = []
        for r in recs:
            phases = {p["phase"]: p for p in r.get("procedure", [])}
            inoc = phases.get("Inoculate", {}).get("start") or r["start"]
            end = phases.get("Harvest", {}).get("end") or r["end"]
            rows.append(
                {
                    "twin_id": r["batch_id"],
                    "Vessel": vessels[r["unit_id"]],
                    "Inoculation": inoc,
                    "HarvestEnd": end,
                    "Product": r.get("product"),
                    "Status": r.get("status", "complete"),
                }
            )
        bl = pl.DataFrame(rows).with_columns(_parse_utc("Inoculation"), _parse_utc("HarvestEnd")).sort("Inoculation")
        start_year = int(start[:4])
        bl = bl.with_columns(
            pl.format(
                "DP{}-{}", pl.lit(str(start_year % 100)), (pl.int_range(1, pl.len() + 1)).cast(pl.Utf8).str.zfill(3)
            ).alias("BatchNo")
        )
        ids = dict(zip(bl["twin_id"].to_list(), bl["BatchNo"].to_list()))

        # ------------------------------------------------------------- historian
        files = sorted(glob.glob(str(landing / "historian" / "*" / "*.csv")))
        hist = pl.read_csv(
            files,
            schema={"timestamp": pl.Utf8, "tag": pl.Utf8, "value": pl.Float64, "unit": pl.Utf8, "quality": pl.Int16},
        )
        parts = hist.get_column("tag").str.splitn(".", 2).struct.rename_fields(["unit_id", "suffix"])
        hist = hist.with_columns(parts.struct.field("unit_id"), parts.struct.field("suffix"))
        spec = pl.DataFrame(
            {
                "suffix": list(SIGNALS),
                "_sig": [v[0] for v in SIGNALS.values()],
                "Units": [v[1] for v in SIGNALS.values()],
                "_scale": [v[2] for v in SIGNALS.values()],
                "_offset": [v[3] for v in SIGNALS.values()],
            }
        )
        vmap = pl.DataFrame({"unit_id": list(vessels), "_vessel": list(vessels.values())})
        hist = (
            hist.join(spec, on="suffix", how="inner")
            .join(vmap, on="unit_id", how="inner")
            .with_columns(_parse_utc("timestamp").alias("_ts"))
            .with_columns(
                pl.format("{}.{}", pl.col("_vessel"), pl.col("_sig")).alias("TagName"),
                _local("_ts").alias("TimeStamp"),
                (pl.col("value") * pl.col("_scale") + pl.col("_offset")).round(6).alias("Value"),
                pl.col("quality").alias("Quality"),
                pl.col("_ts").dt.convert_time_zone(TIMEZONE).dt.date().alias("_day"),
            )
            .sort("_ts", "TagName")
        )
        if out.exists():
            shutil.rmtree(out)
        (out / "historian").mkdir(parents=True)
        n_hist_files = 0
        if historian_format == "csv":
            for (day,), g in hist.group_by("_day", maintain_order=True):
                g.select(HISTORIAN_COLUMNS).write_csv(out / "historian" / f"historian_{day}.csv", separator=";")
                n_hist_files += 1
        else:
            hist.select(
                "TagName",
                pl.col("_ts").dt.convert_time_zone(TIMEZONE).dt.replace_time_zone(None).alias("TimeStamp"),
                "Value",
                "Units",
                "Quality",
            ).write_parquet(out / "historian" / "historian.parquet", compression="zstd")
            n_hist_files = 1

        # ------------------------------------------------------------- batch list file
        bl.select(
            "BatchNo",
            "Vessel",
            _local("Inoculation").alias("Inoculation"),
            _local("HarvestEnd").alias("HarvestEnd"),
            "Product",
            "Status",
        ).write_csv(out / "batches.csv")

        # ------------------------------------------------------------- wide LIMS sheet
        lims = pl.read_csv(sorted(glob.glob(str(landing / "lims" / "*.csv"))), infer_schema=False).filter(
            pl.col("batch_id").is_in(list(ids)) & pl.col("analyte").is_in(list(ANALYTES))
        )
        lims = lims.with_columns(
            pl.col("value").cast(pl.Float64),
            pl.col("batch_id").replace_strict(ids).alias("Batch"),
            pl.col("analyte").replace_strict({k: v[0] for k, v in ANALYTES.items()}).alias("_col"),
            pl.col("analyte")
            .replace_strict({k: v[2] for k, v in ANALYTES.items()}, return_dtype=pl.Float64)
            .alias("_scale"),
            _parse_utc("sample_time"),
            _parse_utc("result_time"),
        )
        lims = lims.with_columns((pl.col("value") * pl.col("_scale")).round(5).alias("value"))
        # one row per sample and method (a test request), released when its last result was approved
        key = ["sample_id", "Batch", "method"]
        released = lims.group_by(key).agg(pl.col("sample_time").min(), pl.col("result_time").max())
        wide = lims.pivot(on="_col", index=key, values="value", aggregate_function="first")
        cols = [v[0] for v in ANALYTES.values() if v[0] in wide.columns]
        sample_no = {s: f"LS{i + 1:06d}" for i, s in enumerate(sorted(lims["sample_id"].unique().to_list()))}
        wide = (
            wide.join(released, on=key)
            .sort("sample_time", "sample_id", "method")
            .select(
                pl.col("sample_id").replace_strict(sample_no).alias("SampleNo"),
                "Batch",
                _local("sample_time").alias("Sampled"),
                _local("result_time").alias("Approved"),
                pl.col("method").alias("TestMethod"),
                *cols,
            )
        )
        wide.write_csv(out / "lims_results.csv")
        n_values = int(sum(wide[c].is_not_null().sum() for c in cols))

    return ExportSummary(
        out=str(out),
        vessels=vessels,
        batches=bl.height,
        historian_rows=hist.height,
        historian_files=n_hist_files,
        assay_rows=wide.height,
        assay_values=n_values,
        seconds=round(time.perf_counter() - t_start, 2),
        simulate_seconds=round(t_sim, 2),
    )


# --------------------------------------------------------------------------- CLI
EXPORT_HELP = (
    "simulate a site with the twin and write it as a FOREIGN plant's exports "
    "(own tags, units, local time, batch list, wide LIMS sheet)"
)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``export-plant`` (``lakehouse export-plant``, ``python -m twin export-plant``)."""
    p.add_argument(
        "--out",
        default="data/demo-plant-export",
        help="export folder (replaced), default data/demo-plant-export — the folder "
        "config/imports/demo-plant.yaml reads",
    )
    p.add_argument("--bioreactors", type=int, default=3)
    p.add_argument("--days", type=int, default=120)
    p.add_argument("--start", default=SiteConfig.start, help="first UTC day simulated (YYYY-MM-DD)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--interval", type=float, default=300.0, help="historian logging interval, seconds")
    p.add_argument(
        "--historian-format",
        choices=["csv", "parquet"],
        default="csv",
        help="csv: one ';'-separated file per local day (default); parquet: one file",
    )


def export_command(args: argparse.Namespace) -> int:
    """Run ``export-plant`` and print its summary as JSON."""
    s = export_plant(
        args.out,
        bioreactors=args.bioreactors,
        days=args.days,
        start=args.start,
        seed=args.seed,
        interval_s=args.interval,
        historian_format=args.historian_format,
    )
    print(json.dumps(s.as_dict(), indent=2))
    return 0
