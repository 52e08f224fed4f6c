"""Readers: one per landing file kind. Parse → one typed polars frame per bronze table,
validate a whole batch of files with ONE pandera call per table, split valid / quarantined.

A kind knows which files it reads (path pattern under ``landing/``), which bronze tables it
feeds (the first is its *primary* table: whole-file rejects are recorded against it), how to
parse one file and how to validate and shape a batch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.ingest.parsing import (
    FileRejected,
    check_bytes,
    parse_ts_strings,
    read_csv,
    read_csv_arrow,
    with_control_char_issues,
)
from lakehouse.ingest.schemas import BRONZE_SCHEMAS, SETPOINT_KEYS, TS, data_columns
from lakehouse.ingest.tagmap import TagMap
from lakehouse.ingest.units import ANALYTES, normalise_unit, unit_key
from lakehouse.ingest.validation import (
    TimePolicy,
    _expr_check,
    between_columns_check,
    duplicate_check,
    finite_check,
    frame_check,
    issue_column,
    pap,
    range_check,
    split_invalid,
    ts_column,
)

UTC = "UTC"


@dataclass
class SourceFile:
    """One source file (version) to ingest."""

    uri: str  # full URI of the file (lineage ``_source_file``)
    rel_path: str  # identity key: path under landing/ (or import/<site>/...)
    size: int = -1
    fingerprint: str = ""  # listing fingerprint (size + mtime / ETag): change detector
    kind: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None
    sha256: str | None = None

    @property
    def system(self) -> str:
        """The source system of the file (first folder of its landing path)."""
        return KINDS[self.kind].system


@dataclass
class IngestContext:
    """Configuration of a parse/validate pass."""

    tagmap: TagMap = field(default_factory=TagMap.contract_default)
    time: TimePolicy = field(default_factory=TimePolicy)
    analytes: dict[str, tuple[str, float, float]] = field(default_factory=lambda: dict(ANALYTES))
    require_final_newline: bool = True
    naive_tz: str | None = None  # zone for timestamps without offset (foreign imports only)
    # options for foreign formats (set by the importer)
    csv_rename: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","
    options: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """sha256 of the configuration in force (tag map rules, ranges, time policy, analyte
        table, format options — not where the tag map file lies): recorded with every commit."""
        import dataclasses
        import hashlib

        canonical = dataclasses.replace(self, tagmap=dataclasses.replace(self.tagmap, source=""))
        return hashlib.sha256(repr(canonical).encode()).hexdigest()


@dataclass
class TableResult:
    """Parsed rows of one bronze table: valid rows, rows set aside with their reason, rows read per file."""

    valid: pl.DataFrame  # bronze data columns + ``_file``
    bad: pl.DataFrame  # _file, _row, reason, raw_record
    rows_read: np.ndarray  # per file index


# ======================================================================== helpers
def _str_cols(*names: str, nullable: bool = False) -> dict[str, pap.Column]:
    return {n: pap.Column(pl.Utf8, nullable=nullable) for n in names}


def _float(nullable: bool = True, lo: float | None = None, hi: float | None = None) -> pap.Column:
    checks = [finite_check()]
    if lo is not None:
        checks.append(range_check(lo, hi))
    return pap.Column(pl.Float64, nullable=nullable, checks=checks)


def _isin(values: list[str], nullable: bool = False) -> pap.Column:
    return pap.Column(
        pl.Utf8, nullable=nullable, checks=[pap.Check.isin(values, name="allowed_values", error=f"not one of {values}")]
    )


def _order_check(a: str, b: str) -> pap.Check:
    return frame_check(pl.col(b) >= pl.col(a), "time_order", f"{b} before {a}")


def _schema(columns: dict[str, pap.Column], checks: list[pap.Check] | None = None) -> pap.DataFrameSchema:
    cols = {**columns, "_issue": issue_column()}
    return pap.DataFrameSchema(cols, checks=checks or [], strict=False)


def _ts_expr(name: str, naive_tz: str | None) -> pl.Expr:
    return parse_ts_strings(pl.col(name), naive_tz).alias(name)


# ---------------------------------------------------------------- JSON helpers
def _num(v: Any) -> tuple[float | None, str | None]:
    if v is None or v == "":
        return None, None
    if isinstance(v, bool):
        return None, f"non-numeric value {v!r}"
    if isinstance(v, (int, float)):
        return float(v), None
    try:
        return float(str(v).strip()), None
    except ValueError:
        return None, f"non-numeric value {str(v)[:60]!r}"


def _json_frame(
    records: list[dict[str, Any]],
    strings: list[str],
    floats: list[str],
    ints: list[str],
    times: list[str],
    naive_tz: str | None,
) -> pl.DataFrame:
    """A typed frame from a (small) list of JSON records, with ``_issue`` and ``_raw``."""
    data: dict[str, list] = {c: [] for c in [*strings, *floats, *ints, *times]}
    issues, raws = [], []
    for rec in records:
        iss = []
        for c in strings:
            v = rec.get(c)
            if isinstance(v, (dict, list)):  # never stringify a structure into a text column
                iss.append(f"nested JSON value in field {c} (a string was expected)")
                v = None
            data[c].append(None if v is None or v == "" else str(v))
        for c in floats:
            v, e = _num(rec.get(c))
            data[c].append(v)
            if e:
                iss.append(f"{e} in field {c}")
        for c in ints:
            v, e = _num(rec.get(c))
            if v is not None and (not math.isfinite(v) or v != int(v)):
                e, v = f"non-integer value {rec.get(c)!r}", None
            data[c].append(None if v is None else int(v))
            if e:
                iss.append(f"{e} in field {c}")
        for c in times:
            v = rec.get(c)
            if isinstance(v, (dict, list)):
                iss.append(f"nested JSON value in field {c} (a timestamp was expected)")
                v = None
            data[c].append(None if v is None else str(v))
        issues.append("; ".join(iss) or None)
        raws.append(json.dumps(rec, ensure_ascii=False, default=str))
    schema = {
        **{c: pl.Utf8 for c in strings},
        **{c: pl.Float64 for c in floats},
        **{c: pl.Int64 for c in ints},
        **{c: pl.Utf8 for c in times},
    }
    df = pl.DataFrame(data, schema=schema)
    df = df.with_columns(pl.Series("_issue", issues, dtype=pl.Utf8), pl.Series("_raw", raws, dtype=pl.Utf8))
    df = with_control_char_issues(df)
    if times:
        parsed = [_ts_expr(c, naive_tz) for c in times]
        bad = [
            pl.when(pl.col(c).is_not_null() & parse_ts_strings(pl.col(c), naive_tz).is_null()).then(
                pl.format(f"unparseable timestamp in field {c}: '{{}}'", pl.col(c))
            )
            for c in times
        ]
        df = df.with_columns(
            pl.concat_str([pl.col("_issue"), *bad], separator="; ", ignore_nulls=True).alias("_issue")
        ).with_columns(parsed)
        df = df.with_columns(pl.when(pl.col("_issue") == "").then(None).otherwise(pl.col("_issue")).alias("_issue"))
    return df.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise FileRejected(f"duplicate key(s) in a JSON object: {', '.join(dups)[:200]} (which value holds is a guess)")
    return dict(pairs)


def _load_json(data: bytes) -> Any:
    check_bytes(data, require_final_newline=False)
    try:
        return json.loads(data.decode("utf-8-sig"), object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise FileRejected(f"unreadable JSON (truncated or malformed): {exc}") from None
    except RecursionError:
        raise FileRejected("unreadable JSON (nested too deeply)") from None


# ======================================================================= the kinds
@dataclass
class Kind:
    """One kind of landing file: its path pattern, parser, bronze tables and per-table validation."""

    name: str
    system: str
    tables: list[str]
    pattern: re.Pattern
    parse: Callable[[SourceFile, IngestContext], dict[str, pl.DataFrame]]
    # per table: (prepare: df -> enriched df, schema builder, output expressions)
    prepare: Mapping[str, Callable[[pl.DataFrame, IngestContext], pl.DataFrame]]
    schema: Mapping[str, Callable[[IngestContext], pap.DataFrameSchema]]
    reasons: Mapping[str, Mapping[tuple[str | None, str], str]] = field(default_factory=dict)
    csv: bool = True
    landing: bool = True  # False: kinds of the foreign importer (never listed in landing/)

    def match(self, rel_path: str) -> dict[str, str] | None:
        """The path fields (unit, day, …) when ``rel_path`` is of this kind, else ``None``."""
        m = self.pattern.match(rel_path)
        return None if m is None else m.groupdict()


def _identity(df: pl.DataFrame, ctx: IngestContext) -> pl.DataFrame:
    return df


# ------------------------------------------------------------------- historian
# Fast path (this is where the volume is): per file, everything tag-dependent is computed on the
# file's few distinct tags and gathered with numpy; the output columns stay in Arrow (no string
# round trip through polars); pandera validates a narrow numeric/boolean polars frame of the
# whole batch (one call), and its failure cases (row indexes) decide what is quarantined.
#
# The string columns of the bronze row (tag, unit_id, parameter, eng_unit) leave this function
# as ``dictionary<int32, string>`` arrays over the file's distinct tags (tag and unit are
# parsed as strings and dictionary-encoded once: asking pyarrow's CSV reader for dictionary
# columns cost 0.10 CPU-s more per 3 M rows, the encoding 0.05), and the parquet writer takes
# them as they are (a dictionary page + indices). The Delta column type stays ``string`` (the
# dictionary is a physical encoding only).
HIST_TYPES = {"timestamp": TS, "tag": pa.string(), "value": pa.float64(), "unit": pa.string(), "quality": pa.int16()}
DICT_STRING = pa.dictionary(pa.int32(), pa.string())
_US_PER_DAY = 86_400_000_000
_UNIT_IDS: dict[str | None, int] = {}


def _unit_id(u: str | None) -> int:
    """A small int per unit: spellings of the same unit (``l/min``, ``L/min``) share it."""
    n = unit_key(u) if u is not None else None
    return _UNIT_IDS.setdefault(n, len(_UNIT_IDS) + 1) if n is not None else -1


@dataclass
class FastPart:
    """One file's rows on the fast path: the narrow columns to validate (Arrow: a batch's
    files become one polars frame at once) + the output columns."""

    check: pa.Table
    payload: pa.Table


def parse_historian(f: SourceFile, ctx: IngestContext) -> dict[str, FastPart]:
    """Parse a historian day file (CSV) into ``historian_readings`` rows (canonical parameter and unit)."""
    tbl, issue = read_csv_arrow(
        f.data,
        HIST_TYPES,
        ["timestamp", "tag", "value"],
        optional=["unit", "quality"],
        require_final_newline=ctx.require_final_newline,
        naive_tz=ctx.naive_tz,
        rename=ctx.csv_rename,
        delimiter=ctx.delimiter,
    )
    return {"historian_readings": historian_part(tbl, issue, ctx)}


def as_dictionary(col: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """One ``dictionary<int32, string>`` array with a duplicate-free dictionary."""
    if isinstance(col, pa.ChunkedArray):
        if pa.types.is_dictionary(col.type) and col.num_chunks > 1:
            col = col.unify_dictionaries()
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col.cast(pa.string()) if col.type != pa.string() else col)
    if col.type != DICT_STRING:
        col = col.cast(DICT_STRING)
    return col


def _codes(arr: pa.DictionaryArray, null_code: int) -> np.ndarray:
    idx = arr.indices
    if idx.null_count:
        idx = idx.fill_null(null_code)
    return idx.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


class _Dictionary:
    """``values[codes]`` as a dictionary array: the de-duplicated dictionary and the code
    remap are computed once per value list."""

    def __init__(self, values: list[str]) -> None:
        uniq = {v: i for i, v in enumerate(dict.fromkeys(values))}
        remap = np.fromiter((uniq[v] for v in values), np.int32, len(values))
        identity = not remap.size or np.array_equal(remap, np.arange(len(values), dtype=np.int32))
        self.remap = None if identity else remap
        self.dictionary = pa.array(list(uniq), pa.string())

    def gather(self, codes: np.ndarray, mask: np.ndarray | None) -> pa.DictionaryArray:
        """The dictionary array of the rows' ``codes`` (masked rows null)."""
        codes = codes if self.remap is None else self.remap[codes]
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=mask), self.dictionary)


