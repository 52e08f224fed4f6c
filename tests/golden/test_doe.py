"""In-silico DoE, surrogate and setpoint recommendation (ml/doe.py) on the twin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import doe
from ml.golden import spec_limits
from twin.bioreactor import DESIGN_SPACE


def test_latin_hypercube_inside_design_space():
    space = doe.design_space()
    d = doe.latin_hypercube(500, space, seed=3)
    assert list(d.columns) == list(DESIGN_SPACE)
    assert doe.inside(d, space).all()
    # stratified: every factor covers each tenth of its range
    for k, (lo, hi) in space.items():
        assert len(np.unique(np.floor((d[k] - lo) / (hi - lo) * 10).clip(0, 9))) == 10
    with pytest.raises(ValueError):
        doe.design_space(["not_a_factor"])
    narrowed = doe.design_space(bounds={"ph": (6.0, 7.05)})  # may narrow, never widen
    assert narrowed["ph"] == (DESIGN_SPACE["ph"][0], 7.05)


@pytest.fixture(scope="module")
def insilico():
    space = doe.design_space()
    runs = doe.simulate_design(doe.latin_hypercube(400, space, seed=11), seed=11)
    return space, runs


def test_recommendation_inside_space_beats_history_and_meets_specs(cfg, insilico, history):
    space, runs = insilico
    specs = spec_limits(cfg)
    outcomes = ["harvest_titer_g_l", *specs]
    sur = doe.Surrogate.fit(runs, list(space), outcomes, folds=3, n_estimators=120)
    assert sur.cv_metrics["harvest_titer_g_l"]["r2"] > 0.5
    rec = doe.recommend(sur, space, specs, n_candidates=6000, n_refine=4, margin=0.08)
    sp = pd.DataFrame([rec["setpoints"]])
    assert doe.inside(sp, space).all() and rec["feasible"]
    ver = doe.verify(rec["setpoints"], specs, n_replicates=16)
    hist = history["batches"]
    hist_median = float(hist.loc[hist["status"] == "complete", "harvest_titer_g_l"].median())
    assert ver["titer_mean"] > hist_median, (ver["titer_mean"], hist_median)
    assert ver["cqa_pass_fraction"] >= 0.9, ver["cqa"]
    for name, (lo, hi) in specs.items():
        m = ver["cqa"][name]["mean"]
        assert (lo is None or m >= lo) and (hi is None or m <= hi), (name, m)
    files = sur.to_ubj()
    assert "surrogate.json" in files and all(v[:1] == b"{" for k, v in files.items() if k.endswith(".ubj"))
    png = doe.plot_response_surface(sur, rec, *doe.top_factors(sur, k=2), specs, runs=runs)
    assert png[:4] == b"\x89PNG"


def test_recommendation_respects_a_narrowed_design_space(cfg, insilico):
    space, runs = insilico
    specs = spec_limits(cfg)
    sur = doe.Surrogate.fit(runs, list(space), ["harvest_titer_g_l", *specs], folds=2, n_estimators=80)
    narrow = doe.design_space(bounds={"feed_rate_pct_per_day": (2.0, 2.5), "duration_days": (12.0, 13.0)})
    rec = doe.recommend(sur, narrow, specs, n_candidates=2000, n_refine=3)
    assert doe.inside(pd.DataFrame([rec["setpoints"]]), narrow).all()
