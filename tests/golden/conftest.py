"""Shared twin-built data for the golden-batch tests (built once per session).

Frames are shaped like the gold marts and come straight from ``twin.bioreactor.simulate_batches``
(via ``tests.support.monitoring_set.simulate_monitoring_set``), so these tests do not depend on ingestion or dbt.
"""

from __future__ import annotations

import pytest

from ml import mspc
from ml.golden import load_config
from tests.support.monitoring_set import simulate_monitoring_set


@pytest.fixture(scope="session")
def cfg() -> dict:
    return load_config()


@pytest.fixture(scope="session")
def history():
    """60 historical site-like batches without process deviations (the training set)."""
    return simulate_monitoring_set(60, 0, seed=101, prefix="H")


@pytest.fixture(scope="session")
def running():
    """30 new normal batches + 4 of each injected deviation type (evaluation set)."""
    return simulate_monitoring_set(30, 4, seed=202, prefix="T")


@pytest.fixture(scope="session")
def good_ids(history):
    t = history["truth"]
    return t.loc[~t["deviating"], "batch_id"].tolist()


@pytest.fixture(scope="session")
def model(cfg, history, good_ids):
    mcfg = mspc.MSPCConfig.from_dict(cfg["mspc"])
    return mspc.fit_mspc(mspc.align_for(mcfg, history["readings"]), mcfg, batch_ids=good_ids)


@pytest.fixture(scope="session")
def scores(model, running):
    return mspc.score(model, mspc.align_for(model, running["readings"]))