@dataclass
class _TagPlan:
    """Everything that depends only on a file's distinct tags (slot ``k``: a null tag): the
    files of one unit share their tag list, so it is built once per list and tag map."""

    known: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    src_uid: np.ndarray
    mapped: dict[str, _Dictionary]

    @classmethod
    def of(cls, tagmap: TagMap, tags: list[str]) -> _TagPlan:
        key = tuple(tags)
        plan = tagmap.plans.get(key)
        if plan is None:
            specs = [tagmap.resolve(t) for t in tags] + [None]
            plan = cls(
                known=np.array([s is not None for s in specs]),
                lo=np.array([s.lo if s else -np.inf for s in specs]),  # unknown tag: only "not in tag map"
                hi=np.array([s.hi if s else np.inf for s in specs]),
                scale=np.array([s.conv.scale if s else 1.0 for s in specs]),
                offset=np.array([s.conv.offset if s else 0.0 for s in specs]),
                src_uid=np.array([_unit_id(s.source_unit) if s else -2 for s in specs], dtype=np.int64),
                mapped={
                    a: _Dictionary([getattr(s, a) if s else "" for s in specs[:-1]])
                    for a in ("unit_id", "parameter", "eng_unit")
                },
            )
            tagmap.plans[key] = plan
        return plan


