"""Physics of the bioreactor model: balances, control, kinetics, quality, faults.

All scenarios are integrated in ONE vectorised call (the batch axis is what the model is for),
so the whole module costs about one simulation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin.bioreactor import (
    DESIGN_SPACE,
    NOMINAL_RECIPE,
    Faults,
    KineticParams,
    Medium,
    Recipe,
    recipes_to_arrays,
    simulate_batches,
)
from twin.deviations import DeviationType

DT = 0.25
N_SITE = 40

SCENARIOS: list[tuple[str, Recipe]] = [
    ("nominal", NOMINAL_RECIPE),
    ("bolus", Recipe(feed_bolus=True)),
    ("feed_low", Recipe(feed_rate_pct_per_day=1.5)),
    ("feed_high", Recipe(feed_rate_pct_per_day=4.5)),
    ("short", Recipe(duration_days=12.0)),
    ("long", Recipe(duration_days=16.0)),
    ("shift", Recipe(feed_rate_pct_per_day=4.0, temp_shift_day=6.0, temp_shift_c=33.0)),
    ("noshift", Recipe(feed_rate_pct_per_day=4.0, temp_shift_day=6.0, temp_shift_c=36.8)),
    ("agitator_fail", NOMINAL_RECIPE),
    ("pump", NOMINAL_RECIPE),
    ("do_drift", NOMINAL_RECIPE),
    ("contamination", NOMINAL_RECIPE),
    ("temp_fault", NOMINAL_RECIPE),
    ("high_gln_feed", NOMINAL_RECIPE),
    ("high_osm_feed", NOMINAL_RECIPE),
]
IDX = {name: i for i, (name, _) in enumerate(SCENARIOS)}
SITE = slice(len(SCENARIOS), len(SCENARIOS) + N_SITE)


def _site_like(n: int, seed: int = 0) -> list[Recipe]:
    """Nominal recipe with the site's small batch-to-batch variation."""
    from twin.site import vary_recipe

    rng = np.random.default_rng(seed)
    return [vary_recipe(rng, NOMINAL_RECIPE) for _ in range(n)]


@pytest.fixture(scope="module")
def r():
    recipes = [rec for _, rec in SCENARIOS] + _site_like(N_SITE, seed=3)
    n = len(recipes)
    f = Faults.none(n)
    f.agitator_fail_h[IDX["agitator_fail"]] = 150.0
    i = IDX["pump"]
    f.pump_run_h0[i], f.pump_life_h[i], f.pump_down_h[i] = 400.0, 600.0, 6.0
    f.do_drift_per_day[IDX["do_drift"]] = 0.02
    i = IDX["contamination"]
    f.dev_type[i], f.dev_onset_h[i], f.dev_magnitude[i] = DeviationType.CONTAMINATION, 120.0, 1.0
    i = IDX["temp_fault"]
    f.dev_type[i], f.dev_onset_h[i], f.dev_magnitude[i], f.dev_duration_h[i] = (
        DeviationType.TEMPERATURE_FAULT,
        100.0,
        2.5,
        10.0,
    )
    gln = np.full(n, Medium().gln_feed)
    gln[IDX["high_gln_feed"]] = 80.0
    osm = np.full(n, Medium().osm_feed_other)
    osm[IDX["high_osm_feed"]] = 900.0
    return simulate_batches(
        recipes, faults=f, record_every_h=DT, dt_h=DT, medium=Medium(gln_feed=gln, osm_feed_other=osm)
    )


def _valid(r, i):
    return r.t_h <= r.end_h[i] + 1e-9


def _at(r, hours):
    return int(np.searchsorted(r.t_h, hours))


# ------------------------------------------------------------------ balances


def test_volume_balance_closes(r):
    """V = V0 + feed + base - samples at every recorded time."""
    v0 = r.recipes["working_volume_l"][:, None]
    expected = v0 + (r["feed_total"] + r["base_total"] - r["sample_total"]) / 1000.0
    ok = ~np.isnan(r["volume"])
    np.testing.assert_allclose(r["volume"][ok], expected[ok], rtol=1e-9, atol=1e-6)
    i = IDX["nominal"]
    assert np.nanmax(r["sample_total"][i]) > 0 and np.nanmax(r["base_total"][i]) > 1000.0
    assert np.nanmax(r["feed_total"][i]) > 0.25 * 2000.0 * 1000.0  # > 25 % of V0 fed over the batch


