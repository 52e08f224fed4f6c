"""The batch report a QA reviewer or process engineer takes to a batch review.

One report per batch, read from the lake's gold, golden and score tables (nothing is
recomputed: the models' own predictions, limits and alarms are shown as they were stored):

1. batch identity, recipe and genealogy — ``gold/dim_batches``, ``golden/batch_qualification``,
   ``gold/fct_lot_genealogy``, ``gold/fct_chromatography_runs``, ``gold/fct_filtration_runs``;
2. key trajectories against the golden envelope — ``gold/fct_process_readings``, ``golden/profile``;
3. soft-sensor predictions with intervals against the lab results — ``scores/titer``;
4. T²/SPE with limits, alarms and contributing signals — ``scores/mspc_deviation``, ``golden/alarms``;
5. equipment health — ``gold/fct_equipment_health_daily``, ``scores/pdm``;
6. predicted vs measured CQAs against their specs — ``gold/dim_batches``, ``scores/harvest_cqa``,
   specs from ``config/golden.yaml`` (``cqa_specs``);
7. deviations and work orders — ``gold/fct_work_orders``.

A section whose tables are missing or hold nothing for the batch says so, with the reason.
:class:`BatchReportInputs` reads every table once (a run reports all batches from one read);
:func:`build_batch_document` makes the :class:`~lakehouse.reports.render.Document` of one
batch; :func:`write_batch_reports` writes HTML + PDF to ``reports/batch/<batch_id>`` in the lake.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lakehouse.reports.render import Document, Figure, ReportFiles, Section, Table, Text, write_document

REPORT_DIR = ("reports", "batch")
SECTIONS = (
    "Batch identity, recipe and genealogy",
    "Key trajectories against the golden envelope",
    "Soft-sensor predictions against lab results",
    "Multivariate monitoring (T² / SPE)",
    "Equipment health",
    "Critical quality attributes against specifications",
    "Deviations and work orders",
)
REPORTS_CONFIG = Path(__file__).resolve().parents[2] / "config" / "reports.yaml"
TABLES = {
    "batches": ("gold", "dim_batches"),
    "qualification": ("golden", "batch_qualification"),
    "genealogy": ("gold", "fct_lot_genealogy"),
    "chromatography": ("gold", "fct_chromatography_runs"),
    "filtration": ("gold", "fct_filtration_runs"),
    "profile": ("golden", "profile"),
    "titer": ("scores", "titer"),
    "mspc": ("scores", "mspc_deviation"),
    "alarms": ("golden", "alarms"),
    "health": ("gold", "fct_equipment_health_daily"),
    "pdm": ("scores", "pdm"),
    "harvest": ("scores", "harvest_cqa"),
    "work_orders": ("gold", "fct_work_orders"),
}


def load_report_config(path: str | Path | None = None) -> dict[str, Any]:
    """The ``batch`` section of ``config/reports.yaml`` (trajectory signals, band flag)."""
    import yaml

    with open(path or REPORTS_CONFIG) as f:
        return dict(yaml.safe_load(f)["batch"])


@dataclass
class BatchReportInputs:
    """Every table a batch report reads, loaded once; ``missing`` maps a table key to why it is absent."""

    tables: dict[str, pl.DataFrame]
    readings: pl.DataFrame | None
    cqa_specs: dict[str, dict[str, float]]
    config: dict[str, Any]
    missing: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # signal -> unit (the plant's catalog), for axes

    @classmethod
    def load(cls, lake: Any, config: dict[str, Any] | None = None) -> BatchReportInputs:
        """Read the tables of :data:`TABLES` and the readings of the report's signals from
        ``lake`` (``config``: :func:`load_report_config`)."""
        from lakehouse.tables import TableNotFoundError, read_table
        from ml import golden as gb

        config = config or load_report_config()
        tables, missing = {}, {}
        for key, (layer, name) in TABLES.items():
            try:
                tables[key] = read_table(lake, layer, name).df
            except TableNotFoundError:
                missing[key] = f"{layer}/{name} has not been materialized in this lake"
        readings = None
        signals = list(config["trajectory_signals"])
        if "profile" in tables:  # the profile's own signals are the fallback
            signals += [s for s in tables["profile"]["signal"].unique(maintain_order=True) if s not in signals][:6]
        try:
            cols = ["batch_id", "culture_age_h", "maturity_pct", *signals]
            readings = read_table(lake, "gold", "fct_process_readings", columns=cols, only_existing_columns=True).df
        except TableNotFoundError:
            missing["readings"] = "gold/fct_process_readings has not been materialized in this lake"
        return cls(tables, readings, dict(gb.load_config()["cqa_specs"]), config, missing)

    def rows(self, key: str, batch_id: str | None = None, column: str = "batch_id") -> pl.DataFrame | None:
        """Rows of table ``key`` (of one batch when ``batch_id`` is given); None when the table is missing."""
        df = self.tables.get(key)
        if df is None:
            return None
        if batch_id is not None and column in df.columns:
            df = df.filter(pl.col(column) == batch_id)
        return df

    def why_missing(self, key: str) -> str:
        """Why table ``key`` is absent."""
        return self.missing.get(key, f"{'/'.join(TABLES[key])} has not been materialized")

    @property
    def batch_ids(self) -> list[str]:
        """Every batch of ``gold/dim_batches`` in id order."""
        b = self.tables.get("batches")
        return sorted(b["batch_id"].to_list()) if b is not None else []


# --------------------------------------------------------------------------- plots
def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- sections
def _identity(inp: BatchReportInputs, batch: dict) -> Section:
    s = Section(SECTIONS[0])
    bid = batch["batch_id"]
    recipe = [(c, batch.get(c)) for c in inp.config["recipe_columns"] if c in batch]
    s.blocks.append(Table(["setpoint", "value"], recipe, caption=f"Recipe {batch.get('recipe_id')}"))
    qual = inp.rows("qualification", bid)
    if qual is not None and qual.height:
        q = qual.row(0, named=True)
        s.blocks.append(
            Text(
                f"Golden-batch qualification: {'qualified' if q['qualified'] else 'not qualified'}"
                f" ({'in spec' if q['in_spec'] else 'out of spec'}); {q['reason']}."
            )
        )
    gen = inp.rows("genealogy", bid)
    if gen is None:
        s.blocks.append(Text(f"Genealogy: no data ({inp.why_missing('genealogy')})."))
    elif gen.height == 0:
        s.blocks.append(Text("Genealogy: no downstream lots recorded for this batch (not harvested or not processed)."))
    else:
        cols = [
            c
            for c in ("harvest_lot", "capture_lot", "ds_lot", "n_capture_cycles", "chrom_run_ids", "filtration_run_ids")
            if c in gen.columns
        ]
        s.blocks.append(Table.from_frame(gen.select(cols), caption="Lot genealogy"))
        for key, cols, cap in (
            (
                "chromatography",
                ["run_id", "column_id", "column_cycle", "step_yield_pct", "max_pressure_bar", "result"],
                "Protein A capture runs",
            ),
            (
                "filtration",
                ["run_id", "membrane_id", "membrane_use", "step_yield_pct", "mean_flux_lmh", "result"],
                "UF/DF runs",
            ),
        ):
            runs = inp.rows(key, bid, column="bioreactor_batch_id")
            if runs is not None and runs.height:
                s.blocks.append(Table.from_frame(runs.select([c for c in cols if c in runs.columns]), caption=cap))
    return s


def _trajectories(inp: BatchReportInputs, batch: dict) -> Section:
    s = Section(SECTIONS[1])
    bid = batch["batch_id"]
    prof = inp.rows("profile")
    if prof is None:
        s.empty_reason = inp.why_missing("profile")
        return s
    if inp.readings is None:
        s.empty_reason = inp.missing["readings"]
        return s
    r = inp.readings.filter(pl.col("batch_id") == bid)
    if r.height == 0:
        s.empty_reason = f"gold/fct_process_readings holds no readings for {bid}"
        return s
    from ml import golden as gb

    prof_pd = prof.to_pandas()
    age = prof_pd[prof_pd["axis"] == "culture_age_h"]
    step = float(np.diff(np.sort(age["position"].unique()))[:1].min()) if age["position"].nunique() > 1 else 1.0
    in_profile = [c for c in age["signal"].unique() if c in r.columns]
    signals = [c for c in inp.config["trajectory_signals"] if c in in_profile] or in_profile[:6]
    if not signals:
        s.empty_reason = "the golden profile has none of the signals of this batch's readings"
        return s
    al = gb.align(r, signals, axis="culture_age_h", step=step, batch_ids=[bid])
    n_golden = int(age["n_golden_batches"].iloc[0]) if "n_golden_batches" in age and len(age) else 0
    png = gb.plot_envelope(
        prof_pd,
        al,
        signals=signals,
        title=f"{bid} against the golden envelope ({n_golden} golden batches)",
        units=inp.units,
    )
    s.blocks.append(Figure(png, "Culture-age trajectories (red) on the golden median, 5–95 % band and ±3σ band."))
    exc = gb.envelope_excursions(prof_pd, al)
    if len(exc):
        exc = exc[["signal", "n_bins", "fraction_outside"]].assign(
            pct_of_time_outside_band=lambda d: (100 * d["fraction_outside"]).round(1)
        )[["signal", "n_bins", "pct_of_time_outside_band"]]
        limit = float(inp.config["flag_outside_band_pct"])
        flags = {
            (i, "pct_of_time_outside_band"): "bad" for i, v in enumerate(exc["pct_of_time_outside_band"]) if v > limit
        }
        s.blocks.append(Table.from_frame(exc, caption="Time outside the golden 5–95 % band (hourly bins)", flags=flags))
    return s


def _softsensor(inp: BatchReportInputs, batch: dict) -> Section:
    s = Section(SECTIONS[2])
    bid = batch["batch_id"]
    df = inp.rows("titer", bid)
    if df is None:
        s.empty_reason = inp.why_missing("titer") + " (no titer champion scored the batches)"
        return s
    if df.height == 0:
        s.empty_reason = f"scores/titer holds no prediction for {bid}"
        return s
    df = df.sort("culture_age_h")
    traj = df.filter(pl.col("row_type") == "step")
    samples = df.filter((pl.col("row_type") == "sample") & pl.col("actual").is_not_null())
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = traj["culture_age_h"].to_numpy()
    ax.fill_between(
        x, traj["pi_lower"].to_numpy(), traj["pi_upper"].to_numpy(), alpha=0.25, label="prediction interval"
    )
    ax.plot(x, traj["prediction"].to_numpy(), lw=1.2, label="soft sensor")
    if samples.height:
        ax.plot(samples["culture_age_h"], samples["actual"], "o", color="black", ms=4, label="lab result")
    ax.set_xlabel("culture age (h)")
    ax.set_ylabel("titer (g/L)")
    ax.legend(fontsize=7, loc="upper left")  # "best" searches every point: slow
    model = f"{df['model_name'][0]} v{df['model_version'][0]}"
    s.blocks.append(Figure(_png(fig), f"Titer soft sensor ({model}) with its interval, and the lab titer results."))
    if samples.height:
        tab = samples.select(
            "sample_id",
            pl.col("culture_age_h").round(1),
            pl.col("actual").alias("lab_g_l"),
            pl.col("prediction").alias("predicted_g_l"),
            pl.col("pi_lower").alias("lower"),
            pl.col("pi_upper").alias("upper"),
            ((pl.col("actual") >= pl.col("pi_lower")) & (pl.col("actual") <= pl.col("pi_upper"))).alias("inside"),
        )
        flags = {(i, "inside"): ("good" if v else "bad") for i, v in enumerate(tab["inside"])}
        cov = float(tab["inside"].mean())
        s.blocks.append(
            Table.from_frame(tab, caption=f"Lab titer vs prediction: {cov:.0%} inside the interval", flags=flags)
        )
    else:
        s.blocks.append(Text("No lab titer result has arrived for this batch yet: predictions only."))
    return s


def _mspc(inp: BatchReportInputs, batch: dict) -> Section:
    s = Section(SECTIONS[3])
    bid = batch["batch_id"]
    df = inp.rows("mspc", bid)
    if df is None:
        s.empty_reason = inp.why_missing("mspc")
        return s
    if df.height == 0:
        s.empty_reason = f"scores/mspc_deviation holds no score for {bid} (batch shorter than the model's warm-up?)"
        return s
    df = df.sort("culture_age_h")
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(8, 4.2), sharex=True)
    x = df["culture_age_h"].to_numpy()
    alarm = df["alarm"].to_numpy().astype(bool)
    for ax, stat, lim in ((axes[0], "t2", "t2_limit"), (axes[1], "spe", "spe_limit")):
        ax.plot(x, df[stat].to_numpy(), lw=1.0, label=stat.upper())
        ax.plot(x, df[lim].to_numpy(), "--", color="tab:red", lw=1.0, label="limit")
        if alarm.any():
            ax.plot(x[alarm], df[stat].to_numpy()[alarm], "x", color="tab:red", ms=4, label="alarm")
        ax.set_yscale("log")
        ax.set_ylabel("T²" if stat == "t2" else "SPE")
        ax.legend(fontsize=7, loc="upper left")
    axes[1].set_xlabel("culture age (h)")
    s.blocks.append(
        Figure(
            _png(fig),
            f"Hotelling T² and SPE against their time-varying limits ({df['model_name'][0]} {df['model_version'][0]}).",
        )
    )
    al = inp.rows("alarms", bid)
    if al is None:
        s.blocks.append(Text(f"Alarms: no data ({inp.why_missing('alarms')})."))
    elif al.height == 0:
        s.blocks.append(Text(f"No MSPC alarm for {bid}: T² and SPE stayed within their limits (persistence rule)."))
    else:
        tab = al.sort("culture_age_h").select(
            pl.col("culture_age_h").round(1).alias("alarm_at_h"),
            pl.col("first_over_h").round(1),
            "statistic",
            pl.col("t2_ratio").round(2),
            pl.col("spe_ratio").round(2),
            pl.col("contributions")
            .map_elements(_top_contributions, return_dtype=pl.String)
            .alias("contributing_signals"),
        )
        s.blocks.append(
            Table.from_frame(tab, caption=f"{al.height} MSPC alarm(s), contribution shares of the signals to blame")
        )
    return s


def _top_contributions(text: str | None, n: int = 4) -> str:
    if not text:
        return "–"
    try:
        d = json.loads(text)
    except ValueError:
        return str(text)
    top = sorted(d.items(), key=lambda kv: -abs(float(kv[1])))[:n]
    return ", ".join(f"{k} {float(v):.0%}" for k, v in top)


def _window(batch: dict) -> tuple[Any, Any]:
    start = batch.get("start_ts") or batch.get("inoculation_ts")
    end = batch.get("end_ts") or batch.get("harvest_ts")
    return start, end


def _in_window(df: pl.DataFrame, col: str, batch: dict) -> pl.DataFrame:
    start, end = _window(batch)
    if start is None:
        return df.head(0)
    c = pl.col(col)
    dtype = df.schema[col]
    lo = pl.lit(start).cast(dtype) if dtype == pl.Date else pl.lit(start)
    cond = c >= (pl.lit(start.date()) if dtype == pl.Date else lo)
    if end is not None:
        cond = cond & (c <= (pl.lit(end.date()) if dtype == pl.Date else pl.lit(end)))
    return df.filter(cond)


def _equipment(inp: BatchReportInputs, batch: dict) -> Section:
    s = Section(SECTIONS[4])
    unit = batch.get("unit_id")
    health = inp.rows("health", unit, column="unit_id")
    if health is None:
        s.empty_reason = inp.why_missing("health")
        return s
    health = _in_window(health, "date", batch)
    if health.height == 0:
        s.empty_reason = f"gold/fct_equipment_health_daily holds no day of {unit} during the batch"
        return s
    aggs = [
        pl.len().alias("days"),
        *[
            pl.col(c).max().round(3).alias(f"max_{c}")
            for c in ("vibration_max_mm_s", "motor_current_max_a", "feed_flow_dev_abs_max_ml_min")
            if c in health.columns
        ],
        *[pl.col(c).sum().alias(c) for c in ("n_work_orders_opened", "n_corrective_opened") if c in health.columns],
    ]
    tab = health.group_by("equipment_id").agg(aggs).sort("equipment_id")
    pdm = inp.rows("pdm")
    if pdm is None:
        s.blocks.append(Table.from_frame(tab, caption=f"Equipment of {unit} during the batch (daily health)"))
        s.blocks.append(Text(f"Failure probabilities: no data ({inp.why_missing('pdm')}; no PdM champion in service)."))
        return s
    pdm_w = _in_window(pdm.filter(pl.col("equipment_id").is_in(tab["equipment_id"].to_list())), "date", batch)
    risk = pdm_w.group_by("equipment_id").agg(
        pl.col("probability").max().round(3).alias("max_failure_probability"),
        pl.col("alert").sum().alias("alert_days"),
    )
    tab = tab.join(risk, on="equipment_id", how="left")
    flags = {(i, "alert_days"): "bad" for i, v in enumerate(tab["alert_days"]) if v}
    s.blocks.append(
        Table.from_frame(tab, caption=f"Equipment of {unit} during the batch: daily health and PdM risk", flags=flags)
    )
    if pdm_w.height:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(8, 2.8))
        for eq, g in pdm_w.sort("date").group_by("equipment_id", maintain_order=True):
            ax.plot(g["date"].to_list(), g["probability"].to_numpy(), marker=".", lw=1, label=eq[0])
        ax.plot(
            pdm_w["date"].to_list(),
            pdm_w["threshold"].to_numpy(),
            "--",
            color="tab:red",
            lw=0.8,
            label="alert threshold",
        )
        ax.set_ylabel("P(failure within horizon)")
        ax.legend(fontsize=6, ncol=3, loc="upper left")
        fig.autofmt_xdate()
        s.blocks.append(Figure(_png(fig), "Predicted failure probability per equipment-day during the batch."))
    return s


def _cqa(inp: BatchReportInputs, batch: dict) -> Section:
    s = Section(SECTIONS[5])
    bid = batch["batch_id"]
    harvest = inp.rows("harvest", bid)
    pred: dict[str, dict] = {}
    if harvest is not None:
        for row in harvest.iter_rows(named=True):
            pred[f"{row['target']}_pct"] = row
    rows, flags = [], {}
    for col, spec in inp.cqa_specs.items():
        lo, hi = spec.get("min"), spec.get("max")
        measured = batch.get(col)
        p = pred.get(col)
        ok = None if measured is None else ((lo is None or measured >= lo) and (hi is None or measured <= hi))
        p_ok = None
        if p is not None:
            v = p["prediction"]
            p_ok = (lo is None or v >= lo) and (hi is None or v <= hi)
        i = len(rows)
        rows.append(
            [
                col,
                "–" if lo is None else lo,
                "–" if hi is None else hi,
                measured,
                "–" if ok is None else ("in spec" if ok else "OUT OF SPEC"),
                None if p is None else p["prediction"],
                None if p is None else f"{p['pi_lower']:.3g} – {p['pi_upper']:.3g}",
                "–" if p_ok is None else ("in spec" if p_ok else "OUT OF SPEC"),
            ]
        )
        if ok is not None:
            flags[(i, "measured_status")] = "good" if ok else "bad"
        if p_ok is not None:
            flags[(i, "predicted_status")] = "good" if p_ok else "bad"
    if not rows:
        s.empty_reason = "config/golden.yaml defines no CQA specification"
        return s
    cols = ["cqa", "min", "max", "measured", "measured_status", "predicted", "interval", "predicted_status"]
    s.blocks.append(
        Table(cols, rows, caption="Harvest CQAs: measured (LIMS) and predicted from day-D data", flags=flags)
    )
    if harvest is None:
        s.blocks.append(
            Text(f"CQA predictions: no data ({inp.why_missing('harvest')}; no harvest-CQA champion in service).")
        )
    elif harvest.height == 0:
        s.blocks.append(Text(f"CQA predictions: none for {bid} (the batch did not reach the prediction day)."))
    titer = batch.get("harvest_titer_g_l")
    s.blocks.append(Text(f"Harvest titer (measured): {'–' if titer is None else f'{titer:.3g} g/L'}."))
    return s


def _work_orders(inp: BatchReportInputs, batch: dict) -> Section:
    s = Section(SECTIONS[6])
    bid = batch["batch_id"]
    wo = inp.rows("work_orders")
    if wo is None:
        s.empty_reason = inp.why_missing("work_orders")
        return s
    during = _in_window(wo.filter(pl.col("unit_id") == batch.get("unit_id")), "opened_at", batch)
    mine = pl.concat([wo.filter(pl.col("running_batch_id") == bid), during]).unique("work_order_id").sort("opened_at")
    n_dev = batch.get("n_deviation_work_orders")
    s.blocks.append(
        Text(
            f"Deviation work orders recorded against the batch: {'–' if n_dev is None else n_dev}. "
            f"Work orders on {batch.get('unit_id')} while the batch ran: {mine.height}."
        )
    )
    if mine.height:
        cols = [
            "work_order_id",
            "equipment_id",
            "work_type",
            "failure_mode",
            "priority",
            "opened_at",
            "closed_at",
            "description",
        ]
        tab = mine.select([c for c in cols if c in mine.columns])
        flags = {(i, "work_type"): "bad" for i, v in enumerate(tab["work_type"]) if v == "corrective"}
        s.blocks.append(Table.from_frame(tab, caption="Work orders (corrective ones marked)", flags=flags))
    else:
        s.blocks = []
        s.empty_reason = f"no work order was opened on {batch.get('unit_id')} during the batch, none names {bid}"
    return s


BUILDERS: tuple[Callable[[BatchReportInputs, dict], Section], ...] = (
    _identity,
    _trajectories,
    _softsensor,
    _mspc,
    _equipment,
    _cqa,
    _work_orders,
)


def build_batch_document(inputs: BatchReportInputs, batch_id: str) -> Document:
    """The report of ``batch_id`` (raises ``KeyError`` when gold/dim_batches does not know it)."""
    batches = inputs.rows("batches", batch_id)
    if batches is None:
        raise KeyError(
            f"gold/dim_batches is missing ({inputs.why_missing('batches')}): materialize the gold layer first"
        )
    if batches.height == 0:
        raise KeyError(f"batch {batch_id!r} is not in gold/dim_batches")
    batch = batches.row(0, named=True)
    facts = {
        k: batch.get(c)
        for k, c in (
            ("Batch", "batch_id"),
            ("Bioreactor", "unit_id"),
            ("Product", "product"),
            ("Recipe", "recipe_id"),
            ("Status", "status"),
            ("Start", "start_ts"),
            ("End", "end_ts"),
            ("Duration (h)", "duration_h"),
            ("Harvest lot", "harvest_lot"),
        )
    }
    return Document(
        title=f"Batch report {batch_id}",
        subtitle=f"{batch.get('product')} · {batch.get('unit_id')} · from the lake's gold and score tables",
        facts=facts,
        sections=[build(inputs, batch) for build in BUILDERS],
    )


# below this many reports one process writes them all: starting a worker (imports, inputs)
# costs a few seconds, a report about one (matplotlib + WeasyPrint, single-threaded)
PARALLEL_MIN_REPORTS = 12

_WORKER: dict[str, Any] = {}


def _worker_init(lake: Any, units: dict[str, str]) -> None:
    inputs = BatchReportInputs.load(lake)
    inputs.units = units
    _WORKER.update(lake=lake, inputs=inputs)


def _worker_write(batch_id: str, out_dir: str | None) -> ReportFiles:
    doc = build_batch_document(_WORKER["inputs"], batch_id)
    return write_document(doc, _WORKER["lake"], *REPORT_DIR, batch_id, out_dir=out_dir)


def write_batch_reports(
    lake: Any,
    batch_ids: Iterable[str] | None = None,
    *,
    out_dir: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    units: dict[str, str] | None = None,
    workers: int | None = None,
) -> dict[str, ReportFiles]:
    """Write the HTML + PDF report of each batch (default: every batch of ``gold/dim_batches``)
    to ``reports/batch/<batch_id>`` in the lake, or under the local ``out_dir``. ``units``
    (signal -> unit, e.g. from the plant's catalog) label the trajectory plots.

    ``workers``: processes that render reports side by side (default: one per CPU core, at
    most 4, from :data:`PARALLEL_MIN_REPORTS` reports on; 1 = in this process). A report is
    CPU-bound Python (matplotlib, WeasyPrint), so threads would not help; each worker is a
    fresh (spawned) process that loads the report inputs once.

    ``progress(i, n, batch_id)`` is called after each report. Raises ``KeyError`` for an
    unknown batch id. Returns the files per batch, in the order of ``batch_ids``.
    """
    import os

    inputs = BatchReportInputs.load(lake)
    inputs.units = dict(units or {})
    ids = list(batch_ids) if batch_ids is not None else inputs.batch_ids
    unknown = sorted(set(ids) - set(inputs.batch_ids))
    if unknown:
        raise KeyError(f"not in gold/dim_batches: {', '.join(unknown)}")
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if len(ids) >= PARALLEL_MIN_REPORTS else 1
    out: dict[str, ReportFiles] = {}
    if workers <= 1 or len(ids) < 2:
        for i, bid in enumerate(ids, 1):
            doc = build_batch_document(inputs, bid)
            out[bid] = write_document(doc, lake, *REPORT_DIR, bid, out_dir=out_dir)
            if progress:
                progress(i, len(ids), bid)
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(
        max_workers=min(workers, len(ids)),
        mp_context=mp.get_context("spawn"),  # not fork: this process runs threads (Dagster, Arrow)
        initializer=_worker_init,
        initargs=(lake, inputs.units),
    ) as pool:
        futures = {pool.submit(_worker_write, bid, out_dir): bid for bid in ids}
        for i, fut in enumerate(as_completed(futures), 1):
            out[futures[fut]] = fut.result()
            if progress:
                progress(i, len(ids), futures[fut])
    return {bid: out[bid] for bid in ids}