def historian_part(tbl: pa.Table, issue: pa.Array | None, ctx: IngestContext) -> FastPart:
    """Map tags (tag map), convert units, and split into the check frame + output payload."""
    n = tbl.num_rows
    tag = as_dictionary(tbl.column("tag"))
    tags = tag.dictionary.to_pylist()
    k = len(tags)
    codes = _codes(tag, k)  # slot k: null tag
    plan = _TagPlan.of(ctx.tagmap, tags)
    known, lo, hi, scale, offset, src_uid = plan.known, plan.lo, plan.hi, plan.scale, plan.offset, plan.src_uid
    value = tbl.column("value").combine_chunks()
    if not (np.all(scale == 1.0) and np.all(offset == 0.0)):
        value = pc.add(pc.multiply(value, pa.array(scale[codes])), pa.array(offset[codes]))
    all_known = bool(known[:k].all()) and tag.null_count == 0
    known_rows = np.ones(n, dtype=bool) if all_known else known[codes]
    if "unit" in tbl.column_names:
        unit = as_dictionary(tbl.column("unit"))
        uids = np.array([_unit_id(u) for u in unit.dictionary.to_pylist()] + [-3], dtype=np.int64)
        unit_ok = src_uid[codes] == uids[_codes(unit, len(uids) - 1)]
        if not all_known:
            unit_ok |= ~known_rows
    else:  # exports without a unit column: the tag map's declared unit is assumed
        unit_ok = np.ones(n, dtype=bool)
    quality = (
        tbl.column("quality").combine_chunks() if "quality" in tbl.column_names else pa.array(np.full(n, 192, np.int16))
    )
    ts = tbl.column("timestamp").combine_chunks()
    days = pc.divide(ts.cast(pa.int64()), _US_PER_DAY).cast(pa.int32()).view(pa.date32())
    # rows of unknown/null tags get null mapped columns (they are always quarantined)
    mask = None if all_known else ~known_rows
    out_codes = codes if all_known else np.where(known_rows, codes, 0).astype(np.int32)
    mapped = lambda attr: plan.mapped[attr].gather(out_codes, mask)
    payload = pa.table(
        {
            "ts": ts,
            "unit_id": mapped("unit_id"),
            "tag": tag,
            "parameter": mapped("parameter"),
            "value": value,
            "eng_unit": mapped("eng_unit"),
            "quality": quality,
            "date": days,
        }
    )
    check = pa.table(
        {
            "ts": ts,
            "value": value,
            "quality": quality,
            "_lo": lo[codes],
            "_hi": hi[codes],
            "_known": known_rows,
            "_unit_ok": unit_ok,
            "_first": _first_occurrence(_dup_key(ts, codes, k)),
            "_row": np.arange(1, n + 1, dtype=np.int64),
            "_issue": pa.nulls(n, pa.string()) if issue is None else issue.cast(pa.string()),
        }
    )
    return FastPart(check, payload)


