"""Low-level parsing: whole-file checks, typed CSV parse with pyarrow, string fallback.

The fast path parses a CSV once with pyarrow, column types given. Only when pyarrow rejects a
value (non-numeric number, unparseable timestamp) does the file get re-parsed as strings and
converted column-wise with polars (non-strict casts), so that the bad *rows* can be
quarantined instead of the whole file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

# the tokens pyarrow reads as null in typed (non-string) columns
NULL_TOKENS = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "n/a",
    "nan",
    "null",
]

TS_FORMATS_AWARE = [
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%:z",
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%:z",
    "%Y-%m-%d %H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%SZ",
]
TS_FORMATS_NAIVE = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d",
]


# inputs above this size are parsed with pyarrow's own threads (several 4 MB blocks)
THREADED_PARSE_BYTES = 16 << 20


class FileRejected(Exception):
    """The whole file is unreadable: it is quarantined as one row (row_number null)."""


def check_bytes(data: bytes, *, require_final_newline: bool = True) -> None:
    """Whole-file checks shared by every text format."""
    if len(data) == 0 or (not data[:65536].strip() and not data.strip()):
        raise FileRejected("empty file")
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRejected(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if require_final_newline and not data.endswith(b"\n"):
        raise FileRejected("truncated file (last line has no line ending)")


def header_of(data: bytes, delimiter: str = ",") -> list[str]:
    """The column names of a CSV's first line (stripped).

    Raises
    ------
    FileRejected
        A name appears twice: which column holds the data would be a guess (pyarrow would
        silently keep one of them).
    """
    end = data.find(b"\n")  # not data.split(): that would copy the rest of the file
    first = data[: end if end >= 0 else len(data)].decode("utf-8-sig").rstrip("\r")
    if delimiter == ",":
        header = [h.strip() for h in next(csv.reader([first]))]
    else:
        header = [h.strip() for h in first.split(delimiter)]
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise FileRejected(f"duplicate column(s) in header: {', '.join(dups)[:200]}")
    return header


# C0 control characters (and DEL) never belong in a value; in identifiers not even tab/newline
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_CONTROL_IN_ID = r"[\x00-\x1f\x7f]"


def is_identifier_column(name: str) -> bool:
    """Columns that identify things (ids, tags, lots, units): no control character at all."""
    return name.endswith(("_id", "_lot", "lot")) or name in ("tag", "unit", "analyte", "record_type", "phase")


def control_char_issues(df: pl.DataFrame, columns: Sequence[str] | None = None) -> pl.Expr | None:
    """An ``_issue`` expression for string values holding control characters (NUL, ESC, …):
    such a value is a corrupted export, not data. ``None`` when no string column is checked."""
    names = [
        c for c in (columns or df.columns) if c in df.columns and df.schema[c] == pl.Utf8 and not c.startswith("_")
    ]
    if not names:
        return None
    parts = [
        pl.when(pl.col(c).str.contains(_CONTROL_IN_ID if is_identifier_column(c) else _CONTROL)).then(
            pl.lit(f"control character in column {c}")
        )
        for c in names
    ]
    joined = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return pl.when(joined == "").then(None).otherwise(joined)


def with_control_char_issues(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with control-character problems appended to its ``_issue`` column."""
    expr = control_char_issues(df)
    if expr is None:
        return df
    merged = pl.concat_str([pl.col("_issue"), expr], separator="; ", ignore_nulls=True)
    return df.with_columns(pl.when(merged == "").then(None).otherwise(merged).alias("_issue"))


def is_missing(expr: pl.Expr) -> pl.Expr:
    """Null or one of the missing-value tokens (empty, NaN, NULL, …) after trimming."""
    return expr.is_null() | expr.str.strip_chars().is_in(NULL_TOKENS)


