"""Physics of the microbial (Pichia) fed-batch model: balances, gas analysis, control, faults.

All scenarios run in ONE vectorised call (module fixture), so the module costs one simulation.
"""

from __future__ import annotations

import numpy as np
import pytest

from twin.microbial import (
    MW_ETOH,
    MW_GLY,
    MW_MEOH,
    MW_P,
    MW_X,
    SERIES_UNITS,
    FaultType,
    FermentationFaults,
    FermentationRecipe,
    Fermenter,
    Phase,
    do_equilibrium,
    do_saturation_mg_l,
    offgas_rates,
    simulate_fermentations,
)

# name, fault kind, anchor (0 inoculation, 1 feed start), onset h, duration h, magnitude
SCENARIOS = [
    ("nominal", FaultType.NONE, 0, np.inf, 0.0, 0.0),
    ("aeration", FaultType.AERATION_FAILURE, 1, 30.0, 10.0, 0.4),
    ("blockage", FaultType.FEED_BLOCKAGE, 1, 30.0, 8.0, 0.2),
    ("overfeed", FaultType.OVERFEED, 1, 30.0, 5.0, 1.6),
    ("cooling", FaultType.COOLING_FAILURE, 1, 60.0, 12.0, 14.0),
    ("base_pump", FaultType.BASE_PUMP_FAILURE, 1, 30.0, 3.0, 0.0),
    ("contamination", FaultType.CONTAMINATION, 0, 10.0, 0.0, 3e-4),
    ("no_methanol", FaultType.FEED_BLOCKAGE, 1, 0.0, 1e4, 0.0),
    ("weak_vessel", FaultType.NONE, 0, np.inf, 0.0, 0.0),
    ("weak_vessel_big_motor", FaultType.NONE, 0, np.inf, 0.0, 0.0),
    ("weak_vessel_air_trip", FaultType.AERATION_FAILURE, 0, 15.0, 4.0, 0.3),  # O2-starved glycerol batch
]
IDX = {s[0]: i for i, s in enumerate(SCENARIOS)}
N = len(SCENARIOS)
REC = FermentationRecipe()
SAMPLE_H = 0.5 + 8.0 * np.arange(16)


@pytest.fixture(scope="module")
def r():
    f = FermentationFaults.none(N)
    for i, (_, ft, anchor, onset, dur, mag) in enumerate(SCENARIOS):
        f.fault_type[i], f.anchor[i], f.onset_h[i], f.duration_h[i], f.magnitude[i] = int(ft), anchor, onset, dur, mag
    kla = np.full(N, Fermenter.kla_ref_per_h)
    o2_max = np.full(N, Fermenter.o2_max_slpm)
    agit_max = np.full(N, Fermenter.agit_max_rpm)
    for name in ("weak_vessel", "weak_vessel_big_motor", "weak_vessel_air_trip"):  # half the kLa, no O2
        kla[IDX[name]], o2_max[IDX[name]] = 150.0, 0.0
    agit_max[IDX["weak_vessel_big_motor"]] = 1000.0
    ferm = Fermenter(kla_ref_per_h=kla, o2_max_slpm=o2_max, agit_max_rpm=agit_max)
    return simulate_fermentations([REC] * N, fermenter=ferm, faults=f, sample_times_h=np.tile(SAMPLE_H, (N, 1)))


def _ok(r, i):
    """Records with a step (inside the culture, before its end record)."""
    return ~np.isnan(r["our"][i])


def _window(r, i, start, stop):
    """Records with start <= culture age < stop (and inside the culture)."""
    return (r.t_h >= start - 1e-9) & (r.t_h < stop - 1e-9) & _ok(r, i)


def _onset(r, name):
    return r.events["fault_onset_h"][IDX[name]]


# ------------------------------------------------------------------ balances


