"""Test and benchmark scaffolding: synthetic sites and shortcuts the product never imports.

- :mod:`tests.support.ml_site` — a small synthetic site shaped like the gold marts (ML tests);
- :mod:`tests.support.spark_site` — synthetic multi-bioreactor bronze data (Spark tests, bench);
- :mod:`tests.support.monitoring_set` — site-like twin batches with ground truth (golden/MSPC);
- :mod:`tests.support.landing_frames` — gold-shaped frames straight from a landing zone (the ML
  bench's shortcut; it aligns with :mod:`lakehouse.transforms.alignment`, the reference the
  dbt model and the Spark port are tested against).

``tests/foundation/test_architecture.py`` fails if product code imports any of it.
"""
