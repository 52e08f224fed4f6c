"""The short summary `lakehouse run` prints after materializing the asset graph: figures per
asset, every check that failed (with its reason) or did not run, each promotion gate's decision
with its figures, and one line per capability with its headline figure against its baseline."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import dagster as dg

# metadata keys worth a line in the summary, in display order
_KEYS = (
    "dagster/row_count",
    "rows_written",
    "rows_quarantined",
    "files_ingested",
    "n_batches",
    "rmse",
    "titer_rmse",
    "titer_rmse_baseline",
    "pr_auc",
    "recall_7d",
    "precision_7d",
    "median_lead_days",
    "detected_fraction",
    "false_alarm_fraction",
    "status",
    "scored",
    "promoted",
    "version",
)


def _value(v) -> str:
    raw = getattr(v, "value", v)
    if isinstance(raw, float):
        return f"{raw:.4g}"
    text = str(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def skipped_assets(result) -> dict[str, str]:
    """Asset -> reason, for the assets a run skipped with a reason (``assets.support.skipped``:
    an observation with ``state: skipped``)."""
    out: dict[str, str] = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            obs = event.event_specific_data.asset_observation
            meta = dict(obs.metadata)
            if getattr(meta.get("state"), "value", None) == "skipped":
                out[obs.asset_key.to_user_string()] = str(getattr(meta.get("reason"), "value", ""))
    return out


def print_summary(defs: dg.Definitions, result, elapsed_s: float) -> None:
    """Per asset: the key figures its materialization reported; per check: pass/fail."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    latest: dict[dg.AssetKey, dict] = {}
    parts: dict[dg.AssetKey, int] = defaultdict(int)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            latest[mat.asset_key] = dict(mat.metadata)
            parts[mat.asset_key] += 1
    by_group: dict[str, list[dg.AssetKey]] = defaultdict(list)
    for key in latest:
        group = graph.get(key).group_name if graph.has(key) else "default"
        by_group[group or "default"].append(key)

    print("\n=== Summary ===")
    for group in sorted(by_group):
        print(f"\n[{group}]")
        for key in sorted(by_group[group], key=lambda k: k.to_user_string()):
            meta = latest[key]
            figures = [f"{k.split('/')[-1]}={_value(meta[k])}" for k in _KEYS if k in meta]
            if not figures:  # otherwise the first few plain numbers the asset reported
                figures = [
                    f"{k.split('/')[-1]}={_value(v)}"
                    for k, v in meta.items()
                    if isinstance(getattr(v, "value", None), (int, float))
                    and not isinstance(getattr(v, "value", None), bool)
                ][:4]
            n = parts[key]
            label = key.to_user_string() + (f" ({n} partitions)" if n > 1 else "")
            print(f"  {label:<48} {'  '.join(figures)}")

    skipped = skipped_assets(result)
    if skipped:
        print("\nSkipped (nothing or too little to work on; what depends on them was skipped too):")
        for key, reason in sorted(skipped.items()):
            print(f"  - {key}: {reason}")

    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    gates = [ev for ev in evaluations if ev.check_name == GATE_CHECK]
    others = [ev for ev in evaluations if ev.check_name != GATE_CHECK]
    if gates:
        print("\nPromotion gates:")
        for ev in sorted(gates, key=lambda e: e.asset_key.to_user_string()):
            verdict = "promoted" if ev.passed else "NOT promoted"
            print(f"  {ev.asset_key.to_user_string():<32} {verdict:<13} {_reason(ev)}")
    planned = planned_checks(defs, result)
    not_run = sorted(planned - {ev.asset_check_key for ev in evaluations}, key=lambda k: k.to_user_string())
    failed = [ev for ev in others if not ev.passed]
    print(
        f"\nAsset checks: {len(others) - len(failed)} passed, {len(failed)} failed, {len(not_run)} did not run"
        f" (of {len(planned) - len(gates)}; promotion gates above)"
    )
    for ev in failed:
        print(f"  FAILED ({ev.severity.value}): {ev.asset_key.to_user_string()} / {ev.check_name}  {_reason(ev)}")
    for key in not_run:
        why = "its asset was not materialized" if key.asset_key not in latest else "it was not executed"
        print(f"  DID NOT RUN: {key.asset_key.to_user_string()} / {key.name} ({why})")
    print(f"\nMaterialized {sum(parts.values())} asset partitions in {elapsed_s:.0f}s.")
    lines = capability_lines(latest)
    if lines:
        print("\nCapabilities (headline figure vs its baseline):")
        for line in lines:
            print(f"  {line}")


GATE_CHECK = "promotion_gate"


