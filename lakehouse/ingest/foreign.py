"""Import any plant's data from a YAML config — no Python needed (``lakehouse import``).

``config/imports/<site>.yaml`` points to the plant's exports and says how to read them::

    site: plant-a
    timezone: Europe/Berlin          # zone of timestamps WITHOUT offset (default UTC)
    data_dir: ../exports             # optional: folder the globs are relative to
    historian:                       # long format: timestamp, tag, value[, unit][, quality]
      files: [historian/*.csv, historian/*.parquet]
      tagmap: ../tagmaps/plant-a.yaml
      columns: {timestamp: Time, tag: TagName, value: Value, unit: EU}   # ours: theirs
      quality: {Good: 192, Bad: 0}   # text quality -> code (192 = good); default: numeric codes
    batches:                         # an MES / spreadsheet batch list
      files: [batches.csv]
      columns: {batch_id: Batch, unit_id: Vessel, start: Start, end: End, status: State}
      statuses: {Completed: complete, Aborted: aborted}   # their status -> ours
      unit_ids: {FERM-01: BR-201}    # default: the tag map's `units`
      inoculate_hours: 1.0           # synthetic ISA-88 phases Inoculate / Production / Harvest
      harvest_hours: 4.0
    deviations:                      # recorded deviations -> bronze mes_deviations
      files: [deviations.csv]
      columns: {deviation_id: ID, batch_id: Batch, onset: Onset, category: Category,
                description: Text, opened: Opened}
    assays:                          # LIMS-like results, long or wide
      files: [exports/lims.csv]
      layout: wide                   # long: one row per result (analyte, value[, unit] columns)
      columns: {batch_id: Batch, sample_time: Sampled, result_time: Released}
      analytes:                      # their name -> ours (+ their unit; converted when we know it)
        Titer: {analyte: titer, unit: mg/mL}
        IgG_HPLC: {analyte: igg_hplc, unit: g/L, range: [0, 30]}   # one our twin does not have
        DCW (g/L): {analyte: dcw}    # no unit: the one in the column name's parentheses

File globs are relative to ``data_dir`` (default: the config file's folder; a caller may point
it elsewhere), or absolute / ``s3://`` on the lake's store. Naive historian timestamps in a
repeated local hour (the autumn DST change) are resolved per tag by order: the first
occurrence is the earlier instant, the second the later one.
Each file is ingested exactly once per content version, through the same validation,
quarantine and lineage as the landing zone (``_source_file`` = the file's URI; app-transaction
namespace ``import``).
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from lakehouse.ingest import readers as R
from lakehouse.ingest.parsing import (
    TS_FORMATS_AWARE,
    TS_FORMATS_NAIVE,
    FileRejected,
    check_bytes,
    parse_ts_strings,
    read_csv_strings,
)
from lakehouse.ingest.tagmap import TagMap, load_tagmap
from lakehouse.ingest.units import ANALYTES, UnitError, conversion, normalise_unit
from lakehouse.ingest.writer import IngestReport, fingerprint, ingest_files
from lakehouse.storage import Lake


class ImportConfigError(ValueError):
    """An import config that cannot be used (one-line reason)."""


# ----------------------------------------------------------------- readers of the formats
def _table_from_file(f: R.SourceFile, ctx: R.IngestContext) -> pl.DataFrame:
    """All columns as strings (CSV) or as stored (Parquet), renamed to our names, + _row."""
    rename = ctx.csv_rename
    if f.meta.get("format") == "parquet":
        if not f.data:
            raise FileRejected("empty file")
        try:
            tbl = pq.read_table(io.BytesIO(f.data))
        except Exception as exc:
            raise FileRejected(f"unreadable Parquet (truncated or wrong format): {str(exc)[:200]}") from None
        df = pl.from_arrow(tbl)
    else:
        check_bytes(f.data, require_final_newline=ctx.require_final_newline)
        df = read_csv_strings(f.data, delimiter=ctx.delimiter)
    df = df.rename({c: rename.get(c, c) for c in df.columns})
    return df.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))


def _require(df: pl.DataFrame, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise FileRejected(f"missing column(s): {', '.join(missing)} (have: {', '.join(df.columns)[:200]})")


def _to_ts(df: pl.DataFrame, col: str, tz: str | None) -> tuple[pl.Expr, pl.Expr]:
    """(parsed UTC timestamp, issue text) for a string or datetime column."""
    dtype = df.schema[col]
    if isinstance(dtype, pl.Datetime):
        e = pl.col(col).dt.cast_time_unit("us")
        e = (
            e.dt.convert_time_zone("UTC")
            if dtype.time_zone
            else e.dt.replace_time_zone(tz or "UTC").dt.convert_time_zone("UTC")
        )
        return e.alias(col), pl.lit(None, pl.Utf8)
    raw = pl.col(col).cast(pl.Utf8)
    parsed = parse_ts_strings(raw, tz or "UTC")
    issue = pl.when(raw.is_not_null() & (raw.str.strip_chars() != "") & parsed.is_null()).then(
        pl.format(f"unparseable timestamp in column {col}: '{{}}'", raw.str.slice(0, 60))
    )
    return parsed.alias(col), issue


def _to_float(col: str) -> tuple[pl.Expr, pl.Expr]:
    raw = pl.col(col).cast(pl.Utf8).str.strip_chars()
    val = raw.cast(pl.Float64, strict=False)
    issue = pl.when(raw.is_not_null() & (raw != "") & val.is_null()).then(
        pl.format(f"non-numeric value in column {col}: '{{}}'", raw.str.slice(0, 60))
    )
    return val.alias(col), issue


def _join_issues(issues: list[pl.Expr]) -> pl.Expr:
    s = pl.concat_str(issues, separator="; ", ignore_nulls=True)
    return pl.when(s == "").then(None).otherwise(s).alias("_issue")


def _local_ts(df: pl.DataFrame, col: str, tz: str | None, key: str) -> tuple[pl.Expr, pl.Expr]:
    """Like :func:`_to_ts` for a string column, with the repeated local hour of the autumn DST
    change resolved by order within ``key``: the first occurrence of a wall-clock time is the
    earlier instant, a second one the later instant (a historian logs forward in time).

    An export without rows takes :func:`_to_ts` (nothing to order): polars 1.x/2.1 panics on
    ``replace_time_zone`` with an expression-valued ``ambiguous`` over zero rows (a Rust panic,
    not an exception — it ended the whole ingestion run; found by bench_integrity's fuzzing).
    """
    if isinstance(df.schema[col], pl.Datetime) or df.height == 0:
        return _to_ts(df, col, tz)
    raw = pl.col(col).cast(pl.Utf8).str.strip_chars()
    aware = pl.coalesce(
        [raw.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False) for f in TS_FORMATS_AWARE]
    )
    naive = pl.coalesce([raw.str.to_datetime(f, time_unit="us", strict=False) for f in TS_FORMATS_NAIVE])
    first = pl.struct([pl.col(key), raw]).is_first_distinct()
    ambiguous = pl.when(first).then(pl.lit("earliest")).otherwise(pl.lit("latest"))
    local = naive.dt.replace_time_zone(tz or "UTC", ambiguous=ambiguous, non_existent="null").dt.convert_time_zone(
        "UTC"
    )
    parsed = pl.coalesce([aware, local])
    issue = pl.when(raw.is_not_null() & (raw != "") & parsed.is_null()).then(
        pl.format(f"unparseable timestamp in column {col}: '{{}}'", raw.str.slice(0, 60))
    )
    return parsed.alias(col), issue


def _quality(df: pl.DataFrame, codes: dict[str, int] | None) -> tuple[pl.Expr, pl.Expr]:
    """(quality code Int16, issue): text mapped by the config's ``quality`` table, else numeric."""
    if "quality" not in df.columns:
        return pl.lit(192, pl.Int16).alias("quality"), pl.lit(None, pl.Utf8)
    raw = pl.col("quality").cast(pl.Utf8).str.strip_chars()
    if codes:
        val = raw.replace_strict(codes, default=None, return_dtype=pl.Int16)
        issue = pl.when(raw.is_not_null() & val.is_null()).then(
            pl.format("unknown quality '{}' (not in historian.quality)", raw.str.slice(0, 40))
        )
        return val.alias("quality"), issue
    num = raw.cast(pl.Float64, strict=False)
    val = pl.when(num == num.round(0)).then(num).cast(pl.Int16, strict=False)
    issue = pl.when(raw.is_not_null() & (raw != "") & val.is_null()).then(
        pl.format("non-integer value in column quality: '{}'", raw.str.slice(0, 40))
    )
    return val.alias("quality"), issue


def quality_codes(sec: dict[str, Any], where: str = "historian") -> dict[str, int] | None:
    """The ``quality`` table of a historian section (their text -> code 0..255), checked."""
    q = sec.get("quality")
    if q is None:
        return None
    if not isinstance(q, dict) or not q:
        raise ImportConfigError(f"{where}.quality: a mapping of their quality text -> code, e.g. {{Good: 192, Bad: 0}}")
    out = {}
    for text, code in q.items():
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
            raise ImportConfigError(f"{where}.quality.{text}: a code 0..255 (192 = good), got {code!r}")
        out[str(text).strip()] = int(code)
    return out


def parse_import_historian(f: R.SourceFile, ctx: R.IngestContext) -> dict[str, R.FastPart]:
    """Read a plant's historian export as configured (columns, separator, time zone, quality
    texts) into bronze rows."""
    df = _table_from_file(f, ctx)
    _require(df, ["timestamp", "tag", "value"])
    ts, ts_issue = _local_ts(df, "timestamp", ctx.naive_tz, "tag")
    val, val_issue = _to_float("value")
    quality, q_issue = _quality(df, quality_codes(ctx.options))
    cols = [ts, pl.col("tag").cast(pl.Utf8), val, quality]
    if "unit" in df.columns:
        cols.append(pl.col("unit").cast(pl.Utf8))
    typed = df.select([*cols, _join_issues([ts_issue, val_issue, q_issue])])
    tbl = typed.drop("_issue").to_arrow()
    tbl = tbl.cast(pa.schema([pa.field(n, R.HIST_TYPES[n]) for n in tbl.column_names]))
    issue = typed.get_column("_issue").to_arrow().cast(pa.string())
    return {"historian_readings": R.historian_part(tbl, issue, ctx)}


def parse_import_batches(f: R.SourceFile, ctx: R.IngestContext) -> dict[str, pl.DataFrame]:
    """Read a plant's batch list into ``mes_batches`` (status mapped) and the synthetic ISA-88 ``mes_phases``."""
    opt = ctx.options
    df = _table_from_file(f, ctx)
    _require(df, ["batch_id", "unit_id", "start", "end"])
    start, s_issue = _to_ts(df, "start", ctx.naive_tz)
    end, e_issue = _to_ts(df, "end", ctx.naive_tz)
    unit_map = opt.get("unit_ids") or {}
    str_col = lambda c, default=None: (pl.col(c).cast(pl.Utf8) if c in df.columns else pl.lit(default, pl.Utf8)).alias(
        c
    )
    status, st_issue = _status(df, opt.get("statuses"))
    batches = df.select(
        "_row",
        str_col("batch_id"),
        pl.col("unit_id").cast(pl.Utf8).replace(unit_map).alias("unit_id"),
        start.alias("start_ts"),
        end.alias("end_ts"),
        str_col("product", opt.get("product")),
        str_col("recipe_id", opt.get("recipe_id")),
        status,
        str_col("record_type", "bioreactor"),
        _join_issues([s_issue, e_issue, st_issue]),
    ).with_columns(
        pl.lit("{}").alias("setpoints_json"),
        (
            pl.format(opt["output_lot"].replace("{batch_id}", "{}"), pl.col("batch_id"))
            if opt.get("output_lot")
            else pl.lit(None, pl.Utf8)
        ).alias("output_lot"),
        *[pl.lit(None, pl.Float64).alias(k) for k in R.SETPOINT_KEYS],
    )
    inoc_h = float(opt.get("inoculate_hours", 1.0))
    harv_h = float(opt.get("harvest_hours", 4.0))
    t_inoc_end = pl.col("start_ts") + pl.duration(seconds=int(inoc_h * 3600))
    t_harv = pl.col("end_ts") - pl.duration(seconds=int(harv_h * 3600))
    base = batches.select("_row", "batch_id", "_issue", "start_ts", "end_ts")
    phases = (
        pl.concat(
            [
                base.select(
                    "_row",
                    "batch_id",
                    "_issue",
                    pl.lit("Inoculate").alias("phase"),
                    pl.lit(1).alias("phase_seq"),
                    pl.col("start_ts"),
                    t_inoc_end.alias("end_ts"),
                ),
                base.select(
                    "_row",
                    "batch_id",
                    "_issue",
                    pl.lit("Production").alias("phase"),
                    pl.lit(2).alias("phase_seq"),
                    t_inoc_end.alias("start_ts"),
                    t_harv.alias("end_ts"),
                ),
                base.select(
                    "_row",
                    "batch_id",
                    "_issue",
                    pl.lit("Harvest").alias("phase"),
                    pl.lit(3).alias("phase_seq"),
                    t_harv.alias("start_ts"),
                    pl.col("end_ts"),
                ),
            ]
        )
        .with_columns(
            pl.lit("Production Culture").alias("unit_procedure"),
            pl.lit("imported batch list").alias("operation"),
            pl.col("phase_seq").cast(pl.Int64),
        )
        .sort("_row", "phase_seq")
    )
    return {"mes_batches": batches, "mes_phases": phases}


def _status(df: pl.DataFrame, statuses: dict[str, str] | None) -> tuple[pl.Expr, pl.Expr]:
    """(our status, issue): their status text through the config's ``statuses`` table, else
    lower-cased as exported (default ``complete`` without a status column)."""
    if "status" not in df.columns:
        return pl.lit("complete", pl.Utf8).alias("status"), pl.lit(None, pl.Utf8)
    raw = pl.col("status").cast(pl.Utf8).str.strip_chars()
    if not statuses:
        return raw.str.to_lowercase().alias("status"), pl.lit(None, pl.Utf8)
    mapped = raw.replace_strict({str(k): str(v) for k, v in statuses.items()}, default=None, return_dtype=pl.Utf8)
    issue = pl.when(raw.is_not_null() & mapped.is_null()).then(
        pl.format("unknown status '{}' (not in batches.statuses)", raw.str.slice(0, 40))
    )
    return mapped.alias("status"), issue


def check_statuses(sec: dict[str, Any]) -> None:
    """``batches.statuses`` maps their status text to one of ours (``complete`` / ``aborted``)."""
    st = sec.get("statuses")
    if st is None:
        return
    if not isinstance(st, dict) or not st:
        raise ImportConfigError("batches.statuses: a mapping of their status -> ours, e.g. {Completed: complete}")
    bad = {k: v for k, v in st.items() if str(v) not in R.STATUSES}
    if bad:
        raise ImportConfigError(f"batches.statuses: {bad} — our statuses are {R.STATUSES}")


# --------------------------------------------------------------------- recorded deviations
def parse_import_deviations(f: R.SourceFile, ctx: R.IngestContext) -> dict[str, pl.DataFrame]:
    """A deviation list (one row per recorded deviation) -> ``mes_deviations``."""
    df = _table_from_file(f, ctx)
    _require(df, ["deviation_id", "batch_id", "onset"])
    onset, o_issue = _to_ts(df, "onset", ctx.naive_tz)
    issues = [o_issue]
    opened = pl.lit(None, pl.Datetime("us", "UTC")).alias("opened")
    if "opened" in df.columns:
        opened, op_issue = _to_ts(df, "opened", ctx.naive_tz)
        issues.append(op_issue)
    text = lambda c: (pl.col(c).cast(pl.Utf8).str.strip_chars() if c in df.columns else pl.lit(None, pl.Utf8)).alias(c)
    out = df.select(
        "_row",
        text("deviation_id"),
        text("batch_id"),
        onset.alias("onset_ts"),
        text("category"),
        text("description"),
        opened.alias("opened_ts"),
        _join_issues(issues),
    )
    return {
        "mes_deviations": out.with_columns(
            pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
            for c in ("deviation_id", "batch_id", "category", "description")
        )
    }


@dataclass(frozen=True)
class _Analyte:
    analyte: str
    unit: str  # as exported
    canonical: str  # stored unit
    scale: float
    offset: float


_UNIT_IN_NAME = re.compile(r"\(([^()]+)\)\s*$")


def _analyte_map(opt: dict[str, Any]) -> dict[str, _Analyte]:
    out = {}
    for name, spec in (opt.get("analytes") or {}).items():
        spec = {"analyte": spec} if isinstance(spec, str) else dict(spec or {})
        analyte = str(spec.get("analyte", name))
        in_name = _UNIT_IN_NAME.search(str(name))  # "DCW (g/L)": the unit is in the column name
        declared = spec.get("unit", in_name.group(1).strip() if in_name else None)
        if analyte in ANALYTES:
            canon = ANALYTES[analyte][0]
            unit = str(declared or canon)
            try:
                c = conversion(unit, canon)
            except UnitError as exc:
                raise ImportConfigError(f"assays.analytes.{name}: {analyte}: {exc}") from None
        else:
            unit = str(declared or "")
            canon, c = unit, conversion(unit, unit) if unit else None
        out[str(name)] = _Analyte(
            analyte, normalise_unit(unit), normalise_unit(canon), c.scale if c else 1.0, c.offset if c else 0.0
        )
    return out


def parse_import_assays(f: R.SourceFile, ctx: R.IngestContext) -> dict[str, pl.DataFrame]:
    """Read a plant's (long or wide) assay sheet into ``lims_results`` rows."""
    opt = ctx.options
    amap = _analyte_map(opt)
    df = _table_from_file(f, ctx)
    layout = opt.get("layout", "long")
    id_cols = [c for c in ["sample_id", "batch_id", "sample_time", "result_time", "method"] if c in df.columns]
    _require(df, ["batch_id", "sample_time"])
    if layout == "wide":
        value_cols = [c for c in df.columns if c in amap]
        if not value_cols:
            raise FileRejected(f"no analyte column of the config found (expected one of {sorted(amap)})")
        long = df.select("_row", *id_cols, *[pl.col(c).cast(pl.Utf8) for c in value_cols]).unpivot(
            index=["_row", *id_cols], on=value_cols, variable_name="analyte", value_name="value"
        )
        long = long.filter(pl.col("value").is_not_null() & (pl.col("value").str.strip_chars() != ""))
        long = long.with_columns(pl.lit(None, pl.Utf8).alias("unit"))
    else:
        _require(df, ["analyte", "value"])
        long = df.select(
            "_row",
            *id_cols,
            pl.col("analyte").cast(pl.Utf8),
            pl.col("value").cast(pl.Utf8),
            (pl.col("unit").cast(pl.Utf8) if "unit" in df.columns else pl.lit(None, pl.Utf8)).alias("unit"),
        )
    long = long.sort("_row", maintain_order=True)
    names = list(amap)
    spec = pl.DataFrame(
        {
            "analyte": names,
            "_canon": [amap[n].analyte for n in names],
            "_decl_unit": [amap[n].unit for n in names],
            "_store_unit": [amap[n].canonical for n in names],
            "_scale": [amap[n].scale for n in names],
            "_offset": [amap[n].offset for n in names],
        },
        schema={
            "analyte": pl.Utf8,
            "_canon": pl.Utf8,
            "_decl_unit": pl.Utf8,
            "_store_unit": pl.Utf8,
            "_scale": pl.Float64,
            "_offset": pl.Float64,
        },
    )
    units = long.get_column("unit").unique().to_list()
    unorm = pl.DataFrame(
        {"unit": units, "_unit_norm": [normalise_unit(u) for u in units]},
        schema={"unit": pl.Utf8, "_unit_norm": pl.Utf8},
    )
    long = long.join(spec, on="analyte", how="left", maintain_order="left").join(
        unorm, on="unit", how="left", maintain_order="left", nulls_equal=True
    )
    sample, s_issue = _to_ts(long, "sample_time", ctx.naive_tz)
    if "result_time" in long.columns:
        result, r_issue = _to_ts(long, "result_time", ctx.naive_tz)
    else:  # no release time exported: sample time + a configured assay delay
        delay = float(opt.get("result_delay_hours", 0.0))
        result, r_issue = (sample + pl.duration(seconds=int(delay * 3600))).alias("result_time"), pl.lit(None, pl.Utf8)
    val, v_issue = _to_float("value")
    unit_issue = pl.when(
        pl.col("_unit_norm").is_not_null()
        & pl.col("_decl_unit").is_not_null()
        & (pl.col("_unit_norm") != pl.col("_decl_unit"))
    ).then(
        pl.format(
            "unit '{}' does not match the declared unit '{}' of the analyte", pl.col("unit"), pl.col("_decl_unit")
        )
    )
    unknown = pl.when(pl.col("_canon").is_null()).then(
        pl.format("unknown analyte '{}' (not in the import config)", pl.col("analyte"))
    )
    out = long.select(
        "_row",
        (
            pl.col("sample_id").cast(pl.Utf8)
            if "sample_id" in long.columns
            else pl.format("{}@{}", pl.col("batch_id"), pl.col("sample_time"))
        ).alias("sample_id"),
        pl.col("batch_id").cast(pl.Utf8),
        sample,
        result,
        pl.coalesce("_canon", "analyte").alias("analyte"),
        (val * pl.col("_scale").fill_null(1.0) + pl.col("_offset").fill_null(0.0)).alias("value"),
        pl.coalesce("_store_unit", "_unit_norm", "unit").alias("unit"),
        (pl.col("method").cast(pl.Utf8) if "method" in long.columns else pl.lit(opt.get("method"), pl.Utf8)).alias(
            "method"
        ),
        _join_issues([s_issue, r_issue, v_issue, unit_issue, unknown]),
    )
    return {"lims_results": out}


_IMPORT_KINDS = {
    "historian": R.Kind(
        "import_historian",
        "import",
        ["historian_readings"],
        R.re.compile(r"^$"),
        parse_import_historian,
        {},
        {"historian_readings": R.schema_historian},
        {"historian_readings": R.HIST_REASONS},
        landing=False,
    ),
    "batches": R.Kind(
        "import_batches",
        "import",
        ["mes_batches", "mes_phases"],
        R.re.compile(r"^$"),
        parse_import_batches,
        {},
        {"mes_batches": R.schema_mes_batches, "mes_phases": R.schema_mes_phases},
        landing=False,
    ),
    "deviations": R.Kind(
        "import_deviations",
        "import",
        ["mes_deviations"],
        R.re.compile(r"^$"),
        parse_import_deviations,
        {},
        {"mes_deviations": R.schema_mes_deviations},
        landing=False,
    ),
    "assays": R.Kind(
        "import_assays",
        "import",
        ["lims_results"],
        R.re.compile(r"^$"),
        parse_import_assays,
        {"lims_results": R.prepare_lims},
        {"lims_results": R.schema_lims},
        {"lims_results": R.LIMS_REASONS},
        landing=False,
    ),
}
for _k in _IMPORT_KINDS.values():
    R.KINDS[_k.name] = _k


# ----------------------------------------------------------------------- the driver
@dataclass
class ImportPlan:
    """The files an import config selects, per section (batches, deviations, historian, assays)."""

    site: str
    base: Path  # folder the globs are relative to (data_dir)
    config: dict[str, Any]
    sections: dict[str, list[R.SourceFile]] = field(default_factory=dict)
    config_dir: Path | None = None  # folder of the config file (the tag map path is relative to it)


def load_import_config(path: str | Path) -> dict[str, Any]:
    """Load and check an import config YAML (sections, quality codes, status mapping)."""
    p = Path(path)
    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ImportConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(cfg, dict) or not cfg.get("site"):
        raise ImportConfigError(f"{p}: an import config is a mapping with at least `site:`")
    unknown = set(cfg) - {"site", "timezone", "data_dir", "historian", "batches", "deviations", "assays", "description"}
    if unknown:
        raise ImportConfigError(f"{p}: unknown section(s) {sorted(unknown)}")
    try:
        for section in SECTIONS:
            if cfg.get(section) is not None and not isinstance(cfg[section], dict):
                raise ImportConfigError(f"{section}: a mapping (files, columns, …)")
        quality_codes(cfg.get("historian") or {})
        check_statuses(cfg.get("batches") or {})
    except ImportConfigError as exc:
        raise ImportConfigError(f"{p}: {exc}") from None
    return cfg


def _expand(lake: Lake, base: Path, patterns: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for pat in patterns:
        if "://" in pat:
            fs = lake.filesystem() if pat.startswith(("s3://", "s3a://")) else None
            if fs is None:
                raise ImportConfigError(f"unsupported URI (local paths or s3:// on the lake's store): {pat}")
            for path, info in sorted(fs.glob(lake.fs_path(pat), detail=True).items()):
                out.append(("s3://" + path, info))
        else:
            p = pat if Path(pat).is_absolute() else str(base / pat)
            for hit in sorted(glob.glob(p, recursive=True)):
                st = Path(hit).stat()
                out.append((str(Path(hit).resolve()), {"size": st.st_size, "mtime": st.st_mtime_ns}))
    return out


#: sections of an import config, in the order they are ingested
SECTIONS = ("batches", "deviations", "historian", "assays")


def plan_import(config_path: str | Path, lake: Lake, data_dir: str | Path | None = None) -> ImportPlan:
    """The files of every section of an import config (globs expanded).

    ``data_dir``: the folder the globs are relative to (default: the config's ``data_dir``,
    relative to the config file, else the config file's folder)."""
    cfg = load_import_config(config_path)
    cfg_dir = Path(config_path).resolve().parent
    if data_dir is None and cfg.get("data_dir"):
        data_dir = cfg_dir / str(cfg["data_dir"])
    base = Path(data_dir).resolve() if data_dir is not None else cfg_dir
    plan = ImportPlan(site=str(cfg["site"]), base=base, config=cfg, config_dir=cfg_dir)
    for section in SECTIONS:
        sec = cfg.get(section)
        if not sec:
            continue
        files = sec.get("files")
        if not files:
            raise ImportConfigError(f"{section}: `files:` (list of paths/globs) is required")
        hits = _expand(lake, base, [files] if isinstance(files, str) else files)
        if not hits:
            raise ImportConfigError(f"{section}: no file matches {files}")
        sfs = []
        for uri, info in hits:
            try:
                shown = str(Path(uri).relative_to(base)) if "://" not in uri else uri.split("://", 1)[1]
            except ValueError:
                shown = uri.lstrip("/")
            fmt = sec.get("format") or ("parquet" if uri.endswith((".parquet", ".pq")) else "csv")
            sfs.append(
                R.SourceFile(
                    uri=uri,
                    rel_path=f"{plan.site}/{section}/{shown}",
                    size=int(info.get("size", -1)),
                    fingerprint=fingerprint(info),
                    kind=_IMPORT_KINDS[section].name,
                    meta={"format": fmt, "_delimiter": sec.get("delimiter", ",")},
                )
            )
        plan.sections[section] = sfs
    return plan


def _context(plan: ImportPlan, section: str) -> R.IngestContext:
    cfg = plan.config
    sec = dict(cfg.get(section) or {})
    cols = sec.get("columns") or {}
    tm: TagMap | None = None
    if section == "historian" or (section == "batches" and cfg.get("historian", {}).get("tagmap")):
        tm_path = sec.get("tagmap") or (cfg.get("historian") or {}).get("tagmap")
        if not tm_path:
            raise ImportConfigError("historian: `tagmap:` (path of the tag map YAML) is required")
        p = Path(tm_path)
        tm = load_tagmap(p if p.is_absolute() else (plan.config_dir or plan.base) / p)
    if section == "batches" and tm is not None and not sec.get("unit_ids"):
        sec["unit_ids"] = dict(tm.unit_ids)
    ctx = R.IngestContext(
        tagmap=tm or TagMap.contract_default(),
        require_final_newline=bool(sec.get("strict_line_endings", False)),
        naive_tz=str(cfg.get("timezone", "UTC")),
        csv_rename={str(theirs): str(ours) for ours, theirs in cols.items()},
        delimiter=str(sec.get("delimiter", ",")),
        options=sec,
    )
    if section == "assays":
        amap = _analyte_map(sec)
        for name, a in amap.items():
            if a.analyte not in ctx.analytes:
                rng = (sec["analytes"][name] or {}).get("range") if isinstance(sec["analytes"][name], dict) else None
                lo, hi = (float(rng[0]), float(rng[1])) if rng else (-1e12, 1e12)
                ctx.analytes[a.analyte] = (a.canonical, lo, hi)
    return ctx


def run_import_config(
    config_path: str | Path, lake: Lake, run_id: str | None = None, data_dir: str | Path | None = None
) -> IngestReport:
    """Ingest every file the config names (exactly once per file version) into bronze.

    ``data_dir`` overrides the folder the config's globs are relative to (see :func:`plan_import`)."""
    plan = plan_import(config_path, lake, data_dir)
    total = IngestReport(run_id=run_id or f"import-{plan.site}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
    for section in SECTIONS:
        files = plan.sections.get(section)
        if not files:
            continue
        rep = ingest_files(lake, files, run_id=total.run_id, ctx=_context(plan, section), namespace="import")
        total.merge(rep)
    return total
