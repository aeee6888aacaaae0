"""The agent's own status page at ``/``: the fallback when Grafana is not there, and the ops wall screen.

Plain HTML with inline CSS and no JavaScript, so it renders in any browser on the ops wall and in
a text browser over SSH. The first screen of a 1920×1080 wall display holds what the on-call
engineer acts on: the headline cards, the KPIs below target and the targets down longest (their
rows are capped and kept to one line each, so the blocks fit whatever the names). Below the fold:
the units whose coverage is worst, every KPI against its active target (Vietnamese and English,
with its citation) and the collectors' health. Every unit name links to its page (exporters/unit_page.py).
"""

from __future__ import annotations

import datetime as dt
import html
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from agent.domain.version import __version__
from agent.engine.kpi import Evaluation
from agent.engine.store import CollectorStats, TargetState
from exporters.report.words import AREAS
from exporters.snapshot import Snapshot
from exporters.table import PENDING_WORDS, format_target, format_value, plan_and_ops, status

# Rows of the first-screen blocks: at one line each they fit 1920×1080 under the cards (the
# screenshot test in tests/test_status_page.py measures it); the rest is below the fold.
WALL_BELOW_ROWS = 15
WALL_DOWN_ROWS = 28
DOWN_ALL_ROWS = 200  # the full list of targets down, below the fold
WORST_GROUPS = 10

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:.8rem 1.2rem;color:#1f2328;
background:#fff;font-size:16px}
a{color:inherit}a:hover{color:#0969da}
header{display:flex;justify-content:space-between;align-items:baseline;gap:1rem}
h1{font-size:1.6rem;margin:0}h2{font-size:1.15rem;margin:1.2rem 0 .4rem;border-bottom:1px solid #d0d7de}
.wall h2{margin-top:.6rem}.clock{font-size:1.6rem;font-weight:600;white-space:nowrap;font-variant-numeric:tabular-nums}
.clock .en{font-size:.55em;font-weight:400}
.sub{color:#57606a;margin:.1rem 0 .6rem;font-size:.85rem}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.met{background:#dafbe1;color:#116329}.below{background:#ffebe9;color:#a40e26}.na{background:#f6f8fa;color:#57606a}
.stale{background:#fff8c5;color:#7d4e00}.badge{padding:.1rem .45rem;border-radius:1rem;font-weight:600;
white-space:nowrap}.en{color:#57606a;font-size:.85em}.cite{color:#57606a;font-size:.8em}
details summary{cursor:pointer}.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;
border-radius:.5rem;padding:.4rem 1rem;min-width:11rem;flex:1}.card b{font-size:2rem;display:block;
font-variant-numeric:tabular-nums}.card.bad{border-color:#cf222e;background:#fff5f5}.card.bad b{color:#a40e26}
.wall{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem}
.wall table{table-layout:fixed}.wall td,.wall th{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;
padding:.22rem .45rem}.wall td.two{line-height:1.25}.more{color:#57606a;font-size:.85rem;margin:.3rem 0}
.area{color:#57606a}
"""


@dataclass(frozen=True)
class TargetView:
    target_id: str
    collector: str
    unit: str
    unit_name: str
    district: str
    name: str


def area_words(area: str) -> str:
    """The plan area as people say it, Vietnamese / English (the report's words)."""
    vi, en = AREAS.get(area, (area.replace("_", " ").capitalize(),) * 2)
    return vi if vi == en else f"{vi} / {en}"


def local_time(timestamp: float, timezone: str, seconds: bool = False) -> str:
    """A time on the wall says its zone: the screen may be read from another province, or by a UTC log."""
    local = dt.datetime.fromtimestamp(timestamp, ZoneInfo(timezone))
    offset = local.strftime("%z")
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return local.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")) + f" {zone} ({timezone})"


def unit_link(unit_id: str, name: str) -> str:
    """A unit's name, linking to its page; ids are configuration identifiers ([a-z0-9_-]), escaped anyway.
    The title shows the whole name where a wall-screen cell cuts it short."""
    if not unit_id:
        return html.escape(name)
    name = name or unit_id
    return (f'<a href="/units/{html.escape(unit_id, quote=True)}" title="{html.escape(name, quote=True)}">'
            f"{html.escape(name)}</a>")


def badge(ev: Evaluation) -> str:
    word = status(ev).split()[0].rstrip(":")
    css = {"met": "met", "BELOW": "below", "pending": "na", "n/a": "na"}.get(word, "na")
    if ev.stale:
        css = "stale"
    label = {"met": "Đạt / met", "BELOW": "Chưa đạt / below", "pending": "Chờ số liệu / pending",
             "n/a": "Định tính / qualitative"}.get(word, word)
    if ev.stale:
        label += " · cũ / stale"
    out = f'<span class="badge {css}">{html.escape(label)}</span>'
    if ev.value is None and ev.pending_reason:
        vi, en = PENDING_WORDS.get(ev.pending_reason, (ev.pending_reason, ev.pending_reason))
        out += f'<br><span class="en">{html.escape(vi)} / {html.escape(en)}</span>'
    return out


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def value_cell(ev: Evaluation) -> str:
    ratio = ""
    if ev.numerator is not None and ev.denominator is not None:
        ratio = f' <span class="en">({ev.numerator:g}/{ev.denominator:g})</span>'
    return f"{approx(ev)}{html.escape(format_value(ev.value, ev.kpi.unit))}{ratio}"


def approx(ev: Evaluation) -> str:
    return '<span title="gần đúng: số liệu tháng / approximate: monthly figures">≈ </span>' if ev.approximate else ""


def _kpi_rows(evaluations: Sequence[Evaluation]) -> str:
    rows = []
    for ev in sorted(evaluations, key=lambda e: (e.kpi.area, e.kpi.id)):
        kpi, t = ev.kpi, ev.active
        cite = ""
        if kpi.citation is not None:
            c = kpi.citation
            heading = f"«{html.escape(c.heading)}» … " if c.heading else ""
            cite = (f'<details class="cite"><summary>{html.escape(c.document)} §{html.escape(c.section)}</summary>'
                    f"{heading}«{html.escape(c.quote)}»</details>")
        target = html.escape(format_target(ev))
        if t is not None:
            target += f'<br><span class="en">{html.escape(t.phase)} · hạn {t.deadline.isoformat()}'
            target += " · mục tiêu vận hành / ops objective" if t.origin == "ops" else ""
            target += "</span>"
        rows.append(
            f"<tr><td>{html.escape(area_words(kpi.area))}</td>"
            f'<td>{html.escape(kpi.title_vi)}<br><span class="en">{html.escape(kpi.title_en)}</span>{cite}</td>'
            f'<td class="num">{value_cell(ev)}</td>'
            f"<td>{target}</td><td>{badge(ev)}</td></tr>")
    return "\n".join(rows)


def below_target(evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """KPIs judged and not met: plan targets before ops objectives, the nearest (or passed) deadline first."""
    below = [(ev, ev.active) for ev in evaluations if ev.met is False and ev.active is not None]
    below.sort(key=lambda pair: (pair[1].origin != "plan", pair[1].deadline, pair[0].kpi.area, pair[0].kpi.id))
    return [ev for ev, _ in below]


def _below_rows(below: list[Evaluation]) -> str:
    rows = []
    for ev in below[:WALL_BELOW_ROWS]:
        kpi, t = ev.kpi, ev.active
        assert t is not None
        ops = " · vận hành / ops" if t.origin == "ops" else ""
        stale = ' <span class="badge stale">cũ / stale</span>' if ev.stale else ""
        title = html.escape(f"{kpi.title_vi} / {kpi.title_en}", quote=True)
        rows.append(
            f'<tr><td class="two" title="{title}">{html.escape(kpi.title_vi)}{stale}<br>'
            f'<span class="en">{html.escape(kpi.title_en)}</span></td>'
            f'<td class="two area">{html.escape(area_words(kpi.area)).replace(" / ", "<br>", 1)}</td>'
            f'<td class="num two">{approx(ev)}{html.escape(format_value(ev.value, kpi.unit))}<br>'
            f'<span class="en">{html.escape(format_target(ev))}</span></td>'
            f'<td class="two">hạn {t.deadline.isoformat()}<br><span class="en">{html.escape(t.phase)}{ops}</span>'
            "</td></tr>")
    return "\n".join(rows) or "<tr><td colspan=4>Không có / none</td></tr>"


def _down_rows(down: list[tuple[float, TargetView, str]], unit_names: dict[str, str], now: float,
               limit: int) -> str:
    return "\n".join(
        f"<tr><td>{unit_link(t.unit, t.unit_name)}</td>"
        f"<td>{unit_link(t.district, unit_names.get(t.district, t.district))}</td>"
        f"<td>{html.escape(t.collector)}</td>"
        f'<td title="{html.escape(t.name or t.target_id, quote=True)} ({html.escape(t.target_id, quote=True)})">'
        f"{html.escape(t.name or t.target_id)}</td>"
        f"<td>{html.escape(reason)}</td><td class='num'>{ago(now - since)}</td></tr>"
        for since, t, reason in down[:limit]) or "<tr><td colspan=6>Không có / none</td></tr>"


def _more(shown: int, total: int, anchor: str, what: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="more">… và {total - shown} {what} khác / and {total - shown} more: <a href="#{anchor}">↓</a></p>'


def _collector_rows(kinds: dict[str, int], up: Counter[str], stats: Mapping[str, CollectorStats], now: float) -> str:
    rows = []
    for kind in sorted(kinds):
        s = stats.get(kind, CollectorStats())
        last = ago(now - s.last_success_time) if s.last_success_time else "—"
        errors = ", ".join(f"{html.escape(r)} {n}" for r, n in Counter(s.errors).most_common(3)) or "—"
        rows.append(f"<tr><td>{html.escape(kind)}</td><td class='num'>{up[kind]}/{kinds[kind]}</td>"
                    f"<td class='num'>{s.probes_total}</td><td class='num'>{last}</td><td>{errors}</td></tr>")
    return "\n".join(rows)


DOWN_HEAD = ("<thead><tr><th style='width:22%'>Đơn vị / Unit</th><th style='width:15%'>Huyện / District</th>"
             "<th style='width:10%'>Loại / Kind</th><th style='width:26%'>Mục tiêu / Target</th>"
             "<th style='width:17%'>Nguyên nhân / Reason</th><th style='width:10%'>Từ / For</th></tr></thead>")


def page_head(title: str) -> str:
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="60"><title>{html.escape(title)}</title>
<style>{CSS}</style></head>
<body>
"""


def render(province_vi: str, province_en: str, timezone: str, evaluations: Sequence[Evaluation],
           states: Mapping[str, TargetState], stats: Mapping[str, CollectorStats], targets: list[TargetView],
           config_loaded_at: float, unit_names: dict[str, str], now: float | None = None,
           province_id: str = "") -> bytes:
    now = time.time() if now is None else now
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
    down.sort(key=lambda item: (item[0], item[1].target_id))
    below = below_target(evaluations)
    groups = sorted(((g.numerator / g.denominator, ev, g) for ev in evaluations for g in ev.groups if g.denominator),
                    key=lambda item: item[0])
    worst_groups = "\n".join(
        f"<tr><td>{unit_link(g.group, unit_names.get(g.group, g.group))}</td><td>{html.escape(ev.kpi.title_vi)}</td>"
        f"<td class='num'>{share * 100:.1f}% ({g.numerator:g}/{g.denominator:g})</td></tr>"
        for share, ev, g in groups[:WORST_GROUPS] if share < 1) or "<tr><td colspan=3>Không có / none</td></tr>"
    plan_bad = " bad" if counts["plan"][0] < counts["plan"][1] else ""
    ops_bad = " bad" if counts["ops"][0] < counts["ops"][1] else ""
    down_bad = " bad" if down else ""
    down_all_note = f", {DOWN_ALL_ROWS} lâu nhất / longest shown" if len(down) > DOWN_ALL_ROWS else ""
    province = unit_link(province_id, province_vi) if province_id else html.escape(province_vi)
    page = page_head(f"egov-agent — {province_vi}") + f"""<header>
<h1>egov-agent — {province} <span class="en">/ {html.escape(province_en)}</span></h1>
<div class="clock" id="clock">{html.escape(local_time(now, timezone))}</div>
</header>
<p class="sub">Giám sát hạ tầng Chính quyền điện tử so với chỉ tiêu kế hoạch CNTT
· Monitoring against the IT plan's KPIs · tự làm mới mỗi phút / refreshes every minute · <a href="/metrics">/metrics</a>
· phiên bản / version {html.escape(__version__)}
· cấu hình nạp lúc / configuration loaded {html.escape(local_time(config_loaded_at, timezone))}</p>
<div class="cards" id="cards">
<div class="card{plan_bad}">Chỉ tiêu kế hoạch đạt / Plan targets met<b>{counts["plan"][0]}/{counts["plan"][1]}</b></div>
<div class="card{ops_bad}">Mục tiêu vận hành đạt / Ops objectives met<b>{counts["ops"][0]}/{counts["ops"][1]}</b></div>
<div class="card">Chờ số liệu / Pending<b>{pending}</b></div>
<div class="card">Mục tiêu giám sát / Targets up<b>{sum(up.values())}/{len(targets)}</b></div>
<div class="card{down_bad}">Đang mất kết nối / Down now<b>{len(down)}</b></div>
</div>
<div class="wall">
<section id="below">
<h2>Chỉ tiêu chưa đạt / KPIs below target ({len(below)})</h2>
<table><thead><tr><th style="width:54%">Chỉ tiêu / Indicator</th><th style="width:18%">Lĩnh vực / Area</th>
<th style="width:13%">Giá trị / Value<br>Mục tiêu / Target</th>
<th style="width:15%">Hạn / Deadline<br>Giai đoạn / Phase</th></tr></thead>
<tbody>
{_below_rows(below)}
</tbody></table>
{_more(WALL_BELOW_ROWS, len(below), "kpis", "chỉ tiêu")}
</section>
<section id="down">
<h2>Mất kết nối lâu nhất / Down longest ({len(down)})</h2>
<table>{DOWN_HEAD}
<tbody>
{_down_rows(down, unit_names, now, WALL_DOWN_ROWS)}
</tbody></table>
{_more(WALL_DOWN_ROWS, len(down), "down-all", "mục tiêu")}
</section>
</div>
<h2>Đơn vị kém nhất / Worst units</h2>
<table><thead><tr><th>Đơn vị / Unit</th><th>Chỉ tiêu / KPI</th><th>Độ phủ / Coverage</th></tr></thead>
<tbody>
{worst_groups}
</tbody></table>
<h2 id="kpis">Chỉ tiêu / KPIs</h2>
<table><thead><tr><th>Lĩnh vực / Area</th><th>Chỉ tiêu / Indicator</th><th>Giá trị / Value</th>
<th>Mục tiêu / Target</th><th>Trạng thái / Status</th></tr></thead>
<tbody>
{_kpi_rows(evaluations)}
</tbody></table>
<h2 id="down-all">Mất kết nối / Down ({len(down)}{down_all_note})</h2>
<table>{DOWN_HEAD}
<tbody>
{_down_rows(down, unit_names, now, DOWN_ALL_ROWS)}
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


def snapshot_of(agent) -> Snapshot:
    """The agent's latest snapshot (/metrics's or a page's) when recent and of this configuration, else a
    fresh one, kept for the next renderer: the KPIs are evaluated at most once per page."""
    return agent.snapshots.recent()


def render_for(agent) -> bytes:  # agent.service.Agent; not imported, to keep the exporter free of the service
    """The status page of a running agent, from the snapshot /metrics was rendered from (or a fresh one)."""
    config = agent.loaded.config
    snap = snapshot_of(agent)
    units = agent.units
    district_level = "district" if "district" in units.levels else ""
    targets = [
        TargetView(t.id, t.collector, t.unit, units.units[t.unit].name_vi,
                   (units.ancestor_at(t.unit, district_level) or "") if district_level else "", t.name or "")
        for t in agent.targets
    ]
    names = {uid: u.name_vi for uid, u in units.units.items()}
    root = config.province.code if config.province.code in units.units else ""
    return render(config.province.name_vi, config.province.name_en, config.province.timezone, snap.evaluations,
                  snap.states, snap.stats, targets, agent.status.success_time, names, snap.taken, root)
