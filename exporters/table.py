"""The KPI table printed by ``egov-agent once``: each KPI against its active target."""

from __future__ import annotations

from collections.abc import Sequence

from agent.engine.evaluation import (
    EXAMPLE_ONLY,
    INVENTORY_INCOMPLETE,
    NO_DATA,
    NOT_PROBED,
    NOTHING_SELECTED,
    OTHER_SHARD,
    SOURCE_UNAVAILABLE,
    Evaluation,
)

# Each pending reason in words, Vietnamese and English.
PENDING_WORDS = {
    NOT_PROBED: ("chưa đo xong lần đầu", "not probed yet"),
    NOTHING_SELECTED: ("không có gì để đo", "nothing to measure"),
    INVENTORY_INCOMPLETE: ("danh mục đơn vị chưa đầy đủ", "inventory incomplete"),
    EXAMPLE_ONLY: ("chỉ có số liệu ví dụ", "example data only"),
    NO_DATA: ("chưa có số liệu", "no data"),
    SOURCE_UNAVAILABLE: ("nguồn dữ liệu chưa trả lời", "source not answering"),
    OTHER_SHARD: ("do tác tử phân mảnh 1 tính", "evaluated by shard 1"),
}


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "yes_no":
        return "có / yes" if value >= 1 else "không / no"
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
        return f"pending: {PENDING_WORDS.get(ev.pending_reason, ('', 'no value'))[1]}"
    if ev.met is None:
        return "n/a"
    word = "met" if ev.met else "BELOW"
    return f"{word} (stale)" if ev.stale else word


def plan_and_ops(evaluations: Sequence[Evaluation]) -> dict[str, tuple[int, int]]:
    """(met, judged) for plan targets and for ops objectives, counted apart: one never passes for the other."""
    out = {"plan": [0, 0], "ops": [0, 0]}
    for ev in evaluations:
        if ev.active is None or ev.met is None:
            continue
        counts = out[ev.active.origin]
        counts[0] += int(ev.met)
        counts[1] += 1
    return {origin: (met, judged) for origin, (met, judged) in out.items()}


def render_table(evaluations: list[Evaluation]) -> str:
    rows = [("KPI", "value", "ratio", "target", "phase", "deadline", "status", "title")]
    for ev in evaluations:
        ratio = ""
        if ev.numerator is not None and ev.denominator is not None:
            ratio = f"{ev.numerator:g}/{ev.denominator:g}"
        t = ev.active
        rows.append((
            ev.kpi.id,
            ("≈ " if ev.approximate else "") + format_value(ev.value, ev.kpi.unit),
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