def test_glucose_mass_balance_closes(r):
    """Glucose in the vessel = initial + fed - consumed - withdrawn with samples."""
    g0 = Medium().glc_basal * r.recipes["working_volume_l"][:, None]
    in_vessel = r["glucose"] * r["volume"]
    expected = g0 + r["glucose_fed_g"] - r["glucose_consumed_g"] - r["glucose_sampled_g"]
    ok = ~np.isnan(in_vessel)
    np.testing.assert_allclose(in_vessel[ok], expected[ok], rtol=1e-8, atol=1e-6)
    # fed glucose reconciles with the delivered feed volume and the feed concentration
    fed_l = r["feed_total"] / 1000.0
    np.testing.assert_allclose(r["glucose_fed_g"][ok], (fed_l * Medium().glc_feed)[ok], rtol=1e-9, atol=1e-6)
    assert np.all(np.diff(r["glucose_consumed_g"][IDX["nominal"], _valid(r, 0)]) > 0)


def test_feed_totaliser_integrates_delivered_flow(r):
    for i in range(r.n_batches):
        ok = _valid(r, i)
        flow = r["feed_flow"][i, ok][:-1]  # mL/min, held over each step
        total = np.concatenate([[0.0], np.cumsum(flow * DT * 60.0)])
        np.testing.assert_allclose(r["feed_total"][i, ok], total, rtol=1e-9, atol=1e-6)
    # bolus: the same daily volume as continuous feed, in one-hour pulses
    b, c = IDX["bolus"], IDX["nominal"]
    np.testing.assert_allclose(np.nanmax(r["feed_total"][b]), np.nanmax(r["feed_total"][c]), rtol=0.01)
    assert np.nanmax(r["feed_flow_sp"][b]) > 20 * np.nanmax(r["feed_flow_sp"][c])
    # feeding starts on day 3
    sp = r["feed_flow_sp"][c]
    assert np.all(sp[r.t_h < 72.0] == 0.0) and np.all(sp[(r.t_h > 73) & (r.t_h < 330)] > 0)


def test_offgas_gas_balance_closes(r):
    """OUR and CER recomputed from gas flows and exhaust analysis (inert balance) match the model."""
    sl = 22.414
    air, o2, co2 = r["air_flow"], r["o2_flow"], r["co2_flow"]
    y_o2, y_co2 = r["offgas_o2"] / 100.0, r["offgas_co2"] / 100.0
    inert = (1.0 - 0.2095 - 0.0004) * air / sl  # mol/min
    n_out = inert / (1.0 - y_o2 - y_co2)
    our = ((0.2095 * air + o2) / sl - y_o2 * n_out) * 60e3 / r["volume"]
    cer = (y_co2 * n_out - (0.0004 * air + co2) / sl) * 60e3 / r["volume"]
    ok = ~np.isnan(our)
    np.testing.assert_allclose(our[ok], r["our"][ok], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cer[ok], r["cer"][ok], rtol=1e-6, atol=1e-6)
    air_only = (o2 < 1e-9) & (co2 < 1e-9) & (r["our"] > 0.5)
    assert air_only.sum() > 100
    assert np.all(r["offgas_o2"][air_only] < 20.95) and np.all(r["offgas_co2"][air_only] > 0.04)


# ------------------------------------------------------------------ control


def test_do_held_at_setpoint_without_faults(r):
    site = r["dissolved_oxygen"][SITE]
    sp = r.recipes["do_pct"][SITE, None]
    assert np.nanmax(np.abs(site - sp)) < 0.05
    agit = r["agitation"][SITE]
    assert np.nanmin(agit) >= 55.0 - 1e-6 and np.nanmax(agit) <= 115.0 + 1e-6
    o2_on = r["o2_flow"][SITE] > 0.05
    assert o2_on.any() and np.all(agit[o2_on] > 114.9)  # O2 enrichment only once agitation is maxed