def parse_ts_strings(s: pl.Expr, naive_tz: str | None = None) -> pl.Expr:
    """Parse ISO-8601-ish strings to ``Datetime(us, UTC)``; unparseable → null.

    Strings with ``Z`` or an offset are converted to UTC. Strings without a zone are accepted
    only when ``naive_tz`` is given (foreign imports: the plant's local zone or "UTC").
    """
    s = s.str.strip_chars()
    parts = [s.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False) for f in TS_FORMATS_AWARE]
    if naive_tz:
        parts += [
            s.str.to_datetime(f, time_unit="us", strict=False)
            .dt.replace_time_zone(naive_tz, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
            for f in TS_FORMATS_NAIVE
        ]
    return pl.coalesce(parts)


def _convert_strings(df: pl.DataFrame, types: Mapping[str, pa.DataType], naive_tz: str | None) -> pl.DataFrame:
    """Typed columns from an all-string frame + ``_issue`` for values that did not convert."""
    exprs, issues = [], []
    for name, typ in types.items():
        if name not in df.columns:
            continue
        raw = pl.col(name)
        missing = is_missing(raw)
        if pa.types.is_timestamp(typ):
            conv = parse_ts_strings(raw, naive_tz)
            what = "unparseable timestamp"
        elif pa.types.is_floating(typ):
            conv = raw.str.strip_chars().cast(pl.Float64, strict=False)
            what = "non-numeric value"
        elif pa.types.is_integer(typ):
            conv = raw.str.strip_chars().cast(pl.Float64, strict=False)
            conv = (
                pl.when(conv == conv.round(0))
                .then(conv)
                .otherwise(None)
                .cast(pl.from_arrow(pa.array([], typ)).dtype, strict=False)
            )
            what = "non-integer value"
        else:
            exprs.append(pl.when(missing).then(None).otherwise(raw).alias(name))
            continue
        conv = pl.when(missing).then(None).otherwise(conv)
        exprs.append(conv.alias(name))
        issues.append(
            pl.when(~missing & conv.is_null()).then(pl.format(f"{what} in column {name}: '{{}}'", raw.str.slice(0, 60)))
        )
    issue = pl.concat_str(issues, separator="; ", ignore_nulls=True) if issues else pl.lit(None, pl.Utf8)
    out = df.select([*exprs, issue.alias("_issue")])  # issues computed on the raw strings
    return out.with_columns(pl.when(pl.col("_issue") == "").then(None).otherwise(pl.col("_issue")).alias("_issue"))


def read_csv_arrow(
    data: bytes,
    types: Mapping[str, pa.DataType],
    required: Sequence[str],
    *,
    optional: Sequence[str] = (),
    require_final_newline: bool = True,
    naive_tz: str | None = None,
    delimiter: str = ",",
    rename: Mapping[str, str] | None = None,
    use_threads: bool | None = None,
) -> tuple[pa.Table, pa.Array | None]:
    """Parse a CSV with pyarrow (column types given) → (typed table, ``_issue`` array or None).

    ``_issue`` is only built on the slow path (a value pyarrow could not convert): then the
    file is re-read as strings and converted column-wise, and the rows whose values did not
    convert carry the reason. Raises :class:`FileRejected` for empty / non-UTF-8 / truncated /
    malformed files and for a missing required column. ``rename`` maps source column names to
    ours (foreign exports). String columns may be given as ``dictionary<int32, string>``
    (parsed straight into a dictionary; for the historian's few distinct tags a string column
    + ``dictionary_encode`` measured cheaper).

    ``use_threads`` (default: only for inputs of more than :data:`THREADED_PARSE_BYTES`):
    pyarrow's own parse threads. The ingestion already parses several files at once in a
    thread pool; for a file of one or two 4 MB blocks, pyarrow's threads only add
    synchronisation (≈+60 % CPU for the same parse, measured in ``bench/bench_ingest.py``).
    """
    check_bytes(data, require_final_newline=require_final_newline)
    header = header_of(data, delimiter)
    rename = dict(rename or {})
    present = {rename.get(h, h): h for h in header}
    missing = [c for c in required if c not in present]
    if missing:
        raise FileRejected(f"missing column(s): {', '.join(missing)} (header: {', '.join(header)[:200]})")
    wanted = [c for c in [*required, *optional] if c in present]
    src_types = {present[c]: types[c] for c in wanted}
    parse = pacsv.ParseOptions(delimiter=delimiter)
    if use_threads is None:
        use_threads = len(data) > THREADED_PARSE_BYTES
    read = pacsv.ReadOptions(block_size=1 << 22, use_threads=use_threads)
    typed = pacsv.ConvertOptions(
        column_types=src_types,
        include_columns=[present[c] for c in wanted],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        tbl = pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse, convert_options=typed)
        tbl = tbl.rename_columns(wanted)
        return tbl, None
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "conversion error" not in msg:
            raise FileRejected(f"unreadable CSV (truncated or malformed): {msg[:200]}") from None
    strings = read_csv_strings(data, delimiter=delimiter, columns=[present[c] for c in wanted])
    df = strings.rename({present[c]: c for c in wanted if present[c] != c})
    df = _convert_strings(df, {c: types[c] for c in wanted}, naive_tz)
    out = df.drop("_issue").to_arrow()
    out = out.cast(pa.schema([pa.field(c, types[c]) for c in wanted]))
    return out, df.get_column("_issue").to_arrow().cast(pa.string())


def read_csv(
    data: bytes,
    types: Mapping[str, pa.DataType],
    required: Sequence[str],
    *,
    optional: Sequence[str] = (),
    require_final_newline: bool = True,
    naive_tz: str | None = None,
    delimiter: str = ",",
    rename: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """:func:`read_csv_arrow` as a polars frame with ``_row`` (1-based) and ``_issue``."""
    tbl, issue = read_csv_arrow(
        data,
        types,
        required,
        optional=optional,
        require_final_newline=require_final_newline,
        naive_tz=naive_tz,
        delimiter=delimiter,
        rename=rename,
    )
    df = pl.from_arrow(tbl)
    if isinstance(df, pl.Series):  # pragma: no cover
        df = df.to_frame()
    df = df.with_columns(
        pl.Series("_issue", issue, dtype=pl.Utf8) if issue is not None else pl.lit(None, pl.Utf8).alias("_issue")
    )
    df = with_control_char_issues(df)
    return df.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))