def _reason(ev) -> str:
    """Why a check came out as it did: its ``reason``/``failures`` metadata, its description, or
    else the figures it reported."""
    meta = dict(ev.metadata or {})
    if "reason" in meta:
        return str(getattr(meta["reason"], "value", meta["reason"]))
    if "failures" in meta:
        return _value(meta["failures"])
    if ev.description:
        return ev.description
    figures = [
        f"{k}={_value(v)}"
        for k, v in meta.items()
        if isinstance(getattr(v, "value", None), (int, float)) and not isinstance(getattr(v, "value", None), bool)
    ]
    return "  ".join(figures[:4])


def planned_checks(defs: dg.Definitions, result) -> set[dg.AssetCheckKey]:
    """The checks of the assets the run's job selects."""
    repo = defs.get_repository_def()
    job = repo.get_job(result.job_def.name) if hasattr(result, "job_def") else None
    selected = job.asset_layer.selected_asset_keys if job is not None else repo.asset_graph.get_all_asset_keys()
    return {k for k in repo.asset_graph.asset_check_keys if k.asset_key in selected}


@dataclass(frozen=True)
class Capability:
    """A headline figure of a capability: a metadata key of its asset(s) against its baseline's
    key, or (``baseline`` None) against its goal in config/golden.yaml."""

    label: str
    asset_prefix: tuple[str, ...]
    figure: str
    baseline: str | None
    higher_is_better: bool
    name: str = ""
    reference: str = "baseline"  # what the baseline is, in the line


# one line per capability, in display order; asset_prefix matches every model of a family
CAPABILITIES = (
    Capability("soft sensor", ("models", "titer_softsensor"), "test_rmse", "baseline_rmse", False, name="titer RMSE"),
    Capability("CQA models", ("models", "harvest_"), "test_rmse", "baseline_rmse", False, name="RMSE"),
    Capability("PdM", ("models", "pdm"), "test_pr_auc", "baseline_pr_auc", True, name="PR-AUC"),
    Capability(
        "golden batch / MSPC",
        ("golden", "mspc_evaluation"),
        "detected_fraction",
        None,
        True,
        name="deviating batches alarmed",
    ),
    Capability(
        "golden batch / MSPC",
        ("golden", "mspc_evaluation"),
        "false_alarm_fraction",
        None,
        False,
        name="normal batches alarmed",
    ),
    Capability(
        "DoE",
        ("twin", "setpoint_recommendation"),
        "verified_titer_g_l",
        "historical_median_titer_g_l",
        True,
        name="verified titer g/L",
        reference="historical median",
    ),
)


def _mspc_goals() -> dict[str, float]:
    from ml import golden as gb

    goals = gb.load_config()["mspc"]["evaluation"]["goals"]
    return {
        "detected_fraction": goals["detected_fraction_min"],
        "false_alarm_fraction": goals["false_alarm_fraction_max"],
    }


def _num(meta: dict, key: str | None) -> float | None:
    if key is None or key not in meta:
        return None
    v = getattr(meta[key], "value", meta[key])
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def capability_lines(latest: dict[dg.AssetKey, dict]) -> list[str]:
    """``"PdM: PR-AUC 0.376 vs baseline 0.603 — does not beat it"``, one per capability (its
    models' lines joined), from the latest materialization metadata of the run."""
    goals = None
    by_label: dict[str, list[str]] = defaultdict(list)
    for cap in CAPABILITIES:
        keys = sorted(
            (
                k
                for k in latest
                if tuple(k.path[:-1]) == cap.asset_prefix[:-1] and k.path[-1].startswith(cap.asset_prefix[-1])
            ),
            key=lambda k: k.to_user_string(),
        )
        if not keys:
            by_label[cap.label].append(f"{cap.name}: not materialized in this run")
        for key in keys:
            meta = latest[key]
            fig = _num(meta, cap.figure)
            if cap.baseline is None:
                goals = goals if goals is not None else _mspc_goals()
                ref, ref_name = goals.get(cap.figure), "goal"
            else:
                ref, ref_name = _num(meta, cap.baseline), cap.reference
            who = key.path[-1].removeprefix("harvest_") + " " if len(keys) > 1 else ""
            if fig is None or (isinstance(fig, float) and math.isnan(fig)):
                by_label[cap.label].append(f"{who}{cap.name} not reported ({_value(meta.get('reason', 'no figure'))})")
                continue
            if ref is None or math.isnan(ref):
                by_label[cap.label].append(f"{who}{cap.name} {fig:.3g} (no {ref_name})")
                continue
            if cap.baseline is None:  # a goal is met at equality
                ok = fig >= ref if cap.higher_is_better else fig <= ref
            else:  # a baseline must be beaten
                ok = fig > ref if cap.higher_is_better else fig < ref
            mark = ("beats it" if ok else "DOES NOT beat it") if cap.baseline else ("meets it" if ok else "MISSES it")
            by_label[cap.label].append(f"{who}{cap.name} {fig:.3g} vs {ref_name} {ref:.3g} ({mark})")
    return [f"{label + ':':<21} " + "; ".join(parts) for label, parts in by_label.items()]