def test_carbon_balance_closes_and_co2_is_carbon_taken_up_minus_carbon_fixed(r):
    """C in (seed + glycerol + methanol fed + contaminant inoculum) = C in broth + sampled + CO2."""
    c_in = r.carbon_initial[:, None] + r["feed_total"] * 1000.0 / MW_MEOH + r["carbon_external"]
    c_out = r["carbon_in_vessel"] + r["carbon_sampled"] + r["co2_total"]
    ok = ~np.isnan(c_in)
    np.testing.assert_allclose(c_out[ok], c_in[ok], rtol=1e-10)
    # nominal (no samples withdraw anything but broth): CO2 = substrate C taken up - C fixed in biomass/product
    i = IDX["nominal"]
    k = int(np.nonzero(_ok(r, i))[0][-1])
    v = r["volume"][i, k]
    taken_up = r["gly_consumed"][i, k] / MW_GLY + r["meoh_consumed"][i, k] / MW_MEOH
    fixed = (
        (r["dcw"][i, k] * v - REC.seed_dcw_g_l * REC.initial_mass_kg / Fermenter.density_kg_l) / MW_X
        + r["titer"][i, k] * v / 1000.0 / MW_P
        + r["ethanol"][i, k] * v / MW_ETOH
    )
    sampled = r["carbon_sampled"][i, k]
    assert r["co2_total"][i, k] == pytest.approx(taken_up - fixed - sampled, rel=0.02)
    assert 0.3 < r["co2_total"][i, k] / taken_up < 0.6  # methanol/glycerol: ~half the carbon leaves as CO2


def test_cer_integral_matches_the_co2_evolved(r):
    """The recorded CER (what the off-gas analyser reports) integrates to the CO2 of the carbon balance."""
    for name in ("nominal", "contamination", "weak_vessel"):
        i = IDX[name]
        ok = _ok(r, i)
        cer_mol_h = np.nan_to_num(r["cer"][i] * r["volume"][i] / 1000.0)
        dt = np.diff(r.t_h)[0]
        integral = np.sum(0.5 * (cer_mol_h[1:] + cer_mol_h[:-1]) * dt * ok[1:])
        assert integral == pytest.approx(np.nanmax(r["co2_total"][i]), rel=0.02), name
        our_mol_h = np.nan_to_num(r["our"][i] * r["volume"][i] / 1000.0)
        assert np.sum(0.5 * (our_mol_h[1:] + our_mol_h[:-1]) * dt * ok[1:]) == pytest.approx(
            np.nanmax(r["o2_total"][i]), rel=0.02
        ), name


def test_methanol_fed_is_consumed_accumulated_or_sampled(r):
    fed = r["feed_total"] * 1000.0  # g
    in_vessel = r["methanol"] * r["volume"]
    ok = ~np.isnan(fed)
    np.testing.assert_allclose((r["meoh_consumed"] + in_vessel + r["meoh_sampled"])[ok], fed[ok], rtol=1e-9, atol=1e-6)
    # the feed tank balance falls by exactly what was fed
    np.testing.assert_allclose((REC.feed_tank_kg - r["feed_tank"])[ok], r["feed_total"][ok], atol=1e-9)
    i = IDX["nominal"]
    assert 35.0 < np.nanmax(r["feed_total"][i]) < 90.0  # kg methanol per batch
    # the totaliser integrates the delivered flow
    dt = np.diff(r.t_h)[0]
    flow = np.nan_to_num(r["feed_flow"][i])
    assert np.nanmax(r["feed_total"][i]) == pytest.approx(np.sum(flow) * dt, rel=0.01)


def test_weight_balance_includes_gas_exchange(r):
    """Mass = initial + feed + acid + base - samples - evaporation + O2 absorbed - CO2 released."""
    gas = (32.0 * r["o2_total"] - 44.01 * r["co2_total"]) / 1000.0
    expected = (
        REC.initial_mass_kg
        + r["feed_total"]
        + r["base_total"]
        + r["acid_total"]
        - r["sample_total"]
        - r["evaporation_total"]
        + gas
    )
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(r["mass"][ok], expected[ok], rtol=1e-12, atol=1e-9)
    i = IDX["nominal"]
    k = int(np.nonzero(_ok(r, i))[0][-1])
    assert 5.0 < gas[i, k] < 30.0  # without the gas term the weight balance misses 5-30 kg
    assert 5.0 < r["evaporation_total"][i, k] < 30.0  # exhaust saturated with water at broth temperature
    assert 3.0 < r["base_total"][i, k] < 20.0 and r["acid_total"][i, k] > 0.05  # acid: the initial pH correction
    n_samples = int(np.sum(r.events["end_h"][i] >= SAMPLE_H))
    assert r["sample_total"][i, k] == pytest.approx(n_samples * Fermenter.sample_kg)


