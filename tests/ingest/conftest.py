"""tests/ingest: collect garbage before interpreter teardown.

Arrow dataset scanners (``DeltaTable.to_pyarrow_table``) can leave background threads that
abort the process at exit ("terminate called without an active exception",
apache/arrow#34314); releasing them while Arrow is alive avoids it."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True, scope="session")
def _release_arrow_scanners():
    yield
    gc.collect()
