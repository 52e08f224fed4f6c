"""The shared document renderer: sections never silently empty, values escaped and formatted,
the same HTML printed to a PDF."""

from __future__ import annotations

import pytest

from lakehouse.reports.render import Document, Section, Table, Text, fmt, render_html, render_pdf, write_document
from lakehouse.storage import Lake


def _doc() -> Document:
    return Document(
        title="Report <X>",
        facts={"Batch": "B-1", "Start": None},
        sections=[
            Section("Data", [Table(["a", "b"], [[1.234567, "<b>"], [float("nan"), True]], flags={(0, "a"): "bad"})]),
            Section("Nothing", empty_reason="scores/pdm has not been materialized"),
            Section("Note", [Text("x & y")]),
        ],
    )


def test_html_escapes_formats_and_explains_empty_sections():
    page = render_html(_doc())
    assert "Report &lt;X&gt;" in page and "&lt;b&gt;" in page and "<b>" not in page.split("<body>")[1]
    assert '<td class="num bad">1.235</td>' in page  # 4 significant digits, flagged cell
    assert '<td class="num">–</td>' in page and "<td>yes</td>" in page  # NaN, bool
    assert "No data: scores/pdm has not been materialized" in page
    assert "<p>x &amp; y</p>" in page


def test_a_section_without_content_or_reason_is_an_error():
    with pytest.raises(ValueError, match="no content and no reason"):
        render_html(Document("t", sections=[Section("Empty")]))


def test_fmt():
    assert fmt(None) == "–" and fmt(float("nan")) == "–" and fmt(12345.678) == "1.235e+04" and fmt(0.5) == "0.5"


def test_pdf_from_the_same_html(tmp_path):
    pdf = render_pdf(render_html(_doc()))
    assert pdf[:5] == b"%PDF-" and len(pdf) > 1000
    files = write_document(_doc(), Lake(str(tmp_path / "lake")), "reports", "x", "doc")
    assert files.pdf_uri.endswith("reports/x/doc.pdf") and (tmp_path / "lake" / "reports" / "x" / "doc.html").exists()
