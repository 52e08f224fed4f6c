"""The signal catalog, units by pint, tag maps with signals of their own, plant bundles."""

from __future__ import annotations

import datetime as dt
import itertools
import textwrap
from pathlib import Path

import polars as pl
import pytest

from lakehouse.catalog import CatalogError, catalog_from_dict, default_catalog, load_catalog
from lakehouse.ingest.foreign import run_import_config
from lakehouse.ingest.tagmap import TagMap, TagMapError
from lakehouse.ingest.writer import table_uri
from lakehouse.plant import PlantBundleError, load_plant, parse_grid
from lakehouse.storage import Lake
from lakehouse.units import UnitError, conversion, convert, preferred_unit, unit_key

REPO = Path(__file__).resolve().parents[2]


def _read(lake: Lake, table: str) -> pl.DataFrame:
    return pl.from_arrow(lake.read_delta(table_uri(lake, table)))


# ------------------------------------------------------------------------------ units
@pytest.mark.parametrize(
    ("src", "dst", "x", "y"),
    [
        ("degF", "degC", 98.6, 37.0),
        ("°F", "degC", -40.0, -40.0),
        ("K", "degC", 310.15, 37.0),
        ("degC", "K", 0.0, 273.15),
        ("psig", "barg", 14.503773773, 1.0),  # gauge to gauge: a pure scale
        ("psig", "bar", 0.0, 1.01325),  # gauge to absolute: + one atmosphere
        ("barg", "bar", 0.5, 1.51325),
        ("mbar", "bar", 300.0, 0.3),
        ("kPa", "bar", 101.325, 1.01325),
        ("gpm", "L/min", 1.0, 3.785411784),
        ("SLPM", "L/min", 250.0, 250.0),
        ("m3/h", "L/min", 6.0, 100.0),
        ("L/h", "mL/min", 6.0, 100.0),
        ("kg/h", "g/h", 0.25, 250.0),
        ("g/h", "kg/h", 194.7, 0.1947),
        ("mmol/L/h", "mol/m**3/s", 3600.0, 1.0),
        ("mmol/L", "mM", 4.0, 4.0),
        ("fraction", "%", 0.42, 42.0),
        ("mg/mL", "g/L", 2.5, 2.5),
        ("mg/L", "g/L", 1500.0, 1.5),
        ("1e5 cells/mL", "1e6 cells/mL", 55.0, 5.5),
        ("cells/mL", "1e6 cells/mL", 2.0e6, 2.0),
        ("rpm", "Hz", 60.0, 1.0),
        ("1/min", "rpm", 120.0, 120.0),
    ],
)
def test_pint_conversions(src, dst, x, y):
    assert convert(x, src, dst) == pytest.approx(y, rel=1e-9, abs=1e-9)


def test_conversions_are_affine_and_compiled_once():
    c = conversion("degF", "degC")
    assert (c.scale, c.offset) == (pytest.approx(5 / 9, rel=1e-14), pytest.approx(-160 / 9, rel=1e-12))
    assert conversion("psig", "barg").offset == 0.0 and conversion("barg", "barg").identity
    assert conversion("l/min", "L/min").identity and unit_key("l/min") == unit_key("L/min")
    assert unit_key("% air sat") == unit_key("%") != unit_key("fraction")


@pytest.mark.parametrize(
    ("src", "dst", "dims"),
    [
        ("mg/L", "%", ("[mass] / [length] ** 3", "dimensionless")),  # DO in mg/L is not % saturation
        ("L/h", "mL", ("[length] ** 3 / [time]", "[length] ** 3")),  # a flow is not a totaliser
        ("pH", "%", ("[acidity]", "dimensionless")),
        ("code", "fraction", ("[state_code]", "dimensionless")),
    ],
)
def test_dimension_mismatch_names_both_units_and_dimensions(src, dst, dims):
    with pytest.raises(UnitError) as err:
        conversion(src, dst)
    msg = str(err.value)
    assert "\n" not in msg and repr(src) in msg and repr(dst) in msg and all(d in msg for d in dims)


def test_unknown_unit_and_preferred_units():
    with pytest.raises(UnitError, match="unknown unit 'furlong/fortnight2x'"):
        conversion("furlong/fortnight2x", "m/s")
    assert [preferred_unit(u) for u in ("degF", "gpm", "psig", "g/h", "mg/L", "mmol/L/h", "code", "kPa")] == [
        "degC",
        "L/min",
        "barg",
        "kg/h",
        "g/L",
        "mmol/L/h",
        "code",
        "bar",
    ]