def test_ph_control_dead_band(r):
    ph = r["ph"][SITE][:, r.t_h > 6]
    sp = r.recipes["ph"][SITE, None]
    dev = ph - sp
    ok = ~np.isnan(dev)
    assert np.all(np.abs(dev[ok]) < 0.05 + 0.02)  # within the dead band (+ proportional offset)
    # lactate production -> base added while acid; lactate consumption later -> CO2 sparged
    i = IDX["nominal"]
    base = r["base_total"][i]
    assert base[_at(r, 96)] > base[_at(r, 24)] + 5000
    assert np.nanmax(r["co2_flow"][i, r.t_h > 200]) > 0.1


# ------------------------------------------------------------------ kinetics


def test_ranges_and_titer_monotonic(r):
    h = {k: v[SITE] for k, v in r.harvest.items()}
    assert np.all((h["peak_vcd"] > 10) & (h["peak_vcd"] < 30))
    assert np.all((h["titer"] > 1) & (h["titer"] < 8))
    assert np.all((h["viability"] > 45) & (h["viability"] < 95))
    assert np.mean((h["viability"] >= 60) & (h["viability"] <= 95)) >= 0.8
    for k, lo, hi in (
        ("g0f", 30, 60),
        ("g1f", 25, 45),
        ("g2f", 3, 15),
        ("man5", 1, 10),
        ("afucosylation", 3, 15),
        ("hmw", 0.3, 5),
    ):
        assert np.all((h[k] > lo) & (h[k] < hi)), k
    assert np.all(h["g0f"] + h["g1f"] + h["g2f"] + h["afucosylation"] <= 100.0)
    for i in range(SITE.start, SITE.stop):
        t = r["titer"][i, _valid(r, i)]
        assert np.all(np.diff(t) >= -1e-9), "titer must rise monotonically"


def test_temperature_shift_lowers_growth_and_raises_qp(r):
    s, n = IDX["shift"], IDX["noshift"]
    a, b = _at(r, 6.25 * 24), _at(r, 7.25 * 24)
    growth = np.log(r["vcd"][[s, n], b] / r["vcd"][[s, n], a])
    assert growth[0] < growth[1] - 0.1
    a, b = _at(r, 6.5 * 24), _at(r, 7.5 * 24)
    qp = (r["titer"][[s, n], b] - r["titer"][[s, n], a]) / (r["ivcd"][[s, n], b] - r["ivcd"][[s, n], a])
    assert qp[0] > 1.3 * qp[1]
    assert r.harvest["titer"][s] > r.harvest["titer"][n]
    assert r.harvest["hmw"][n] > r.harvest["hmw"][s]  # the warmer culture ages its product
    assert np.all(r["temperature_sp"][s, (r.t_h > 6 * 24 + 2) & _valid(r, s)] == 33.0)


def test_feed_rate_drives_growth(r):
    lo, nom = IDX["feed_low"], IDX["nominal"]
    assert r.harvest["peak_vcd"][nom] > r.harvest["peak_vcd"][lo] + 2.0
    assert r.harvest["titer"][nom] > r.harvest["titer"][lo]
    assert np.nanmin(r["glucose"][lo, r.t_h > 96]) < 0.3  # the underfed culture starves
    # over-feeding raises osmolality
    assert r.harvest["osmolality"][IDX["feed_high"]] > r.harvest["osmolality"][nom] + 30


def test_lactate_produced_then_consumed(r):
    lac = r["lactate"][IDX["nominal"]]
    k = int(np.nanargmax(lac))
    assert 2.0 < lac[k] < 5.0 and 3 * 24 < r.t_h[k] < 8 * 24
    assert lac[_at(r, 13 * 24)] < 0.5 * lac[k]


def test_quality_responds_to_ammonia_and_osmolality(r):
    h = r.harvest
    base, amm, osm = IDX["nominal"], IDX["high_gln_feed"], IDX["high_osm_feed"]
    assert h["ammonia"][amm] > h["ammonia"][base] + 2.0
    galacto = lambda i: h["g1f"][i] + 2 * h["g2f"][i]
    assert galacto(amm) < galacto(base)
    assert h["osmolality"][osm] > h["osmolality"][base] + 30.0
    assert h["man5"][osm] > h["man5"][base] and h["afucosylation"][osm] > h["afucosylation"][base]
    # glucose starvation lowers galactosylation too
    assert galacto(IDX["feed_low"]) < galacto(base)


