"""The report as a Vietnamese administrative document (python-docx), laid out after Nghị định
30/2020/NĐ-CP: Times New Roman 13 pt, A4 with 30/15/20/20 mm margins, the issuing body and the
national motto side by side, the number and the place/date line, the centred title, numbered
sections, and the «Nơi nhận» list beside the signature block."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from exporters.report import words as w
from exporters.report.content import Block, Chart, Heading, Para, Table, blocks
from exporters.report.model import Report

FONT = "Times New Roman"  # what ND30 prescribes; LibreOffice draws it with Liberation Serif (same metrics)


def _font(run, size: float = 13, bold: bool = False, italic: bool = False) -> None:
    run.font.name = FONT
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FONT)
    run.font.size = Pt(size)
    run.bold, run.italic = bold, italic


def _para(container, text: str, size: float = 13, bold: bool = False, italic: bool = False,
          align=WD_ALIGN_PARAGRAPH.JUSTIFY, after: float = 4):
    paragraph = container.add_paragraph()
    paragraph.alignment = align
    paragraph.paragraph_format.space_after = Pt(after)
    for i, line in enumerate(text.split("\n")):
        run = paragraph.add_run(("\n" if i else "") + line)
        _font(run, size, bold, italic)
    return paragraph


def _header(doc, report: Report, lang: str) -> None:
    t = w.words(lang)
    issuer = report.issuer
    table = doc.add_table(rows=1, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _widths(table, [6.3, 10.2])
    left, right = table.rows[0].cells
    center = WD_ALIGN_PARAGRAPH.CENTER
    parent = issuer["parent_vi" if lang == "vi" else "parent_en"] or issuer["parent_vi"]
    name = issuer["name_vi" if lang == "vi" else "name_en"] or issuer["name_vi"]
    _font(left.paragraphs[0].add_run(parent.upper()), 12)
    left.paragraphs[0].alignment = center
    _para(left, name.upper(), 12, bold=True, align=center, after=6)
    _para(left, t["number"].format(abbr=issuer["abbreviation"] or "STTTT"), 13, align=center)
    right.paragraphs[0].alignment = center
    _font(right.paragraphs[0].add_run(t["motto1"]), 12, bold=True)
    _para(right, t["motto2"], 13, bold=True, align=center, after=6)
    today = dt.datetime.fromtimestamp(report.generated_at, ZoneInfo(report.timezone)).date()
    dateline = t["dateline"].format(place=issuer["place"], d=f"{today.day:02d}", m=f"{today.month:02d}",
                                    y=today.year, date=today.strftime("%d %B %Y"))
    _para(right, dateline, 13, italic=True, align=center)


def _widths(table, widths: list[float]) -> None:
    """Word reads the cells' widths, LibreOffice the grid's: set both."""
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=False):
        column.width = Cm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths, strict=False):
            cell.width = Cm(width)


def _table(doc, block: Table) -> None:
    table = doc.add_table(rows=1, cols=len(block.header))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, text in zip(table.rows[0].cells, block.header, strict=True):
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
        _font(cell.paragraphs[0].add_run(text), 11, bold=True)
    for row in block.rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            lines = text.split("\n")
            _font(cell.paragraphs[0].add_run(lines[0]), 11)
            for line in lines[1:]:
                _font(cell.add_paragraph().add_run(line), 10, italic=True)
    if block.widths:
        _widths(table, block.widths)
    doc.add_paragraph().paragraph_format.space_after = Pt(2)


def _signature(doc, report: Report, lang: str) -> None:
    t = w.words(lang)
    table = doc.add_table(rows=1, cols=2)
    _widths(table, [8.0, 8.5])
    left, right = table.rows[0].cells
    _font(left.paragraphs[0].add_run(t["recipients"]), 12, bold=True, italic=True)
    recipients = report.recipients_vi if lang == "vi" else (report.recipients_en or report.recipients_vi)
    for line in [*(f"- {r};" for r in recipients), t["archive"]]:
        _para(left, line, 11, align=WD_ALIGN_PARAGRAPH.LEFT, after=0)
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    signer = report.signer_vi if lang == "vi" else (report.signer_en or report.signer_vi)
    _font(right.paragraphs[0].add_run(signer.upper()), 13, bold=True)
    _para(right, t["sign_note"], 12, italic=True, align=WD_ALIGN_PARAGRAPH.CENTER)


def _body(doc, items: list[Block]) -> None:
    for block in items:
        if isinstance(block, Heading):
            _para(doc, block.text, 13, bold=True, align=WD_ALIGN_PARAGRAPH.LEFT, after=6)
        elif isinstance(block, Para):
            if block.warning:
                p = _para(doc, block.text, 13, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, after=8)
                for run in p.runs:
                    run.font.color.rgb = RGBColor(0xC0, 0x39, 0x2B)
                continue
            p = _para(doc, block.text, 13, bold=block.bold, italic=block.italic)
            p.paragraph_format.first_line_indent = Cm(1.0)
        elif isinstance(block, Table):
            _table(doc, block)
        elif isinstance(block, Chart):
            doc.add_picture(block.path, width=Cm(15.5))
            doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
            _para(doc, block.caption, 11, italic=True, align=WD_ALIGN_PARAGRAPH.CENTER)


def render(report: Report, lang: str, output: Path, charts: dict[str, list[Chart]] | None = None) -> None:
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.left_margin, section.right_margin = Cm(3.0), Cm(1.5)
    section.top_margin, section.bottom_margin = Cm(2.0), Cm(2.0)
    normal = doc.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(13)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FONT)
    doc.core_properties.title = f"{w.words(lang)['title']} {report.province_code} {report.window}"
    doc.core_properties.language = "vi-VN" if lang == "vi" else "en-GB"
    _header(doc, report, lang)
    t = w.words(lang)
    _para(doc, t["title"], 14, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, after=0).paragraph_format.space_before = \
        Pt(12)
    plan = (report.plan_vi if lang == "vi" else report.plan_en) or t["plan_default"]
    _para(doc, t["subtitle"].format(plan=plan, period=w.period_name(report, lang)), 14, bold=True,
          align=WD_ALIGN_PARAGRAPH.CENTER, after=12)
    _body(doc, blocks(report, lang, charts))
    _signature(doc, report, lang)
    doc.save(str(output))
