"""Golden batch qualification and envelope (ml/golden.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import golden as gb


def _batches(**over):
    base = {
        "batch_id": "X",
        "status": "complete",
        "harvest_titer_g_l": 5.0,
        "g0f_pct": 43.0,
        "g1f_pct": 38.0,
        "g2f_pct": 8.0,
        "man5_pct": 4.8,
        "afucosylation_pct": 8.3,
        "hmw_pct": 0.7,
        "harvest_viability_pct": 70.0,
    }
    return {**base, **over}


def test_qualification_records_who_and_why(cfg):
    df = pd.DataFrame(
        [
            _batches(batch_id="A", harvest_titer_g_l=5.5),
            _batches(batch_id="B", harvest_titer_g_l=5.2),
            _batches(batch_id="C", harvest_titer_g_l=4.0),
            _batches(batch_id="D", status="aborted"),
            _batches(batch_id="E", hmw_pct=2.5),
            _batches(batch_id="F", man5_pct=np.nan),
            _batches(batch_id="G", harvest_titer_g_l=4.5),
        ]
    )
    cfg = {**cfg, "qualification": {**cfg["qualification"], "top_titer_fraction": 0.5, "min_golden_batches": 2}}
    q = gb.qualify_batches(df, cfg).set_index("batch_id")
    assert q.loc[["A", "B"], "qualified"].all()
    assert not q.loc[["C", "D", "E", "F", "G"], "qualified"].any()
    assert q.loc[["A", "B", "C", "G"], "in_spec"].all()
    assert "status 'aborted'" in q.loc["D", "reason"]
    assert "hmw_pct 2.5 > max 1.2" in q.loc["E", "reason"]
    assert "man5_pct missing" in q.loc["F", "reason"]
    assert "below top-50% cut" in q.loc["C", "reason"]
    assert q.loc["A", "reason"].startswith("qualified")
    assert q.loc["A", "titer_rank"] == 1


def test_align_bins_mean_and_known_at_bin_end():
    df = pd.DataFrame(
        {
            "batch_id": ["a"] * 4 + ["b"] * 2,
            "culture_age_h": [0.0, 0.5, 1.0, 1.5, 0.2, 0.9],
            "maturity_pct": 0.0,
            "ph": [7.0, 7.2, 6.9, 6.9, 7.1, 7.3],
        }
    )
    al = gb.align(df, ["ph", "temperature"], step=1.0)
    assert al.batch_ids == ["a", "b"] and al.values.shape == (2, 2, 2)
    assert al.values[0, 0, 0] == pytest.approx(7.1) and al.values[0, 1, 0] == pytest.approx(6.9)
    assert al.values[1, 0, 0] == pytest.approx(7.2) and np.isnan(al.values[1, 1, 0])
    assert np.isnan(al.values[:, :, 1]).all()  # a signal the plant lacks


def test_profile_envelope_from_twin_history(cfg, history, running):
    qual, profile = gb.build_golden(history["batches"], history["readings"], cfg)
    golden = qual.loc[qual["qualified"], "batch_id"].tolist()
    assert len(golden) >= cfg["qualification"]["min_golden_batches"]
    assert set(profile["axis"]) == {"culture_age_h", "maturity_pct"}
    ca = profile[profile["axis"] == "culture_age_h"]
    assert ca["position"].max() >= 300
    assert (ca["p_lo"] <= ca["median"] + 1e-9).all() and (ca["median"] <= ca["p_hi"] + 1e-9).all()
    mat = profile[profile["axis"] == "maturity_pct"]
    assert mat["position"].between(0, 100).all()
    # golden batches sit inside their own 5-95 % band most of the time ...
    al = gb.align(history["readings"], ["capacitance", "temperature"], batch_ids=golden)
    exc = gb.envelope_excursions(profile, al)
    assert exc.groupby("signal")["fraction_outside"].mean().max() < 0.2
    # ... while a temperature fault leaves the temperature envelope
    t = running["truth"]
    hot = t.loc[t["deviation_type"] == "temperature_fault", "batch_id"].iloc[0]
    alt = gb.align(running["readings"], ["temperature"], batch_ids=[hot])
    exc_t = gb.envelope_excursions(profile, alt, band="sigma")
    assert exc_t["fraction_outside"].iloc[0] > 0.0
    png = gb.plot_envelope(profile, alt, signals=["temperature"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert gb.png_markdown(png).startswith("![plot](data:image/png;base64,")


def test_shift_landmark_and_phase_wise_axis(history):
    lm = gb.shift_landmarks(history["readings"], signal="temperature_sp")
    rec = history["batches"].set_index("batch_id")["temp_shift_day"]
    got = pd.Series(lm)
    assert len(got) == len(rec)
    # the setpoint ramp starts at the recipe's shift (hourly records: within one record)
    assert np.allclose(got.to_numpy(), rec.loc[got.index].to_numpy() * 24.0, atol=1.01)
    ref = float(np.ceil(got.max())) + 1.0
    warped = gb.warp_to_landmark(history["readings"], lm, ref)
    # after the warp every batch's shift starts at the same place on the axis ...
    lm2 = gb.shift_landmarks(warped, signal="temperature_sp")
    assert np.allclose(list(lm2.values()), ref, atol=1.01)
    # ... the growth phase keeps its culture age, and the mapping inverts exactly
    b = got.index[0]
    w = warped.to_pandas().query("batch_id == @b")["culture_age_h"].to_numpy()
    orig = history["readings"][history["readings"]["batch_id"] == b]["culture_age_h"].to_numpy()
    np.testing.assert_allclose(gb.unwarp_age(w, lm[b], ref), orig)