def test_base_addition_tracks_nitrogen_assimilated(r):
    """NH4OH is the N source: base dosed ~ 0.17 mol N per C-mol biomass formed (+ pH buffer change)."""
    i = IDX["nominal"]
    k = int(np.nonzero(_ok(r, i))[0][-1])
    v = r["volume"][i, k]
    x_formed = (r["dcw"][i, k] * v - REC.seed_dcw_g_l * REC.initial_mass_kg / Fermenter.density_kg_l) / MW_X
    base_mol = r["base_total"][i, k] * Fermenter.base_mol_per_kg - r["acid_total"][i, k] * Fermenter.acid_mol_per_kg
    assert base_mol == pytest.approx(0.17 * x_formed, rel=0.1)


# ------------------------------------------------------------------ gas analysis


def test_offgas_rates_recomputed_from_flows_and_exhaust_analysis(r):
    our, cer = offgas_rates(r["air_flow"], r["o2_flow"], r["offgas_o2"] / 100.0, r["offgas_co2"] / 100.0, r["volume"])
    ok = ~np.isnan(r["our"])
    np.testing.assert_allclose(our[ok], r["our"][ok], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cer[ok], r["cer"][ok], rtol=1e-6, atol=1e-6)
    i = IDX["nominal"]
    air_only = _ok(r, i) & (r["o2_flow"][i] < 1e-9) & (r["our"][i] > 5.0)
    assert air_only.sum() > 100
    assert np.all(r["offgas_o2"][i, air_only] < 20.95) and np.all(r["offgas_co2"][i, air_only] > 0.04)
    assert 150.0 < np.nanmax(r["our"][i]) < 300.0  # high-cell-density yeast (mmol/L/h)


def test_respiratory_quotient_follows_the_substrate(r):
    """RQ from stoichiometry: ~0.75 on glycerol, ~0.5 on methanol (reduced), ~0.95 on biomass (starving)."""
    i = IDX["nominal"]
    ph, rq = r["phase"][i], r["rq"][i]
    gly = (ph == Phase.GLYCEROL_BATCH) & (r.t_h > 2)
    meoh = (ph == Phase.INDUCTION) & (r.t_h > r.events["feed_start_h"][i] + 10)
    trans = ph == Phase.TRANSITION
    assert 0.70 < np.median(rq[gly]) < 0.80
    assert 0.45 < np.median(rq[meoh]) < 0.60
    assert trans.sum() >= 3 and 0.90 < np.median(rq[trans]) < 1.0
    # the analyser's view agrees: CER / OUR
    np.testing.assert_allclose(r["cer"][i, meoh] / r["our"][i, meoh], rq[meoh], rtol=1e-9)


# ------------------------------------------------------------------ oxygen


def test_do_saturation_and_transfer_equilibrium():
    c25 = do_saturation_mg_l(25.0, 1.01325)
    assert c25 == pytest.approx(8.26 * 0.95, rel=0.02)  # air-saturated water at 25 C, salted out
    temps = np.array([15.0, 20.0, 25.0, 30.0, 35.0])
    assert np.all(np.diff(do_saturation_mg_l(temps, 1.01325)) < 0)
    assert do_saturation_mg_l(25.0, 1.01325 + 0.6) > 1.55 * c25  # back-pressure raises solubility
    assert do_saturation_mg_l(25.0, 1.01325, y_o2=0.4) == pytest.approx(c25 * 0.4 / 0.2095)
    kla = np.array([50.0, 100.0, 200.0, 400.0, 800.0])
    c = do_equilibrium(kla, 0.25, 40.0, 0.005)  # mM, mmol/L/h
    assert np.all(np.diff(c) > 0) and np.all((c > 0) & (c < 0.25))  # more kLa -> more DO
    assert do_equilibrium(200.0, 0.25, 60.0, 0.005) < do_equilibrium(200.0, 0.25, 40.0, 0.005)
    # transfer = uptake at the root
    assert 200.0 * (0.25 - do_equilibrium(200.0, 0.25, 40.0, 0.005)) == pytest.approx(
        40.0 * do_equilibrium(200.0, 0.25, 40.0, 0.005) / (0.005 + do_equilibrium(200.0, 0.25, 40.0, 0.005))
    )


