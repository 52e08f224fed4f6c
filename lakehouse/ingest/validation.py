"""pandera (polars backend) validation at the landing → bronze boundary.

Every reader turns a batch of files into one polars frame (row-per-record, typed, with the
helper columns ``_file`` (index of the file in the batch), ``_row`` (1-based record number in
its file) and ``_issue`` (a parse problem found while reading, e.g. a non-numeric value), and
validates it with ONE ``schema.validate(lazy=True)`` call. The failure cases pandera reports
carry the row index; :func:`split_invalid` turns them into a per-row reason. Nothing here
loops over rows in Python.
"""

from __future__ import annotations

import datetime as dt
import importlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

import polars as pl


class _LazyModule(ModuleType):
    """A module imported on first attribute access.

    pandera (and through it pandas and pyspark) costs seconds to import; the Dagster code
    location imports this package to declare the bronze assets but validates nothing then.
    """

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self.__name__), attr)


#: ``pandera.polars``, loaded when a schema is first built (readers import it from here)
pap = _LazyModule("pandera.polars")
_errors = _LazyModule("pandera.errors")

MIN_TS = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
DEFAULT_MAX_FUTURE = dt.timedelta(days=365)

warnings.filterwarnings("ignore", module="pandera")


@dataclass(frozen=True)
class TimePolicy:
    """Timestamp sanity: not before ``min_ts``, not later than ``now + max_future``."""

    min_ts: dt.datetime = MIN_TS
    max_future: dt.timedelta = DEFAULT_MAX_FUTURE
    now: dt.datetime | None = None

    @property
    def max_ts(self) -> dt.datetime:
        """The latest time stamp accepted: now (rounded to the day) plus the allowed skew."""
        now = self.now or dt.datetime.now(dt.UTC)
        # rounded to the day so the verdict is stable within a day (re-runs after a crash
        # classify rows the same way)
        day = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
        return day + dt.timedelta(days=1) + self.max_future


# ------------------------------------------------------------------ check builders
def _expr_check(expr_fn: Callable[[str], pl.Expr], name: str, error: str) -> pap.Check:
    """A column check computed from an expression over the whole frame (vectorised)."""

    def fn(data):  # pandera PolarsData: lazyframe + key
        return data.lazyframe.select(expr_fn(data.key).fill_null(True))

    return pap.Check(fn, name=name, error=error)


def frame_check(expr: pl.Expr, name: str, error: str) -> pap.Check:
    """A dataframe-level check from one boolean expression (True = row ok)."""

    def fn(data):
        return data.lazyframe.select(expr.fill_null(True).alias(name))

    return pap.Check(fn, name=name, error=error)


def ts_column(policy: TimePolicy, nullable: bool = False) -> pap.Column:
    """pandera column of a UTC timestamp inside the time policy's window."""
    return pap.Column(
        pl.Datetime("us", "UTC"),
        nullable=nullable,
        checks=[
            pap.Check.in_range(
                policy.min_ts,
                policy.max_ts,
                name="timestamp_sane",
                error=f"timestamp before {policy.min_ts:%Y-%m-%d} or in the far future",
            )
        ],
    )


def finite_check() -> pap.Check:
    """pandera check: value is finite (no NaN or ±inf)."""
    return _expr_check(lambda c: pl.col(c).is_finite(), "finite", "value is NaN or infinite")


def range_check(lo: float, hi: float) -> pap.Check:
    """pandera check: ``lo <= value <= hi``."""
    return pap.Check.in_range(lo, hi, name="in_range", error=f"value outside [{lo}, {hi}]")


def between_columns_check(lo_col: str, hi_col: str) -> pap.Check:
    """pandera check: column ``lo_col`` <= column ``hi_col`` (where both are set)."""
    return _expr_check(
        lambda c: (pl.col(c) >= pl.col(lo_col)) & (pl.col(c) <= pl.col(hi_col)),
        "in_range",
        "value outside the plausible range",
    )


def issue_column() -> pap.Column:
    """``_issue`` must be null; its text is the reason (parse problems found while reading)."""
    return pap.Column(
        pl.Utf8, nullable=True, checks=[_expr_check(lambda c: pl.col(c).is_null(), "parse", "parse error")]
    )


def duplicate_check(keys: list[str], what: str, shown: str | None = None) -> pap.Check:
    """Second and later occurrences of the same key in the same file fail."""
    shown = shown or ", ".join(keys)
    return frame_check(
        pl.struct(["_file", *keys]).is_first_distinct(),
        "duplicate_key",
        f"duplicate key ({shown}) in file, first occurrence kept",
    )


# --------------------------------------------------------------------- splitting
_REASON_COL = "_reason"


def _display(column: str | None) -> str | None:
    if column is None:
        return None
    return {"_unit_norm": "unit", "_exp_unit": "analyte"}.get(column, column)


def _reason_text(
    column: str | None, check: str, failure_case: str | None, reasons: Mapping[tuple[str | None, str], str]
) -> str:
    """Readable reason: the check's error text (or an override) + the offending value."""
    if column == "_issue":
        return str(failure_case)
    base = reasons.get((column, check)) or reasons.get((None, check))
    if base is None:
        base = f"missing {_display(column)}" if check == "not_nullable" else check
    if column and check != "not_nullable" and failure_case not in (None, "false", "true"):
        fc = str(failure_case)
        if len(fc) > 80:
            fc = fc[:77] + "..."
        return f"{base} ({_display(column)}={fc})"
    return base


def split_invalid(
    df: pl.DataFrame, schema: pap.DataFrameSchema, reasons: Mapping[tuple[str | None, str], str] | None = None
) -> pl.DataFrame:
    """Validate ``df`` with ``schema``; return ``(index, _reason)`` for every failing row.

    Schema-level errors without a row index (a column missing or of the wrong type) are
    programming errors of the reader and are raised.
    """
    reasons = reasons or {}
    try:
        schema.validate(df, lazy=True)
        return pl.DataFrame({"index": pl.Series([], dtype=pl.UInt32), _REASON_COL: pl.Series([], dtype=pl.Utf8)})
    except _errors.SchemaErrors as err:
        fc = err.failure_cases
    except _errors.SchemaError:  # pragma: no cover - lazy=True always raises SchemaErrors
        raise
    if fc["index"].null_count():
        bad = fc.filter(pl.col("index").is_null())
        raise ValueError(f"schema-level validation error (reader bug): {bad.to_dicts()[:3]}")
    fc = fc.select(
        pl.col("index").cast(pl.UInt32),
        "column",
        "check",
        pl.col("failure_case").cast(pl.Utf8),
    )
    # reason text per distinct (column, check, failure value): few distinct combos, so this
    # small Python mapping is not a row loop
    combos = fc.select("column", "check", "failure_case").unique()
    texts = [
        _reason_text(c, k, v, reasons)
        for c, k, v in zip(combos["column"].to_list(), combos["check"].to_list(), combos["failure_case"].to_list())
    ]
    combos = combos.with_columns(pl.Series(_REASON_COL, texts, dtype=pl.Utf8))
    # a row with a parse problem (``_issue``) reports only that: its value is null *because*
    # it did not parse, "missing value" would be noise
    issue_rows = fc.filter(pl.col("column") == "_issue").get_column("index")
    fc = fc.filter(~pl.col("index").is_in(issue_rows.implode()) | (pl.col("column") == "_issue"))
    out = (
        fc.join(combos, on=["column", "check", "failure_case"], how="left", nulls_equal=True)
        .group_by("index", maintain_order=True)
        .agg(pl.col(_REASON_COL).unique(maintain_order=True).str.join("; "))
        .sort("index")
    )
    return out