# ------------------------------------------------------------------ faults and deviations


def test_agitator_failure_crashes_do_and_kills_cells(r):
    i, c = IDX["agitator_fail"], IDX["nominal"]
    t = r.t_h
    after = (t >= 151.0) & (t <= 170.0)
    assert np.all(r["dissolved_oxygen"][i, after] < 5.0)
    assert np.all(r["agitation"][i, after] == 0.0)
    assert np.all(np.abs(r["dissolved_oxygen"][i, t < 150] - 40.0) < 0.05)
    k = _at(r, 190.0)
    assert r["viability"][i, k] < r["viability"][c, k] - 20.0
    assert r.events["agitator_fail_h"][i] == 150.0 and np.isinf(r.events["agitator_fail_h"][c])


def test_pump_wear_and_rupture(r):
    i = IDX["pump"]
    sp, pv, t = r["feed_flow_sp"][i], r["feed_flow"][i], r.t_h
    fail = r.events["pump_fail_h"][i]
    np.testing.assert_allclose(fail, 72.0 + 200.0, atol=DT)
    before = (t >= 80) & (t < fail - 1)
    ratio = pv[before] / sp[before]
    assert np.all(ratio < 1.0) and np.all(np.diff(ratio) < 0)  # wear grows
    down = (t >= fail + 0.5) & (t < fail + 5.5)
    assert np.all(pv[down] == 0.0) and np.all(sp[down] > 0)
    after = (t > fail + 6.5) & (t < fail + 20)
    assert np.all(pv[after] / sp[after] > 0.99)  # new tubing
    assert np.isinf(r.events["pump_fail_h"][IDX["nominal"]])


def test_do_probe_drift_moves_true_do(r):
    i = IDX["do_drift"]
    ok = _valid(r, i)
    online, true = r["dissolved_oxygen"][i, ok], r["do_true"][i, ok]
    assert np.all(np.abs(online - 40.0) < 0.05)  # the controller holds the reading
    day = r.t_h[ok] / 24.0
    np.testing.assert_allclose(true, 40.0 / (1 + 0.02 * day), rtol=1e-6)


def test_contamination_shifts_metabolism(r):
    i, c = IDX["contamination"], IDX["nominal"]
    k = _at(r, 160.0)
    assert r["viability"][i, k] < r["viability"][c, k] - 30
    assert r["base_total"][i, k] > r["base_total"][c, k] + 5000  # acids -> base demand
    assert r["our"][i, k] > r["our"][c, k]
    k0 = _at(r, 119.0)
    for key in ("vcd", "glucose", "base_total"):  # identical before the onset
        assert r[key][i, k0] == pytest.approx(r[key][c, k0])


def test_temperature_fault(r):
    i = IDX["temp_fault"]
    t = r.t_h
    hot = (t > 104) & (t < 110)
    assert np.all(r["temperature"][i, hot] - r["temperature_sp"][i, hot] > 2.0)
    calm = (t > 130) & (t < 140)
    assert np.all(np.abs(r["temperature"][i, calm] - r["temperature_sp"][i, calm]) < 0.05)


def test_series_nan_after_end(r):
    i = IDX["short"]
    after = r.t_h > 12 * 24
    assert np.all(np.isnan(r["vcd"][i, after])) and not np.isnan(r["vcd"][i, _at(r, 12 * 24)])
    assert r.harvest["end_h"][i] == 288.0


# ------------------------------------------------------------------ API


