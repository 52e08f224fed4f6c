"""Property-based tests of every landing parser (hypothesis, bounded and derandomised so CI
is repeatable): whatever bytes arrive — truncated, mutated, with control characters, doubled
lines or headers, random JSON — parsing and validation never crash, and every row read is
either valid (bronze) or quarantined with a reason; a file that cannot be read at all becomes
exactly one quarantine row."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_testdata import T0, chrom_run, cmms_csv, filt_run, historian_csv, lims_csv, mes_json

from lakehouse.ingest.readers import KINDS, IngestContext, SourceFile
from lakehouse.ingest.writer import IngestReport, _prepare_batch, app_id

DAY = T0.date()
SAMPLES = {
    "historian": (f"historian/BR-101/{DAY.isoformat()}.csv", historian_csv("BR-101", DAY, minutes=3)[0]),
    "lims": ("lims/x.csv", lims_csv(DAY, n_days=1)[0]),
    "cmms": ("cmms/x.csv", cmms_csv(DAY)[0]),
    "mes": ("mes/x.json", mes_json()[0]),
    "chrom_run": ("chromatography/AKTA-01/PA-0001/run.json", chrom_run()[0]),
    "chrom_curves": ("chromatography/AKTA-01/PA-0001/curves.csv", chrom_run()[1]),
    "filt_run": ("filtration/TFF-01/UFDF-0001/run.json", filt_run()[0]),
    "filt_curves": ("filtration/TFF-01/UFDF-0001/curves.csv", filt_run()[1]),
}
NASTY = [
    "\x00",
    "\x1b",
    "\x7f",
    ",",
    ";",
    '"',
    "\r",
    "\n",
    "é",
    "NaN",
    "-inf",
    "1e309",
    "{",
    "[",
    "}",
    "null",
    "2026-13-45T99:00:00Z",
    "\ufeff",
    "9" * 40,
]


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """A valid export with a few random edits (and sometimes a whole random body)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    text = data.decode()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "insert", "replace_line", "duplicate_line", "json", "delete"]))
        pos = draw(st.integers(0, max(len(text) - 1, 0)))
        if op == "truncate":
            text = text[:pos]
        elif op == "insert":
            text = text[:pos] + draw(st.sampled_from(NASTY) | st.text(max_size=8)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 20)) :]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, max(len(lines) - 1, 0)))
            if op == "replace_line":
                lines[i] = draw(st.text(max_size=60))
            elif op == "duplicate_line":
                lines.insert(i, lines[i])
            else:  # a random JSON value spliced into a line
                value = draw(
                    st.recursive(
                        st.none() | st.booleans() | st.floats() | st.text(max_size=10),
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                        max_leaves=6,
                    )
                )
                lines[i] = lines[i][: len(lines[i]) // 2] + json.dumps(value) + lines[i][len(lines[i]) // 2 :]
            text = "\n".join(lines)
    return text.encode("utf-8", errors="surrogatepass")


def _classify(kind_name: str, rel: str, data: bytes) -> tuple[IngestReport, object]:
    kind = KINDS[kind_name]
    meta = kind.match(rel) or {}
    f = SourceFile(uri=f"/landing/{rel}", rel_path=rel, size=len(data), kind=kind_name, meta=meta, data=data)
    report = IngestReport(run_id="prop")
    ctx = IngestContext()
    prep = _prepare_batch(None, kind, [f], ctx, "prop", "landing", report, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), None)
    return report, prep


@pytest.mark.parametrize("kind_name", sorted(SAMPLES))
def test_every_row_read_is_in_bronze_or_quarantine(kind_name: str):
    rel, sample = SAMPLES[kind_name]

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=mutated(sample))
    def check(data: bytes) -> None:
        report, prep = _classify(kind_name, rel, data)
        fid = app_id("landing", rel, prep.log_rows[0]["source_hash"])
        written = Counter()
        for table, by_id in prep.tables.items():
            block = by_id.get(fid)
            written[table] = block.num_rows if block is not None else 0
        quarantined = prep.quarantine[fid].num_rows if fid in prep.quarantine else 0
        for table in KINDS[kind_name].tables:
            assert report.rows_read[table] == report.rows_valid[table] + report.rows_quarantined[table], table
            assert written[table] == report.rows_valid[table], table
        assert quarantined == sum(report.rows_quarantined.values())
        if fid in prep.rejected_ids:  # a file that cannot be read: one row, with a reason
            assert quarantined == 1 and sum(written.values()) == 0
            assert prep.quarantine[fid].column("reason")[0].as_py()
        else:  # rows quarantined carry a reason
            if quarantined:
                assert all(prep.quarantine[fid].column("reason").to_pylist())

    check()
    # the unmodified sample is fully valid
    report, prep = _classify(kind_name, rel, sample)
    assert not prep.rejected_ids and sum(report.rows_quarantined.values()) == 0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(-5, 40), max_size=60), st.booleans())
def test_first_occurrence_is_the_duplicate_verdict(keys: list[int], ordered: bool):
    """The per-file duplicate flag (fast path for time-ordered files, np.unique otherwise) is
    exactly polars' ``is_first_distinct``, also with the string keys of files with many tags."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from lakehouse.ingest.readers import _first_occurrence

    arr = np.array(sorted(set(keys)) if ordered else keys, dtype=np.int64)
    expected = pl.Series(arr).is_first_distinct().to_numpy()
    assert _first_occurrence(arr).tolist() == expected.tolist()
    as_strings = pa.array([str(k) for k in arr.tolist()], pa.string())
    assert _first_occurrence(as_strings).tolist() == expected.tolist()
