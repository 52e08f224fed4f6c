"""A plant's own historian export, batch list and assay sheet → bronze, config only."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from foreign_testdata import CONFIG, SIGNALS, write_exports

from bioprocess_cli.main import run_import
from lakehouse.ingest.tagmap import TagMap, TagMapError
from lakehouse.ingest.units import conversion
from lakehouse.ingest.writer import table_uri
from lakehouse.storage import Lake

REPO = Path(__file__).resolve().parents[2]
TAGMAP = REPO / "config" / "tagmaps" / "example-plant.yaml"


def _read(lake: Lake, table: str) -> pl.DataFrame:
    return pl.from_arrow(lake.read_delta(table_uri(lake, table)))


def test_unit_conversions_and_tagmap_loading():
    assert conversion("K", "degC").offset == pytest.approx(-273.15)
    assert conversion("L/h", "mL/min").scale == pytest.approx(1000 / 60)
    assert conversion("fraction", "%").scale == 100
    assert conversion("mg/mL", "g/L").scale == 1 and conversion("g/L", "mg/mL").scale == 1
    assert conversion("m3/h", "mL/min").scale == pytest.approx(1e6 / 60)
    assert conversion("°F", "degC").scale == pytest.approx(5 / 9)
    tm = TagMap.load(TAGMAP)
    spec = tm.resolve("FERM-02.TEMP.PV")
    assert (spec.unit_id, spec.parameter, spec.eng_unit) == ("BR-202", "temperature", "degC")
    assert tm.resolve("FERM-01_WEIGHT").conv.scale == pytest.approx(0.001)
    assert tm.resolve("nope") is None
    with pytest.raises(TagMapError):
        TagMap.from_dict({"suffixes": {"X.PV": "not_a_parameter"}})
    with pytest.raises(TagMapError):
        TagMap.from_dict({"suffixes": {"X.PV": {"parameter": "temperature", "unit": "bar"}}})


def test_import_foreign_plant_with_tag_map_and_unit_conversion(lake: Lake, tmp_path):
    exp = write_exports(tmp_path / "exports")
    cfg = tmp_path / "plant.yaml"
    cfg.write_text(CONFIG.format(tagmap=TAGMAP))
    args = argparse.Namespace(config=str(cfg), lake=lake.root, run_id="import-1", dry_run=False)
    if lake.is_s3:  # the CLI reads credentials from the environment; here we call the library
        from lakehouse.ingest.foreign import run_import_config

        report = run_import_config(cfg, lake, run_id="import-1")
    else:
        assert run_import(args) == 0
        report = None

    hist = _read(lake, "historian_readings")
    assert hist.height == exp["historian_rows"]
    assert set(hist.get_column("unit_id").unique()) == {"BR-201"}
    for tag, _, _, param, canonical in SIGNALS:
        vals = hist.filter(pl.col("tag") == tag)
        assert vals.get_column("parameter").unique().to_list() == [param]
        assert vals.get_column("value").to_numpy() == pytest.approx(canonical), tag
    assert hist.filter(pl.col("parameter") == "temperature").get_column("eng_unit").unique().to_list() == ["degC"]
    # local plant time (Europe/Berlin, UTC+1 in February) → UTC, from CSV and from Parquet
    first = hist.group_by("date").agg(pl.col("ts").min()).sort("date")
    assert first.get_column("ts").to_list() == [
        dt.datetime(2026, 2, 1, 8, tzinfo=dt.UTC),
        dt.datetime(2026, 2, 2, 8, tzinfo=dt.UTC),
    ]
    assert hist.get_column("_source_file").str.ends_with(".csv").sum() == exp["historian_rows"] // 2

    batches = _read(lake, "mes_batches")
    phases = _read(lake, "mes_phases").sort("phase_seq")
    assert batches.height == exp["batches"]
    b = batches.row(0, named=True)
    assert (b["batch_id"], b["unit_id"], b["record_type"], b["status"], b["output_lot"]) == (
        "F01-2026-001",
        "BR-201",
        "bioreactor",
        "complete",
        "HCCF-F01-2026-001",
    )
    assert phases.get_column("phase").to_list() == ["Inoculate", "Production", "Harvest"]
    assert phases.get_column("start_ts")[0] == b["start_ts"]
    assert phases.get_column("start_ts")[2] == b["end_ts"] - dt.timedelta(hours=4)

    lims = _read(lake, "lims_results")
    assert lims.height == exp["assays"]
    got = {(r["sample_id"], r["analyte"]): (r["value"], r["unit"]) for r in lims.iter_rows(named=True)}
    assert got[("S1", "vcd")] == (pytest.approx(5.5), "1e6 cells/mL")  # 1e5 cells/mL → 1e6
    assert got[("S2", "titer")] == (pytest.approx(2.5), "g/L")  # mg/mL = g/L
    assert got[("S1", "glucose")] == (pytest.approx(4.2), "g/L")  # mg/L → g/L
    assert got[("S2", "igg_hplc")] == (pytest.approx(2.4), "g/L")  # the plant's own analyte
    assert ("S3", "glucose") not in got

    q = _read(lake, "_quarantine")
    assert q.filter(pl.col("table") == "historian_readings").height == exp["historian_quarantined"]
    assert q.filter(pl.col("table") == "mes_batches").height == exp["batches_quarantined"]
    assert q.filter(pl.col("reason").str.contains("non-numeric")).get_column("raw_record").str.contains("n.d.").all()
    if report is not None:
        assert (
            report.rows_read["lims_results"]
            == report.rows_valid["lims_results"] + report.rows_quarantined["lims_results"]
        )

    # importing again adds nothing
    if lake.is_s3:
        from lakehouse.ingest.foreign import run_import_config

        run_import_config(cfg, lake, run_id="import-2")
    else:
        assert run_import(argparse.Namespace(**{**vars(args), "run_id": "import-2"})) == 0
    assert _read(lake, "historian_readings").height == exp["historian_rows"]
    assert _read(lake, "lims_results").height == exp["assays"]
    assert _read(lake, "_quarantine").height == q.height


def _empty_export(fmt: str) -> bytes:
    if fmt == "csv":
        return b"timestamp,tag,value,unit\n"
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    schema = pa.schema([("timestamp", pa.string()), ("tag", pa.string()), ("value", pa.float64())])
    pq.write_table(schema.empty_table(), buf)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_historian_export_without_rows_ingests_nothing_and_does_not_crash(lake_local: Lake, fmt: str):
    """A header-only export (a quiet night, a filter that matched nothing) is a valid file with
    zero rows. It used to end the whole run with a Rust panic in the DST handling (polars'
    ``replace_time_zone`` with an expression ``ambiguous`` over zero rows), found by fuzzing."""
    import lakehouse.ingest.foreign  # noqa: F401 - registers the importer's kinds
    from lakehouse.ingest.readers import SourceFile
    from lakehouse.ingest.writer import ingest_files

    data = _empty_export(fmt)
    rel = f"import/historian/empty.{fmt}"
    f = SourceFile(
        uri=lake_local.uri("landing", rel),
        rel_path=rel,
        size=len(data),
        kind="import_historian",
        meta={"format": fmt},
        data=data,
        fingerprint=f"empty-{fmt}",
    )
    report = ingest_files(lake_local, [f], run_id=f"empty-{fmt}", namespace="test", skip_logged=False)
    assert report.files_ingested == 1 and not report.files_rejected
    assert report.rows_read["historian_readings"] == 0 and report.rows_quarantined["historian_readings"] == 0
