"""The agent's own status page at ``/``: the fallback when Grafana is not there.

Plain HTML with inline CSS and no JavaScript, so it renders in any browser on the ops wall and in
a text browser over SSH: each KPI against its active target (Vietnamese and English, with its
citation), the collectors' health, the units whose coverage is worst and the targets down longest.
It reads the same evaluations and store snapshot as /metrics.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from agent import __version__
from agent.kpi import Evaluation
from agent.store import CollectorStats, TargetState
from agent.table import PENDING_WORDS, format_target, format_value, plan_and_ops, status

WORST_TARGETS = 25
WORST_GROUPS = 10

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:1.5rem;color:#1f2328;
background:#fff}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d0d7de}
.sub{color:#57606a;margin:0 0 1rem}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.met{background:#dafbe1;color:#116329}.below{background:#ffebe9;color:#a40e26}.na{background:#f6f8fa;color:#57606a}
.stale{background:#fff8c5;color:#7d4e00}.badge{padding:.1rem .45rem;border-radius:1rem;font-weight:600;
white-space:nowrap}.en{color:#57606a;font-size:.85em}.cite{color:#57606a;font-size:.8em}
details summary{cursor:pointer}.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;
border-radius:.5rem;padding:.6rem 1rem;min-width:10rem}.card b{font-size:1.5rem;display:block}
"""


@dataclass(frozen=True)
class TargetView:
    target_id: str
    collector: str
    unit: str
    unit_name: str
    district: str
    name: str


def _badge(ev: Evaluation) -> str:
    word = status(ev).split()[0].rstrip(":")
    css = {"met": "met", "BELOW": "below", "pending": "na", "n/a": "na"}.get(word, "na")
    if ev.stale:
        css = "stale"
    label = {"met": "Đạt / met", "BELOW": "Chưa đạt / below", "pending": "Chờ số liệu / pending",
             "n/a": "Định tính / qualitative"}.get(word, word)
    if ev.stale:
        label += " · cũ / stale"
    badge = f'<span class="badge {css}">{html.escape(label)}</span>'
    if ev.value is None and ev.pending_reason:
        vi, en = PENDING_WORDS.get(ev.pending_reason, (ev.pending_reason, ev.pending_reason))
        badge += f'<br><span class="en">{html.escape(vi)} / {html.escape(en)}</span>'
    return badge


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _kpi_rows(evaluations: list[Evaluation]) -> str:
    rows = []
    for ev in sorted(evaluations, key=lambda e: (e.kpi.area, e.kpi.id)):
        kpi, t = ev.kpi, ev.active
        ratio = ""
        if ev.numerator is not None and ev.denominator is not None:
            ratio = f' <span class="en">({ev.numerator:g}/{ev.denominator:g})</span>'
        cite = ""
        if kpi.citation is not None:
            c = kpi.citation
            heading = f"«{html.escape(c.heading)}» … " if c.heading else ""
            cite = (f'<details class="cite"><summary>{html.escape(c.document)} §{html.escape(c.section)}</summary>'
                    f"{heading}«{html.escape(c.quote)}»</details>")
        approx = '<span title="gần đúng: số liệu tháng / approximate: monthly figures">≈ </span>' \
            if ev.approximate else ""
        target = html.escape(format_target(ev))
        if t is not None:
            target += f'<br><span class="en">{html.escape(t.phase)} · hạn {t.deadline.isoformat()}'
            target += " · mục tiêu vận hành / ops objective" if t.origin == "ops" else ""
            target += "</span>"
        rows.append(
            f"<tr><td>{html.escape(kpi.area)}</td>"
            f'<td>{html.escape(kpi.title_vi)}<br><span class="en">{html.escape(kpi.title_en)}</span>{cite}</td>'
            f'<td class="num">{approx}{html.escape(format_value(ev.value, kpi.unit))}{ratio}</td>'
            f"<td>{target}</td><td>{_badge(ev)}</td></tr>")
    return "\n".join(rows)


def _collector_rows(kinds: dict[str, int], up: Counter[str], stats: dict[str, CollectorStats], now: float) -> str:
    rows = []
    for kind in sorted(kinds):
        s = stats.get(kind, CollectorStats())
        last = _ago(now - s.last_success_time) if s.last_success_time else "—"
        errors = ", ".join(f"{html.escape(r)} {n}" for r, n in s.errors.most_common(3)) or "—"
        rows.append(f"<tr><td>{html.escape(kind)}</td><td class='num'>{up[kind]}/{kinds[kind]}</td>"
                    f"<td class='num'>{s.probes_total}</td><td class='num'>{last}</td><td>{errors}</td></tr>")
    return "\n".join(rows)


