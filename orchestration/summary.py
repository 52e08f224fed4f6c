"""The short summary `lakehouse run` prints after materializing the asset graph."""

from __future__ import annotations

from collections import defaultdict

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

    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    if checks:
        failed = [e.event_specific_data for e in checks if not e.event_specific_data.passed]
        print(f"\nAsset checks: {len(checks) - len(failed)} passed, {len(failed)} failed")
        for ev in failed:
            print(f"  FAILED ({ev.severity.value}): {ev.asset_key.to_user_string()} / {ev.check_name}")
    print(f"\nMaterialized {sum(parts.values())} asset partitions in {elapsed_s:.0f}s.")