def _dup_key(ts: pa.Array, codes: np.ndarray, k: int) -> np.ndarray | pa.Array:
    """One int64 per row identifying (tag, ts) within the file: ts_us * 1024 + tag code.

    Injective while the file has < 1024 distinct tags (else a string key is used)."""
    if k < 1023:
        t = ts.cast(pa.int64()).fill_null(np.iinfo(np.int64).min // 2048).to_numpy()
        return t * 1024 + codes
    return pc.binary_join_element_wise(ts.cast(pa.string()), pa.array(codes).cast(pa.string()), "|")


def _first_occurrence(key: np.ndarray | pa.Array) -> np.ndarray:
    """True for the first occurrence of each key of one file, False for its repeats.

    A historian export is time-ordered with the tags in a fixed order, so its int64 keys are
    usually strictly increasing: then every row is a first occurrence, proven by one
    comparison pass (no hashing). Otherwise the first index of each distinct key."""
    if isinstance(key, np.ndarray):
        if key.size < 2 or bool(np.all(key[1:] > key[:-1])):
            return np.ones(key.size, dtype=bool)
        first = np.zeros(key.size, dtype=bool)
        first[np.unique(key, return_index=True)[1]] = True
        return first
    return pl.Series(key).is_first_distinct().to_numpy()


def schema_historian(ctx: IngestContext) -> pap.DataFrameSchema:
    """pandera schema of ``historian_readings`` rows (types, ranges, time policy)."""
    # duplicate (tag, ts) within a file: ``_first`` is computed per file by historian_part
    # (:func:`_first_occurrence`) — the verdict of ``duplicate_check`` (struct of _file + key),
    # without a hash of the whole batch when the file is time-ordered
    return _schema(
        {
            "ts": ts_column(ctx.time),
            "value": pap.Column(
                pl.Float64, nullable=False, checks=[finite_check(), between_columns_check("_lo", "_hi")]
            ),
            "quality": pap.Column(pl.Int16, nullable=False, checks=[range_check(0, 255)]),
            "_known": pap.Column(
                pl.Boolean, nullable=False, checks=[pap.Check.eq(True, name="known_tag", error="tag not in tag map")]
            ),
            "_unit_ok": pap.Column(
                pl.Boolean,
                nullable=False,
                checks=[
                    pap.Check.eq(True, name="unit_matches", error="unit does not match the tag map (contract unit)")
                ],
            ),
        },
        checks=[
            frame_check(pl.col("_first"), "duplicate_key", "duplicate key (tag, ts) in file, first occurrence kept")
        ],
    )


HIST_REASONS = {
    ("ts", "not_nullable"): "missing or unparseable timestamp",
    ("value", "not_nullable"): "missing value",
    ("quality", "not_nullable"): "missing quality",
}


# ------------------------------------------------------------------------ LIMS
LIMS_TYPES = {
    "sample_id": pa.string(),
    "batch_id": pa.string(),
    "sample_time": TS,
    "result_time": TS,
    "analyte": pa.string(),
    "value": pa.float64(),
    "unit": pa.string(),
    "method": pa.string(),
}


def parse_lims(f: SourceFile, ctx: IngestContext) -> dict[str, pl.DataFrame]:
    """Parse a LIMS export (CSV) into ``lims_results`` rows."""
    df = read_csv(
        f.data,
        LIMS_TYPES,
        ["sample_id", "batch_id", "sample_time", "result_time", "analyte", "value", "unit"],
        optional=["method"],
        require_final_newline=ctx.require_final_newline,
        naive_tz=ctx.naive_tz,
        rename=ctx.csv_rename,
        delimiter=ctx.delimiter,
    )
    return {"lims_results": df}


def _unit_frame(units: list[str | None], col: str = "unit") -> pl.DataFrame:
    return pl.DataFrame(
        {col: units, "_unit_norm": [normalise_unit(u) for u in units]}, schema={col: pl.Utf8, "_unit_norm": pl.Utf8}
    )


def prepare_lims(df: pl.DataFrame, ctx: IngestContext) -> pl.DataFrame:
    """Add the analyte catalog's expected unit and range to LIMS rows (for validation)."""
    if "method" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.Utf8).alias("method"))
    cat = pl.DataFrame(
        {
            "analyte": list(ctx.analytes),
            "_exp_unit": [normalise_unit(v[0]) for v in ctx.analytes.values()],
            "_lo": [float(v[1]) for v in ctx.analytes.values()],
            "_hi": [float(v[2]) for v in ctx.analytes.values()],
        },
        schema={"analyte": pl.Utf8, "_exp_unit": pl.Utf8, "_lo": pl.Float64, "_hi": pl.Float64},
    )
    units = df.get_column("unit").unique().to_list()
    df = df.join(cat, on="analyte", how="left", maintain_order="left").join(
        _unit_frame(units), on="unit", how="left", maintain_order="left", nulls_equal=True
    )
    # the bronze unit column carries the normalised spelling (g/l -> g/L)
    return df.with_columns(pl.coalesce("_unit_norm", "unit").alias("unit"))


