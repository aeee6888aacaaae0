"""The KPI table printed by ``egov-agent once``: each KPI against its active target."""

from __future__ import annotations

from agent.kpi import Evaluation


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if float(value).is_integer():
        return f"{value:,.0f}".replace(",", ".")
    return f"{value:g}"


def format_target(ev: Evaluation) -> str:
    t = ev.active
    if t is None:
        return "—"
    if t.comparator == "qualitative":
        return f"«{t.text}»"
    if t.comparator == "range":
        return f"{format_value(t.low, ev.kpi.unit)}–{format_value(t.high, ev.kpi.unit)}"
    symbol = {"approx": "≈"}.get(t.comparator, t.comparator)
    return f"{symbol} {format_value(t.value, ev.kpi.unit)}"


def status(ev: Evaluation) -> str:
    if ev.value is None:
        return "pending"
    if ev.met is None:
        return "n/a"
    word = "met" if ev.met else "BELOW"
    return f"{word} (stale)" if ev.stale else word


def render_table(evaluations: list[Evaluation]) -> str:
    rows = [("KPI", "value", "ratio", "target", "phase", "deadline", "status", "title")]
    for ev in evaluations:
        ratio = ""
        if ev.numerator is not None and ev.denominator is not None:
            ratio = f"{ev.numerator:g}/{ev.denominator:g}"
        t = ev.active
        rows.append((
            ev.kpi.id,
            format_value(ev.value, ev.kpi.unit),
            ratio,
            format_target(ev) + (" (ops)" if t is not None and t.origin == "ops" else ""),
            t.phase if t else "",
            t.deadline.isoformat() if t else "",
            status(ev),
            ev.kpi.title_en,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"
