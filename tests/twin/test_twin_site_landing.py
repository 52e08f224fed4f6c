"""The site simulator's landing zone: contract conformance, physics visible in the exports,
determinism, S3 and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twin.historian import TAG_NAMES, TAG_UNITS
from twin.site import SiteConfig, simulate_site

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MES_PHASES = ["Prepare", "Inoculate", "Batch", "Fed-Batch", "Production", "Harvest"]


def _units(site_config: SiteConfig) -> list[str]:
    return site_config.unit_ids()


# ------------------------------------------------------------------ historian


def test_historian_files_every_unit_every_day(site_dir: Path, site_config: SiteConfig):
    days = pd.date_range(site_config.start, periods=site_config.days, freq="D").strftime("%Y-%m-%d")
    for u in _units(site_config):
        files = sorted(p.stem for p in (site_dir / "historian" / u).glob("*.csv"))
        assert files == list(days)  # continuous logging, idle days included


def test_historian_contract(site_dir: Path, site_config: SiteConfig, read_historian):
    u = _units(site_config)[0]
    path = site_dir / "historian" / u / f"{site_config.start}.csv"
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "timestamp,tag,value,unit,quality"
    first = lines[1].split(",")
    assert ISO.match(first[0]) and first[1] == f"{u}.TEMP.PV" and first[3] == "degC"
    df = read_historian(path)
    n_scans = int(86400 / site_config.interval_s)
    assert len(df) <= n_scans * len(TAG_NAMES) and len(df) >= 0.9 * n_scans * len(TAG_NAMES)
    assert set(df["tag"]) == {f"{u}.{s}" for s in TAG_NAMES}
    for tag, unit in df.groupby("tag")["unit"].unique().items():
        assert list(unit) == [TAG_UNITS[tag.split(".", 1)[1]]]
    assert set(df["quality"]).issubset({0, 64, 192})
    assert np.all(np.diff(df["timestamp"].astype("int64").to_numpy()) >= 0)


def test_quality_codes_mostly_good(site_dir: Path, site_config: SiteConfig, read_historian):
    u = _units(site_config)[1]
    df = pd.concat([read_historian(p) for p in sorted((site_dir / "historian" / u).glob("*.csv"))[:20]])
    q = df["quality"].value_counts(normalize=True)
    assert q[192] > 0.98 and q.get(64, 0) > 0.0005 and q.get(0, 0) > 0.0


def _wide(read_historian, site_dir: Path, unit: str, t0: pd.Timestamp, t1: pd.Timestamp) -> pd.DataFrame:
    files = [
        site_dir / "historian" / unit / f"{d:%Y-%m-%d}.csv"
        for d in pd.date_range(t0.floor("D"), t1.floor("D"), freq="D")
    ]
    df = pd.concat([read_historian(p) for p in files if p.exists()])
    df = df[(df["timestamp"] >= t0) & (df["timestamp"] < t1) & (df["quality"] == 192)]
    df["signal"] = df["tag"].str.split(".", n=1).str[1]
    df["scan"] = df["timestamp"].dt.floor("min")
    return df.pivot_table(index="scan", columns="signal", values="value")


def test_vibration_rises_before_agitator_failure(site_dir: Path, read_historian):
    """A degrading bearing shows rising vibration/current weeks before its failure work order."""
    fails = pq.read_table(site_dir / "_truth" / "failures.parquet").to_pandas()
    bearing = fails[fails["failure_mode"] == "bearing_failure"].iloc[0]
    unit = bearing["equipment_id"].rsplit("-", 1)[0]
    t_fail = bearing["failure_time"]
    wo = pd.concat([pd.read_csv(p) for p in sorted((site_dir / "cmms").glob("*.csv"))])
    corr = wo[(wo["equipment_id"] == bearing["equipment_id"]) & (wo["work_type"] == "corrective")]
    opened = pd.to_datetime(corr["opened_at"], utc=True)
    assert ((opened >= t_fail) & (opened < t_fail + pd.Timedelta(hours=2))).any()
    w = _wide(read_historian, site_dir, unit, t_fail - pd.Timedelta(days=24), t_fail)
    running = w[w["AGIT.PV"] > 50.0]
    days_before = (t_fail - running.index).total_seconds() / 86400.0
    early = running["AGIT.VIB"][(days_before > 17) & (days_before <= 24)]
    week = running["AGIT.VIB"][(days_before > 7) & (days_before <= 10)]
    late = running["AGIT.VIB"][days_before <= 3]
    assert len(early) > 10 and len(week) > 10 and len(late) > 10
    assert week.median() > 1.5 * early.median()  # visible >= 7 days ahead
    assert late.median() > week.median()


def test_batch_signals_in_historian(site_dir: Path, read_historian):
    """A complete batch: setpoint shift, DO at setpoint, weight follows feeding, totalisers rise."""
    truth = pq.read_table(site_dir / "_truth" / "batches.parquet").to_pandas()
    b = truth[(truth["status"] == "complete") & truth["closed_in_window"] & truth["deviation_type"].isna()].iloc[0]
    w = _wide(read_historian, site_dir, b["unit_id"], b["inoculation"], b["culture_end"])
    age_d = (w.index - b["inoculation"]).total_seconds() / 86400.0
    pre, post = w[age_d < b["temp_shift_day"] - 0.2], w[age_d > b["temp_shift_day"] + 0.3]
    assert abs(pre["TEMP.SP"].median() - b["temperature_c"]) < 0.01
    assert abs(post["TEMP.SP"].median() - b["temp_shift_c"]) < 0.01
    assert abs(post["TEMP.PV"].median() - b["temp_shift_c"]) < 0.05
    assert abs(w["DO.PV"].median() - b["do_pct"]) < 0.5
    assert w["WEIGHT.PV"].iloc[-20:].median() > w["WEIGHT.PV"].iloc[:20].median() + 300  # fed
    for tot in ("FEED.TOT", "BASE.TOT"):
        v = w[tot].dropna().to_numpy()
        assert np.all(np.diff(v) >= -1e-6) and v[-1] > v[0]
    feeding = w[age_d > 3.2]
    assert (feeding["FEED.FLOW.PV"] <= feeding["FEED.FLOW.SP"] * 1.06).mean() > 0.95


# ------------------------------------------------------------------ LIMS / MES / downstream / CMMS


def test_lims_contract(site_dir: Path):
    files = sorted((site_dir / "lims").glob("*.csv"))
    df = pd.concat([pd.read_csv(p) for p in files])
    assert list(df.columns) == [
        "sample_id",
        "batch_id",
        "sample_time",
        "result_time",
        "analyte",
        "value",
        "unit",
        "method",
    ]
    assert df["sample_time"].str.match(ISO.pattern).all() and df["result_time"].str.match(ISO.pattern).all()
    st, rt = pd.to_datetime(df["sample_time"]), pd.to_datetime(df["result_time"])
    assert (rt > st).all()
    for p in files:  # one file per result day
        d = pd.read_csv(p)
        assert (pd.to_datetime(d["result_time"]).dt.strftime("%Y-%m-%d") == p.stem).all()
    need = {
        "vcd",
        "viability",
        "glucose",
        "lactate",
        "glutamine",
        "ammonia",
        "osmolality",
        "ph_offline",
        "po2_offline",
        "titer",
        "g0f",
        "g1f",
        "g2f",
        "man5",
        "afucosylation",
        "hmw",
    }
    assert need <= set(df["analyte"])
    assert df.groupby("sample_id")["batch_id"].nunique().max() == 1
    v = df[df["analyte"] == "viability"]["value"]
    assert v.between(0, 100).all()


def test_mes_records_and_genealogy(site_dir: Path):
    recs = [json.loads(p.read_text()) for p in sorted((site_dir / "mes").glob("*.json"))]
    by_type: dict[str, list[dict]] = {}
    for r in recs:
        by_type.setdefault(r["record_type"], []).append(r)
        for k in (
            "record_type",
            "batch_id",
            "product",
            "unit_id",
            "recipe_id",
            "status",
            "start",
            "end",
            "setpoints",
            "procedure",
            "materials",
            "output_lot",
            "input_lots",
        ):
            assert k in r
        assert ISO.match(r["start"]) and ISO.match(r["end"]) and r["start"] < r["end"]
        for ph in r["procedure"]:
            assert ph["start"] <= ph["end"]
    bio = by_type["bioreactor"]
    for r in bio:
        assert set(r["setpoints"]) == {
            "temperature_c",
            "temp_shift_day",
            "temp_shift_c",
            "ph",
            "do_pct",
            "feed_rate_pct_per_day",
            "seed_density_e6_per_ml",
            "working_volume_l",
        }
        phases = [p["phase"] for p in r["procedure"]]
        assert phases == MES_PHASES[: len(phases)] and phases[0] == "Prepare"
        if r["status"] == "complete":
            assert phases == MES_PHASES and r["output_lot"] == f"HCCF-{r['batch_id']}"
        else:
            assert r["output_lot"] is None
    harvest_lots = {r["output_lot"] for r in bio if r["output_lot"]}
    cap = by_type["capture"]
    cap_lots = set()
    for r in cap:
        assert len(r["input_lots"]) == 1 and r["input_lots"][0] in harvest_lots
        cap_lots.add(r["output_lot"])
    for r in by_type["ufdf"]:
        assert r["input_lots"][0] in cap_lots and r["output_lot"].startswith("DS-")


def test_chromatography_and_filtration_runs(site_dir: Path):
    runs = [json.loads(p.read_text()) for p in sorted((site_dir / "chromatography" / "AKTA-01").glob("*/run.json"))]
    assert runs
    keys = [
        "run_id",
        "skid_id",
        "column_id",
        "column_cycle",
        "batch_id",
        "input_lot",
        "output_lot",
        "start",
        "end",
        "load_volume_l",
        "load_titer_g_l",
        "column_volume_l",
        "pool_volume_l",
        "pool_concentration_g_l",
        "step_yield_pct",
        "max_pressure_bar",
        "result",
    ]
    assert list(runs[0]) == keys
    df = pd.DataFrame(runs)
    for _, g in df.groupby("column_id"):
        if len(g) >= 8:  # fouling: max pressure rises with the column's cycle count
            rho = g["column_cycle"].rank().corr(g["max_pressure_bar"].rank())
            assert rho > 0.8, rho
    curves = pd.read_csv(site_dir / "chromatography" / "AKTA-01" / runs[0]["run_id"] / "curves.csv")
    assert list(curves.columns) == [
        "volume_ml",
        "time_s",
        "uv280_mau",
        "conductivity_ms_cm",
        "ph",
        "pressure_bar",
        "phase",
    ]
    assert list(dict.fromkeys(curves["phase"])) == ["Equilibrate", "Load", "Wash", "Elute", "Strip", "CIP"]
    fruns = [json.loads(p.read_text()) for p in sorted((site_dir / "filtration" / "TFF-01").glob("*/run.json"))]
    assert fruns and list(fruns[0]) == [
        "run_id",
        "skid_id",
        "membrane_id",
        "membrane_use",
        "input_lot",
        "output_lot",
        "start",
        "end",
        "diavolumes",
        "final_concentration_g_l",
        "step_yield_pct",
        "mean_flux_lmh",
        "result",
    ]
    fc = pd.read_csv(site_dir / "filtration" / "TFF-01" / fruns[0]["run_id"] / "curves.csv")
    assert list(fc.columns) == [
        "time_s",
        "feed_pressure_bar",
        "retentate_pressure_bar",
        "permeate_pressure_bar",
        "tmp_bar",
        "permeate_flux_lmh",
        "conductivity_ms_cm",
        "retentate_volume_l",
        "phase",
    ]
    assert list(dict.fromkeys(fc["phase"])) == ["UF1", "DF", "UF2", "Recovery"]


def test_cmms_contract(site_dir: Path):
    df = pd.concat([pd.read_csv(p, keep_default_na=False) for p in sorted((site_dir / "cmms").glob("*.csv"))])
    assert list(df.columns) == [
        "work_order_id",
        "equipment_id",
        "equipment_type",
        "work_type",
        "failure_mode",
        "priority",
        "opened_at",
        "closed_at",
        "description",
    ]
    assert df["work_order_id"].is_unique
    assert set(df["work_type"]) <= {"corrective", "preventive", "calibration"}
    assert {"preventive", "calibration", "corrective"} <= set(df["work_type"])
    corr = df[df["work_type"] == "corrective"]
    assert (corr["failure_mode"] != "").all()
    pattern = r"^(BR-\d{3}-(AGT|FP|DO)|COL-PA-\d{2}|MEM-\d{2}|AKTA-01|TFF-01)$"
    assert df["equipment_id"].str.match(pattern).all()
    closed = df[df["closed_at"] != ""]
    assert (pd.to_datetime(closed["closed_at"]) >= pd.to_datetime(closed["opened_at"])).all()


def test_truth_tables(site_dir: Path):
    b = pq.read_table(site_dir / "_truth" / "batches.parquet")
    for c in (
        "batch_id",
        "unit_id",
        "start",
        "end",
        "deviation_type",
        "deviation_onset",
        "lost",
        "titer_true",
        "g0f_true",
        "hmw_true",
    ):
        assert c in b.column_names
    assert b.schema.field("start").type == pa.timestamp("us", tz="UTC")
    f = pq.read_table(site_dir / "_truth" / "failures.parquet")
    assert f.column_names == ["equipment_id", "failure_mode", "degradation_start", "failure_time", "repaired_at"]
    fd = f.to_pandas()
    assert (fd["degradation_start"] < fd["failure_time"]).all()
    bd = b.to_pandas()
    dev = bd[bd["deviation_type"].notna()]
    assert dev["deviation_onset"].notna().all()
    assert bd["lost"].sum() == (bd["status"] == "aborted").sum()
    end = bd["start"].min().floor("D") + pd.Timedelta(days=60)
    started = bd[bd["inoculation"] < end]
    assert len(list((site_dir / "_truth" / "trajectories").glob("*.parquet"))) == len(started)
    closed = bd[bd["closed_in_window"] & (bd["status"] == "complete")]
    assert closed["titer_true"].between(1, 8).all() and closed["g0f_true"].notna().all()


# ------------------------------------------------------------------ determinism, S3, CLI


def test_same_seed_identical_files_different_seed_differs(tmp_path: Path, small_config: SiteConfig, tree_digest):
    SMALL = small_config
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate_site(str(a), SMALL)
    simulate_site(str(b), SMALL)
    simulate_site(str(c), SiteConfig(**{**SMALL.__dict__, "seed": SMALL.seed + 1}))
    da, db, dc = tree_digest(a), tree_digest(b), tree_digest(c)
    assert da == db
    hist = [k for k in da if k.startswith("landing/historian/")]
    assert len(hist) == SMALL.days * SMALL.bioreactors
    assert all(da[k] != dc.get(k) for k in hist)


@pytest.mark.s3
def test_simulate_to_s3_matches_local(tmp_path: Path, s3_server, small_config: SiteConfig, tree_digest):
    import hashlib

    import s3fs

    SMALL = small_config
    prefix = f"twin-{tmp_path.name}"
    out = f"s3://{s3_server.bucket}/{prefix}"
    simulate_site(out, SMALL, storage_options=s3_server.storage_options)
    simulate_site(str(tmp_path / "local"), SMALL)
    local = tree_digest(tmp_path / "local")
    fs = s3fs.S3FileSystem(**s3_server.storage_options)
    remote = sorted(fs.find(f"{s3_server.bucket}/{prefix}"))
    rel = [p.split(f"{prefix}/", 1)[1] for p in remote]
    assert sorted(rel) == sorted(local)
    for p, r in list(zip(remote, rel, strict=True))[:: max(1, len(rel) // 15)]:
        assert hashlib.sha256(fs.cat_file(p)).hexdigest() == local[r]


def test_cli_simulate_and_commands(tmp_path: Path, capsys, tree_digest):
    from bioprocess_cli.main import build_parser, main
    from lakehouse.storage import Lake, S3Settings
    from twin import cli

    out = tmp_path / "lake"
    rc = main(
        [
            "simulate",
            "--out",
            str(out),
            "--bioreactors",
            "1",
            "--start",
            "2026-01-01",
            "--days",
            "2",
            "--interval",
            "600",
            "--seed",
            "3",
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    expected = 2 * 144 * len(TAG_NAMES)  # 2 days of 10-minute scans
    assert 0.9 * expected < summary["historian_readings"] <= expected
    assert (out / "landing" / "historian" / "BR-101" / "2026-01-02.csv").exists()
    # the simulator's own entry (python -m twin) writes the same files
    assert (
        cli.main(
            [
                "simulate",
                "--out",
                str(tmp_path / "own"),
                "--bioreactors",
                "1",
                "--start",
                "2026-01-01",
                "--days",
                "2",
                "--interval",
                "600",
                "--seed",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert tree_digest(tmp_path / "own") == tree_digest(out)

    # every product subcommand is registered explicitly (no plugin discovery)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {
        "simulate",
        "export-plant",
        "import",
        "run",
        "train",
        "audit",
        "plant",
        "approve",
        "report",
    }
    s3 = S3Settings.from_env({"AWS_ENDPOINT_URL": "http://h:1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    opts = Lake("s3://b/p", s3).fsspec_storage_options()
    assert opts == {
        "key": "k",
        "secret": "s",
        "client_kwargs": {"endpoint_url": "http://h:1", "region_name": "us-east-1"},
    }


def test_recipe_variation_one_table_for_site_and_evaluation_sets():
    """twin.site draws a batch's setpoints and ml.mspc draws many at once from the same table:
    the same seed gives the same first recipe, on the MES rounding grid, inside the design space."""
    import numpy as np

    from twin.bioreactor import DESIGN_SPACE, NOMINAL_RECIPE
    from twin.site import RECIPE_VARIATION, vary_recipe, vary_recipes

    one = vary_recipe(np.random.default_rng(3), NOMINAL_RECIPE)
    many = vary_recipes(np.random.default_rng(3), 1)
    assert {k: float(v[0]) for k, v in many.items()} == {k: getattr(one, k) for k in RECIPE_VARIATION}
    big = vary_recipes(np.random.default_rng(4), 2000)
    for key, (sd, (kind, k)) in RECIPE_VARIATION.items():
        v = big[key]
        lo, hi = DESIGN_SPACE[key]
        assert v.min() >= lo and v.max() <= hi
        grid = 10.0**-k if kind == "decimals" else 1.0 / k if kind == "per" else k
        assert np.allclose(np.round(v / grid) * grid, v, atol=1e-9), key
        assert 0.5 * sd < v.std() < 1.5 * sd + grid, key  # the spread the table says (minus clipping)
        assert abs(np.median(v) - getattr(NOMINAL_RECIPE, key)) <= max(grid, 0.1 * sd), key


def test_coarser_history_before_the_full_resolution_days(tmp_path: Path):
    """``full_resolution_days``: the last N days at ``interval_s``, the days before at
    ``history_interval_s`` — the same batches and the same day files, fewer readings."""
    from twin.site.plan import plan_site

    cfg = SiteConfig(seed=5, days=6, bioreactors=1, interval_s=60.0, full_resolution_days=2, history_interval_s=600.0)
    assert [cfg.day_interval_s(d) for d in range(6)] == [600.0] * 4 + [60.0] * 2
    assert SiteConfig(days=6, full_resolution_days=None).day_interval_s(0) == SiteConfig().interval_s
    plan = plan_site(cfg)
    counts = [len(plan.unit_day("BR-101", d).ts) for d in range(6)]
    assert counts == [144] * 4 + [1440] * 2
    full = plan_site(SiteConfig(seed=5, days=6, bioreactors=1, interval_s=60.0))
    assert [b.batch_id for b in plan.batches] == [b.batch_id for b in full.batches]
    assert [len(full.unit_day("BR-101", d).ts) for d in range(6)] == [1440] * 6
