"""The report's body as neutral blocks (headings, paragraphs, tables, charts), so that the docx, the PDF
made from it and the Markdown say the same thing in the same order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from exporters.report import words as w
from exporters.report.model import Figure, Report, UnitRow


@dataclass
class Heading:
    text: str
    level: int = 1


@dataclass
class Para:
    text: str
    bold: bool = False
    italic: bool = False
    warning: bool = False  # the simulated-data banner: red, centred


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    widths: list[float] = field(default_factory=list)  # centimetres, docx only


@dataclass
class Chart:
    path: str
    caption: str


Block = Heading | Para | Table | Chart


def when(report: Report, stamp: float, lang: str) -> str:
    moment = dt.datetime.fromtimestamp(stamp, ZoneInfo(report.timezone))
    return moment.strftime("%H:%M %d/%m/%Y" if lang == "vi" else "%Y-%m-%d %H:%M")


def _kpi_table(figures: list[Figure], lang: str, numbered_from: int = 1) -> Table:
    t = w.words(lang)
    rows = []
    for i, f in enumerate(figures, numbered_from):
        result = w.value(f.value, f.unit, lang)
        if f.cutoff_value is not None and f.measure == "coverage":
            result += f"\n{t['col_cutoff']}: {w.cutoff(f, lang)}"
        rows.append([str(i), w.title(f, lang), w.target(f.target, f.unit, lang), result, w.ratio(f, lang),
                     t[f.verdict], w.change(f, lang)])
    return Table([t["col_no"], t["col_kpi"], t["col_target"], t["col_value"], t["col_ratio"], t["col_verdict"],
                  t["col_change"]], rows, [0.9, 5.2, 2.6, 2.4, 1.9, 1.7, 1.7])


def _units(rows: list[UnitRow], lang: str, with_unobserved: bool) -> Table:
    t = w.words(lang)
    return Table([t["col_unit"], t["col_group"], t["col_up"], t["col_down"]],
                 [[r.name, r.group_name or r.group, w.value(r.up_share, "ratio", lang) if r.up_share is not None
                   else "—", w.duration(r.down_seconds + (r.unobserved_seconds if with_unobserved else 0.0), lang)]
                  for r in rows], [6.0, 3.0, 3.0, 3.0])


def _details(figure: Figure, lang: str) -> list[Block]:
    t = w.words(lang)
    out: list[Block] = []
    if figure.groups:
        level = w.level_name(figure.group_level, lang)
        out.append(Para(f"{w.title(figure, lang)} — {t['by_group'].format(level=level)}", italic=True))
        judged = any(g.verdict for g in figure.groups)
        out.append(Table([t["col_district"], t["col_ratio"] if judged else t["col_connected"], t["col_value"],
                          *([t["col_verdict"]] if judged else [])],
                         [[g.name, f"{w.value(g.numerator, 'count', lang)}/{w.value(g.denominator, 'count', lang)}",
                           w.value(g.value, "ratio", lang), *([t[g.verdict] if g.verdict else "—"] if judged else [])]
                          for g in figure.groups],
                         [6.0, 3.0, 3.0, 2.5] if judged else [7.0, 3.0, 3.0]))
    if figure.below:
        out.append(Para(t["below"].format(n=len(figure.below)), italic=True))
        out.append(_units(figure.below, lang, with_unobserved=True))
    if figure.interrupted:
        out.append(Para(t["interrupted"].format(n=len(figure.interrupted)), italic=True))
        out.append(_units(figure.interrupted, lang, with_unobserved=False))
    return out


def blocks(report: Report, lang: str, charts: dict[str, list[Chart]] | None = None) -> list[Block]:
    t = w.words(lang)
    out: list[Block] = []
    section = iter(w.ROMAN)
    if report.simulated:
        out.append(Para(t["simulated"], bold=True, warning=True))
    out.append(Heading(f"{next(section)}. {t['s_overview']}"))
    out.append(Para(t["overview"].format(period=w.period_name(report, lang), start=w.date(report.start, lang),
                                         end=w.date(report.last_day, lang), server=report.server,
                                         at=when(report, report.evaluated_at, lang))))
    if not report.complete:
        out.append(Para(t["to_date"].format(at=when(report, report.evaluated_at, lang)), italic=True))
    plan_counts, ops_counts = report.counts(report.plan), report.counts(report.ops)
    out.append(Para(t["counts"].format(total=len(report.plan), **plan_counts)))
    out.append(Para(t["ops_counts"].format(total=len(report.ops), **ops_counts)))
    out.append(Para(t["method"].format(min=w.value(report.connected_min_up, "ratio", lang))))

    out.append(Heading(f"{next(section)}. {t['s_plan']}"))
    areas: dict[str, list[Figure]] = {}
    for f in report.plan:
        if f.value is not None:  # a KPI without a figure is listed once, among the data gaps
            areas.setdefault(f.area, []).append(f)
    if not areas:
        out.append(Para(t["no_figures"]))
    for n, (area, figures) in enumerate(areas.items(), 1):
        out.append(Heading(f"{n}. {w.area_name(area, lang)}", 2))
        out.append(_kpi_table(figures, lang))
        for f in figures:
            out += _details(f, lang)
    out.append(Heading(f"{next(section)}. {t['s_ops']}"))
    ops = [f for f in report.ops if f.value is not None]
    if ops:
        out.append(_kpi_table(ops, lang))
        for f in ops:
            out += _details(f, lang)
    else:
        out.append(Para(t["no_gaps"]))
    out.append(Heading(f"{next(section)}. {t['s_gaps']}"))
    gaps = report.gaps
    if gaps:
        out.append(Table([t["col_no"], t["col_kpi"], t["col_reason"]],
                         [[str(i), w.title(f, lang), w.gaps(f.gaps, lang)] for i, f in enumerate(gaps, 1)],
                         [0.9, 8.0, 7.5]))
    else:
        out.append(Para(t["no_gaps"]))
    notes = [f for f in report.figures if f.notes]
    for f in notes:
        out.append(Para(f"{w.title(f, lang)}: {w.gaps(f.notes, lang)}", italic=True))
    out.append(Heading(f"{next(section)}. {t['s_basis']}"))
    out.append(Table([t["col_no"], t["col_kpi"], t["col_doc"], t["col_section"], t["col_quote"]],
                     [[str(i), w.title(f, lang),
                       f"{f.document}" + (f" ({w.date(f.document_date, lang)})" if f.document_date else ""),
                       f.section + (f" — {f.heading}" if f.heading else ""), f"«{f.quote}»" if f.quote else "—"]
                      for i, f in enumerate(report.figures, 1)], [0.9, 4.0, 2.8, 2.2, 6.5]))
    if charts:
        out.append(Heading(f"{next(section)}. {t['s_charts']}"))
        for kpi_charts in charts.values():
            out += kpi_charts
    return out
