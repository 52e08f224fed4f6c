"""The second simulated plant's export: formats, local time with DST, truth, QA records, determinism,
and that the signals carry the titer information (a soft sensor beats the mean trajectory)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from twin.microbial import FaultType
from twin.microbial_site import (
    FAULT_SPECS,
    HIST_TS_FMT,
    LIMS_TS_FMT,
    SIGNALS,
    TIMEZONE,
    export_microbial_plant,
    plan_campaign,
)

TZ = ZoneInfo(TIMEZONE)
BATCH_FMT = "%m/%d/%Y %H:%M"


@pytest.fixture(scope="module")
def default_export(tmp_path_factory: pytest.TempPathFactory):
    """The default campaign (60 batches, 3 fermenters, mid-January to May: spring DST change)."""
    out = tmp_path_factory.mktemp("plant2") / "export"
    summary = export_microbial_plant(out)
    return out, summary


@pytest.fixture(scope="module")
def fall_export(tmp_path_factory: pytest.TempPathFactory):
    """Two batches on one fermenter across the November fall-back (a 25-hour local day)."""
    out = tmp_path_factory.mktemp("plant2_fall") / "export"
    export_microbial_plant(out, n_batches=2, n_vessels=1, start="2026-10-29", seed=4)  # no comm gap that day
    return out


def _hist(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, schema={"Tagname": pl.Utf8, "Timestamp": pl.Utf8, "Value": pl.Float64, "Quality": pl.Utf8})


def _local(utc_iso: str, fmt: str) -> str:
    t = dt.datetime.strptime(utc_iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return t.astimezone(TZ).strftime(fmt)


def _utc(local: str, fmt: str) -> dt.datetime:
    return dt.datetime.strptime(local, fmt).replace(tzinfo=TZ).astimezone(dt.UTC)


# ------------------------------------------------------------------ files and formats


def test_export_files_columns_and_signal_catalog(default_export):
    out, s = default_export
    assert s.batches == 60 and s.vessels == ["F-201", "F-202", "F-203"]
    names = sorted(p.name for p in (out / "historian").iterdir())
    assert len(names) == s.historian_files and all(re.fullmatch(r"HIST_\d{8}\.csv", n) for n in names)
    assert (out / "historian" / "HIST_20260308.csv").exists()
    day = _hist(out / "historian" / "HIST_20260310.csv")
    assert day.columns == ["Tagname", "Timestamp", "Value", "Quality"]
    assert day["Timestamp"].str.contains(r"^\d\d/\d\d/2026 \d\d:\d\d:\d\d$").all()  # local, no offset
    assert set(day["Quality"].unique()) == {"Good", "Bad"}
    tags = {f"{v}/{spec.loop}" for v in s.vessels for spec in SIGNALS.values()}
    assert set(day["Tagname"].unique()) == tags
    assert pl.read_csv(out / "batch_list.csv").columns == [
        "Lot",
        "Fermenter",
        "Product",
        "Recipe",
        "Inoculated",
        "Harvested",
        "Status",
    ]
    assert pl.read_csv(out / "deviations.csv").columns == [
        "Deviation ID",
        "Lot",
        "Recorded Onset",
        "Category",
        "Description",
        "Opened",
    ]
    assert pl.read_csv(out / "lab_results.csv").columns == [
        "Sample ID",
        "Lot",
        "Sampled",
        "Reported",
        "Test",
        "OD600",
        "DCW (g/L)",
        "Glycerol (g/L)",
        "Methanol (g/L)",
        "Ethanol (g/L)",
        "Titer (mg/L)",
    ]
    for f in ("batches.csv", "samples.csv", "trajectories.parquet", "README.md"):
        assert (out / "_truth" / f).stat().st_size > 0
    # the catalog: >= 15 signals of the plant's own units, every kind the catalog distinguishes
    assert len(SIGNALS) >= 15
    kinds = {spec.kind for spec in SIGNALS.values()}
    assert {"process value", "setpoint", "flow", "totaliser", "rate", "state"} <= kinds
    units = {name: spec.unit for name, spec in SIGNALS.items()}
    assert units["temperature"] == "degF" and units["do"] == "mg/L" and units["pressure"] == "psig"
    assert units["our"] == units["cer"] == "mmol/L/h" and units["cw_flow"] == "gpm" and units["air_flow"] == "SLPM"
    assert len({spec.loop for spec in SIGNALS.values()}) == len(SIGNALS)


def test_values_are_plausible_in_the_plants_units(default_export):
    out, _ = default_export
    d = _hist(out / "historian" / "HIST_20260310.csv").with_columns(
        pl.col("Tagname").str.split("/").list.get(1).alias("loop")
    )
    rng = {
        "TIC-110.PV": (60.0, 260.0),
        "AIC-120.PV": (2.5, 7.5),
        "AIC-130.PV": (-0.5, 25.0),
        "SIC-140.PV": (0.0, 900.0),
        "FIC-150.PV": (0.0, 320.0),
        "PIC-160.PV": (-0.5, 16.0),
        "AI-170A.PV": (10.0, 40.0),
        "AI-170B.PV": (0.0, 8.0),
        "AY-170C.PV": (-5.0, 350.0),
        "FIC-180.PV": (0.0, 2.0),
        "WI-100.PV": (-1.0, 260.0),
        "FI-200.PV": (0.0, 12.0),
        "KS-100.STEP": (0.0, 5.0),
    }
    for loop, (lo, hi) in rng.items():
        v = d.filter(pl.col("loop") == loop)["Value"]
        assert v.min() >= lo and v.max() <= hi, loop
    phases = set(d.filter(pl.col("loop") == "KS-100.STEP")["Value"].unique().to_list())
    assert phases <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}


# ------------------------------------------------------------------ local time and DST


def _rows_per_tag(path: Path) -> int:
    return int(_hist(path).group_by("Tagname").len()["len"].max())


def test_dst_days_have_23_and_25_hours(default_export, fall_export):
    out, _ = default_export
    assert _rows_per_tag(out / "historian" / "HIST_20260307.csv") == 144
    spring = _hist(out / "historian" / "HIST_20260308.csv")
    assert _rows_per_tag(out / "historian" / "HIST_20260308.csv") == 138  # 23 h of 10-min readings
    assert not spring["Timestamp"].str.contains(r" 02:\d\d:\d\d$").any()  # 02:00-02:59 does not exist
    fall = _hist(fall_export / "historian" / "HIST_20261101.csv")
    assert _rows_per_tag(fall_export / "historian" / "HIST_20261101.csv") == 150  # 25 h
    tag = fall["Tagname"][0]
    one = fall.filter((pl.col("Tagname") == tag) & pl.col("Timestamp").str.contains(" 01:"))
    assert one.height == 12 and one["Timestamp"].n_unique() == 6  # 01:00-01:50 twice (ambiguous wall clock)


def test_truth_converts_back_to_the_exported_local_times(default_export):
    out, _ = default_export
    truth = pl.read_csv(out / "_truth" / "batches.csv")
    bl = pl.read_csv(out / "batch_list.csv")
    assert bl["Lot"].to_list() == truth["lot"].to_list()
    for t, b in zip(truth.iter_rows(named=True), bl.iter_rows(named=True), strict=True):
        assert _local(t["inoculation_utc"], BATCH_FMT) == b["Inoculated"]
        assert _local(t["end_utc"], BATCH_FMT) == b["Harvested"]
        assert b["Fermenter"] == t["vessel"]
    # the true trajectory timestamps land on the historian's local rows: the phase code agrees
    traj = pl.read_parquet(out / "_truth" / "trajectories.parquet")
    lot = truth.filter(pl.col("inoculation_utc") < "2026-03-08T08:00:00Z")["lot"][-1]  # culture across DST
    v = truth.filter(pl.col("lot") == lot)["vessel"][0]
    tj = traj.filter(pl.col("lot") == lot).with_columns(
        pl.col("timestamp_utc").dt.convert_time_zone(TIMEZONE).dt.strftime(HIST_TS_FMT).alias("Timestamp")
    )
    assert tj["timestamp_utc"].min() < dt.datetime(2026, 3, 8, 8, tzinfo=dt.UTC) < tj["timestamp_utc"].max()
    days = sorted({t.strftime("%Y%m%d") for t in tj["timestamp_utc"].dt.convert_time_zone(TIMEZONE).to_list()})
    hist = pl.concat([_hist(out / "historian" / f"HIST_{d}.csv") for d in days])
    step = hist.filter(pl.col("Tagname") == f"{v}/KS-100.STEP")
    j = tj.join(step, on="Timestamp", how="inner")
    assert j.height > 0.95 * tj.height  # all but the communication gaps
    np.testing.assert_array_equal(j["Value"].to_numpy(), j["phase"].to_numpy().astype(float))


# ------------------------------------------------------------------ batches, faults, QA


def test_campaign_has_a_third_faulty_batches_of_six_kinds():
    camp = plan_campaign(60, 3, seed=21)
    ft = camp.faults.fault_type
    assert (ft > 0).sum() == 20
    kinds = {FaultType(int(x)) for x in ft if x > 0}
    assert kinds == set(FAULT_SPECS) and len(kinds) >= 4
    assert all((ft == int(k)).sum() >= 3 for k in kinds)
    assert 0.02 < camp.missed.mean() < 0.09  # ~5 % of in-process samples missed


def test_status_and_deviations_are_what_qa_recorded(default_export):
    out, s = default_export
    truth = pl.read_csv(out / "_truth" / "batches.csv")
    devs = pl.read_csv(out / "deviations.csv")
    assert set(truth["status"].unique()) == {"Completed", "Aborted", "Deviation"}
    assert 15 <= truth["faulty"].sum() <= 22 and s.faulty_batches == truth["faulty"].sum()
    faulty = truth.filter(pl.col("faulty") == 1)
    assert faulty["fault_type"].n_unique() >= 4
    # contaminated batches are aborted when QA confirms it
    assert (truth.filter(pl.col("fault_type") == "contamination")["status"] == "Aborted").any()
    # recorded deviations lag the true onset; some faults are never recorded
    rec = faulty.filter(pl.col("fault_recorded") == 1)
    assert 0 < rec.height < faulty.height
    assert (rec["recorded_onset_lag_h"] >= 0).all() and (rec["recorded_onset_lag_h"] > 0.1).mean() > 0.8
    for t in rec.iter_rows(named=True):
        d = devs.filter(pl.col("Deviation ID") == t["deviation_id"]).row(0, named=True)
        assert d["Lot"] == t["lot"]
        recorded = _utc(d["Recorded Onset"], BATCH_FMT)
        onset = dt.datetime.strptime(t["fault_onset_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        assert recorded >= onset - dt.timedelta(minutes=1)
        assert abs((recorded - onset).total_seconds() / 3600 - t["recorded_onset_lag_h"]) < 0.1
    # non-process deviations make "Deviation" differ from "faulty"
    minor = devs.filter(pl.col("Category") == "Documentation - Sampling")
    assert minor.height > 0
    assert (truth.filter(pl.col("faulty") == 0)["status"] == "Deviation").any()


def test_lab_sheet_results_after_samples_and_titer_from_induction(default_export):
    out, _ = default_export
    lab = pl.read_csv(out / "lab_results.csv")
    t = lambda c: pl.col(c).str.to_datetime(LIMS_TS_FMT)
    lab = lab.with_columns(t("Sampled").alias("s"), t("Reported").alias("r"))
    assert ((lab["r"] - lab["s"]).dt.total_minutes() > 0).all()
    assert set(lab["Test"].unique()) == {"Biomass", "HPLC-Substrates", "Titer-HPLC"}
    titer = lab.filter(pl.col("Test") == "Titer-HPLC")
    delay_h = (titer["r"] - titer["s"]).dt.total_minutes() / 60
    assert delay_h.min() >= 12.0 and delay_h.max() <= 40.0
    truth = pl.read_csv(out / "_truth" / "batches.csv").select("lot", "feed_start_utc")
    first = titer.group_by("Lot").agg(pl.col("Sampled").min()).join(truth, left_on="Lot", right_on="lot")
    for r in first.iter_rows(named=True):
        assert _utc(r["Sampled"], LIMS_TS_FMT) >= dt.datetime.strptime(
            r["feed_start_utc"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=dt.UTC) - dt.timedelta(minutes=1)
    # measurement noise around the truth (3 % CV + 5 mg/L)
    s = pl.read_csv(out / "_truth" / "samples.csv")
    j = titer.join(s, left_on="Sample ID", right_on="sample_id")
    rel = ((j["Titer (mg/L)"] - j["titer_mg_l"]) / j["titer_mg_l"]).filter(j["titer_mg_l"] > 500)
    assert 0.015 < rel.std() < 0.05 and abs(rel.mean()) < 0.01
    # every in-process sample slot was either sampled or missed; some were missed
    ids = lab.filter(pl.col("Sample ID").str.contains("-S"))["Sample ID"].unique()
    numbers = ids.str.extract(r"-S(\d+)$").cast(pl.Int32)
    assert numbers.max() >= 14 and ids.len() < 60 * int(numbers.max())


# ------------------------------------------------------------------ determinism


def test_same_seed_same_bytes(tmp_path: Path, tree_digest: Callable[[Path], dict[str, str]]):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    kw = dict(n_batches=4, n_vessels=2, start="2026-03-04")
    export_microbial_plant(a, seed=8, **kw)
    export_microbial_plant(b, seed=8, **kw)
    export_microbial_plant(c, seed=9, **kw)
    da, db, dc = tree_digest(a), tree_digest(b), tree_digest(c)
    assert da == db and len(da) > 10
    assert da["batch_list.csv"] != dc["batch_list.csv"]


# ------------------------------------------------------------------ information content


def test_signals_carry_the_titer_a_soft_sensor_beats_the_mean_trajectory(default_export):
    """Held-out batches: a linear model on cumulative methanol, integrated OUR/CER and base (from the
    exported historian) beats the mean titer trajectory by culture age by >= 50 % RMSE."""
    out, _ = default_export
    bl = pl.read_csv(out / "batch_list.csv").with_columns(
        pl.col("Inoculated")
        .str.to_datetime(BATCH_FMT)
        .dt.replace_time_zone(TIMEZONE, ambiguous="earliest")
        .dt.convert_time_zone("UTC")
        .alias("inoc"),
        pl.col("Harvested")
        .str.to_datetime(BATCH_FMT)
        .dt.replace_time_zone(TIMEZONE, ambiguous="earliest")
        .dt.convert_time_zone("UTC")
        .alias("harv"),
    )
    loops = {
        "AY-170C.PV": "our",
        "AY-170D.PV": "cer",
        "FIC-180.PV": "feed",
        "FQI-190.PV": "base",
        "KS-100.STEP": "phase",
        "WI-100.PV": "weight",
        "TIC-110.PV": "temp",
    }
    h = pl.read_csv(
        sorted((out / "historian").glob("*.csv")),
        schema={"Tagname": pl.Utf8, "Timestamp": pl.Utf8, "Value": pl.Float64, "Quality": pl.Utf8},
    )
    h = h.with_columns(
        pl.col("Tagname").str.split("/").list.get(0).alias("vessel"),
        pl.col("Tagname").str.split("/").list.get(1).alias("loop"),
    )
    h = h.filter(pl.col("loop").is_in(list(loops))).with_columns(
        pl.col("Timestamp")
        .str.to_datetime(HIST_TS_FMT)
        .dt.replace_time_zone(TIMEZONE, ambiguous="earliest")
        .dt.convert_time_zone("UTC")
        .alias("ts")
    )
    w = h.pivot(on="loop", index=["vessel", "ts"], values="Value", aggregate_function="first").rename(loops)
    w = w.sort("ts").join_asof(
        bl.select(pl.col("Fermenter").alias("vessel"), pl.col("inoc").alias("ts"), "Lot", "harv", "Status").sort("ts"),
        on="ts",
        by="vessel",
        check_sortedness=False,
    )
    w = w.filter(pl.col("Lot").is_not_null() & (pl.col("ts") < pl.col("harv")) & (pl.col("phase") >= 2))
    w = w.sort("Lot", "ts").with_columns(
        pl.col("^(our|cer|feed|base|weight|temp)$").forward_fill().over("Lot"),
        ((pl.col("ts") - pl.col("ts").min()).dt.total_seconds() / 3600).over("Lot").alias("age"),
    )
    ind = (pl.col("phase") == 4).cast(pl.Float64)
    vol = pl.col("weight") / 1.03 / 6000.0  # L x (1/6 h) / 1000: mmol/L/h -> mol per record
    w = w.with_columns(
        (pl.col("our") * vol * ind).cum_sum().over("Lot").alias("o2_mol"),
        (pl.col("cer") * vol * ind).cum_sum().over("Lot").alias("co2_mol"),
        (pl.col("feed") * ind / 6.0).cum_sum().over("Lot").alias("fed_kg"),
        (pl.col("base") * ind / 6.0).cum_sum().over("Lot").alias("base_h"),
        (ind / 6.0).cum_sum().over("Lot").alias("t_ind"),
    )
    lab = (
        pl.read_csv(out / "lab_results.csv")
        .filter(pl.col("Test") == "Titer-HPLC")
        .with_columns(
            pl.col("Sampled")
            .str.to_datetime(LIMS_TS_FMT)
            .dt.replace_time_zone(TIMEZONE, ambiguous="earliest")
            .dt.convert_time_zone("UTC")
            .alias("ts")
        )
        .sort("ts")
    )
    d = lab.join_asof(w.sort("ts"), on="ts", by="Lot", check_sortedness=False).filter(pl.col("Status") == "Completed")
    d = d.drop_nulls(["age", "o2_mol"])
    feats = ["age", "t_ind", "fed_kg", "o2_mol", "co2_mol", "base", "base_h", "weight", "temp"]
    lots = np.array(sorted(d["Lot"].unique().to_list()))
    assert len(lots) >= 30
    rng = np.random.default_rng(0)
    folds = np.array_split(rng.permutation(lots), 4)
    err_m, err_b = [], []
    for test in folds:
        tr, te = d.filter(~pl.col("Lot").is_in(list(test))), d.filter(pl.col("Lot").is_in(list(test)))
        X = np.c_[tr.select(feats).to_numpy(), np.ones(tr.height)]
        coef = np.linalg.lstsq(X, tr["Titer (mg/L)"].to_numpy(), rcond=None)[0]
        pred = np.c_[te.select(feats).to_numpy(), np.ones(te.height)] @ coef
        mean_by_age = tr.group_by((pl.col("age") / 4).floor().alias("b")).agg(pl.col("Titer (mg/L)").mean().alias("m"))
        base = te.with_columns((pl.col("age") / 4).floor().alias("b")).join(mean_by_age, on="b", how="left")["m"]
        y = te["Titer (mg/L)"].to_numpy()
        err_m.append(y - pred)
        err_b.append(y - base.fill_null(0.0).to_numpy())
    rmse_m = float(np.sqrt(np.mean(np.concatenate(err_m) ** 2)))
    rmse_b = float(np.sqrt(np.mean(np.concatenate(err_b) ** 2)))
    print(f"soft sensor RMSE {rmse_m:.0f} mg/L vs mean trajectory {rmse_b:.0f} mg/L")
    assert rmse_m < 0.5 * rmse_b, (rmse_m, rmse_b)
    assert rmse_m > 40.0  # not trivial: assay noise, raw-material lots and proteolysis stay unexplained