def schema_lims(ctx: IngestContext) -> pap.DataFrameSchema:
    """pandera schema of ``lims_results`` rows."""
    return _schema(
        {
            **_str_cols("sample_id", "batch_id", "analyte"),
            "sample_time": ts_column(ctx.time),
            "result_time": ts_column(ctx.time),
            "_exp_unit": pap.Column(pl.Utf8, nullable=False),
            "value": pap.Column(
                pl.Float64, nullable=False, checks=[finite_check(), between_columns_check("_lo", "_hi")]
            ),
            "unit": pap.Column(
                pl.Utf8,
                nullable=False,
                checks=[
                    _expr_check(
                        lambda c: pl.col(c) == pl.col("_exp_unit"),
                        "unit_matches",
                        "unit does not match the analyte's expected unit",
                    )
                ],
            ),
            "method": pap.Column(pl.Utf8, nullable=True),
        },
        checks=[duplicate_check(["sample_id", "analyte"], "lims"), _order_check("sample_time", "result_time")],
    )


LIMS_REASONS = {
    ("_exp_unit", "not_nullable"): "unknown analyte (not in the analyte catalog)",
}


# ------------------------------------------------------------------------ CMMS
CMMS_TYPES = {
    "work_order_id": pa.string(),
    "equipment_id": pa.string(),
    "equipment_type": pa.string(),
    "work_type": pa.string(),
    "failure_mode": pa.string(),
    "priority": pa.string(),
    "opened_at": TS,
    "closed_at": TS,
    "description": pa.string(),
}
WORK_TYPES = ["corrective", "preventive", "calibration"]


def parse_cmms(f: SourceFile, ctx: IngestContext) -> dict[str, pl.DataFrame]:
    """Parse a CMMS work-order export (CSV) into ``cmms_work_orders`` rows."""
    df = read_csv(
        f.data,
        CMMS_TYPES,
        ["work_order_id", "equipment_id", "work_type", "opened_at"],
        optional=["equipment_type", "failure_mode", "priority", "closed_at", "description"],
        require_final_newline=ctx.require_final_newline,
        naive_tz=ctx.naive_tz,
        rename=ctx.csv_rename,
        delimiter=ctx.delimiter,
    )
    return {"cmms_work_orders": df}


def prepare_cmms(df: pl.DataFrame, ctx: IngestContext) -> pl.DataFrame:
    """Normalise CMMS rows before validation (empty strings → null)."""
    for c, t in CMMS_TYPES.items():
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.Datetime("us", UTC) if t == TS else pl.Utf8).alias(c))
    return df


def schema_cmms(ctx: IngestContext) -> pap.DataFrameSchema:
    """pandera schema of ``cmms_work_orders`` rows."""
    return _schema(
        {
            **_str_cols("work_order_id", "equipment_id"),
            "work_type": _isin(WORK_TYPES),
            "opened_at": ts_column(ctx.time),
            "closed_at": ts_column(ctx.time, nullable=True),
        },
        checks=[duplicate_check(["work_order_id"], "cmms"), _order_check("opened_at", "closed_at")],
    )


# ------------------------------------------------------------------------- MES
RECORD_TYPES = ["bioreactor", "capture", "ufdf"]
STATUSES = ["complete", "aborted"]


