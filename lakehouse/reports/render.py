"""A small document model rendered to self-contained HTML and to PDF — shared by every report.

A :class:`Document` is a title, identity facts and :class:`Section` s; a section holds blocks:
:class:`Text`, :class:`Table`, :class:`Figure` (PNG bytes) or nothing — a section without blocks
must say why (:attr:`Section.empty_reason`), so no section of a report is ever silently empty.

:func:`render_html` gives ONE self-contained HTML file (CSS inline, figures as ``data:`` URIs,
viewable offline and attachable to a batch record); :func:`render_pdf` prints that same HTML to
PDF with **WeasyPrint**. Why WeasyPrint rather than matplotlib's PDF backend: the report is a
document (headings, tables of limits and results, page breaks, a header on every page), not a
figure; with WeasyPrint the HTML a reviewer opens in a browser and the PDF they sign are the
same source, so they cannot disagree; it is pure Python on PyPI (system Pango, present on
Debian desktops and installed by ``.ci/run``) and needs no browser or LaTeX. The figures stay
matplotlib PNGs.

:func:`write_document` stores both files through the lake's filesystem (local disk or S3).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

CSS = """
@page { size: A4; margin: 16mm 14mm 16mm 14mm;
        @top-right { content: string(doctitle); font-size: 8pt; color: #555; }
        @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; color: #555; } }
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 9.5pt; color: #111; }
h1 { font-size: 16pt; margin: 0 0 4pt 0; string-set: doctitle content(); }
h2 { font-size: 12pt; margin: 14pt 0 4pt 0; border-bottom: 1px solid #888; page-break-after: avoid; }
p.sub { color: #444; margin: 0 0 8pt 0; }
table { border-collapse: collapse; margin: 4pt 0 8pt 0; font-size: 8.5pt; }
th, td { border: 1px solid #bbb; padding: 2pt 5pt; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { background: #fbd5d5; } td.good { background: #dcf3dc; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 1pt 10pt; margin: 0 0 6pt 0; }
dl.facts dt { font: bold 9.5pt "DejaVu Sans", Helvetica, Arial, sans-serif; } dl.facts dd { margin: 0; }
figure { margin: 4pt 0 8pt 0; page-break-inside: avoid; }
figure img { max-width: 100%; }
figcaption { font-size: 8pt; color: #444; }
p.empty { color: #8a4b00; font-style: italic; }
section { page-break-inside: auto; }
"""


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (escaped)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table: column names and rows of values; ``flags`` marks cells ``good``/``bad`` by
    (row index, column name)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    flags: Mapping[tuple[int, str], str] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, df: Any, caption: str = "", max_rows: int = 60, flags: Mapping | None = None) -> Table:
        """From a pandas or polars frame (the first ``max_rows`` rows; the caption says when cut)."""
        import polars as pl

        frame = df if isinstance(df, pl.DataFrame) else pl.from_pandas(df)
        rows = [list(r) for r in frame.head(max_rows).iter_rows()]
        if frame.height > max_rows:
            caption = f"{caption} (first {max_rows} of {frame.height} rows)".strip()
        return cls(frame.columns, rows, caption, dict(flags or {}))


@dataclass(frozen=True)
class Figure:
    """A PNG figure with a caption."""

    png: bytes
    caption: str = ""


Block = Text | Table | Figure


@dataclass
class Section:
    """A titled part of a document; with no blocks it renders ``empty_reason`` (required then)."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    empty_reason: str = ""

    @property
    def has_data(self) -> bool:
        """Whether the section has any table or figure (text alone is a note, not data)."""
        return any(isinstance(b, (Table, Figure)) for b in self.blocks)


@dataclass
class Document:
    """A report: title, subtitle, identity facts (label → value) and sections."""

    title: str
    subtitle: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def fmt(value: Any) -> str:
    """A cell value as text: floats to 4 significant digits, None/NaN as an en dash, times in UTC."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") + ("Z" if value.tzinfo else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = []
    for i, row in enumerate(t.rows):
        cells = []
        for c, v in zip(t.columns, row):
            classes = []
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                classes.append("num")
            if (i, c) in t.flags:
                classes.append(t.flags[(i, c)])
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{cls}>{html.escape(fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _block_html(b: Block) -> str:
    if isinstance(b, Text):
        return f"<p>{html.escape(b.text)}</p>"
    if isinstance(b, Table):
        return _table_html(b)
    uri = "data:image/png;base64," + base64.b64encode(b.png).decode()
    cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
    return f'<figure><img src="{uri}" alt="{html.escape(b.caption or "figure")}"/>{cap}</figure>'


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page (inline CSS and images)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
        f"<p class='sub'>{html.escape(doc.subtitle)} · generated {fmt(doc.generated_at)}</p>",
    ]
    if doc.facts:
        parts.append(
            "<dl class='facts'>"
            + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(fmt(v))}</dd>" for k, v in doc.facts.items())
            + "</dl>"
        )
    for s in doc.sections:
        anchor = "".join(ch if ch.isalnum() else "-" for ch in s.title.lower())
        parts.append(f"<section id='{anchor}'><h2>{html.escape(s.title)}</h2>")
        if s.blocks:
            parts += [_block_html(b) for b in s.blocks]
        else:
            if not s.empty_reason:
                raise ValueError(f"section {s.title!r} has no content and no reason why")
            parts.append(f"<p class='empty'>No data: {html.escape(s.empty_reason)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_pdf(html_text: str) -> bytes:
    """The HTML printed to PDF (A4) by WeasyPrint."""
    import logging

    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # its CSS-support notes are not user news
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return HTML(string=html_text).write_pdf()


@dataclass(frozen=True)
class ReportFiles:
    """Where a rendered document was written (lake URIs or local paths)."""

    html_uri: str
    pdf_uri: str
    pdf_bytes: int


def write_document(doc: Document, lake: Any, *parts: str, out_dir: str | None = None) -> ReportFiles:
    """Render ``doc`` and write ``<parts>.html`` and ``<parts>.pdf`` under the lake root
    (``lake.uri(*parts)``), or under the local folder ``out_dir`` when given."""
    from pathlib import Path

    html_text = render_html(doc)
    pdf = render_pdf(html_text)
    if out_dir is not None:
        base = Path(out_dir).joinpath(*parts)
        base.parent.mkdir(parents=True, exist_ok=True)
        html_path, pdf_path = base.with_name(base.name + ".html"), base.with_name(base.name + ".pdf")
        html_path.write_text(html_text, encoding="utf-8")
        pdf_path.write_bytes(pdf)
        return ReportFiles(str(html_path.resolve()), str(pdf_path.resolve()), len(pdf))
    fs = lake.filesystem()
    base_uri = lake.uri(*parts)
    html_uri, pdf_uri = base_uri + ".html", base_uri + ".pdf"
    fs.makedirs(lake.fs_path(lake.uri(*parts[:-1])), exist_ok=True)
    fs.pipe_file(lake.fs_path(html_uri), html_text.encode("utf-8"))
    fs.pipe_file(lake.fs_path(pdf_uri), pdf)
    return ReportFiles(html_uri, pdf_uri, len(pdf))


def file_url(uri: str) -> str:
    """A clickable URL for a written file: ``file://`` for local paths, the URI itself otherwise."""
    from pathlib import Path

    if "://" in uri and not uri.startswith("file://"):
        return uri
    return Path(uri.removeprefix("file://")).resolve().as_uri()
