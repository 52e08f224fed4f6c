"""Batch reports of the shared small main-job run (tests/integration/conftest.py): one per batch,
every section present with the run's values, the PDF rendered to images by poppler's
``pdftoppm`` and its text read back by ``pdftotext``; the ``lakehouse report batch`` command."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lakehouse.reports.batch import REPORT_DIR, SECTIONS
from lakehouse.reports.render import fmt

pytestmark = [pytest.mark.s3, pytest.mark.slow]


def _delta(lake, *parts) -> pl.DataFrame:
    return pl.from_arrow(lake.read_delta(lake.uri(*parts)))


def _read(lake, batch_id: str, ext: str) -> bytes:
    return lake.filesystem().cat(lake.fs_path(lake.uri(*REPORT_DIR, f"{batch_id}.{ext}")))


def _sections(page: str) -> dict[str, str]:
    """Section title -> its HTML."""
    parts = re.split(r"<h2>(.*?)</h2>", page)
    return {html.unescape(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.fixture(scope="module")
def rich_batch(main_run) -> str:
    """A batch with lab titer results scored by the soft sensor and with MSPC scores."""
    _, _, lake = main_run
    titer = _delta(lake, "scores", "titer").filter((pl.col("row_type") == "sample") & pl.col("actual").is_not_null())
    mspc = _delta(lake, "scores", "mspc_deviation")
    both = sorted(set(titer["batch_id"]) & set(mspc["batch_id"]))
    assert both, "the run scored no batch with both titer results and MSPC"
    return both[-1]


def test_every_batch_has_a_report(main_run):
    _, result, lake = main_run
    batches = _delta(lake, "gold", "dim_batches")["batch_id"].to_list()
    mats = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "reports/batch"]
    assert len(mats) == 1
    meta = mats[0].materialization.metadata
    assert meta["n_reports"].value == len(batches) > 0
    for b in batches:  # the metadata links every report
        assert f"{b}.pdf" in meta["reports"].value
        assert _read(lake, b, "pdf")[:5] == b"%PDF-"
    checks = {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.asset_key.path == ["reports", "batch"]
    }
    assert checks == {"every_batch_reported": True}


def test_report_sections_hold_the_runs_values(main_run, rich_batch):
    _, _, lake = main_run
    page = _read(lake, rich_batch, "html").decode()
    sections = _sections(page)
    assert list(sections) == list(SECTIONS)
    batch = _delta(lake, "gold", "dim_batches").filter(pl.col("batch_id") == rich_batch).row(0, named=True)
    # identity and recipe: the batch's own values
    assert batch["unit_id"] in page and batch["recipe_id"] in page
    assert f'<td class="num">{fmt(batch["temperature_c"])}</td>' in sections[SECTIONS[0]]
    # trajectories: the envelope figure and the time-outside-band table
    assert sections[SECTIONS[1]].count("<img") == 1 and "pct_of_time_outside_band" in sections[SECTIONS[1]]
    # soft sensor: every lab titer result of the batch, with the stored prediction
    samples = _delta(lake, "scores", "titer").filter(
        (pl.col("batch_id") == rich_batch) & (pl.col("row_type") == "sample") & pl.col("actual").is_not_null()
    )
    soft = sections[SECTIONS[2]]
    assert "<img" in soft
    for row in samples.iter_rows(named=True):
        assert row["sample_id"] in soft and fmt(row["prediction"]) in soft
    # MSPC: the chart, and the alarms table or the explicit "no alarm"
    alarms = _delta(lake, "golden", "alarms").filter(pl.col("batch_id") == rich_batch)
    mspc = sections[SECTIONS[3]]
    assert "<img" in mspc
    assert (f"{alarms.height} MSPC alarm(s)" in mspc) if alarms.height else ("No MSPC alarm" in mspc)
    # CQAs: each spec'd CQA with its measured value
    cqa = sections[SECTIONS[5]]
    for col in ("hmw_pct", "harvest_viability_pct"):
        assert col in cqa
        if batch[col] is not None:
            assert fmt(batch[col]) in cqa
    # no section is silently empty: data, or "No data:" with a reason
    for title, body in sections.items():
        assert ("<table" in body or "<img" in body) or re.search(r"No data: \w+", body), title


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils (pdftoppm) is not installed")
def test_pdf_renders_with_every_section(main_run, rich_batch, tmp_path):
    from PIL import Image

    _, _, lake = main_run
    pdf = tmp_path / f"{rich_batch}.pdf"
    pdf.write_bytes(_read(lake, rich_batch, "pdf"))
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    for p in pages:
        img = np.asarray(Image.open(p).convert("L"), dtype=float)
        ink = (img < 200).mean()
        assert ink > 0.01, f"{p.name} is blank ({ink:.3%} ink)"
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    for title in SECTIONS:
        assert title in text, title
    assert f"Batch report {rich_batch}" in text


def test_report_command(main_run_ctx, rich_batch, tmp_path, monkeypatch, capsys):
    from bioprocess_cli.main import main

    for k, v in main_run_ctx.env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    assert main(["report", "batch", "NO-SUCH-BATCH", rich_batch, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lakehouse report: not in gold/dim_batches: NO-SUCH-BATCH"
    assert not out.exists()  # nothing written for a bad request
    assert main(["report", "batch", rich_batch, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"[1/1] {rich_batch}" in printed
    pdf = out / "reports" / "batch" / f"{rich_batch}.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and str(pdf) in printed


def test_reports_written_by_worker_processes_equal_the_serial_ones(main_run, rich_batch, tmp_path):
    """Two spawned workers (each loading the inputs from the S3 lake) write the same reports
    as this process does; only the 'generated' time stamp differs."""
    from lakehouse.reports.batch import BatchReportInputs, write_batch_reports

    _, _, lake = main_run
    ids = [b for b in BatchReportInputs.load(lake).batch_ids if b != rich_batch][:2] + [rich_batch]
    seen: list[tuple[int, int, str]] = []
    par = write_batch_reports(lake, ids, out_dir=str(tmp_path / "par"), workers=2, progress=lambda *a: seen.append(a))
    ser = write_batch_reports(lake, ids, out_dir=str(tmp_path / "ser"), workers=1)
    assert list(par) == ids == list(ser)  # in the order asked for
    assert sorted(s[2] for s in seen) == sorted(ids) and [s[0] for s in seen] == [1, 2, 3]
    stamp = re.compile(r"generated [^<]*")
    for b in ids:
        a, c = (Path(f[b].html_uri).read_text(encoding="utf-8") for f in (par, ser))
        assert stamp.sub("", a) == stamp.sub("", c), b
        assert par[b].pdf_bytes > 1000 and Path(par[b].pdf_uri).read_bytes()[:5] == b"%PDF-"