def parse_mes(f: SourceFile, ctx: IngestContext) -> dict[str, pl.DataFrame]:
    """Parse an MES record (JSON) into ``mes_batches``, ``mes_phases``, ``mes_materials`` and ``mes_genealogy`` rows."""
    rec = _load_json(f.data)
    if not isinstance(rec, dict):
        raise FileRejected("wrong format: an MES batch record is a JSON object")
    missing = [k for k in ("batch_id", "record_type") if not rec.get(k)]
    if missing:
        raise FileRejected(f"missing field(s): {', '.join(missing)}")
    nested = [k for k in ("batch_id", "record_type") if isinstance(rec[k], (dict, list))]
    if nested:
        raise FileRejected(f"nested JSON value in field(s) {', '.join(nested)} (a string was expected)")
    bid = str(rec["batch_id"])
    sp = rec.get("setpoints") or {}
    if not isinstance(sp, dict):
        sp = {"_invalid": sp}
    batch = {
        k: rec.get(k) for k in ("batch_id", "record_type", "product", "unit_id", "recipe_id", "status", "output_lot")
    }
    batch.update(
        start_ts=rec.get("start"),
        end_ts=rec.get("end"),
        setpoints_json=json.dumps(sp, sort_keys=True, ensure_ascii=False),
    )
    batch.update({k: sp.get(k) for k in SETPOINT_KEYS})
    batches = _json_frame(
        [batch],
        ["batch_id", "record_type", "product", "unit_id", "recipe_id", "status", "output_lot", "setpoints_json"],
        SETPOINT_KEYS,
        [],
        ["start_ts", "end_ts"],
        ctx.naive_tz,
    )
    proc = rec.get("procedure") or []
    phases = [
        {
            "batch_id": bid,
            **(p if isinstance(p, dict) else {"_invalid": p}),
            "phase_seq": i + 1,
            "start_ts": p.get("start") if isinstance(p, dict) else None,
            "end_ts": p.get("end") if isinstance(p, dict) else None,
        }
        for i, p in enumerate(proc if isinstance(proc, list) else [proc])
    ]
    phases_df = _json_frame(
        phases,
        ["batch_id", "unit_procedure", "operation", "phase"],
        [],
        ["phase_seq"],
        ["start_ts", "end_ts"],
        ctx.naive_tz,
    )
    mats = rec.get("materials") or []
    materials = [
        {"batch_id": bid, **(m if isinstance(m, dict) else {"_invalid": m})}
        for m in (mats if isinstance(mats, list) else [mats])
    ]
    mats_df = _json_frame(
        materials, ["batch_id", "lot_id", "material", "role", "unit"], ["quantity"], [], [], ctx.naive_tz
    )
    ins = rec.get("input_lots") or []
    edges = [
        {"batch_id": bid, "input_lot": lot, "output_lot": rec.get("output_lot"), "record_type": rec.get("record_type")}
        for lot in (ins if isinstance(ins, list) else [ins])
    ]
    gen_df = _json_frame(edges, ["batch_id", "input_lot", "output_lot", "record_type"], [], [], [], ctx.naive_tz)
    return {"mes_batches": batches, "mes_phases": phases_df, "mes_materials": mats_df, "mes_genealogy": gen_df}


def schema_mes_batches(ctx: IngestContext) -> pap.DataFrameSchema:
    """pandera schema of ``mes_batches`` rows."""
    return _schema(
        {
            "batch_id": pap.Column(pl.Utf8, nullable=False),
            "record_type": _isin(RECORD_TYPES),
            "status": _isin(STATUSES),
            "start_ts": ts_column(ctx.time),
            "end_ts": ts_column(ctx.time),
            **{k: _float() for k in SETPOINT_KEYS},
        },
        checks=[_order_check("start_ts", "end_ts")],
    )


def schema_mes_phases(ctx: IngestContext) -> pap.DataFrameSchema:
    """pandera schema of ``mes_phases`` rows."""
    return _schema(
        {
            **_str_cols("batch_id", "phase"),
            "phase_seq": pap.Column(pl.Int64, nullable=False),
            "start_ts": ts_column(ctx.time),
            "end_ts": ts_column(ctx.time),
        },
        checks=[_order_check("start_ts", "end_ts")],
    )


def schema_mes_materials(ctx: IngestContext) -> pap.DataFrameSchema:
    """pandera schema of ``mes_materials`` rows."""
    return _schema(
        {
            **_str_cols("batch_id", "lot_id"),
            "role": _isin(["input", "output"]),
            "quantity": _float(nullable=True, lo=0.0, hi=1e9),
        }
    )


def schema_mes_genealogy(ctx: IngestContext) -> pap.DataFrameSchema:
    """pandera schema of ``mes_genealogy`` rows."""
    return _schema({**_str_cols("batch_id", "input_lot", "output_lot")})


def schema_mes_deviations(ctx: IngestContext) -> pap.DataFrameSchema:
    """Recorded deviations: id, batch and recorded onset required; one row per id and file."""
    return _schema(
        {
            **_str_cols("deviation_id", "batch_id"),
            "onset_ts": ts_column(ctx.time),
            "opened_ts": ts_column(ctx.time, nullable=True),
        },
        checks=[duplicate_check(["deviation_id"], "deviations")],
    )


