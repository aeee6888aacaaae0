"""A unit's page at ``/units/<id>``: its targets and their state since when, and the KPIs it counts in.

What the on-call engineer opens from a unit's name on the status page: is it this commune's router
or its whole district, since when, and which plan figures it drags down. Plain HTML, no JavaScript,
from the same snapshot as the status page (exporters/status_page.py).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.engine.kpi import Evaluation
from agent.engine.store import TargetState
from exporters.status_page import (
    ago,
    area_words,
    badge,
    local_time,
    page_head,
    snapshot_of,
    unit_link,
    value_cell,
)

UNIT_ID = re.compile(r"[a-z][a-z0-9_-]{0,79}")  # agent.config.IDENT with its length cap
SELECTING = ("coverage", "availability", "count")  # measures that pick targets with a selector


@dataclass(frozen=True)
class UnitTarget:
    target_id: str
    collector: str
    name: str
    state: TargetState | None


@dataclass(frozen=True)
class Counted:
    """How a unit takes part in one KPI, in words."""

    evaluation: Evaluation
    part: str


def valid_unit_id(text: str) -> bool:
    return UNIT_ID.fullmatch(text) is not None


def counted_in(unit_id: str, evaluations: Sequence[Evaluation], selected: dict[str, set[str]],
               own_targets: set[str]) -> list[Counted]:
    """The KPIs a unit counts in: by its own targets, as an inventory member, or as a group of the KPI."""
    out = []
    for ev in evaluations:
        parts = []
        mine = own_targets & selected.get(ev.kpi.id, set())
        if mine:
            parts.append(f"{len(mine)} mục tiêu của đơn vị / of its targets: " + ", ".join(sorted(mine)[:5])
                         + (" …" if len(mine) > 5 else ""))
        if ev.inventory is not None and unit_id in ev.inventory.members:
            member = next((m for m in ev.members if m.unit == unit_id), None)
            if member is None:
                parts.append("thành viên danh mục / inventory member")
            else:
                parts.append("thành viên: đạt / member: covered" if member.up
                             else "thành viên: chưa đạt / member: not covered")
        for g in ev.groups:
            if g.group == unit_id and g.denominator:
                parts.append(f"của đơn vị / its own: {g.numerator / g.denominator * 100:.1f}% "
                             f"({g.numerator:g}/{g.denominator:g})")
        if parts:
            out.append(Counted(ev, "; ".join(parts)))
    return out


def _state_cells(state: TargetState | None, now: float, timezone: str) -> str:
    """The debounced state (what the KPIs count), and the failures in a row it has not yet turned into down."""
    if state is None or state.result is None:
        return '<td><span class="badge na">Chưa đo / not probed yet</span></td><td>—</td><td>—</td>'
    if state.up:
        word = '<span class="badge met">Hoạt động / up</span>'
        since = state.up_since
        reason = "—"
        if not state.result.up:  # failing, but fewer than down_after times in a row
            word += (f'<br><span class="en">{state.failed_in_row} lần đo lỗi liên tiếp / failed in a row</span>')
            reason = html.escape(state.result.reason)
    else:
        word = '<span class="badge below">Mất kết nối / down</span>'
        since = state.down_since or state.last_probe_time
        reason = html.escape(state.result.reason)
    when = (f'{html.escape(local_time(since, timezone))}<br><span class="en">{ago(now - since)}</span>'
            if since else "—")
    return f"<td>{word}</td><td>{reason}</td><td>{when}</td>"


def _is_down(t: UnitTarget) -> bool:
    return t.state is not None and t.state.result is not None and not t.state.up


def render_unit(unit_id: str, name_vi: str, level: str, lineage: list[tuple[str, str]], children: list[tuple[str, str]],
                targets: list[UnitTarget], counted: list[Counted], province_vi: str, timezone: str,
                now: float) -> bytes:
    """``lineage`` and ``children`` are (id, name) pairs, nearest ancestor first."""
    crumbs = " › ".join(unit_link(uid, name) for uid, name in reversed(lineage))
    down = sum(1 for t in targets if _is_down(t))
    target_rows = "\n".join(
        f"<tr><td>{html.escape(t.name or t.target_id)}<br><span class='en'>{html.escape(t.target_id)}</span></td>"
        f"<td>{html.escape(t.collector)}</td>{_state_cells(t.state, now, timezone)}"
        f"<td class='num'>{ago(now - t.state.last_probe_time) if t.state and t.state.last_probe_time else '—'}</td>"
        "</tr>"
        for t in sorted(targets, key=lambda t: (not _is_down(t), t.target_id))
    ) or "<tr><td colspan=6>Đơn vị không có mục tiêu giám sát riêng / no targets of its own</td></tr>"
    kpi_rows = "\n".join(
        f"<tr><td>{html.escape(area_words(c.evaluation.kpi.area))}</td>"
        f"<td>{html.escape(c.evaluation.kpi.title_vi)}<br><span class='en'>{html.escape(c.evaluation.kpi.title_en)}"
        f"</span></td><td>{html.escape(c.part)}</td><td class='num'>{value_cell(c.evaluation)}</td>"
        f"<td>{badge(c.evaluation)}</td></tr>"
        for c in sorted(counted, key=lambda c: (c.evaluation.kpi.area, c.evaluation.kpi.id))
    ) or "<tr><td colspan=5>Không có / none</td></tr>"
    below = ", ".join(unit_link(uid, name) for uid, name in children[:60])
    if len(children) > 60:
        below += f" … (+{len(children) - 60})"
    page = page_head(f"{name_vi} — egov-agent — {province_vi}") + f"""<header>