# ---------------------------------------------------------------------------- catalog
def test_the_twin_catalog_is_defined_once_and_complete():
    cat = default_catalog()
    assert len(cat) == 19 and cat.names()[:3] == ["temperature", "temperature_sp", "ph"]
    assert cat.get("base_total").kind == "totaliser" and cat.get("base_total").unit == "mL"
    assert [s.name for s in cat.of_kind("setpoint")] == ["temperature_sp", "feed_flow_sp"]
    assert cat.get("dissolved_oxygen").valid_range == (-5.0, 500.0)
    assert cat.fingerprint() == load_catalog(REPO / "config/plants/cho-twin/signals.yaml").fingerprint()
    with pytest.raises(KeyError, match="not a signal"):
        cat.get("methanol_feed")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"x": {"unit": "kg", "kind": "flow"}}, "a flow needs a per-time unit, 'kg' is [mass]"),
        ({"x": {"unit": "L/h", "kind": "totaliser"}}, "a totaliser needs an amount"),
        ({"x": {"unit": "kg", "kind": "state"}}, "state signal has the unit 'code'"),
        ({"x": {"unit": "kg", "kind": "gauge"}}, "kind 'gauge' is not one of"),
        ({"x": {"unit": "furlongs2x"}}, "unknown unit"),
        ({"x": {"unit": "kg", "range": [5, 1]}}, "range [5.0, 1.0] is empty"),
        ({"Temp-1": {"unit": "degC"}}, "lower-case letters"),
        ({"phase": {"unit": "code", "kind": "state"}}, "a key column"),
        ({"x": {"unit": "kg", "colour": "red"}}, "unknown key(s) ['colour']"),
    ],
)
def test_bad_catalog_entries_fail_with_one_line(spec, message):
    with pytest.raises((CatalogError, ValueError)) as err:
        catalog_from_dict({"signals": spec}, "plant.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------- tag maps
def test_tag_map_errors_at_load_name_the_rule_both_units_and_dimensions():
    with pytest.raises(TagMapError) as err:
        TagMap.from_dict({"suffixes": {"DO.PV": {"parameter": "dissolved_oxygen", "unit": "mg/L"}}}, "tm.yaml")
    msg = str(err.value)
    assert msg.startswith("tm.yaml: suffixes.DO.PV: dissolved_oxygen: exported unit 'mg/L'")
    assert "[mass] / [length] ** 3" in msg and "'%' (dimensionless)" in msg
    with pytest.raises(TagMapError, match=r"'L/h' \(\[length\] \*\* 3 / \[time\]\) does not convert .* 'mL'"):
        TagMap.from_dict({"suffixes": {"FEED.TOT": {"parameter": "feed_total", "unit": "L/h"}}}, "tm.yaml")
    with pytest.raises(TagMapError, match=r"unknown signal 'methanol_feed'.*declare it under `signals:`"):
        TagMap.from_dict({"suffixes": {"FIC-180.PV": "methanol_feed"}}, "tm.yaml")


def test_a_tag_map_declares_signals_the_project_never_saw():
    tm = TagMap.from_dict(
        {
            "site": "ferm",
            "separator": "/",
            "signals": {
                "methanol_feed": {"unit": "kg/h", "kind": "flow", "range": [0, 50]},
                "acid_flow": {"kind": "flow"},  # canonical unit inferred: kg/h
                "jacket_return": {"kind": "process_value"},
            },  # inferred: degC
            "suffixes": {
                "FIC-180.PV": {"parameter": "methanol_feed", "unit": "g/h"},
                "FI-191.PV": {"parameter": "acid_flow", "unit": "g/h"},
                "TI-202.PV": {"parameter": "jacket_return", "unit": "degF"},
            },
        },
        "tm.yaml",
    )
    assert tm.catalog.names() == ["methanol_feed", "acid_flow", "jacket_return"]
    assert [tm.catalog.get(n).unit for n in tm.catalog.names()] == ["kg/h", "kg/h", "degC"]
    spec = tm.resolve("F-201/FIC-180.PV")
    assert (spec.unit_id, spec.parameter, spec.eng_unit, spec.kind) == ("F-201", "methanol_feed", "kg/h", "flow")
    assert spec.conv.scale == pytest.approx(1e-3) and (spec.lo, spec.hi) == (0.0, 50.0)
    assert tm.resolve("F-201/TI-202.PV").conv.offset == pytest.approx(-160 / 9)
    assert tm.resolve("F-201.FIC-180.PV") is None  # the separator is "/"
    with pytest.raises(TagMapError, match=r"signals\.acid_flow: no unit"):
        TagMap.from_dict({"signals": {"acid_flow": {"kind": "flow"}}, "suffixes": {"X": "acid_flow"}}, "tm.yaml")


def test_existing_tag_maps_keep_working_on_the_default_catalog():
    for name in ("twin", "demo-plant", "example-plant"):
        tm = TagMap.load(REPO / "config" / "tagmaps" / f"{name}.yaml")
        assert tm.catalog.names() == default_catalog().names()
    assert TagMap.contract_default().resolve("BR-101.FEED.FLOW.PV").eng_unit == "mL/min"
    legacy = TagMap.from_dict({"signals": {"TEMP.PV": "temperature"}})  # old spelling of suffixes
    assert legacy.resolve("BR-9.TEMP.PV").parameter == "temperature"


# ------------------------------------------------------------------- import, end to end
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_import_new_signals_text_quality_statuses_deviations_and_dst(tmp_path):
    """A fall-back night (America/Chicago, 2026-11-01: 01:00-01:50 twice) without duplicates,
    text quality mapped to codes, a new signal in its canonical unit, batch statuses mapped,
    recorded deviations in bronze; unknown texts are quarantined with the reason."""
    lake = Lake(str(tmp_path / "lake"))
    rows = ["Tagname,Timestamp,Value,Quality"]
    local = (
        [f"11/01/2026 00:{m:02d}:00" for m in (30, 40, 50)]
        + [f"11/01/2026 01:{m:02d}:00" for m in range(0, 60, 10)] * 2
        + ["11/01/2026 02:00:00"]
    )
    for i, t in enumerate(local):
        rows.append(f"F-1/FIC-180.PV,{t},{100 + i},{'Bad' if i == 4 else 'Good'}")
    rows.append("F-1/FIC-180.PV,11/01/2026 02:10:00,7,Uncertain")  # a quality text not in the map
    rows.append("F-1/XX-999.PV,11/01/2026 02:10:00,7,Good")  # a tag not in the tag map
    _write(tmp_path / "exp" / "hist.csv", "\n".join(rows) + "\n")
    _write(
        tmp_path / "exp" / "batches.csv",
        """
        Lot,Fermenter,Inoculated,Harvested,Status
        L1,F-1,10/31/2026 20:00,11/01/2026 04:00,Completed
        L2,F-1,11/01/2026 05:00,11/01/2026 09:00,Deviation
        L3,F-1,11/01/2026 10:00,11/01/2026 11:00,Lost
        """,
    )
    _write(
        tmp_path / "exp" / "devs.csv",
        """
        Deviation ID,Lot,Recorded Onset,Category,Description,Opened
        D1,L2,11/01/2026 06:30,Equipment - Feed System,"Feed line blocked, flow low",11/01/2026 08:00
        D2,L2,11/01/2026 05:45,Process - Feed Rate,Overfeed,11/01/2026 07:00
        """,
    )
    _write(
        tmp_path / "cfg" / "tagmap.yaml",
        """
        site: f
        separator: "/"
        signals: {methanol_feed: {kind: flow, range: [0, 1]}}
        suffixes: {FIC-180.PV: {parameter: methanol_feed, unit: g/h}}
        """,
    )
    cfg = _write(
        tmp_path / "cfg" / "import.yaml",
        """
        site: f
        timezone: America/Chicago
        data_dir: ../exp
        historian:
          files: [hist.csv]
          tagmap: tagmap.yaml
          columns: {timestamp: Timestamp, tag: Tagname, value: Value, quality: Quality}
          quality: {Good: 192, Bad: 0}
        batches:
          files: [batches.csv]
          columns: {batch_id: Lot, unit_id: Fermenter, start: Inoculated, end: Harvested, status: Status}
          statuses: {Completed: complete, Deviation: complete, Aborted: aborted}
          harvest_hours: 0
        deviations:
          files: [devs.csv]
          columns: {deviation_id: Deviation ID, batch_id: Lot, onset: Recorded Onset, category: Category,
                    description: Description, opened: Opened}
        """,
    )
    report = run_import_config(cfg, lake, run_id="t")
    hist = _read(lake, "historian_readings").sort("ts")
    assert hist.height == len(local)
    ts = hist.get_column("ts").to_list()
    assert ts[0] == dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)  # CDT, UTC-5
    assert all(b - a == dt.timedelta(minutes=10) for a, b in itertools.pairwise(ts))  # no duplicate, no gap
    assert ts[-1] == dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)  # CST, UTC-6
    assert hist.get_column("value").to_list() == pytest.approx([(100 + i) / 1000 for i in range(len(local))])
    assert set(hist.get_column("eng_unit")) == {"kg/h"} and set(hist.get_column("parameter")) == {"methanol_feed"}
    assert hist.get_column("quality").to_list().count(0) == 1
    reasons = report.as_dict()["reasons"]
    assert report.rows_quarantined["historian_readings"] == 2, reasons
    q = _read(lake, "_quarantine")
    got = sorted(q.group_by("table", "reason").len().rows())
    assert got == [
        ("historian_readings", "tag not in tag map", 1),
        ("historian_readings", "unknown quality 'Uncertain' (not in historian.quality)", 1),
        ("mes_batches", "unknown status 'Lost' (not in batches.statuses)", 1),
        ("mes_phases", "unknown status 'Lost' (not in batches.statuses)", 3),
    ]  # its synthetic phases

    batches = _read(lake, "mes_batches").sort("batch_id")
    assert batches.select("batch_id", "status").rows() == [("L1", "complete"), ("L2", "complete")]
    devs = _read(lake, "mes_deviations").sort("deviation_id")
    assert devs.get_column("onset_ts").to_list() == [
        dt.datetime(2026, 11, 1, 12, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 11, 45, tzinfo=dt.UTC),
    ]
    assert devs.row(0, named=True)["description"] == "Feed line blocked, flow low"