# ------------------------------------------------------- chromatography / filtration
CHROM_RUN_FLOATS = [
    "load_volume_l",
    "load_titer_g_l",
    "column_volume_l",
    "pool_volume_l",
    "pool_concentration_g_l",
    "step_yield_pct",
    "max_pressure_bar",
]
FILT_RUN_FLOATS = ["diavolumes", "final_concentration_g_l", "step_yield_pct", "mean_flux_lmh"]
CHROM_CURVE_FLOATS = ["volume_ml", "time_s", "uv280_mau", "conductivity_ms_cm", "ph", "pressure_bar"]
FILT_CURVE_FLOATS = [
    "time_s",
    "feed_pressure_bar",
    "retentate_pressure_bar",
    "permeate_pressure_bar",
    "tmp_bar",
    "permeate_flux_lmh",
    "conductivity_ms_cm",
    "retentate_volume_l",
]
CHROM_PHASES = ["Equilibrate", "Load", "Wash", "Elute", "Strip", "CIP"]
FILT_PHASES = ["UF1", "DF", "UF2", "Recovery"]


def _parse_run_json(
    f: SourceFile, ctx: IngestContext, table: str, strings: list[str], floats: list[str], ints: list[str]
) -> dict[str, pl.DataFrame]:
    rec = _load_json(f.data)
    if not isinstance(rec, dict):
        raise FileRejected("wrong format: run.json is a JSON object")
    rec = dict(rec)
    rec.setdefault("run_id", f.meta.get("run_id"))
    rec.setdefault("skid_id", f.meta.get("skid_id"))
    return {table: _json_frame([rec], strings, floats, ints, ["start", "end"], ctx.naive_tz)}


def parse_chrom_run(f: SourceFile, ctx: IngestContext) -> dict[str, pl.DataFrame]:
    """Parse a chromatography ``run.json`` into a ``chrom_runs`` row."""
    return _parse_run_json(
        f,
        ctx,
        "chrom_runs",
        ["run_id", "skid_id", "column_id", "batch_id", "input_lot", "output_lot", "result"],
        CHROM_RUN_FLOATS,
        ["column_cycle"],
    )


def parse_filt_run(f: SourceFile, ctx: IngestContext) -> dict[str, pl.DataFrame]:
    """Parse a filtration ``run.json`` into a ``filtration_runs`` row."""
    return _parse_run_json(
        f,
        ctx,
        "filtration_runs",
        ["run_id", "skid_id", "membrane_id", "input_lot", "output_lot", "result"],
        FILT_RUN_FLOATS,
        ["membrane_use"],
    )


def _run_schema(ctx: IngestContext, floats: list[str], ints: list[str]) -> pap.DataFrameSchema:
    cols = {
        **_str_cols("run_id", "skid_id"),
        "start": ts_column(ctx.time),
        "end": ts_column(ctx.time),
        **{c: _float(lo=0.0, hi=1e7 if c != "step_yield_pct" else 200.0) for c in floats},
        **{c: pap.Column(pl.Int64, nullable=True, checks=[range_check(0, 1e9)]) for c in ints},
    }
    return _schema(cols, checks=[_order_check("start", "end")])


def _parse_curves(f: SourceFile, ctx: IngestContext, table: str, floats: list[str]) -> dict[str, pl.DataFrame]:
    types = {**{c: pa.float64() for c in floats}, "phase": pa.string()}
    df = read_csv(
        f.data,
        types,
        [*floats, "phase"],
        require_final_newline=ctx.require_final_newline,
        naive_tz=ctx.naive_tz,
        rename=ctx.csv_rename,
        delimiter=ctx.delimiter,
    )
    return {
        table: df.with_columns(
            pl.lit(f.meta.get("run_id"), pl.Utf8).alias("run_id"),
            pl.lit(f.meta.get("skid_id"), pl.Utf8).alias("skid_id"),
        )
    }


def parse_chrom_curves(f, ctx):
    """Parse a chromatography ``curves.csv`` into ``chrom_curves`` rows."""
    return _parse_curves(f, ctx, "chrom_curves", CHROM_CURVE_FLOATS)


def parse_filt_curves(f, ctx):
    """Parse a filtration ``curves.csv`` into ``filtration_curves`` rows."""
    return _parse_curves(f, ctx, "filtration_curves", FILT_CURVE_FLOATS)


_CURVE_RANGES = {
    "volume_ml": (-1.0, 1e9),
    "time_s": (0.0, 1e7),
    "uv280_mau": (-1e4, 1e5),
    "conductivity_ms_cm": (-1.0, 1000.0),
    "ph": (0.0, 14.0),
    "pressure_bar": (-1.0, 100.0),
    "feed_pressure_bar": (-1.0, 100.0),
    "retentate_pressure_bar": (-1.0, 100.0),
    "permeate_pressure_bar": (-1.0, 100.0),
    "tmp_bar": (-10.0, 100.0),
    "permeate_flux_lmh": (-10.0, 1e4),
    "retentate_volume_l": (-1.0, 1e6),
}


def _curve_schema(floats: list[str], phases: list[str]) -> Callable[[IngestContext], pap.DataFrameSchema]:
    def build(ctx: IngestContext) -> pap.DataFrameSchema:
        return _schema(
            {
                **_str_cols("run_id", "skid_id"),
                **{c: _float(nullable=(c != "time_s"), lo=_CURVE_RANGES[c][0], hi=_CURVE_RANGES[c][1]) for c in floats},
                "phase": _isin(phases),
            }
        )

    return build


