"""Equipment degradation, downstream unit operations and deviation sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from twin import deviations as dv
from twin import downstream as ds
from twin import equipment as eq


def test_bearing_degradation_raises_vibration_and_current():
    onset, fail = 100.0, 100.0 + 30 * 24.0
    t = np.linspace(0.0, fail, 400)
    sev = eq.bearing_severity(t, onset, fail)
    assert sev[0] == 0.0 and sev[-1] == 1.0 and np.all(np.diff(sev) >= 0)
    vib, cur = eq.agitator_signals(np.full_like(t, 110.0), sev)
    assert np.all(np.diff(vib) >= 0) and np.all(np.diff(cur) >= 0)
    healthy = vib[t < onset].mean()
    week_before = vib[np.searchsorted(t, fail - 7 * 24.0)]
    assert week_before > 2.0 * healthy  # visible a week ahead
    assert vib[-1] > 7.0  # ISO 10816 "unacceptable" at failure
    off_vib, off_cur = eq.agitator_signals(np.zeros(3), np.ones(3))
    assert np.all(off_cur == 0.0) and np.all(off_vib < 0.1)  # stopped agitator: background only


def test_pump_efficiency_falls_with_running_hours():
    h = np.linspace(0.0, 1000.0, 11)
    eff = eq.pump_efficiency(h, 1000.0)
    assert eff[0] == 1.0 and np.all(np.diff(eff) < 0)
    assert abs(eff[-1] - (1.0 - eq.PUMP_WEAR_AT_FAILURE)) < 1e-12


def test_pump_flow_tolerance_comes_weeks_before_rupture():
    life = np.array([700.0, 1300.0, 2000.0])
    h_tol = eq.pump_tolerance_hours(life)
    np.testing.assert_allclose(eq.pump_efficiency(h_tol, life), eq.PUMP_FLOW_TOLERANCE)
    assert np.all(h_tol < 0.7 * life)  # a worn tubing is changed long before it would rupture
    # the wear is visible a week of feeding (168 running hours) ahead: > 3 % flow loss vs < 1 % new
    assert np.all(1.0 - eq.pump_efficiency(h_tol - 168.0, life) > 0.03)
    assert np.all(1.0 - eq.pump_efficiency(0.2 * life, life) < 0.01)


def test_do_probe_sensitivity_loss_grows_with_age():
    rng = np.random.default_rng(2)
    rates = np.array([[eq.do_drift_rate(rng, a) for _ in range(200)] for a in range(10)])
    assert np.all(rates < 0)  # always a sensitivity loss: monotone drift, the reading goes low
    med = np.median(-rates, axis=1)
    assert np.all(np.diff(med) > 0) and med[1] / med[0] > 1.3  # each SIP cycle ages the probe
    days_to_fail = eq.DO_FAIL_REL_DEV / med
    assert days_to_fail[0] > 60.0  # a new probe holds its calibration through a batch
    assert days_to_fail[6] < 12.0  # an old one drifts out of tolerance within a 14-day batch
    # in a batch, the reading/true gain falls linearly from the calibration until re-standardisation
    t = np.arange(0.0, 14 * 24.0, 6.0)
    g = eq.do_probe_gain(t, np.array([-0.012]), np.array([204.0]))[0]
    assert g[0] == 1.0 and np.all(np.diff(g[t < 204.0]) < 0) and g[t >= 204.0][0] == 1.0


def test_column_pressure_rises_and_yield_falls_with_cycles():
    rng = np.random.default_rng(0)
    col = eq.ColumnHealth("COL-PA-99", 0, life_cycles=150.0, foul_rate=0.0035)
    maxp, yields, pools = [], [], []
    for c in (0, 40, 80, 120, 160):
        col.cycles = c
        cyc = ds.simulate_capture_cycle(rng, 450.0, 4.5, col)
        maxp.append(cyc.max_pressure_bar)
        yields.append(cyc.step_yield_pct)
        pools.append(cyc)
        assert cyc.pool_mass_g <= cyc.load_mass_g
        assert set(cyc.curves["phase"]) == {"Equilibrate", "Load", "Wash", "Elute", "Strip", "CIP"}
    assert np.all(np.diff(maxp) > 0), maxp
    assert np.all(np.diff(yields) < 0), yields
    assert maxp[-1] > eq.COLUMN_PRESSURE_LIMIT_BAR and pools[-1].result == "pressure_alarm"
    assert pools[0].result == "pass" and 90.0 < yields[0] < 99.0
    cu = pools[0].curves
    el = cu["phase"] == "Elute"
    assert cu["uv280_mau"][el].max() > 1000.0 and cu["ph"][el].min() < 3.8
    cip = cu["phase"] == "CIP"
    assert cu["ph"][cip].max() > 12.5 and np.all(np.diff(cu["volume_ml"]) > 0)


def test_capture_cycle_count_covers_the_harvest():
    col = eq.ColumnHealth("COL-PA-99", 10, 150.0, 0.003)
    n = ds.plan_capture_cycles(2600.0, 5.0, col)
    assert n * ds.LOAD_TARGET_G_L * ds.COLUMN_VOLUME_L >= 2600.0 * 5.0 * 0.99


def test_membrane_fouling_lowers_flux():
    rng = np.random.default_rng(1)
    mem = eq.MembraneHealth("MEM-99", 0, tau_uses=25.0)
    flux, dur = [], []
    for u in (0, 8, 16, 24):
        mem.uses = u
        run = ds.simulate_ufdf(rng, 600.0, 18.0, mem)
        flux.append(run.mean_flux_lmh)
        dur.append(run.duration_s)
        c = run.curves
        # diafiltration washes out the pool buffer: 7 diavolumes -> e^-7 of the difference left
        df = c["phase"] == "DF"
        assert c["conductivity_ms_cm"][df][-1] < ds.BUFFER_COND_MS_CM + 0.05
        uf1 = c["retentate_volume_l"][c["phase"] == "UF1"]
        assert uf1[0] > uf1[-1] + 100
        tmp = c["tmp_bar"][(c["phase"] == "UF1") | df]
        assert abs(np.median(tmp) - ds.TMP_SETPOINT_BAR) < 0.05
    assert np.all(np.diff(flux) < 0) and np.all(np.diff(dur) > 0)
    assert mem.permeability() < eq.MEMBRANE_MIN_PERMEABILITY and run.result == "low_flux"


def test_deviation_rates_and_onsets():
    rng = np.random.default_rng(5)
    dur = np.full(20000, 14 * 24.0)
    d = dv.sample_deviations(rng, dur)
    frac = np.mean(d.dev_type > 0)
    assert 0.14 < frac < 0.20
    on = d.onset_h[d.dev_type > 0]
    assert np.all((on > 24.0) & (on < dur[0]))
    cont = d.dev_type == dv.DeviationType.CONTAMINATION
    assert np.all(d.detect_h[cont] > d.onset_h[cont]) and np.all(np.isinf(d.detect_h[~cont]))
    assert np.all(np.isinf(d.onset_h[d.dev_type == 0]))


def _work_orders(site_dir: Path) -> pd.DataFrame:
    wo = pd.concat([pd.read_csv(p) for p in sorted((site_dir / "cmms").glob("*.csv"))])
    for c in ("opened_at", "closed_at"):
        wo[c] = pd.to_datetime(wo[c], utc=True)
    return wo


def test_site_feed_pump_out_of_tolerance_work_orders(site_dir: Path, read_historian):
    """Worn tubing: delivered/commanded falls below 90 %, the daily feed review raises a corrective
    work order within a day and the tubing change restores the flow."""
    from tests.twin.test_twin_site_landing import _wide

    fails = pq.read_table(site_dir / "_truth" / "failures.parquet").to_pandas()
    fp = fails[fails["failure_mode"] == "flow_out_of_tolerance"]
    assert len(fp) >= 1 and (fp["equipment_id"].str.endswith("-FP")).all()
    wo = _work_orders(site_dir)
    corr = wo[(wo["work_type"] == "corrective") & wo["equipment_id"].str.endswith("-FP")]
    assert set(corr["failure_mode"]) == {"flow_out_of_tolerance"}
    checked = 0
    for _, f in fp.iterrows():
        w = corr[
            (corr["equipment_id"] == f["equipment_id"])
            & (corr["opened_at"] >= f["failure_time"])
            & (corr["opened_at"] <= f["failure_time"] + pd.Timedelta(hours=26))
        ]
        assert len(w) == 1, f
        if pd.isna(f["repaired_at"]) or f["repaired_at"] > fails["failure_time"].max():
            continue
        unit = f["equipment_id"].rsplit("-", 1)[0]
        h = _wide(
            read_historian,
            site_dir,
            unit,
            f["failure_time"] - pd.Timedelta(days=8),
            f["repaired_at"] + pd.Timedelta(hours=12),
        )
        fed = h[(h["FEED.FLOW.SP"] > 1.0)]
        ratio = (fed["FEED.FLOW.PV"] / fed["FEED.FLOW.SP"]).rolling(60, min_periods=30).median()
        before = ratio[ratio.index < f["failure_time"] - pd.Timedelta(minutes=30)]
        week = before[before.index < f["failure_time"] - pd.Timedelta(days=6)]
        at_fail = ratio[
            (ratio.index > f["failure_time"] + pd.Timedelta(minutes=30)) & (ratio.index < w["opened_at"].iloc[0])
        ]
        after = ratio[ratio.index > f["repaired_at"] + pd.Timedelta(hours=2)]
        if len(before) < 100 or len(after) < 100:
            continue  # tubing changed in the turnaround (no feeding after it in this window)
        assert before.iloc[-1] > eq.PUMP_FLOW_TOLERANCE - 0.01
        if len(week):
            assert 0.9 < week.median() < 0.98  # wear already visible a week ahead
        if len(at_fail):
            assert at_fail.median() < eq.PUMP_FLOW_TOLERANCE + 0.005
        assert after.median() > 0.985  # new tubing
        checked += 1
    assert checked >= 1


def test_site_do_probe_drift_work_orders(site_dir: Path):
    """DO probe: the blood-gas po2 departs from the (controlled) online reading in one direction,
    the first check beyond 15 % raises a corrective work order."""
    fails = pq.read_table(site_dir / "_truth" / "failures.parquet").to_pandas()
    do = fails[fails["failure_mode"] == "probe_drift"]
    assert len(do) >= 1
    wo = _work_orders(site_dir)
    corr = wo[(wo["work_type"] == "corrective") & wo["equipment_id"].str.endswith("-DO")]
    assert set(corr["failure_mode"]) == {"probe_drift"}
    for _, f in do.iterrows():
        w = corr[
            (corr["equipment_id"] == f["equipment_id"])
            & (corr["opened_at"] >= f["failure_time"])
            & (corr["opened_at"] <= f["failure_time"] + pd.Timedelta(hours=25))
        ]
        assert len(w) == 1, f
    lims = pd.concat([pd.read_csv(p) for p in sorted((site_dir / "lims").glob("*.csv"))])
    po2 = lims[lims["analyte"] == "po2_offline"]
    truth = pq.read_table(site_dir / "_truth" / "batches.parquet").to_pandas().set_index("batch_id")
    dev = po2["value"].to_numpy() / truth.loc[po2["batch_id"], "do_pct"].to_numpy() - 1.0
    assert np.mean(dev > -0.03) > 0.97  # sensitivity loss: the true DO is at or above the setpoint
    assert dev.max() > 0.10  # some probes drift far before they are caught