<h1>{html.escape(name_vi)} <span class="en">/ {html.escape(unit_id)} · {html.escape(level)}</span></h1>
<div class="clock">{html.escape(local_time(now, timezone))}</div>
</header>
<p class="sub"><a href="/">← trang trạng thái / status page</a> · {crumbs}</p>
<h2 id="targets">Mục tiêu giám sát / Targets ({len(targets)}, {down} mất kết nối / down)</h2>
<table><thead><tr><th>Mục tiêu / Target</th><th>Loại / Kind</th><th>Trạng thái / State</th>
<th>Nguyên nhân / Reason</th><th>Từ lúc / Since</th><th>Lần đo gần nhất / Last probe</th></tr></thead>
<tbody>
{target_rows}
</tbody></table>
<h2 id="kpis">Chỉ tiêu có tính đơn vị này / KPIs it counts in ({len(counted)})</h2>
<table><thead><tr><th>Lĩnh vực / Area</th><th>Chỉ tiêu / Indicator</th><th>Phần của đơn vị / Its part</th>
<th>Giá trị / Value</th><th>Trạng thái / Status</th></tr></thead>
<tbody>
{kpi_rows}
</tbody></table>
{f'<h2>Đơn vị trực thuộc / Units below ({len(children)})</h2><p>{below}</p>' if children else ""}
</body></html>
"""
    return page.encode()


def render_unit_for(agent, unit_id: str) -> bytes | None:  # agent.service.Agent, duck-typed as in status_page
    """The page of a unit of a running agent, or None when the configuration has no such unit."""
    units = agent.units
    if not valid_unit_id(unit_id) or unit_id not in units.units:
        return None
    config = agent.loaded.config
    snap = snapshot_of(agent)
    unit = units.units[unit_id]
    own = [t for t in agent.targets if t.unit == unit_id]
    selected = {}
    for kpi in config.kpis:
        measure = kpi.measure
        if measure.kind in SELECTING and not getattr(measure, "over_units", False):
            selected[kpi.id] = {t.id for t in agent.engine.select(measure.select)}
    counted = counted_in(unit_id, snap.evaluations, selected, {t.id for t in own})
    lineage = [(u.id, u.name_vi) for u in units.lineage(unit_id)]
    children = [(u.id, u.name_vi) for u in units.units.values() if u.parent == unit_id]
    targets = [UnitTarget(t.id, t.collector, t.name or "", snap.states.get(t.id)) for t in own]
    return render_unit(unit_id, unit.name_vi, unit.level, lineage, children, targets, counted,
                       config.province.name_vi, config.province.timezone, snap.taken)
