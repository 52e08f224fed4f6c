"""Golden batch and MSPC on any plant: catalog signals, landmark alignment (e.g. state codes),
reference batches, and checks that never pass on nothing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
import pytest

from ml import golden as gb
from ml import mspc


@dataclass(frozen=True)
class Sig:
    name: str
    kind: str
    unit: str = "1"


def _readings(n_batches=12, seed=0, fault: dict | None = None) -> pl.DataFrame:
    """A toy two-phase process: a state code goes 2 -> 4 at a batch-dependent time; after it a rate
    ramps up from the transition; ``fault`` = {batch index: (age, offset)} adds an offset from age."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_batches):
        switch = rng.uniform(15, 25)
        age = np.arange(0, 60, 0.25)
        after = age >= switch
        rate = np.where(after, 10 + 2.0 * (age - switch), 5 + 0.1 * age) + rng.normal(0, 0.3, age.size)
        temp = 30 + rng.normal(0, 0.05, age.size)
        if fault and b in fault:
            t0, off = fault[b]
            rate = rate + np.where(age >= t0, off, 0.0)
        rows.append(
            pl.DataFrame(
                {
                    "batch_id": f"B{b:02d}",
                    "culture_age_h": age,
                    "maturity_pct": 100 * age / 60,
                    "step": np.where(after, 4.0, 2.0),
                    "rate": rate,
                    "temp": temp,
                    "temp_sp": np.full(age.size, 30.0),
                }
            )
        )
    return pl.concat(rows)


def test_mspc_signals_default_to_the_catalog_minus_exclusions(tmp_path):
    path = tmp_path / "golden.yaml"
    path.write_text("mspc: {exclude: [temp_sp], derived: {rate2: 'rate * 2'}}\n")
    cat = [Sig("rate", "rate"), Sig("temp", "process_value"), Sig("temp_sp", "setpoint"), Sig("step", "state")]
    cfg = gb.load_config(path, catalog=cat)
    assert cfg["mspc"]["signals"] == ["rate", "temp", "rate2"]
    assert cfg["profile"]["signals"] == ["rate", "temp"]
    # without a catalog: the default plant's (config/plants/cho-twin), as its fct_process_readings has
    from lakehouse.catalog import default_catalog

    default = gb.load_config(path)["mspc"]["signals"]
    assert default[-1] == "rate2" and set(default[:-1]) <= set(default_catalog().names())
    assert len(default) > 10


def test_state_code_landmarks_align_the_phases_and_invert_exactly():
    r = _readings()
    lm = gb.landmark_times(r, [{"expr": "step >= 4"}])
    first = r.filter(pl.col("step") >= 4).group_by("batch_id").agg(pl.col("culture_age_h").min())
    assert lm == {b: [t] for b, t in zip(first["batch_id"], first["culture_age_h"], strict=True)}
    refs = gb.landmark_references(lm, 1.0)
    assert refs[0] > max(v[0] for v in lm.values())
    warped = gb.warp_to_landmarks(r, lm, refs)
    # after the warp every batch enters state 4 at the same place on the axis
    lm2 = gb.landmark_times(warped, [{"expr": "step >= 4"}])
    assert np.allclose([v[0] for v in lm2.values()], refs[0])
    b = "B03"
    w = warped.filter(pl.col("batch_id") == b)["culture_age_h"].to_numpy()
    orig = r.filter(pl.col("batch_id") == b)["culture_age_h"].to_numpy()
    np.testing.assert_allclose(gb.unwarp_ages(w, lm[b], refs), orig)
    # two landmarks: a batch that has made only the first keeps to its segment
    two = gb.landmark_times(r, [{"expr": "step >= 4"}, {"expr": "rate > 1e9"}])
    assert all(len(v) == 1 for v in two.values())
    with pytest.raises(ValueError, match="landmark"):
        gb.landmark_times(r, [{"bogus": 1}])


def test_landmark_mspc_catches_a_fault_and_spares_normal_batches():
    cfg = mspc.MSPCConfig.from_dict(
        {
            "signals": ["rate", "temp"],
            "landmarks": [{"expr": "step >= 4"}],
            "step_h": 1.0,
            "std_floor_global_frac": 0.1,
            "phase1_leave_one_out": True,
        }
    )
    ref = _readings(20, seed=1, fault={3: (30.0, 25.0)})  # one unrecorded fault in the reference
    model = mspc.fit_mspc(mspc.align_for(cfg, ref), cfg)
    assert "B03" in [e["batch_id"] for e in model.info["phase1_excluded"]]
    assert len(model.config["landmark_ref_h"]) == 1
    new = _readings(8, seed=2, fault={0: (40.0, 15.0)})
    sc = mspc.score(model, mspc.align_for(model, new))
    first = sc.first_alarm_h()
    assert first["B00"] >= 40.0  # alarmed after the onset, at the real culture age
    assert not any(np.isfinite(first[f"B{b:02d}"]) for b in range(1, 8))
    with pytest.raises(ValueError, match="landmarks"):
        mspc.MSPCConfig.from_dict({"signals": ["x"], "align_on_shift": True})


def test_reference_batches_are_in_spec_and_normal_and_no_titer_ranking_is_allowed(tmp_path):
    path = tmp_path / "golden.yaml"  # a plant without CQA specs and without a harvest titer
    path.write_text("qualification: {statuses: [Completed], titer_column: null}\nmspc: {signals: [x]}\n")
    cfg = gb.load_config(path)
    batches = pd.DataFrame(
        {"batch_id": ["A", "B", "C", "D"], "status": ["Completed", "Aborted", "Completed", "Completed"]}
    )
    dev = pl.DataFrame({"batch_id": ["C"]})
    qual = gb.qualify_batches(batches, cfg)
    assert qual["qualified"].tolist() == [True, False, True, True]
    assert "no titer ranking" in qual.loc[0, "reason"]
    assert gb.mspc_reference_ids(qual, batches, dev, cfg) == ["A", "D"]


def test_alarm_goals_never_pass_on_nothing():
    goals = {"detected_fraction_min": 0.9, "median_lead_h_min": 0.0, "false_alarm_fraction_max": 0.1}
    assert mspc.alarm_goal_outcome(None, goals)["state"] == "not_evaluated"
    assert mspc.alarm_goal_outcome(pd.DataFrame(columns=["deviating"]), goals)["state"] == "not_evaluated"
    normal_only = pd.DataFrame(
        {
            "batch_id": ["A", "B"],
            "deviating": [False, False],
            "detected": [False, False],
            "lead_h": [np.nan, np.nan],
            "false_alarm": [False, True],
        }
    )
    out = mspc.alarm_goal_outcome(normal_only, goals)
    assert out["state"] == "failed" and out["not_evaluated_goals"] == ["detected_fraction_min", "median_lead_h_min"]
    assert "not evaluated" in out["reason"]
    both = pd.concat(
        [
            normal_only.iloc[:1],
            pd.DataFrame(
                {"batch_id": ["F"], "deviating": [True], "detected": [True], "lead_h": [5.0], "false_alarm": [False]}
            ),
        ]
    )
    assert mspc.alarm_goal_outcome(both, goals)["state"] == "passed"
