"""Equipment degradation, downstream unit operations and deviation sampling."""

from __future__ import annotations

import numpy as np

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