def render(province_vi: str, province_en: str, timezone: str, evaluations: list[Evaluation],
           states: dict[str, TargetState], stats: dict[str, CollectorStats], targets: list[TargetView],
           config_loaded_at: float, unit_names: dict[str, str], now: float | None = None) -> bytes:
    now = time.time() if now is None else now
    local = dt.datetime.fromtimestamp(now, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    counts = plan_and_ops(evaluations)
    pending = sum(1 for ev in evaluations if ev.value is None)
    kinds: Counter[str] = Counter(t.collector for t in targets)
    up: Counter[str] = Counter()
    down: list[tuple[float, TargetView, str]] = []
    for t in targets:
        state = states.get(t.target_id)
        if state is None or state.result is None:
            continue
        if state.up:
            up[t.collector] += 1
        else:
            down.append((state.down_since or state.last_probe_time, t, state.result.reason))
    down.sort(key=lambda item: item[0])
    worst_targets = "\n".join(
        f"<tr><td>{html.escape(t.unit_name)}<br><span class='en'>{html.escape(t.unit)}</span></td>"
        f"<td>{html.escape(unit_names.get(t.district, t.district))}</td><td>{html.escape(t.collector)}</td>"
        f"<td>{html.escape(t.name or t.target_id)}</td><td>{html.escape(reason)}</td>"
        f"<td class='num'>{_ago(now - since)}</td></tr>"
        for since, t, reason in down[:WORST_TARGETS]) or "<tr><td colspan=6>Không có / none</td></tr>"
    groups = sorted(((g.numerator / g.denominator, ev, g) for ev in evaluations for g in ev.groups if g.denominator),
                    key=lambda item: item[0])
    worst_groups = "\n".join(
        f"<tr><td>{html.escape(unit_names.get(g.group, g.group))}</td><td>{html.escape(ev.kpi.title_vi)}</td>"
        f"<td class='num'>{share * 100:.1f}% ({g.numerator:g}/{g.denominator:g})</td></tr>"
        for share, ev, g in groups[:WORST_GROUPS] if share < 1) or "<tr><td colspan=3>Không có / none</td></tr>"
    loaded = dt.datetime.fromtimestamp(config_loaded_at, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    page = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="60"><title>egov-agent — {html.escape(province_vi)}</title>
<style>{CSS}</style></head>
<body>
<h1>egov-agent — {html.escape(province_vi)} <span class="en">/ {html.escape(province_en)}</span></h1>
<p class="sub">Giám sát hạ tầng Chính quyền điện tử so với chỉ tiêu kế hoạch CNTT
· Monitoring against the IT plan's KPIs · {local} · <a href="/metrics">/metrics</a>
· phiên bản / version {html.escape(__version__)} · cấu hình nạp lúc / configuration loaded {loaded}</p>
<div class="cards">
<div class="card">Chỉ tiêu kế hoạch đạt / Plan targets met<b>{counts["plan"][0]}/{counts["plan"][1]}</b></div>
<div class="card">Mục tiêu vận hành đạt / Ops objectives met<b>{counts["ops"][0]}/{counts["ops"][1]}</b></div>
<div class="card">Chờ số liệu / Pending<b>{pending}</b></div>
<div class="card">Mục tiêu giám sát / Targets up<b>{sum(up.values())}/{len(targets)}</b></div>
<div class="card">Đang mất kết nối / Down now<b>{len(down)}</b></div>
</div>
<h2>Chỉ tiêu / KPIs</h2>
<table><thead><tr><th>Lĩnh vực / Area</th><th>Chỉ tiêu / Indicator</th><th>Giá trị / Value</th>
<th>Mục tiêu / Target</th><th>Trạng thái / Status</th></tr></thead>
<tbody>
{_kpi_rows(evaluations)}
</tbody></table>
<h2>Đơn vị kém nhất / Worst units</h2>
<table><thead><tr><th>Đơn vị / Unit</th><th>Chỉ tiêu / KPI</th><th>Độ phủ / Coverage</th></tr></thead>
<tbody>
{worst_groups}
</tbody></table>
<h2>Mất kết nối lâu nhất / Down longest</h2>
<table><thead><tr><th>Đơn vị / Unit</th><th>Huyện / District</th><th>Loại / Kind</th><th>Mục tiêu / Target</th>
<th>Nguyên nhân / Reason</th><th>Từ / For</th></tr></thead>
<tbody>
{worst_targets}
</tbody></table>
<h2>Bộ thu thập / Collectors</h2>
<table><thead><tr><th>Loại / Kind</th><th>Hoạt động / Up</th><th>Lần đo / Probes</th>
<th>Thành công gần nhất / Last success</th><th>Lỗi chính / Main errors</th></tr></thead>
<tbody>
{_collector_rows(kinds, up, stats, now)}
</tbody></table>
</body></html>
"""
    return page.encode()


def render_for(agent) -> bytes:  # agent.service.Agent; not imported, to keep the exporter free of the service
    """The status page of a running agent, from the same snapshot /metrics uses."""
    config = agent.loaded.config
    states, stats = agent.store.snapshot()
    evaluations = agent.engine.evaluate(states)
    units = agent.units
    district_level = "district" if "district" in units.levels else ""
    targets = [
        TargetView(t.id, t.collector, t.unit, units.units[t.unit].name_vi,
                   (units.ancestor_at(t.unit, district_level) or "") if district_level else "", t.name or "")
        for t in agent.targets
    ]
    names = {uid: u.name_vi for uid, u in units.units.items()}
    return render(config.province.name_vi, config.province.name_en, config.province.timezone, evaluations, states,
                  stats, targets, agent.status.success_time, names)
