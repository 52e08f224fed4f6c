"""The run summary's capability lines: each headline figure against its baseline or goal, in
the right direction, and an explicit line when a capability was not materialized."""

from __future__ import annotations

import dagster as dg

from orchestration.summary import capability_lines


def _lines(latest) -> dict[str, str]:
    return {ln.split(":", 1)[0]: ln.split(":", 1)[1].strip() for ln in capability_lines(latest)}


def test_capability_lines_compare_in_the_right_direction():
    latest = {
        dg.AssetKey(["models", "titer_softsensor"]): {"test_rmse": 0.31, "baseline_rmse": 1.06},
        dg.AssetKey(["models", "harvest_g0f"]): {"test_rmse": 1.77, "baseline_rmse": 2.62},
        dg.AssetKey(["models", "harvest_hmw"]): {"test_rmse": 0.136, "baseline_rmse": 0.12},
        dg.AssetKey(["models", "pdm"]): {"test_pr_auc": dg.MetadataValue.float(0.376), "baseline_pr_auc": 0.603},
        dg.AssetKey(["golden", "mspc_evaluation"]): {"detected_fraction": 0.8, "false_alarm_fraction": 0.375},
    }
    got = _lines(latest)
    assert got["soft sensor"] == "titer RMSE 0.31 vs baseline 1.06 (beats it)"
    assert got["CQA models"] == (
        "g0f RMSE 1.77 vs baseline 2.62 (beats it); hmw RMSE 0.136 vs baseline 0.12 (DOES NOT beat it)"
    )
    assert got["PdM"] == "PR-AUC 0.376 vs baseline 0.603 (DOES NOT beat it)"  # higher is better
    # goals (config/golden.yaml): met at equality; a false-alarm fraction must stay below its goal
    assert got["golden batch / MSPC"].startswith("deviating batches alarmed 0.8 vs goal 0.8 (meets it)")
    assert got["golden batch / MSPC"].endswith("normal batches alarmed 0.375 vs goal 0.05 (MISSES it)")
    assert got["DoE"] == "verified titer g/L: not materialized in this run"


def test_a_capability_without_its_figure_says_why():
    latest = {dg.AssetKey(["golden", "mspc_evaluation"]): {"evaluated": False, "reason": "no landing/_truth"}}
    assert "deviating batches alarmed not reported (no landing/_truth)" in _lines(latest)["golden batch / MSPC"]
