"""``ml.mirror``: a running batch's gold rows -> the twin's live mirror, CQA specs from the config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.golden import load_config
from ml.mirror import batch_data_from_gold, culture_age_h, mirror_batches, twin_specs
from tests.support.mirror_set import simulate_mirror_set
from twin import mirror


@pytest.fixture(scope="module")
def heldout():
    return simulate_mirror_set(3, seed=11)


def test_gold_rows_give_the_same_estimate(heldout):
    d = heldout.data[1]
    readings = d.online.assign(batch_id=d.batch_id, ph=7.0)
    other = readings.assign(batch_id="OTHER", temperature=20.0)
    assays = d.assays.assign(batch_id=d.batch_id, result_delay_h=d.assays["result_age_h"] - d.assays["culture_age_h"])
    batch = {"batch_id": d.batch_id, **{k: v for k, v in d.recipe.items() if k != "duration_days"}}
    batch["duration_h"] = d.recipe["duration_days"] * 24.0
    g = batch_data_from_gold(batch, pd.concat([readings, other]), assays.drop(columns=["result_age_h"]))
    a, b = mirror.estimate([d, g], 140.0)
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-9)
    specs = twin_specs(load_config())
    assert specs["hmw"] == (None, 1.2) and specs["viability"] == (50.0, None)


def test_mirror_batches_frame_and_warm_start(heldout):
    rows, readings, assays = [], [], []
    for d in heldout.data:
        rows.append({"batch_id": d.batch_id, **{k: v for k, v in d.recipe.items() if k != "duration_days"}})
        readings.append(d.online.assign(batch_id=d.batch_id))
        assays.append(
            d.assays.assign(batch_id=d.batch_id, result_delay_h=d.assays["result_age_h"] - d.assays["culture_age_h"])
        )
    batches = pd.DataFrame(rows).assign(inoculation_ts=pd.Timestamp("2026-03-01T00:00Z"))
    ages = culture_age_h(batches, "2026-03-07T12:00Z")
    assert np.allclose(ages, 156.0)
    posts, fcs, frame = mirror_batches(batches, pd.concat(readings), pd.concat(assays), ages, n_draws=8)
    assert len(posts) == len(fcs) == 3
    titer = frame[(frame["kind"] == "harvest") & (frame["quantity"] == "titer")]
    assert len(titer) == 3 and (titer["p10"] <= titer["p50"]).all() and (titer["p50"] <= titer["p90"]).all()
    assert set(frame["kind"]) == {"harvest", "state"}
    prev = {p.batch_id: p.to_dict() for p in posts}
    prev[heldout.data[0].batch_id]["names"] = ["mu_max"]  # another prior's posterior: not a warm start
    again, _, _ = mirror_batches(batches, pd.concat(readings), pd.concat(assays), ages + 6.0, previous=prev, n_draws=8)
    assert all(p.converged for p in again)


def test_forecast_plot(heldout):
    from ml.plots import mirror_forecasts

    d = heldout.data[0]
    fc = mirror.forecast(mirror.estimate(d, 120.0), n_draws=8)
    known = d.known_at(120.0)[1]
    md = mirror_forecasts(fc, {d.batch_id: known})
    assert md.startswith("![mirror forecast titer](data:image/png;base64,") and len(md) > 2000
