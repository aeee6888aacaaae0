"""The report as a workbook (openpyxl): one sheet per area, the units below target, the data gaps, and
the raw data (each PromQL query behind a figure, when it was asked and what it answered), so the
department can re-run a query and check a number."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from exporters.report import words as w
from exporters.report.model import Figure, Report

CELL_LIMIT = 32000  # Excel keeps at most 32,767 characters in a cell


def _sheet_name(text: str, taken: set[str]) -> str:
    name = "".join(c for c in text if c not in "[]:*?/\\")[:31]
    base, n = name, 2
    while name in taken:
        name = f"{base[:28]} {n}"
        n += 1
    taken.add(name)
    return name


def _fit(ws, widths: list[int]) -> None:
    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"


def render(report: Report, lang: str, output: Path) -> None:
    t = w.words(lang)
    book = Workbook()
    taken: set[str] = set()
    areas: dict[str, list[Figure]] = {}
    for f in report.figures:
        areas.setdefault(f.area, []).append(f)
    first = True
    header = ["kpi", t["col_kpi"], "origin", t["col_target"], t["col_value"], "numerator", "denominator",
              t["col_verdict"], t["col_cutoff"], t["col_change"], "how", "notes", t["col_doc"], t["col_section"],
              "queries"]
    for area, figures in areas.items():
        ws = book.worksheets[0] if first else book.create_sheet()  # a new workbook's one sheet first
        first = False
        ws.title = _sheet_name(w.area_name(area, lang), taken)
        ws.append(header)
        for f in figures:
            ws.append([f.kpi, w.title(f, lang), f.origin, w.target(f.target, f.unit, lang), f.value, f.numerator,
                       f.denominator, t[f.verdict], f.cutoff_value, f.change, f.how,
                       w.gaps(f.gaps + f.notes, lang), f.document, f.section, ", ".join(f.queries)])
            if f.unit == "ratio":
                for column in (5, 9, 10):
                    ws.cell(ws.max_row, column).number_format = "0.00%"
        _fit(ws, [28, 48, 8, 24, 12, 12, 12, 14, 12, 10, 30, 40, 16, 14, 16])
    ws = book.create_sheet(_sheet_name(t["below"].split(" (")[0].rstrip(":"), taken))
    ws.append(["kpi", t["col_unit"], "unit", t["col_group"], t["col_up"], "down_seconds", "unobserved_seconds"])
    for f in report.figures:
        for r in f.below:
            ws.append([f.kpi, r.name, r.unit, r.group_name or r.group, r.up_share, round(r.down_seconds),
                       round(r.unobserved_seconds)])
            ws.cell(ws.max_row, 5).number_format = "0.00%"
    _fit(ws, [28, 30, 16, 12, 12, 14, 16])
    ws = book.create_sheet(_sheet_name(t["s_gaps"].capitalize(), taken))
    ws.append(["kpi", t["col_kpi"], t["col_reason"]])
    for f in report.gaps:
        ws.append([f.kpi, w.title(f, lang), w.gaps(f.gaps, lang)])
    _fit(ws, [28, 60, 60])
    ws = book.create_sheet("PromQL")
    ws.append(["id", "query", "time (UTC)", "time (unix)", "series", "result (JSON)"])
    for q in report.queries:
        result = json.dumps(q.result, ensure_ascii=False)
        ws.append([q.id, q.expr, dt.datetime.fromtimestamp(q.at, ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S"),
                   q.at, q.series, result if len(result) <= CELL_LIMIT else result[:CELL_LIMIT] + " …(cut)"])
    _fit(ws, [6, 80, 20, 14, 8, 80])
    book.properties.title = f"{t['title']} {report.province_code} {report.window}"
    book.save(str(output))