# ------------------------------------------------------------------------ plant bundles
def test_the_shipped_bundles_load():
    twin, demo, pichia = (load_plant(n) for n in ("cho-twin", "demo-plant", "pichia"))
    assert (twin.grid_seconds, twin.import_path, twin.catalog.names()) == (60, None, default_catalog().names())
    assert demo.timezone == "Europe/Berlin" and demo.catalog.names() == default_catalog().names()
    assert (pichia.grid_seconds, pichia.timezone, len(pichia.catalog)) == (600, "America/Chicago", 26)
    assert pichia.phase_signal.signal == "process_step" and pichia.phase_signal.codes[4] == "Induction"
    env = pichia.dbt_env()
    assert env["LAKEHOUSE_SIGNALS"].split(",") == pichia.catalog.names()
    assert env["LAKEHOUSE_STATE_SIGNALS"] == "process_step" and env["LAKEHOUSE_GRID_SECONDS"] == "600"
    assert twin.fingerprint() != pichia.fingerprint()


@pytest.mark.parametrize(
    ("plant_yaml", "message"),
    [
        ("grid: 20 min\n", "must be a whole number of seconds from 1 s to 15 min"),
        ("grid: fast\n", "grid must be a duration like '1 min'"),
        ("colour: red\n", "unknown key(s) ['colour']"),
        ("tagmap: nope.yaml\n", "file not found"),
        ("phases: {signal: flow, codes: {1: Batch}}\n", "is a flow, not a state signal"),
        ("phases: {signal: nope, codes: {1: Batch}}\n", "is not a signal of the catalog"),
        ("equipment: {agitator_vibration: nope}\n", "'nope' is not a signal of the catalog"),
        ("equipment: {spindle: flow}\n", "unknown role"),
        ("timezone: Mars/Olympus\n", "unknown timezone 'Mars/Olympus'"),
    ],
)
def test_bad_bundles_fail_with_one_line(tmp_path, plant_yaml, message):
    _write(
        tmp_path / "p" / "tagmap.yaml",
        """
        signals: {flow: {unit: L/min, kind: flow}, step: {unit: code, kind: state}}
        suffixes: {F.PV: flow, S.PV: step}
        """,
    )
    _write(tmp_path / "p" / "plant.yaml", "name: p\n" + plant_yaml)
    with pytest.raises(PlantBundleError) as err:
        load_plant(tmp_path / "p")
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(PlantBundleError, match="plant bundle not found"):
        load_plant(tmp_path / "missing")


def test_grid_parsing():
    assert [parse_grid(g, "x") for g in ("1 s", "30 s", "1 min", "10min", "15 min", 90)] == [1, 30, 60, 600, 900, 90]
