"""Matplotlib figures for asset metadata (PNG, base64-embedded markdown)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl


def to_markdown(fig, alt: str = "plot") -> str:
    """A matplotlib figure as a markdown image (inline PNG); the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def _label(name: str, unit: str | None) -> str:
    return f"{name} ({unit})" if unit else name


def titer_trajectories(
    trajectories: pl.DataFrame, holdout: pl.DataFrame, max_batches: int = 4, unit: str | None = None
) -> str:
    """Markdown plot: predicted titer trajectories with intervals against the assays of a few
    held-out batches (y axis in ``unit``)."""
    batches = (
        trajectories["batch_id"].unique(maintain_order=True).to_list()[:max_batches] if trajectories.height else []
    )
    fig, axes = plt.subplots(1, max(len(batches), 1), figsize=(3.2 * max(len(batches), 1), 2.8), squeeze=False)
    for ax, b in zip(axes[0], batches, strict=False):
        t = trajectories.filter(pl.col("batch_id") == b)
        h = holdout.filter(pl.col("batch_id") == b)
        ax.plot(t["culture_age_h"] / 24, t["pred"], lw=1.2, label="soft sensor")
        ax.fill_between(h["culture_age_h"] / 24, h["lo"], h["hi"], alpha=0.2, step="mid")
        ax.scatter(h["culture_age_h"] / 24, h["y"], s=14, c="k", label="assay", zorder=3)
        ax.step(h["culture_age_h"] / 24, h["baseline"], where="post", lw=0.8, ls="--", label="carry-forward")
        ax.set_title(b, fontsize=8)
        ax.set_xlabel("culture age (d)")
    axes[0][0].set_ylabel(_label("titer", unit))
    axes[0][0].legend(fontsize=6)
    return to_markdown(fig, "titer trajectories")


def predicted_vs_actual(holdout: pl.DataFrame, target: str, unit: str | None = None) -> str:
    """Markdown plot: predicted against measured ``target`` (in ``unit``) on the held-out rows."""
    fig, ax = plt.subplots(figsize=(3.2, 3.0))
    y, p = holdout["y"].to_numpy(), holdout["pred"].to_numpy()
    ax.errorbar(
        y, p, yerr=[p - holdout["lo"].to_numpy(), holdout["hi"].to_numpy() - p], fmt="o", ms=3, alpha=0.6, lw=0.6
    )
    if len(y):
        lo, hi = float(np.nanmin([y.min(), p.min()])), float(np.nanmax([y.max(), p.max()]))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel(_label(f"measured {target}", unit))
    ax.set_ylabel(_label(f"predicted {target}", unit))
    return to_markdown(fig, f"{target} predicted vs actual")


def pr_curve_plot(y: np.ndarray, score: np.ndarray, baseline_score: np.ndarray | None = None) -> str:
    """Markdown plot: precision-recall curve of the model (and of the baseline score, if given)."""
    from sklearn.metrics import precision_recall_curve

    fig, ax = plt.subplots(figsize=(3.4, 3.0))
    if len(y) and 0 < np.sum(y) < len(y):
        p, r, _ = precision_recall_curve(y, score)
        ax.plot(r, p, label="XGBoost")
        if baseline_score is not None:
            p, r, _ = precision_recall_curve(y, baseline_score)
            ax.plot(r, p, ls="--", label="threshold rule")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(fontsize=7)
    return to_markdown(fig, "PR curve")


def top_signals(importance: dict[str, float], title: str = "mean |contribution| by signal") -> str:
    """Markdown bar chart of the signals with the largest mean absolute contribution."""
    items = list(importance.items())[:10][::-1]
    fig, ax = plt.subplots(figsize=(3.8, 0.25 * len(items) + 0.8))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    return to_markdown(fig, "top signals")


def mirror_forecasts(forecasts, assays: dict | None = None, series: str = "titer", max_batches: int = 4) -> str:
    """Markdown plot: the live mirror's forecast of ``series`` to harvest (median, 80/95 % bands) per
    running batch, with the assays released so far (``{batch_id: frame of analyte, value,
    culture_age_h}``) and the decision time."""
    fcs = list(forecasts)[:max_batches]
    fig, axes = plt.subplots(1, max(len(fcs), 1), figsize=(3.2 * max(len(fcs), 1), 2.8), squeeze=False)
    for ax, fc in zip(axes[0], fcs, strict=False):
        d = fc.t_h / 24.0
        q = fc.trajectory[series]  # rows: 2.5, 10, 50, 90, 97.5 %
        ax.fill_between(d, q[0], q[4], alpha=0.15, color="C0", lw=0, label="95 %")
        ax.fill_between(d, q[1], q[3], alpha=0.3, color="C0", lw=0, label="80 %")
        ax.plot(d, q[2], lw=1.2, color="C0", label="median")
        ax.axvline(fc.as_of_h / 24.0, color="0.4", lw=0.8, ls="--")
        a = (assays or {}).get(fc.batch_id)
        if a is not None and len(a):
            a = a[a["analyte"] == series]
            ax.scatter(a["culture_age_h"] / 24.0, a["value"], s=14, c="k", zorder=3, label="assay")
        ax.set_title(f"{fc.batch_id} @ day {fc.as_of_h / 24:.1f}", fontsize=8)
        ax.set_xlabel("culture day")
    axes[0][0].set_ylabel(series)
    axes[0][0].legend(fontsize=6)
    return to_markdown(fig, f"mirror forecast {series}")