def read_csv_strings(data: bytes, *, delimiter: str = ",", columns: Sequence[str] | None = None) -> pl.DataFrame:
    """All columns as exact strings (for fallback conversion and raw_record of bad rows)."""
    opts = pacsv.ConvertOptions(
        column_types=None,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
        include_columns=list(columns) if columns else None,
    )
    header = header_of(data) if delimiter == "," else None
    if header is not None:
        opts.column_types = {h: pa.string() for h in header}
    try:
        tbl = pacsv.read_csv(
            io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=delimiter), convert_options=opts
        )
    except pa.ArrowInvalid as exc:
        raise FileRejected(f"unreadable CSV (truncated or malformed): {str(exc)[:200]}") from None
    tbl = tbl.cast(pa.schema([pa.field(n, pa.string()) for n in tbl.column_names]))
    return pl.from_arrow(tbl)


def raw_records_csv(data: bytes, rows: Sequence[int], delimiter: str = ",") -> list[str]:
    """JSON of the original string values of the given 1-based records."""
    if not rows:
        return []
    strings = read_csv_strings(data, delimiter=delimiter)
    idx = pl.Series([r - 1 for r in rows], dtype=pl.UInt32)
    sub = strings[idx]
    return [json.dumps(r, ensure_ascii=False) for r in sub.to_dicts()]


def head_preview(data: bytes, n: int = 200) -> str:
    """JSON of a file's size and first ``n`` bytes (for the quarantine record of a rejected file)."""
    return json.dumps({"size_bytes": len(data), "head": data[:n].decode("utf-8", errors="replace")}, ensure_ascii=False)