def test_struct_of_arrays_per_batch_params_and_seed():
    recipes = [Recipe(duration_days=12.0), Recipe(duration_days=12.0, temperature_c=36.0)]
    kw = dict(record_every_h=24, dt_h=0.5)
    a = simulate_batches(recipes, seed=1, **kw)
    soa = recipes_to_arrays(recipes)
    b = simulate_batches(
        {k: v for k, v in soa.items()}, seed=1, params=KineticParams(mu_max=np.full(2, KineticParams.mu_max)), **kw
    )
    for k in a.harvest:
        np.testing.assert_array_equal(a.harvest[k], b.harvest[k])
        np.testing.assert_array_equal(a.harvest_noisy[k], b.harvest_noisy[k])
    c = simulate_batches(recipes, seed=2, **kw)
    for k in ("g0f", "hmw"):  # the seed drives only the assay noise
        np.testing.assert_array_equal(a.harvest[k], c.harvest[k])
        assert not np.array_equal(a.harvest_noisy[k], c.harvest_noisy[k])
    df = a.harvest_table()
    assert list(df["temperature_c"]) == [36.8, 36.0] and "g0f" in df


def test_design_space_is_consistent():
    nominal = dataclasses.asdict(NOMINAL_RECIPE)
    for k, (lo, hi) in DESIGN_SPACE.items():
        assert lo < hi and lo <= nominal[k] <= hi, k


def test_measured_inputs_replay_a_deviation_exactly():
    """``inputs=``: the actual temperature and delivered feed of a faulty run, replayed into a
    fault-free run, give that run back (what the live mirror relies on); NaN = the recipe."""
    dt = 0.5
    f = Faults.none(3)
    f.dev_type[1], f.dev_onset_h[1], f.dev_magnitude[1], f.dev_duration_h[1] = (
        DeviationType.TEMPERATURE_FAULT,
        100,
        2.5,
        10,
    )
    f.dev_type[2], f.dev_onset_h[2], f.dev_magnitude[2], f.dev_duration_h[2] = DeviationType.FEED_ERROR, 120, 0.0, 30
    kw = dict(dt_h=dt, record_every_h=dt)
    faulty = simulate_batches([NOMINAL_RECIPE] * 3, faults=f, **kw)
    temp, feed = faulty["temperature"], faulty["feed_flow"] * 60.0 / 1000.0
    replay = simulate_batches([NOMINAL_RECIPE] * 3, inputs={"temperature": temp, "feed_lph": feed}, **kw)
    for k in ("vcd", "titer", "glucose", "feed_total"):
        np.testing.assert_array_equal(replay[k], faulty[k])
    assert faulty.harvest["titer"][2] < faulty.harvest["titer"][0]
    # measured up to 130 h only, the recipe afterwards: the missed feed is replayed, then feeding resumes
    part = feed[:, : int(130 / dt)].copy()
    part[0] = np.nan  # NaN = the recipe's value
    mixed = simulate_batches([NOMINAL_RECIPE] * 3, inputs={"feed_lph": part}, **kw)
    np.testing.assert_array_equal(mixed["titer"][0], faulty["titer"][0])
    k = int(140 / dt)
    assert mixed["feed_flow"][2, k] > 0.0 and faulty["feed_flow"][2, k] == 0.0
    assert faulty.harvest["titer"][2] < mixed.harvest["titer"][2] < faulty.harvest["titer"][0]
    with pytest.raises(ValueError, match="unknown inputs"):
        simulate_batches(NOMINAL_RECIPE, inputs={"ph": np.zeros((1, 3))})


def test_harvest_after_a_culture_end_a_rounding_error_late_has_no_nan_readings():
    """Regression: the default year-long site wrote NaN (quality good) for whole harvest segments
    when the harvest began a rounding error after the last finite record of the culture."""
    from twin.historian import _CULTURE_MAP, _IDX, BatchSignals, _fill_drain

    t_rec = np.arange(0.0, 10.25, 0.25)
    series = {key: np.where(t_rec <= 9.0, 1.0 + t_rec, np.nan) for _, key, _ in _CULTURE_MAP}
    b = BatchSignals(0.0, t_rec, series, 36.5, 7.0, 40.0, 200.0, 60.0, 1.0)
    V = np.zeros((30, len(_IDX)))
    _fill_drain(V, np.linspace(0.0, 4.0, 30), 4.0, b, 9.0 + 1e-9, chill=True)
    assert np.isfinite(V).all()
    assert V[:, _IDX["FEED.TOT"]] == pytest.approx(10.0)  # held at the culture's last value