def test_do_cascade_holds_the_setpoint_in_order(r):
    i = IDX["nominal"]
    ok = _ok(r, i) & (r["phase"][i] == Phase.INDUCTION) & (r.t_h > r.events["feed_start_h"][i] + 2)
    np.testing.assert_allclose(r["do"][i, ok], REC.do_sp_mg_l, atol=1e-9)
    agit, air, o2 = r["agitation"][i, ok], r["air_flow"][i, ok], r["o2_flow"][i, ok]
    assert agit.min() >= Fermenter.agit_min_rpm - 1e-9 and agit.max() <= Fermenter.agit_max_rpm + 1e-9
    assert np.all(agit[air > Fermenter.air_min_slpm + 1e-6] > Fermenter.agit_max_rpm - 1e-6)  # stage 1 first
    assert np.any(o2 > 0.5) and np.all(air[o2 > 1e-9] > Fermenter.air_max_slpm - 1e-6)  # O2 last


def test_more_agitation_raises_do_when_oxygen_limited(r):
    """A vessel with half the kLa and no O2 enrichment runs out of oxygen; a bigger motor (more rpm) gives
    more DO at the same demand; O2 limitation makes methanol accumulate."""
    w, b = IDX["weak_vessel"], IDX["weak_vessel_big_motor"]
    split = int(np.nonzero(r["agitation"][w] != r["agitation"][b])[0][0])
    np.testing.assert_array_equal(r["do"][w, :split], r["do"][b, :split])  # identical until the motor limit
    assert r["agitation"][w, split] == pytest.approx(Fermenter.agit_max_rpm) and r["agitation"][b, split] > 850.0
    limited = _ok(r, w) & (r["do"][w] < REC.do_sp_mg_l - 0.2) & (r["phase"][w] == Phase.INDUCTION)
    assert limited.sum() > 12
    first = int(np.nonzero(limited)[0][0])
    assert r["do"][b, first] == pytest.approx(REC.do_sp_mg_l)  # same demand, more rpm: DO still held
    # O2 limitation: methanol is not oxidised and accumulates
    assert np.nanmax(r["methanol"][w, limited]) > 5.0 * np.nanmax(r["methanol"][IDX["nominal"], 200:])
    # an O2-starved glycerol batch ferments part of the glycerol to ethanol, respired again afterwards
    e = IDX["weak_vessel_air_trip"]
    assert np.nanmax(r["ethanol"][e]) > 0.1 and np.nanmax(r["ethanol"][IDX["nominal"]]) < 1e-6
    assert r["ethanol"][e, int(np.nonzero(_ok(r, e))[0][-1])] < 0.01


# ------------------------------------------------------------------ temperature, pH


def test_temperature_control_holds_setpoint_and_cooling_failure_shows(r):
    n, c = IDX["nominal"], IDX["cooling"]
    fs = r.events["feed_start_h"][n]
    steady = _ok(r, n) & ((r.t_h < fs) | (r.t_h > fs + 3))
    assert np.all(np.abs(r["temperature"][n, steady] - r["temperature_sp"][n, steady]) < 0.05)
    assert np.nanmax(r["cw_flow"][n]) < 0.8 * Fermenter.cw_max_lpm
    on = _onset(r, "cooling")
    hot = _window(r, c, on + 2.0, on + 12.0)
    assert np.all(r["cw_in"][c, hot] == pytest.approx(Fermenter.cw_supply_c + 14.0))
    assert np.all(r["cw_flow"][c, hot] == pytest.approx(Fermenter.cw_max_lpm))  # valve wide open
    assert np.all(r["temperature"][c, hot] - r["temperature_sp"][c, hot] > 0.5)
    assert np.nanmax(r["temperature"][c, hot] - r["temperature_sp"][c, hot]) > 2.0
    # energy balance: jacket duty = heat of fermentation (460 kJ/mol O2) + agitation - evaporation
    # - losses + sensible heat of the 30 -> 25 C shift
    ok = _ok(r, n)
    k = int(np.nonzero(ok)[0][-1]) + 1
    dt_s = np.diff(r.t_h)[0] * 3600.0
    q_met = 460.0 * r["o2_total"][n, k]
    agit = np.sum(Fermenter.power_max_kw * (r["agitation"][n, ok] / Fermenter.agit_max_rpm) ** 3) * dt_s
    loss = np.sum(Fermenter.ua_ambient_kw_k * (r["temperature"][n, ok] - Fermenter.t_ambient_c)) * dt_s
    sensible = 4.1 * np.mean(r["mass"][n, ok]) * (r["temperature"][n, 0] - r["temperature"][n, k])
    expected = q_met + agit - 2430.0 * r["evaporation_total"][n, k] - loss + sensible
    assert r["cw_heat_kj"][n, k] == pytest.approx(expected, rel=0.03)
    assert q_met > 0.5 * r["cw_heat_kj"][n, k]  # methanol oxidation is the main heat load


