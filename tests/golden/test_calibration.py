"""Twin calibration recovers perturbed kinetics from titer/VCD assays (twin/calibration.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from tests.support.monitoring_set import twin_marts
from twin.bioreactor import KineticParams, recipes_to_arrays, simulate_batches
from twin.calibration import calibrate, recipes_from_batches


def test_calibration_recovers_site_kinetics():
    n = 6
    rng = np.random.default_rng(5)
    site = replace(KineticParams(), mu_max=0.80, qp=25.0)
    rec = recipes_to_arrays(
        {"seed_density_e6_per_ml": rng.uniform(0.45, 0.55, n), "feed_rate_pct_per_day": rng.uniform(2.8, 3.2, n)}
    )
    res = simulate_batches(rec, params=site, dt_h=0.5)
    marts = twin_marts(res, [f"C{i}" for i in range(n)], seed=1)
    batches = marts["batches"]
    assert np.allclose(recipes_from_batches(batches)["feed_rate_pct_per_day"], rec["feed_rate_pct_per_day"])
    out = calibrate(batches, marts["assays"], fit={"mu_max": (0.4, 1.6), "qp": (8.0, 40.0)}, dt_h=1.0, max_nfev=6)
    assert out.rmse_after["titer"] < out.rmse_before["titer"]
    assert out.rmse_after["vcd"] < out.rmse_before["vcd"]
    assert abs(out.params["mu_max"] / 0.80 - 1) < 0.05
    assert abs(out.params["qp"] / 25.0 - 1) < 0.06
    df = out.to_frame()
    assert set(df["parameter"]) == {"mu_max", "qp"} and {"rmse_before_titer", "rmse_after_titer"} <= set(df.columns)
    assert isinstance(pd.DataFrame(df), pd.DataFrame)
