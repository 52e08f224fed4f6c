"""PdM is optional: a plant without CMMS data or equipment-health signals, or with too little of
them, skips PdM with the reason — never a crash, never a made-up metric."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from ml.config import PdMConfig
from ml.pipeline import pdm_skip_reason, write_table
from ml.plant import load_plant_ml, run_pdm
from ml.train import InsufficientData, pdm_data_problem, train_pdm

UTC_US = pl.Datetime("us", "UTC")


def _health(days: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "equipment_id": ["AG-1"] * days,
            "equipment_type": ["agitator"] * days,
            "date": [date(2026, 1, 1) + timedelta(days=i) for i in range(days)],
            "vibration_mean_mm_s": [1.0 + 0.01 * i for i in range(days)],
            "in_repair": [False] * days,
        }
    )


def _work_orders(n_failures: int) -> pl.DataFrame:
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "work_order_id": [f"W{i}" for i in range(n_failures)],
            "equipment_id": ["AG-1"] * n_failures,
            "equipment_type": ["agitator"] * n_failures,
            "work_type": ["corrective"] * n_failures,
            "failure_mode": ["bearing"] * n_failures,
            "opened_at": [t0 + timedelta(days=20 * i) for i in range(n_failures)],
            "closed_at": [t0 + timedelta(days=20 * i + 1) for i in range(n_failures)],
        }
    ).with_columns(pl.col("opened_at", "closed_at").cast(UTC_US))


CFG = PdMConfig(
    features=dataclasses.replace(PdMConfig().features, signals=("vibration_mean_mm_s",), equipment_types=("agitator",))
)


def test_a_plant_without_cmms_data_skips_pdm_with_the_reason(lake_local):
    cfg = CFG
    reason = pdm_skip_reason(lake_local, cfg)
    assert reason.startswith("insufficient data") and "gold/fct_work_orders" in reason
    out = run_pdm(lake_local, cfg)
    assert out["state"] == "skipped" and out["reason"] == reason
    # marts present but empty (an import without work orders)
    write_table(lake_local, "gold", "fct_equipment_health_daily", _health(100))
    write_table(lake_local, "gold", "fct_work_orders", _work_orders(0))
    assert "no CMMS work orders" in pdm_skip_reason(lake_local, cfg)
    write_table(lake_local, "gold", "fct_work_orders", _work_orders(1))
    assert run_pdm(lake_local, cfg)["reason"].startswith("insufficient data: 1 failure work order(s)")


def test_disabled_or_too_little_data_is_a_state():
    cfg = CFG
    assert "no equipment-health signals" in pdm_data_problem(_health(100), _work_orders(5), PdMConfig())
    assert "disabled" in pdm_data_problem(_health(100), _work_orders(5), dataclasses.replace(cfg, enabled=False))
    assert "need >= 60" in pdm_data_problem(_health(30), _work_orders(5), cfg)
    assert "equipment-health rows" in pdm_data_problem(_health(0), _work_orders(5), cfg)
    assert pdm_data_problem(_health(100), _work_orders(4), cfg) is None
    with pytest.raises(InsufficientData, match="no CMMS work orders"):
        train_pdm(
            _health(100).with_columns(pl.lit(0, dtype=pl.Int8).alias("label__failure_within_h")), _work_orders(0), cfg
        )


def test_plant_bundle_without_pdm_means_pdm_off(tmp_path):
    import shutil

    from lakehouse.plant import PLANTS_DIR

    for f in ("tagmap.yaml", "softsensor.yaml", "golden.yaml"):  # the Pichia bundle without pdm.yaml
        shutil.copy(PLANTS_DIR / "pichia" / f, tmp_path / f)
    (tmp_path / "plant.yaml").write_text("name: minimal\ngrid: 10 min\n")
    plant = load_plant_ml(tmp_path)
    assert plant.name == "minimal" and plant.pdm.enabled is False
    assert "disabled" in pdm_data_problem(None, None, plant.pdm)
    # lists the YAML leaves out come from the bundle's catalog (lakehouse.catalog.Signal)
    f = plant.softsensor.features
    assert "oxygen_uptake_rate" in f.integrals and "base_total" in f.totalisers and f.states == ("process_step",)
    assert "dissolved_oxygen_mgl" in plant.golden["mspc"]["signals"]
    assert "methanol_tank" not in plant.golden["mspc"]["signals"]  # mspc.exclude
    assert load_plant_ml("pichia").pdm.enabled is False  # its pdm.yaml: no CMMS data


def test_nothing_to_verify_is_not_a_pass():
    from ml.config import VerificationConfig
    from ml.verification import verify

    empty = pl.DataFrame(
        {"model_version": [], "actual": [], "prediction": []},
        schema={"model_version": pl.Int64, "actual": pl.Float64, "prediction": pl.Float64},
    )
    meta = {"kind": "regression", "features": ["x"], "psi_reference": {}, "test_rmse": 1.0}
    r = verify(empty, meta, pl.DataFrame({"x": []}, schema={"x": pl.Float64}), VerificationConfig())
    assert r["state"] == "not_evaluated" and "nothing to verify" in r["reason"]
    scored = pl.DataFrame({"model_version": [1, 1], "actual": [1.0, 2.0], "prediction": [1.1, 1.9]})
    r = verify(scored, meta, pl.DataFrame({"x": []}, schema={"x": pl.Float64}), VerificationConfig())
    assert r["state"] == "passed" and r["not_evaluated"] == ["drift (no recent feature rows with a PSI reference)"]
    far = scored.with_columns(pl.lit(50.0).alias("prediction"))
    assert (
        verify(far, meta, pl.DataFrame({"x": []}, schema={"x": pl.Float64}), VerificationConfig())["state"] == "failed"
    )