# ----------------------------------------------------------------------- registry
_CSV = r"[^/]+\.csv"
KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind(
            "historian",
            "historian",
            ["historian_readings"],
            re.compile(r"^historian/(?P<unit_id>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})\.csv$"),
            parse_historian,
            {},
            {"historian_readings": schema_historian},
            {"historian_readings": HIST_REASONS},
        ),
        Kind(
            "lims",
            "lims",
            ["lims_results"],
            re.compile(rf"^lims/{_CSV}$"),
            parse_lims,
            {"lims_results": prepare_lims},
            {"lims_results": schema_lims},
            {"lims_results": LIMS_REASONS},
        ),
        Kind(
            "mes",
            "mes",
            ["mes_batches", "mes_phases", "mes_materials", "mes_genealogy"],
            re.compile(r"^mes/[^/]+\.json$"),
            parse_mes,
            {},
            {
                "mes_batches": schema_mes_batches,
                "mes_phases": schema_mes_phases,
                "mes_materials": schema_mes_materials,
                "mes_genealogy": schema_mes_genealogy,
            },
            csv=False,
        ),
        Kind(
            "chrom_run",
            "chromatography",
            ["chrom_runs"],
            re.compile(r"^chromatography/(?P<skid_id>[^/]+)/(?P<run_id>[^/]+)/run\.json$"),
            parse_chrom_run,
            {},
            {"chrom_runs": lambda ctx: _run_schema(ctx, CHROM_RUN_FLOATS, ["column_cycle"])},
            csv=False,
        ),
        Kind(
            "chrom_curves",
            "chromatography",
            ["chrom_curves"],
            re.compile(r"^chromatography/(?P<skid_id>[^/]+)/(?P<run_id>[^/]+)/curves\.csv$"),
            parse_chrom_curves,
            {},
            {"chrom_curves": _curve_schema(CHROM_CURVE_FLOATS, CHROM_PHASES)},
        ),
        Kind(
            "filt_run",
            "filtration",
            ["filtration_runs"],
            re.compile(r"^filtration/(?P<skid_id>[^/]+)/(?P<run_id>[^/]+)/run\.json$"),
            parse_filt_run,
            {},
            {"filtration_runs": lambda ctx: _run_schema(ctx, FILT_RUN_FLOATS, ["membrane_use"])},
            csv=False,
        ),
        Kind(
            "filt_curves",
            "filtration",
            ["filtration_curves"],
            re.compile(r"^filtration/(?P<skid_id>[^/]+)/(?P<run_id>[^/]+)/curves\.csv$"),
            parse_filt_curves,
            {},
            {"filtration_curves": _curve_schema(FILT_CURVE_FLOATS, FILT_PHASES)},
        ),
        Kind(
            "cmms",
            "cmms",
            ["cmms_work_orders"],
            re.compile(rf"^cmms/{_CSV}$"),
            parse_cmms,
            {"cmms_work_orders": prepare_cmms},
            {"cmms_work_orders": schema_cmms},
        ),
    ]
}

SYSTEMS: dict[str, list[str]] = {}
for _k in KINDS.values():
    if _k.landing:
        SYSTEMS.setdefault(_k.system, []).append(_k.name)

SYSTEM_TABLES: dict[str, list[str]] = {s: [t for k in ks for t in KINDS[k].tables] for s, ks in SYSTEMS.items()}


def kind_for(rel_path: str) -> tuple[Kind, dict[str, str]] | None:
    """The file kind and path fields of a landing path (``None``: not a file ingestion knows)."""
    for k in KINDS.values():
        if not k.landing:
            continue
        m = k.match(rel_path)
        if m is not None:
            return k, m
    return None


def output_frame(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Bronze data columns (contract order and types) + ``_file``."""
    schema = BRONZE_SCHEMAS[table]
    exprs = []
    for name in data_columns(table):
        dtype = pl.from_arrow(pa.array([], schema.field(name).type)).dtype
        exprs.append((pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name))
    return df.select([*exprs, pl.col("_file")])


def validate_table(kind: Kind, table: str, df: pl.DataFrame, ctx: IngestContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid bronze rows + _file, bad rows: _file, _row, reason[, _raw])."""
    prep = kind.prepare.get(table, _identity)
    df = prep(df, ctx)
    bad_idx = split_invalid(df, kind.schema[table](ctx), kind.reasons.get(table, {}))
    n = df.height
    if bad_idx.height:
        mask = np.ones(n, dtype=bool)
        idx = bad_idx.get_column("index").to_numpy()
        mask[idx] = False
        valid = df.filter(pl.Series(mask))
        cols = ["_file", "_row"] + (["_raw"] if "_raw" in df.columns else [])
        bad = df[bad_idx.get_column("index")].select(cols).with_columns(bad_idx.get_column("_reason").alias("reason"))
    else:
        valid = df
        bad = pl.DataFrame(schema={"_file": pl.Int32, "_row": pl.Int64, "reason": pl.Utf8})
    return output_frame(table, valid), bad