def test_ph_control_dead_band_and_base_pump_failure(r):
    n, b = IDX["nominal"], IDX["base_pump"]
    ok = _ok(r, n) & (r.t_h > 1.0)
    assert np.all(np.abs(r["ph"][n, ok] - REC.ph_sp) <= Fermenter.ph_deadband + 0.02)  # + controller offset
    on = _onset(r, "base_pump")
    down = _window(r, b, on, on + 3.0)
    assert np.all(r["base_flow"][b, down] == 0.0) and np.all(r["base_flow"][n, down] > 20.0)
    assert r["ph"][b, down][-1] < REC.ph_sp - 0.2
    back = _window(r, b, on + 4.0, on + 8.0)
    assert np.all(np.abs(r["ph"][b, back] - REC.ph_sp) <= Fermenter.ph_deadband + 0.02)  # pump back: recovers


# ------------------------------------------------------------------ faults

#: signal -> minimum |fault - nominal| within the first hours after the onset
VISIBLE = {
    "aeration": {"air_flow": 10.0, "o2_flow": 1.0},
    "blockage": {"feed_flow": 0.05, "our": 10.0},
    "overfeed": {"feed_flow": 0.05, "our": 5.0},
    "cooling": {"cw_in": 10.0, "cw_flow": 2.0},
    "base_pump": {"base_flow": 20.0, "ph": 0.1},
    "contamination": {"base_flow": 10.0, "cer": 2.0},
}
SIGNALS = (
    "temperature",
    "ph",
    "do",
    "agitation",
    "air_flow",
    "o2_flow",
    "pressure",
    "offgas_o2",
    "offgas_co2",
    "our",
    "cer",
    "feed_flow",
    "feed_sp",
    "feed_tank",
    "base_flow",
    "base_total",
    "acid_flow",
    "acid_total",
    "mass",
    "cw_flow",
    "cw_in",
    "cw_out",
    "phase",
)


@pytest.mark.parametrize("name", list(VISIBLE))
def test_fault_identical_before_onset_and_visible_after(r, name):
    i, n = IDX[name], IDX["nominal"]
    on = _onset(r, name)
    assert np.isfinite(on)
    before = r.t_h < on - 1e-9
    for s in SIGNALS:
        np.testing.assert_array_equal(r[s][i, before], r[s][n, before], err_msg=s)
    horizon = 40.0 if name == "contamination" else 3.0  # a contaminant needs time to grow
    after = _window(r, i, on, on + horizon)
    for s, thr in VISIBLE[name].items():
        assert np.nanmax(np.abs(r[s][i, after] - r[s][n, after])) > thr, s
    assert np.all(r["fault_active"][i, _window(r, i, on, on + 0.5)] == 1.0)
    assert not np.any(r["fault_active"][i, before] == 1.0)


def test_fault_mechanisms(r):
    n = IDX["nominal"]
    # aeration: air capped at 40 % of the minimum air flow, the cascade enriches with O2 and holds DO
    a = IDX["aeration"]
    w = _window(r, a, _onset(r, "aeration"), _onset(r, "aeration") + 10.0)
    assert np.all(r["air_flow"][a, w] <= 0.4 * Fermenter.air_min_slpm + 1e-9)
    assert np.all(r["o2_flow"][a, w] > r["o2_flow"][n, w])
    # blockage: 20 % delivered, less O2 uptake, the cascade backs off
    b = IDX["blockage"]
    w = _window(r, b, _onset(r, "blockage") + 1.0, _onset(r, "blockage") + 8.0)
    np.testing.assert_allclose(r["feed_flow"][b, w], 0.2 * r["feed_sp"][b, w])
    assert np.all(r["our"][b, w] < 0.6 * r["our"][n, w]) and np.all(r["do"][b, w] >= REC.do_sp_mg_l - 1e-9)
    # overfeed: delivered 1.6 x setpoint; residual methanol and O2 uptake rise
    o = IDX["overfeed"]
    w = _window(r, o, _onset(r, "overfeed"), _onset(r, "overfeed") + 5.0)
    np.testing.assert_allclose(r["feed_flow"][o, w], 1.6 * r["feed_sp"][o, w])
    assert np.max(r["methanol"][o, w]) > 1.5 * np.max(r["methanol"][n, w])
    assert np.all(r["our"][o, w][3:] > 1.2 * r["our"][n, w][3:])
    # contamination: the contaminant takes methanol, acidifies (more base), lowers RQ; proteases eat product
    c = IDX["contamination"]
    k = int(np.nonzero(_ok(r, c))[0][-1])
    assert r["x_contaminant"][c, k] > 5.0
    assert r["base_total"][c, k] > 1.5 * r["base_total"][n, k]
    late = _window(r, c, 80.0, 100.0)
    assert np.median(r["rq"][c, late]) < np.median(r["rq"][n, late]) - 0.03
    assert r["titer"][c, k] < 0.5 * r["titer"][n, k]


