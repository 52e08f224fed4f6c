"""Feature builders: pure functions of (polars DataFrame(s), config) → polars DataFrame.

These are the ML team's contract (``features/softsensor``, ``features/equipment_health``) and
the specification the Spark engine re-implements. Exact semantics (also in ``docs/ml.md``):

Soft-sensor features (input: ``gold/fct_process_readings`` rows of one or more batches,
ordered per batch by ``ts``; ``gold/dim_batches`` for setpoints):

* ``<s>``                 value of signal ``s`` at the grid step (as in the gold table).
* ``<s>__mean_<w>m``      mean of the non-null values of ``s`` with ``ts`` in ``(t - w, t]``
                          within the same batch (time-based window, not row count).
* ``<s>__std_<w>m``       sample standard deviation (ddof=1) over the same window; null when
                          fewer than 2 non-null values.
* ``<s>__roc_<w>m``       rate of change per hour = ``(s_t - mean_w(s)) / (t_h - mean_w(t_h))``
                          where ``mean_w(t_h)`` is the mean time (hours) of the non-null values
                          in the window; exact slope for a linear signal; null when the
                          denominator is 0 (one value).
* ``<s>__integral``       ``sum_{i<=t} coalesce(s_i, 0) * (ts_i - ts_{i-1})_h`` within the
                          batch (first row contributes 0): cumulative integral over culture
                          time (e.g. cumulative OUR/CER proxies, integral of capacitance).
* derived signals         ``config.derived``: SQL expressions evaluated row-wise before all of
                          the above (``polars.sql_expr`` / Spark ``F.expr``).
* ``sp__<k>``             recipe setpoint ``k`` from ``dim_batches`` (null when absent).
* ``phase__<P>``          1.0 when the row's MES phase is ``P`` else 0.0.
* ``culture_age_h``       as in the gold table.

Rows: one ``row_type = "step"`` row per batch every ``step_minutes`` of grid time from the
batch's first grid row (``(ts - first_ts) mod step == 0``), and one ``row_type = "sample"``
row per assay sample of a ``label_analytes`` analyte, carrying the features of the last grid row
at or before ``sample_time`` (within ``asof_tolerance_minutes``) and ``label__<analyte>`` = the
result of that sample. ``baseline__<a>`` is the last result of analyte ``a`` visible at the
row's time (``result_time <= t``; ``t = ts`` for step rows, ``sample_time`` for sample rows):
the carry-forward baseline. ``maturity_pct`` is NOT used (it needs the harvest time).

Equipment-health features (input: ``gold/fct_equipment_health_daily``, one row per
equipment per day; ``gold/fct_work_orders``): see :func:`build_equipment_health_features`.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ml.config import EquipmentFeatureConfig, FeatureConfig, HarvestModelConfig

SS_KEY_COLUMNS = [
    "batch_id",
    "unit_id",
    "ts",
    "culture_age_h",
    "culture_day",
    "phase",
    "row_type",
    "sample_id",
    "sample_time",
    "result_time",
]
EQ_KEY_COLUMNS = ["equipment_id", "equipment_type", "date", "in_repair"]
UTC_US = pl.Datetime("us", "UTC")


# =========================================================================== soft sensor
def state_code_label(code: float) -> str:
    """Feature-name form of a state code: ``4.0`` -> ``4``, ``2.5`` -> ``2p5``, ``-1`` -> ``m1``."""
    c = float(code)
    txt = str(int(c)) if c.is_integer() else repr(c).replace(".", "p")
    return txt.replace("-", "m")


def softsensor_feature_names(config: FeatureConfig) -> list[str]:
    """Model input columns, in a stable order."""
    names: list[str] = ["culture_age_h"]
    if config.maturity_from:
        names.append("maturity_planned_pct")
    for s in config.all_signals:
        names.append(s)
        for w in config.windows_minutes:
            for stat in config.rolling_stats:
                names.append(f"{s}__{stat}_{w}m")
            if config.rate_of_change:
                names.append(f"{s}__roc_{w}m")
    names += [f"{s}__integral" for s in config.integrals]
    names += [f"{s}__since_start" for s in config.totalisers]
    for s in config.states:
        if s not in config.all_signals:
            names.append(s)
        names.append(f"{s}__time_in_state_h")
        names += [f"{s}__hours_in_{state_code_label(c)}" for c in config.state_codes.get(s, ())]
    names += [f"sp__{k}" for k in config.setpoints]
    names += [f"phase__{p}" for p in config.phases]
    return names


def feature_signal(name: str) -> str:
    """The signal a feature belongs to (for explanations aggregated by signal)."""
    if name.startswith("sp__"):
        return "recipe_setpoints"
    if name.startswith("phase__"):
        return "phase"
    if name.startswith("eqtype__"):
        return "equipment_type"
    if name in ("culture_age_h", "maturity_planned_pct"):
        return "culture_age"
    if name.startswith("days_since_"):
        return "maintenance_history"
    if name.startswith("health__"):
        return "health_index"
    return name.split("__", 1)[0]


def _ensure_columns(df: pl.DataFrame, columns: Iterable[str], dtype=pl.Float64) -> pl.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    return df.with_columns(pl.lit(None, dtype=dtype).alias(c) for c in missing) if missing else df


def raw_signals(config: FeatureConfig) -> list[str]:
    """Columns of ``fct_process_readings`` the features read (every listed signal that is not derived)."""
    derived = {d.name for d in config.derived}
    lists = (config.signals, config.integrals, config.totalisers, config.states)
    return [s for s in dict.fromkeys(x for lst in lists for x in lst) if s not in derived]


def _age_hours(col: str = "ts") -> pl.Expr:
    return pl.col(col).dt.epoch("us").cast(pl.Float64) / 3.6e9


def compute_online_features(readings: pl.DataFrame, batches: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
    """Features at every grid row of ``readings`` (gold ``fct_process_readings`` shape)."""
    raw = raw_signals(config)
    df = _ensure_columns(readings, raw)
    df = df.with_columns(
        pl.col("ts").cast(UTC_US), pl.col("culture_age_h").cast(pl.Float64), *[pl.col(s).cast(pl.Float64) for s in raw]
    ).sort(["batch_id", "ts"])
    if config.derived:
        df = df.with_columns(pl.sql_expr(d.expr).cast(pl.Float64).alias(d.name) for d in config.derived)
    if config.maturity_from:
        planned = (
            batches.select("batch_id", pl.col(config.maturity_from).cast(pl.Float64).alias("_planned_h"))
            if config.maturity_from in batches.columns
            else batches.select("batch_id").with_columns(pl.lit(None, dtype=pl.Float64).alias("_planned_h"))
        )
        df = df.join(planned, on="batch_id", how="left")
    by = "batch_id"
    t_h = _age_hours("ts")
    exprs: list[pl.Expr] = []
    for s in config.all_signals:
        x = pl.col(s).cast(pl.Float64)
        for w in config.windows_minutes:
            win = f"{int(w)}m"
            if "mean" in config.rolling_stats or config.rate_of_change:
                mean = x.rolling_mean_by("ts", win).over(by)
            if "mean" in config.rolling_stats:
                exprs.append(mean.alias(f"{s}__mean_{w}m"))
            if "std" in config.rolling_stats:
                exprs.append(x.rolling_std_by("ts", win).over(by).alias(f"{s}__std_{w}m"))
            if "min" in config.rolling_stats:
                exprs.append(x.rolling_min_by("ts", win).over(by).alias(f"{s}__min_{w}m"))
            if "max" in config.rolling_stats:
                exprs.append(x.rolling_max_by("ts", win).over(by).alias(f"{s}__max_{w}m"))
            if config.rate_of_change:
                t_mean = pl.when(x.is_not_null()).then(t_h).otherwise(None).rolling_mean_by("ts", win).over(by)
                denom = t_h - t_mean
                exprs.append(pl.when(denom > 1e-9).then((x - mean) / denom).otherwise(None).alias(f"{s}__roc_{w}m"))
    dt_h = (t_h - t_h.shift(1).over(by)).fill_null(0.0)
    for s in config.integrals:
        exprs.append((pl.col(s).cast(pl.Float64).fill_null(0.0) * dt_h).cum_sum().over(by).alias(f"{s}__integral"))
    for s in config.totalisers:  # amount since the batch's first value (a counter reset is not undone)
        x = pl.col(s).cast(pl.Float64)
        exprs.append((x - x.drop_nulls().first().over(by)).alias(f"{s}__since_start"))
    exprs += _state_features(config, by, t_h, dt_h)
    if config.maturity_from:
        exprs.append((100.0 * pl.col("culture_age_h") / pl.col("_planned_h")).alias("maturity_planned_pct"))
    exprs += [(pl.col("phase") == p).cast(pl.Float64).fill_null(0.0).alias(f"phase__{p}") for p in config.phases]
    # the first grid step may precede inoculation by < 1 grid step (time_bucket floors): day 0
    exprs.append((pl.col("culture_age_h").clip(lower_bound=0.0) // 24).cast(pl.Int32).alias("culture_day"))
    df = df.with_columns(exprs)

    sp_cols = [k for k in config.setpoints if k in batches.columns]
    sp = batches.select(["batch_id", *[pl.col(k).cast(pl.Float64).alias(f"sp__{k}") for k in sp_cols]])
    df = df.join(sp, on="batch_id", how="left")
    df = _ensure_columns(df, [f"sp__{k}" for k in config.setpoints])
    if "unit_id" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("unit_id"))
    return df.select(["batch_id", "unit_id", "ts", "culture_day", "phase", *softsensor_feature_names(config)])


def _state_features(config: FeatureConfig, by: str, t_h: pl.Expr, dt_h: pl.Expr) -> list[pl.Expr]:
    """``<s>__time_in_state_h``: hours since the state value last changed (null before its first
    value); ``<s>__hours_in_<c>``: hours spent in code ``c`` so far (right-Riemann like the
    integrals: step ``i`` counts ``ts_i - ts_{i-1}`` when the value at ``i`` is ``c``)."""
    exprs: list[pl.Expr] = []
    for s in config.states:
        x = pl.col(s).cast(pl.Float64)
        changed = (x != x.shift(1).over(by)).fill_null(True) | x.shift(1).over(by).is_null()
        t_start = pl.when(changed).then(t_h).otherwise(None).forward_fill().over(by)
        exprs.append(pl.when(x.is_not_null()).then(t_h - t_start).otherwise(None).alias(f"{s}__time_in_state_h"))
        for c in config.state_codes.get(s, ()):
            exprs.append(
                ((x == float(c)).fill_null(False).cast(pl.Float64) * dt_h)
                .cum_sum()
                .over(by)
                .alias(f"{s}__hours_in_{state_code_label(c)}")
            )
    return exprs


def assay_samples(assays: pl.DataFrame, analytes: Iterable[str]) -> pl.DataFrame:
    """One row per physical sample with ``label__<analyte>`` columns (mean if repeated)."""
    analytes = list(analytes)
    a = assays.filter(pl.col("analyte").is_in(analytes)).with_columns(
        pl.col("sample_time").cast(UTC_US), pl.col("result_time").cast(UTC_US)
    )
    if a.height == 0:
        schema = {"sample_id": pl.String, "batch_id": pl.String, "sample_time": UTC_US, "result_time": UTC_US}
        schema |= {f"label__{x}": pl.Float64 for x in analytes}
        return pl.DataFrame(schema=schema)
    keys = a.group_by("sample_id").agg(
        pl.col("batch_id").first(), pl.col("sample_time").min(), pl.col("result_time").max()
    )
    wide = (
        a.group_by(["sample_id", "analyte"])
        .agg(pl.col("value").cast(pl.Float64).mean())
        .pivot(on="analyte", index="sample_id", values="value")
    )
    wide = wide.rename({x: f"label__{x}" for x in analytes if x in wide.columns})
    out = keys.join(wide, on="sample_id", how="left")
    out = _ensure_columns(out, [f"label__{x}" for x in analytes])
    return out.select(["sample_id", "batch_id", "sample_time", "result_time", *[f"label__{x}" for x in analytes]])


def _attach_baselines(rows: pl.DataFrame, assays: pl.DataFrame | None, config: FeatureConfig) -> pl.DataFrame:
    """``baseline__<a>``: last result of ``a`` with ``result_time <= asof``; ``baseline__<a>_age_h``."""
    for a in config.baseline_analytes:
        col, age = f"baseline__{a}", f"baseline__{a}_age_h"
        if assays is None:
            rows = rows.with_columns(
                pl.lit(None, dtype=pl.Float64).alias(col), pl.lit(None, dtype=pl.Float64).alias(age)
            )
            continue
        res = (
            assays.filter(pl.col("analyte") == a)
            .select(
                "batch_id",
                pl.col("result_time").cast(UTC_US).alias("_visible_at"),
                pl.col("sample_time").cast(UTC_US).alias("_b_sample_time"),
                pl.col("value").cast(pl.Float64).alias(col),
            )
            .sort(["_visible_at", "_b_sample_time"])
        )
        rows = rows.sort("_asof").join_asof(
            res, left_on="_asof", right_on="_visible_at", by="batch_id", strategy="backward", check_sortedness=False
        )
        rows = rows.with_columns(
            ((pl.col("_asof") - pl.col("_b_sample_time")).dt.total_seconds() / 3600.0).alias(age)
        ).drop("_visible_at", "_b_sample_time")
    return rows


BATCHES_PER_CHUNK = 32  # soft-sensor features are built this many batches at a time


def build_softsensor_features(
    readings: pl.DataFrame,
    batches: pl.DataFrame,
    config: FeatureConfig,
    assays: pl.DataFrame | None = None,
    *,
    batches_per_chunk: int | None = BATCHES_PER_CHUNK,
) -> pl.DataFrame:
    """The ``features/softsensor`` table: step rows (+ sample/label rows when ``assays`` given).

    Every feature is computed within one batch, so the table is built ``batches_per_chunk``
    batches at a time (``None``: all at once; the result is the same): the grid-resolution
    intermediates (rolling windows of every signal on the 1-minute grid) are ~100× the result —
    a site-year (4.1 M grid rows) peaked at 11.3 GB for a 0.09 GB table when built at once.
    """
    ids = readings["batch_id"].unique().sort()
    if batches_per_chunk and len(ids) > batches_per_chunk:
        parts = [
            _softsensor_rows(
                readings.filter(pl.col("batch_id").is_in(ids[i : i + batches_per_chunk].implode())),
                batches,
                config,
                assays,
            )
            for i in range(0, len(ids), batches_per_chunk)
        ]
        return pl.concat(parts, how="vertical_relaxed").sort(["batch_id", "ts", "row_type"])
    return _softsensor_rows(readings, batches, config, assays)


def _softsensor_rows(
    readings: pl.DataFrame, batches: pl.DataFrame, config: FeatureConfig, assays: pl.DataFrame | None
) -> pl.DataFrame:
    full = compute_online_features(readings, batches, config)
    step_ns = int(config.step_minutes) * 60 * 1_000_000
    since_first = (pl.col("ts") - pl.col("ts").min().over("batch_id")).dt.total_microseconds()
    steps = full.filter(since_first % step_ns == 0).with_columns(
        pl.lit("step").alias("row_type"),
        pl.lit(None, dtype=pl.String).alias("sample_id"),
        pl.lit(None, dtype=UTC_US).alias("sample_time"),
        pl.lit(None, dtype=UTC_US).alias("result_time"),
        *[pl.lit(None, dtype=pl.Float64).alias(f"label__{a}") for a in config.label_analytes],
        pl.col("ts").alias("_asof"),
    )
    parts = [steps]
    if assays is not None:
        samples = assay_samples(assays, config.label_analytes).sort("sample_time")
        feats = full.sort("ts")
        joined = samples.join_asof(
            feats,
            left_on="sample_time",
            right_on="ts",
            by="batch_id",
            strategy="backward",
            tolerance=f"{int(config.asof_tolerance_minutes)}m",
            check_sortedness=False,
        )
        joined = joined.filter(pl.col("ts").is_not_null()).with_columns(
            pl.lit("sample").alias("row_type"), pl.col("sample_time").alias("_asof")
        )
        parts.append(joined.select(steps.columns))
    rows = pl.concat(parts, how="vertical")
    rows = _attach_baselines(rows, assays, config)
    label_cols = [f"label__{a}" for a in config.label_analytes]
    base_cols = [c for a in config.baseline_analytes for c in (f"baseline__{a}", f"baseline__{a}_age_h")]
    feats = [c for c in softsensor_feature_names(config) if c not in SS_KEY_COLUMNS]
    return (
        rows.drop("_asof")
        .select([*SS_KEY_COLUMNS, *feats, *label_cols, *base_cols])
        .sort(["batch_id", "ts", "row_type"])
    )


def softsensor_training_rows(features: pl.DataFrame, target: str, min_culture_age_h: float = 0.0) -> pl.DataFrame:
    """Sample rows with a label for ``target``."""
    return features.filter(
        (pl.col("row_type") == "sample")
        & pl.col(f"label__{target}").is_not_null()
        & (pl.col("culture_age_h") >= min_culture_age_h)
    )


def build_harvest_dataset(features: pl.DataFrame, harvest: HarvestModelConfig) -> pl.DataFrame:
    """One row per batch: step features at the last step with culture age <= ``day``·24 h, and
    ``label__<target>`` from the batch's last sample that has any of the harvest targets.

    Only batches that reached day D are included (unlabelled batches keep null labels so they
    can be scored)."""
    cutoff = float(harvest.day) * 24.0
    steps = features.filter(pl.col("row_type") == "step")
    reached = steps.group_by("batch_id").agg(pl.col("culture_age_h").max().alias("_max_age"))
    snap = (
        steps.filter(pl.col("culture_age_h") <= cutoff)
        .sort(["batch_id", "ts"])
        .group_by("batch_id", maintain_order=True)
        .last()
    )
    snap = snap.join(reached, on="batch_id").filter(pl.col("_max_age") >= cutoff - 1e-6).drop("_max_age")
    labels = [f"label__{t}" for t in harvest.targets]
    present = [c for c in labels if c in features.columns]
    lab = (
        (
            features.filter(
                (pl.col("row_type") == "sample") & pl.any_horizontal(pl.col(c).is_not_null() for c in present)
            )
            .sort(["batch_id", "sample_time"])
            .group_by("batch_id", maintain_order=True)
            .last()
            .select("batch_id", *present)
        )
        if present
        else pl.DataFrame({"batch_id": []}, schema={"batch_id": pl.String})
    )
    out = snap.drop([c for c in snap.columns if c.startswith("label__")]).join(lab, on="batch_id", how="left")
    return _ensure_columns(out, labels)


# =========================================================================== equipment health
def equipment_feature_names(config: EquipmentFeatureConfig) -> list[str]:
    """Names of the equipment-health feature columns a config produces (model inputs, in order)."""
    names: list[str] = []
    for s in config.all_signals:
        names.append(s)
        for w in config.windows_days:
            names += [f"{s}__mean_{w}d", f"{s}__std_{w}d", f"{s}__slope_{w}d"]
        names += [f"{s}__rel_base", f"{s}__z_fleet"]
    names += ["health__max_abs_z", "days_since_last_wo", "days_since_last_failure"]
    names += [f"eqtype__{t}" for t in config.equipment_types]
    return names


def _fleet_z(df: pl.DataFrame, signals, suffix: str) -> pl.DataFrame:
    """``<s>__z_fleet``: (``<s><suffix>`` − mean) / std of ``s`` over all rows of the same equipment
    type on EARLIER days (expanding, causal); ``health__max_abs_z``: max over signals of |z|."""
    day = pl.col("date")
    zs = []
    for s in signals:
        x = pl.col(s).cast(pl.Float64)
        daily = (
            df.group_by("equipment_type", "date")
            .agg(x.sum().alias("_s1"), (x * x).sum().alias("_s2"), x.count().alias("_n"))
            .sort("date")
            .with_columns(
                pl.col("_s1").cum_sum().shift(1).over("equipment_type").alias("_c1"),
                pl.col("_s2").cum_sum().shift(1).over("equipment_type").alias("_c2"),
                pl.col("_n").cum_sum().shift(1).over("equipment_type").alias("_cn"),
            )
            .select("equipment_type", day, "_c1", "_c2", "_cn")
        )
        df = df.join(daily, on=["equipment_type", "date"], how="left")
        mean = pl.col("_c1") / pl.col("_cn")
        var = (pl.col("_c2") / pl.col("_cn") - mean * mean).clip(lower_bound=0.0)
        z = (
            pl.when((pl.col("_cn") >= 10) & (var > 1e-12))
            .then((pl.col(f"{s}{suffix}") - mean) / var.sqrt())
            .otherwise(None)
        )
        df = df.with_columns(z.alias(f"{s}__z_fleet")).drop("_c1", "_c2", "_cn")
        zs.append(f"{s}__z_fleet")
    return df.with_columns(pl.max_horizontal([pl.col(z).abs() for z in zs]).alias("health__max_abs_z"))


def failure_events(work_orders: pl.DataFrame, config: EquipmentFeatureConfig) -> pl.DataFrame:
    """Failures as seen by the CMMS: corrective (configurable) work orders."""
    wo = work_orders.filter(pl.col("work_type").is_in(list(config.failure_work_types)))
    if config.failure_modes:
        wo = wo.filter(pl.col("failure_mode").is_in(list(config.failure_modes)))
    return wo.select(
        "equipment_id",
        pl.col("opened_at").cast(UTC_US).alias("failure_time"),
        pl.col("closed_at").cast(UTC_US).alias("repaired_at"),
    )


def build_equipment_health_features(
    health: pl.DataFrame, work_orders: pl.DataFrame, config: EquipmentFeatureConfig
) -> pl.DataFrame:
    """The ``features/equipment_health`` table: one row per equipment per day.

    * ``<s>``, ``<s>__mean_<w>d``, ``<s>__std_<w>d``: value and rolling mean / sample std over the
      days ``(d - w, d]`` of the same equipment (calendar days, gaps allowed).
    * ``<s>__slope_<w>d``: least-squares slope per day over the same window
      (``cov(day, s) / var(day)`` of the non-null values; null with < 2 values).
    * ``<s>__rel_base``: ``<s>__mean_<w0>d`` (smallest window) minus the equipment's own baseline,
      the rolling median of ``s`` over ``baseline_days`` days ending ``baseline_lag_days`` before d.
    * ``days_since_last_wo`` / ``days_since_last_failure``: days from the last work order (any
      type) / failure work order opened on or before day d (null: none yet).
    * ``eqtype__<t>``: one-hot equipment type.
    * ``in_repair``: a failure work order is open on day d (``opened_at.date <= d < closed_at.date``).
    * ``label__failure_within_h``: 1 when a failure work order is opened on a day in ``(d, d + H]``;
      ``days_to_failure``: days to the next failure work order opened after d (null: none).
    Failure work orders = ``work_type in failure_work_types`` (and ``failure_mode in
    failure_modes`` when that list is non-empty).
    """
    df = _ensure_columns(health, config.signals)
    df = df.with_columns(pl.col("date").cast(pl.Date), *[pl.col(s).cast(pl.Float64) for s in config.signals]).sort(
        ["equipment_id", "date"]
    )
    if config.derived:
        df = df.with_columns(pl.sql_expr(d.expr).cast(pl.Float64).alias(d.name) for d in config.derived)
    if "equipment_type" not in df.columns:
        types = work_orders.select("equipment_id", "equipment_type").unique("equipment_id")
        df = df.join(types, on="equipment_id", how="left")
    by = "equipment_id"
    dnum = pl.col("date").cast(pl.Int32).cast(pl.Float64)
    exprs: list[pl.Expr] = []
    for s in config.all_signals:
        x = pl.col(s).cast(pl.Float64)
        tx = pl.when(x.is_not_null()).then(dnum).otherwise(None)
        for w in config.windows_days:
            win = f"{int(w)}d"
            mx = x.rolling_mean_by("date", win).over(by)
            mt = tx.rolling_mean_by("date", win).over(by)
            mtx = (tx * x).rolling_mean_by("date", win).over(by)
            mtt = (tx * tx).rolling_mean_by("date", win).over(by)
            var_t = mtt - mt * mt
            exprs += [
                mx.alias(f"{s}__mean_{w}d"),
                x.rolling_std_by("date", win).over(by).alias(f"{s}__std_{w}d"),
                pl.when(var_t > 1e-9).then((mtx - mt * mx) / var_t).otherwise(None).alias(f"{s}__slope_{w}d"),
            ]
    df = df.with_columns(exprs)
    # equipment's own lagged baseline
    w0 = min(config.windows_days)
    base = df.select(
        by,
        "date",
        *[
            pl.col(s)
            .cast(pl.Float64)
            .rolling_median_by("date", f"{config.baseline_days}d")
            .over(by)
            .alias(f"_base_{s}")
            for s in config.all_signals
        ],
    )
    base = base.with_columns((pl.col("date") + pl.duration(days=config.baseline_lag_days)).alias("date")).sort("date")
    df = df.sort("date").join_asof(base, on="date", by=by, strategy="backward", check_sortedness=False)
    df = df.with_columns(
        (pl.col(f"{s}__mean_{w0}d") - pl.col(f"_base_{s}")).alias(f"{s}__rel_base") for s in config.all_signals
    )
    df = df.drop([f"_base_{s}" for s in config.all_signals])
    df = _fleet_z(df, config.all_signals, f"__mean_{w0}d")

    # work-order history (known by the end of day d)
    wo = work_orders.select("equipment_id", pl.col("opened_at").cast(UTC_US).dt.date().alias("wo_date")).sort("wo_date")
    df = df.sort("date").join_asof(
        wo.rename({"wo_date": "_last_wo"}),
        left_on="date",
        right_on="_last_wo",
        by=by,
        strategy="backward",
        check_sortedness=False,
    )
    fails = failure_events(work_orders, config).with_columns(
        pl.col("failure_time").dt.date().alias("f_date"), pl.col("repaired_at").dt.date().alias("r_date")
    )
    fd = fails.select("equipment_id", "f_date").sort("f_date")
    df = df.join_asof(
        fd.rename({"f_date": "_last_f"}),
        left_on="date",
        right_on="_last_f",
        by=by,
        strategy="backward",
        check_sortedness=False,
    )
    df = df.join_asof(
        fd.rename({"f_date": "_next_f"}),
        left_on="date",
        right_on="_next_f",
        by=by,
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    # in repair: last failure opened on/before d and not yet closed at d
    rep = fails.select("equipment_id", pl.col("f_date").alias("_rf"), pl.col("r_date").alias("_rr")).sort("_rf")
    df = df.join_asof(rep, left_on="date", right_on="_rf", by=by, strategy="backward", check_sortedness=False)
    H = int(config.horizon_days)
    df = df.with_columns(
        (pl.col("date") - pl.col("_last_wo")).dt.total_days().cast(pl.Float64).alias("days_since_last_wo"),
        (pl.col("date") - pl.col("_last_f")).dt.total_days().cast(pl.Float64).alias("days_since_last_failure"),
        (pl.col("_rf").is_not_null() & (pl.col("_rr").is_null() | (pl.col("date") < pl.col("_rr")))).alias("in_repair"),
        (pl.col("_next_f") - pl.col("date")).dt.total_days().cast(pl.Float64).alias("days_to_failure"),
        *[
            (pl.col("equipment_type") == t).cast(pl.Float64).fill_null(0.0).alias(f"eqtype__{t}")
            for t in config.equipment_types
        ],
    )
    df = df.with_columns(
        (pl.col("days_to_failure").is_not_null() & (pl.col("days_to_failure") <= H))
        .cast(pl.Int8)
        .alias("label__failure_within_h")
    )
    return df.select(
        [*EQ_KEY_COLUMNS, *equipment_feature_names(config), "label__failure_within_h", "days_to_failure"]
    ).sort(["equipment_id", "date"])
