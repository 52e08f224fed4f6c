"""Validation report of one model version — what a QA reviewer reads and signs: HTML and PDF.

Sections: identity (MLflow model URI, run, artifact sha256, code version, trainer), data lineage
(tables and Delta versions), batch-grouped cross-validation and the held-out test against the
baselines, predicted-vs-actual and residual plots, prediction intervals and their coverage, the
applicability domain, drift status of the current data, the gate decision (evidence floor,
envelope) and the approvals / promotions of the audit trail (with the trail's verification).
Every number is recomputed from the lake (held-out rows rebuilt from the feature-table version the
model was trained on) or read from the registry; a section that cannot be evaluated says why.

:func:`build_model_report` gathers the facts (JSON-safe dict + PNG figures); :func:`render_html`
makes one self-contained HTML file; :func:`render_pdf` prints it with WeasyPrint;
:func:`write_model_report` stores both under ``reports/models/<name>/`` in the lake.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime

import numpy as np

from lakehouse.jsonsafe import clean
from lakehouse.storage import Lake

CSS = """
@page { size: A4; margin: 15mm; @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; } }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 9pt; }
h1 { font-size: 15pt; } h2 { font-size: 11.5pt; border-bottom: 1px solid #888; margin-top: 12pt; }
table { border-collapse: collapse; margin: 3pt 0 6pt 0; } th, td { border: 1px solid #bbb; padding: 2pt 4pt; text-align: left; }
th { background: #eee; } .bad { background: #fbd5d5; } .good { background: #dcf3dc; } .empty { color: #8a4b00; font-style: italic; }
img { max-width: 48%; } .sign td { height: 22pt; min-width: 120pt; }
"""


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figures(kind: str, y: np.ndarray, pred: np.ndarray, lo, hi, x_day) -> dict[str, bytes]:
    import matplotlib.pyplot as plt

    from ml import plots  # noqa: F401  (selects the Agg backend)

    if kind == "classifier":
        fig, ax = plt.subplots(figsize=(4, 3))
        for lab, c in ((0, "tab:blue"), (1, "tab:red")):
            ax.hist(pred[y == lab], bins=20, alpha=0.6, color=c, label=f"label {lab}")
        ax.set_xlabel("predicted probability")
        ax.legend(fontsize=7)
        return {"score distribution by label (held-out)": _png(fig)}
    fig, ax = plt.subplots(figsize=(4, 3.4))
    ax.errorbar(y, pred, yerr=[pred - lo, hi - pred], fmt="o", ms=3, alpha=0.6, lw=0.6)
    if len(y):
        a, b = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([a, b], [a, b], "k--", lw=0.8)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted (with interval)")
    out = {"predicted vs actual (held-out)": _png(fig)}
    fig, ax = plt.subplots(figsize=(4, 3.4))
    ax.scatter(x_day, pred - y, s=10, alpha=0.7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("culture day" if x_day is not None else "row")
    ax.set_ylabel("residual (predicted − actual)")
    out["residuals (held-out)"] = _png(fig)
    return out


def _drift(lake: Lake, meta: dict) -> dict:
    """Batch-aware drift of the lake's current data against the model's training reference."""
    from ml import pipeline
    from ml.config import HarvestModelConfig, VerificationConfig
    from ml.features import build_harvest_dataset
    from ml.verification import drift_evidence, recent_batches, recent_days

    cfg = VerificationConfig()
    if meta["kind"] == "classifier":
        if not lake.delta_exists(lake.uri(*pipeline.EQUIPMENT)):
            return {"evaluated": False, "why": "no features/equipment_health table"}
        recent = recent_days(pipeline.read_table(lake, *pipeline.EQUIPMENT).df)
    else:
        if not lake.delta_exists(lake.uri(*pipeline.SOFTSENSOR)):
            return {"evaluated": False, "why": "no features/softsensor table"}
        feats = pipeline.read_table(lake, *pipeline.SOFTSENSOR).df
        if meta.get("feature_day") is not None:
            ds = build_harvest_dataset(feats, HarvestModelConfig(targets=(meta["target"],), day=meta["feature_day"]))
            recent = ds.sort("ts").tail(cfg.psi_recent_batches)
        else:
            recent = recent_batches(feats, cfg.psi_recent_batches)
    ev = drift_evidence(meta, recent, cfg)
    return {"evaluated": True, "rows": recent.height, **ev}


def build_model_report(lake: Lake, name: str, version: int) -> dict:
    """The facts of the validation report of ``name`` v``version`` (JSON-safe) and its figures.

    Returns
    -------
    dict
        ``identity``, ``lineage``, ``cv``, ``heldout``, ``interval``, ``domain``, ``drift``,
        ``gate``, ``audit`` (entries about this version + trail verification), ``figures``
        (title -> PNG bytes).
    """
    from lakehouse.audit import AuditLog
    from ml import pipeline
    from ml.approvals import gate_evidence
    from ml.domain import apply_domain
    from ml.evaluation import pr_auc, regression_metrics
    from ml.registry import ModelRegistry
    from ml.scoring import predict_frame
    from ml.train import matrix

    reg = ModelRegistry(lake)
    booster, meta, rec = reg.load(name, version)
    rows, base = pipeline.holdout(lake, rec, meta)
    kind = meta["kind"]
    pf = predict_frame(booster, meta, rows, explain="none")
    pred = pf["prediction"].to_numpy()
    heldout: dict = {
        "rows": rows.height,
        "batches": rows["batch_id"].n_unique() if "batch_id" in rows.columns else None,
    }
    if kind == "classifier":
        y = rows["label__failure_within_h"].to_numpy().astype(int)
        heldout |= {"model_pr_auc": pr_auc(y, pred), "baseline_pr_auc": pr_auc(y, np.asarray(base))}
        lo = hi = day = None
        interval = {}
    else:
        y = rows[f"label__{meta['target']}"].to_numpy().astype(float)
        lo, hi = pf["pi_lower"].to_numpy(), pf["pi_upper"].to_numpy()
        heldout |= {"model": regression_metrics(y, pred), "baseline": regression_metrics(y, np.asarray(base, float))}
        interval = dict(rec.metrics.get("interval") or {}) | {
            "coverage_heldout_recomputed": float(np.mean((y >= lo) & (y <= hi))) if len(y) else None
        }
        day = rows["culture_day"].to_numpy() if "culture_day" in rows.columns else None
    dom = apply_domain(matrix(rows, meta["features"]), meta["domain"]) if rows.height else None
    ranges = [
        {"feature": f, "low": lo_, "high": hi_}
        for f, lo_, hi_ in zip(meta["domain"]["features"], meta["domain"]["lo"], meta["domain"]["hi"], strict=False)
    ]
    evidence, ev_hash = gate_evidence(reg, name, version)
    log = AuditLog(lake)
    subject = f"model:{name}:{int(version)}"
    entries = [
        {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "details": e.details}
        for e in log.entries()
        if e.subject == subject
    ]
    ver = log.verify()
    facts = {
        "generated_at": datetime.now(UTC).isoformat(),
        "identity": {
            "model": name,
            "version": rec.version,
            "status": rec.status,
            "model_uri": rec.model_uri,
            "mlflow_tracking_uri": reg.tracking_uri,
            "mlflow_run_id": rec.run_id,
            "kind": kind,
            "target": meta.get("target"),
            "artifact": rec.artifact_path,
            "artifact_sha256": rec.artifact_sha256,
            "code_version": rec.code_version,
            "trained_by": rec.trained_by,
            "registered_at": rec.created_at.isoformat(),
            "n_features": len(meta["features"]),
        },
        "lineage": rec.training_data,
        "split": {k: v for k, v in (meta.get("split") or {}).items()},
        "cv": rec.metrics.get("cv"),
        "test": rec.metrics.get("test"),
        "baseline_test": rec.metrics.get("baseline_test"),
        "heldout": heldout,
        "interval": interval,
        "domain": {
            "heldout_out_of_domain_fraction": float(np.mean(dom["out_of_domain"])) if dom is not None else None,
            "mahalanobis_limit": meta["domain"].get("md_limit"),
            "ranges": ranges,
        },
        "drift": _drift(lake, meta),
        "gate": evidence,
        "evidence_sha256": ev_hash,
        "audit": {"entries": entries, "trail_ok": ver.ok, "trail_entries": ver.entries, "problem": ver.problem},
    }
    out = clean(facts)
    out["figures"] = _figures(kind, y, pred, lo, hi, day)
    return out


# ----------------------------------------------------------------------------- rendering
def _e(v) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, dict | list):
        return html.escape(json.dumps(v, sort_keys=True, default=str)[:600])
    return html.escape("" if v is None else str(v))


def _kv(d: dict | None, empty: str) -> str:
    if not d:
        return f'<p class="empty">{html.escape(empty)}</p>'
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in d.items()) + "</table>"


def _rows(cols: list[str], rows: list[dict], empty: str, cls=None) -> str:
    if not rows:
        return f'<p class="empty">{html.escape(empty)}</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join(
        f'<tr class="{cls(r) if cls else ""}">' + "".join(f"<td>{_e(r.get(c))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(rep: dict) -> str:
    """One self-contained HTML document (CSS inline, figures as ``data:`` URIs)."""
    i = rep["identity"]
    g = rep.get("gate") or {}
    drift = rep["drift"]
    h = rep["heldout"]
    metric_rows = [
        {"set": "cross-validation (GroupKFold by batch)", **(rep.get("cv") or {})},
        {"set": "held-out test", **(rep.get("test") or {})},
        {"set": "baseline on held-out test", **(rep.get("baseline_test") or {})},
    ]
    metric_cols = ["set"] + sorted(
        {k for r in metric_rows for k in r if k != "set" and not isinstance(r[k], dict | list)}
    )
    figs = "".join(
        f'<figure><img alt="{_e(t)}" src="data:image/png;base64,{base64.b64encode(b).decode()}"/><figcaption>{_e(t)}</figcaption></figure>'
        for t, b in rep["figures"].items()
    )
    floor = g.get("evidence_floor") or {}
    env = g.get("envelope") or {}
    drift_html = (
        _kv(
            {
                "rule": drift.get("psi_rule"),
                "window rows": drift.get("rows"),
                "PSI max": drift.get("psi_max"),
                "drifted features": drift.get("psi_drifted"),
                "within batch variation": drift.get("psi_within_batch_variation"),
            },
            "",
        )
        if drift.get("evaluated")
        else f'<p class="empty">not evaluated: {_e(drift.get("why"))}</p>'
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Validation report {_e(i['model'])} v{i['version']}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Model validation report — {_e(i['model'])} v{i['version']}</h1>",
        f"<p>generated {_e(rep['generated_at'])} · status <b>{_e(i['status'])}</b></p>",
        "<h2>1. Identity</h2>",
        _kv(i, ""),
        "<h2>2. Data lineage (tables and Delta versions)</h2>",
        _rows(
            ["table", "delta_version"],
            [{"table": k, "delta_version": v} for k, v in (rep.get("lineage") or {}).items()],
            "no lineage recorded",
        ),
        _kv({k: v for k, v in rep["split"].items()}, "no split recorded"),
        "<h2>3. Batch-grouped cross-validation and baselines</h2>",
        _rows(metric_cols, metric_rows, "no metrics recorded"),
        f"<p>Recomputed on the held-out rows ({h.get('rows')} rows, {h.get('batches')} batches):</p>",
        _kv({k: v for k, v in h.items() if k not in ("rows", "batches")}, "no held-out rows"),
        "<h2>4. Predicted vs actual and residuals</h2>",
        figs,
        "<h2>5. Prediction intervals and coverage</h2>",
        _kv(rep.get("interval"), "no intervals for this kind of model (classifier)"),
        "<h2>6. Applicability domain</h2>",
        _kv(
            {k: v for k, v in rep["domain"].items() if k != "ranges"},
            "",
        ),
        _rows(["feature", "low", "high"], rep["domain"]["ranges"][:40], "no domain recorded"),
        "<h2>7. Drift status of the current data</h2>",
        drift_html,
        "<h2>8. Gate decision</h2>",
        _kv(
            {
                "decision": g.get("decision"),
                "reason": g.get("reason"),
                "metric": g.get("metric"),
                "candidate": g.get("candidate_value"),
                "champion": g.get("champion_value"),
                "baseline": g.get("baseline_value"),
                "evidence floor met": floor.get("met"),
                "held-out batches / rows": f"{floor.get('n_heldout_batches')} / {floor.get('n_heldout_rows')}",
                "inside envelope": env.get("inside"),
                "envelope violations": env.get("violations"),
                "envelope version / sha256": f"{env.get('envelope_version')} / {env.get('envelope_sha256')}",
                "evidence sha256": rep.get("evidence_sha256"),
            }
            if g
            else {},
            "this version has not been through the promotion gate",
        ),
        "<h2>9. Approvals, promotions and the audit trail</h2>",
        _rows(
            ["seq", "at", "actor", "action", "details"],
            rep["audit"]["entries"],
            "no approval, promotion or demotion recorded for this version",
            cls=lambda r: "good" if r["action"] in ("approval", "promotion") else "bad",
        ),
        f"<p>audit trail: {'intact' if rep['audit']['trail_ok'] else 'BROKEN — ' + _e(rep['audit']['problem'])}"
        f" ({rep['audit']['trail_entries']} entries)</p>",
        "<h2>10. Review</h2>",
        "<table class='sign'><tr><th>role</th><th>name</th><th>meaning</th><th>date (UTC)</th><th>signature</th></tr>"
        "<tr><td>QA reviewer</td><td></td><td></td><td></td><td></td></tr></table>",
        "</body></html>",
    ]
    return "\n".join(parts)


def render_pdf(html_text: str) -> bytes:
    """The HTML printed to PDF with WeasyPrint."""
    import logging

    from weasyprint import HTML

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    return HTML(string=html_text).write_pdf()


def write_model_report(lake: Lake, name: str, version: int) -> dict[str, str]:
    """Build, render and store the report as ``reports/models/<name>/v<version>.html|.pdf`` in the lake.

    Returns
    -------
    dict
        ``{"html": uri, "pdf": uri}``.
    """
    rep = build_model_report(lake, name, version)
    text = render_html(rep)
    out = {}
    fs = lake.filesystem()
    for ext, data in (("html", text.encode("utf-8")), ("pdf", render_pdf(text))):
        uri = lake.uri("reports", "models", name, f"v{int(version)}.{ext}")
        path = lake.fs_path(uri)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, "wb") as fh:
            fh.write(data)
        out[ext] = uri
    return out