# ------------------------------------------------------------------ sequence and product


def test_phase_sequence_and_product_formation_needs_methanol(r):
    n = IDX["nominal"]
    ev = r.events
    t_out, t_feed, t_end = ev["glycerol_out_h"][n], ev["feed_start_h"][n], ev["end_h"][n]
    assert 15.0 < t_out < 26.0  # glycerol batch of 40 g/L from 0.4 g/L seed
    k = int(np.searchsorted(r.t_h, t_out))
    assert r["glycerol"][n, k] < 0.5 and r["do"][n, k] > REC.do_sp_mg_l + 1.5  # the DO spike
    assert np.all(r["do"][n, _window(r, n, 8.0, t_out - 1.0)] == pytest.approx(REC.do_sp_mg_l))
    assert t_feed == pytest.approx(t_out + REC.hold_h, abs=1e-6)
    assert t_end == pytest.approx(t_feed + REC.induction_h, abs=0.2)
    assert np.all(r["titer"][n, r.t_h <= t_feed] == 0.0)
    assert np.all(r["feed_sp"][n, r.t_h < t_feed - 1e-9] == 0.0)
    assert np.all(r["temperature_sp"][n, _window(r, n, t_feed + 1.0, t_end)] == REC.temp_induction_c)
    k_end = int(np.nonzero(_ok(r, n))[0][-1])
    assert 1500.0 < r["titer"][n, k_end] < 4000.0  # mg/L
    assert 80.0 < r["dcw"][n, k_end] < 150.0  # g/L
    # product is tied to methanol: without methanol (feed line blocked from the start) almost none
    assert np.nanmax(r["titer"][IDX["no_methanol"]]) < 0.02 * r["titer"][n, k_end]
    ind = _window(r, n, t_feed, t_end)
    assert np.corrcoef(r["feed_total"][n, ind], r["titer"][n, ind])[0, 1] > 0.98
    assert np.all(np.diff(r["titer"][n, ind]) > 0)


def test_samples_record_the_truth_before_withdrawal(r):
    n = IDX["nominal"]
    s = r.samples
    taken = s["taken"][n]
    assert taken.sum() == int(np.sum(r.events["end_h"][n] > SAMPLE_H))
    j = int(np.nonzero(taken)[0][5])
    k = int(np.searchsorted(r.t_h, s["t_h"][n, j]))
    assert s["dcw"][n, j] == pytest.approx(r["dcw"][n, k])
    assert s["titer"][n, j] == pytest.approx(r["titer"][n, k])


def test_series_units_complete_and_nan_after_end(r):
    assert set(r.series) == set(SERIES_UNITS)
    for i in range(N):
        after = r.t_h > r.events["end_h"][i] + 1e-9
        assert np.all(np.isnan(r["mass"][i, after])) and np.all(np.isnan(r["our"][i, after]))
        k_end = int(round(r.events["end_h"][i] / np.diff(r.t_h)[0]))
        assert not np.isnan(r["mass"][i, k_end]) and np.isnan(r["our"][i, k_end])  # final state, no step
        assert not np.isnan(r["our"][i, k_end - 1])


def test_deterministic_and_struct_of_arrays_equivalent():
    recipes = [FermentationRecipe(induction_h=30.0), FermentationRecipe(induction_h=30.0, feed_mu_set=0.02)]
    a = simulate_fermentations(recipes)
    b = simulate_fermentations({"induction_h": 30.0, "feed_mu_set": np.array([0.025, 0.02])})
    c = simulate_fermentations(recipes)
    for key in ("titer", "our", "mass", "temperature"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], c[key])
    assert a["titer"][0, -1] != a["titer"][1, -1]
    with pytest.raises(ValueError, match="unknown FermentationRecipe fields"):
        simulate_fermentations({"feed_rate": 1.0})
