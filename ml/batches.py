"""Which batches are normal: the one rule the soft sensors and the golden batch / MSPC share.

A batch is **normal** when its status is one of ``normal_statuses`` (case-insensitive; an empty
list accepts every status) and — with ``exclude_recorded_deviations`` — nothing was recorded
against it: no row in the plant's recorded deviations and a zero ``deviation_count_column`` in
``dim_batches`` when that column exists. Everything else is a **fault** batch: kept out of
model training and of the MSPC reference, scored and reported separately. The recorded onset
(the earliest recorded deviation onset) splits a fault batch's rows into pre- and post-onset.
These are what the plant recorded (QA), never a simulator's truth.
"""

from __future__ import annotations

import polars as pl

from ml.config import BatchConditionConfig

UTC_US = pl.Datetime("us", "UTC")
NORMAL, FAULT = "normal", "fault"


def batch_conditions(
    batches: pl.DataFrame | None, deviations: pl.DataFrame | None, cfg: BatchConditionConfig
) -> pl.DataFrame:
    """One row per batch: ``batch_id, condition`` (``normal`` / ``fault``), ``reason`` and
    ``recorded_onset_ts`` (earliest recorded deviation onset; null when none or unknown).

    Parameters
    ----------
    batches
        ``dim_batches``-like: ``batch_id`` and, when available, ``status`` and the deviation count.
        None: no batch list (every batch seen elsewhere counts as normal; callers join on it).
    deviations
        Recorded deviations: ``batch_id`` and optionally ``recorded_onset_ts``. None: none recorded.
    cfg
        The rule (:class:`BatchConditionConfig`).
    """
    schema = {"batch_id": pl.String, "condition": pl.String, "reason": pl.String, "recorded_onset_ts": UTC_US}
    if batches is None or batches.height == 0:
        return pl.DataFrame(schema=schema)
    b = batches.select(
        pl.col("batch_id").cast(pl.String),
        (pl.col("status").cast(pl.String) if "status" in batches.columns else pl.lit(None, dtype=pl.String)).alias(
            "_status"
        ),
        (
            pl.col(cfg.deviation_count_column).cast(pl.Float64)
            if cfg.deviation_count_column and cfg.deviation_count_column in batches.columns
            else pl.lit(None, dtype=pl.Float64)
        ).alias("_n_dev"),
    ).unique("batch_id", keep="first")
    if deviations is not None and deviations.height:
        onset = (
            pl.col("recorded_onset_ts").cast(UTC_US)
            if "recorded_onset_ts" in deviations.columns
            else pl.lit(None, dtype=UTC_US)
        )
        d = (
            deviations.select(pl.col("batch_id").cast(pl.String), onset.alias("_onset"))
            .group_by("batch_id")
            .agg(pl.len().alias("_n_rec"), pl.col("_onset").min())
        )
        b = b.join(d, on="batch_id", how="left")
    else:
        b = b.with_columns(pl.lit(None, dtype=pl.UInt32).alias("_n_rec"), pl.lit(None, dtype=UTC_US).alias("_onset"))
    ok_status = [s.lower() for s in cfg.normal_statuses]
    bad_status = (
        (pl.col("_status").str.to_lowercase().is_in(ok_status).not_() | pl.col("_status").is_null())
        if ok_status
        else pl.lit(False)
    )
    recorded = (pl.col("_n_rec").fill_null(0) > 0) | (pl.col("_n_dev").fill_null(0) > 0)
    if not cfg.exclude_recorded_deviations:
        recorded = pl.lit(False)
    reason = pl.concat_str(
        [
            pl.when(bad_status).then(pl.format("status {}", pl.col("_status").fill_null("null"))),
            pl.when(recorded).then(pl.lit("recorded deviation")),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    return b.select(
        "batch_id",
        pl.when(bad_status | recorded).then(pl.lit(FAULT)).otherwise(pl.lit(NORMAL)).alias("condition"),
        pl.when(bad_status | recorded).then(reason).otherwise(pl.lit("")).alias("reason"),
        pl.col("_onset").alias("recorded_onset_ts"),
    ).sort("batch_id")


def normal_batch_ids(conditions: pl.DataFrame) -> list[str]:
    """The batches :func:`batch_conditions` classified as normal."""
    return sorted(conditions.filter(pl.col("condition") == NORMAL)["batch_id"].to_list())
