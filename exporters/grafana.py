"""Grafana dashboards (JSON, Grafana 10+) generated from the province's configuration.

The configuration decides the shape: which KPI units get a table (a count is not a percentage, a VND
amount not a ratio), which hierarchy levels get a variable and a drill-down panel (a province without
districts gets none), which KPI each dashboard opens on. The numbers stay out: titles, targets,
citations and deadlines come from the agent's series (``egov_kpi_info``, ``kpi:egov_kpi_target:max``...).
``egov-agent dashboards --config FILE -o DIR`` writes the JSON and the provisioning files; a test checks
the committed files equal what this code writes for Bắc Giang, and the end-to-end test runs every panel
query against a real Prometheus and checks each KPI panel's unit against the KPI's.

The KPI-level panels are made here; what shows one kind of target (the portals, the THDL's servers and
UPSes, the MCU) each kind brings itself through its descriptor's ``panels`` (collectors/<kind>/panels.py),
asked for each board with how that board drills down (:class:`~collectors.contrib.BoardContext`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.config.schema import Config, CoverageMeasure, KpiSpec
from collectors.contrib import LEVEL_NAMES_VI, PROVINCE, STAT, BoardContext, Panel, Query, contributions, drill_selector
from collectors.contrib import mappings_up as _mappings_up

DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39  # Grafana 10.4
DEFAULT_JOB = "egov-agent"  # the Prometheus job that scrapes the agents, as in ``egov-agent rules``
WAN_AREA, VC_AREA = "network", "video_conference"

# The KPI's unit (configuration) -> Grafana's unit id. currencyVND: Grafana's "Vietnamese Dong (VND)".
GRAFANA_UNITS = {"ratio": "percentunit", "count": "none", "vnd": "currencyVND", "value": "none",
                 "yes_no": "bool_yes_no"}
UNIT_TITLES = {"ratio": "Tỷ lệ / Ratios", "count": "Số lượng / Counts", "vnd": "Giá trị tiền (VND) / Amounts (VND)",
               "value": "Giá trị / Values", "yes_no": "Có / không / Yes or no"}


def _variable_datasource() -> dict[str, Any]:
    return {"name": "datasource", "label": "Nguồn dữ liệu / Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "options": []}


def _variable(name: str, label: str, query: str, multi: bool = False, include_all: bool = False,
              current: str | None = None) -> dict[str, Any]:
    """A query variable; ``current`` is what the dashboard opens on (all, for include_all without one)."""
    if current is not None:
        selected: dict[str, Any] = {"selected": True, "text": current, "value": current}
    elif include_all:
        selected = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        selected = {}
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"var-{name}", "qryType": 1},
        "definition": query, "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all,
        "allValue": ".*" if include_all else None, "current": selected, "hide": 0, "options": [],
    }


def _custom_variable(name: str, label: str, values: list[str], current: str) -> dict[str, Any]:
    """A fixed list from the configuration (the KPIs a dashboard is about), opening on ``current``."""
    return {
        "name": name, "label": label, "type": "custom", "query": ",".join(values), "multi": False,
        "includeAll": False, "hide": 0, "current": {"selected": True, "text": current, "value": current},
        "options": [{"selected": v == current, "text": v, "value": v} for v in values],
    }


def _province_variable(config: Config) -> dict[str, Any]:
    return _variable("province", "Tỉnh / Province", "label_values(egov_kpi_info, province)",
                     current=config.province.code)


def level_label(level: str) -> str:
    vi = LEVEL_NAMES_VI.get(level)
    return f"{vi} / {level.capitalize()}" if vi else level


def grafana_unit(kpi_unit: str) -> str:
    return GRAFANA_UNITS[kpi_unit]


def _unit_field(kpi_unit: str) -> list[dict[str, Any]]:
    """Field properties showing a value in the KPI's own unit."""
    props: list[dict[str, Any]] = [{"id": "unit", "value": grafana_unit(kpi_unit)}]
    if kpi_unit == "ratio":
        props.append({"id": "decimals", "value": 1})
    elif kpi_unit in ("count", "yes_no"):
        props.append({"id": "decimals", "value": 0})
    if kpi_unit == "yes_no":
        props.append({"id": "mappings", "value": [{"type": "value", "options": {
            "1": {"text": "Có / yes", "index": 0}, "0": {"text": "Không / no", "index": 1}}}]})
    return props


def probe_coverages(config: Config, area: str) -> list[KpiSpec]:
    """The area's KPIs measured as coverage of units by their own probes, in configuration order."""
    return [k for k in config.kpis if k.area == area and isinstance(k.measure, CoverageMeasure)
            and k.measure.over_units and not k.measure.from_source]


def opening_kpi(kpis: list[KpiSpec]) -> KpiSpec | None:
    """What a drill-down dashboard opens on: the first KPI with a per-group drill-down (the communes of
    each district), else the first; configuration order is the province's own order of importance."""
    grouped = [k for k in kpis if isinstance(k.measure, CoverageMeasure) and k.measure.group_by]
    candidates = grouped or kpis
    return candidates[0] if candidates else None


def drill_level(config: Config, kpi: KpiSpec | None) -> str | None:
    """The level a coverage KPI is broken down by (district), if the province has it below the top."""
    if kpi is None or not isinstance(kpi.measure, CoverageMeasure):
        return None
    group = kpi.measure.group_by
    return group if group in config.levels[1:] else None


def _counted_level(kpi: KpiSpec | None) -> str | None:
    """The level of the units a coverage KPI counts (commune), if it names one."""
    return kpi.measure.select.level if kpi is not None and isinstance(kpi.measure, CoverageMeasure) else None


def _kinds_panels(config: Config, board: BoardContext) -> list[Panel]:
    """The panels on this board of each kind the configuration has a collector of, in the kinds' order (as
    with the rules: a section for what the province does not monitor would only ever read "No data")."""
    return [panel for _kind, panels in contributions("panels", config.collectors) for panel in panels(board)]


def _mappings_met() -> list[dict[str, Any]]:
    return [{"type": "value", "options": {
        "1": {"text": "Đạt / met", "color": "green", "index": 0},
        "0": {"text": "Chưa đạt / below", "color": "red", "index": 1},
    }}]


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    if panel.kind == "row":
        out = {"type": "row", "title": panel.title, "id": pid, "collapsed": False, "panels": [],
               "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}
        if panel.repeat:
            out["repeat"] = panel.repeat
        return out
    targets = []
    for i, q in enumerate(panel.queries):
        target = {"refId": chr(ord("A") + i), "datasource": DS, "expr": q.expr, "legendFormat": q.legend,
                  "range": not q.instant, "instant": q.instant, "editorMode": "code"}
        if q.table:
            target["format"] = "table"
        targets.append(target)
    defaults: dict[str, Any] = {"unit": panel.unit} if panel.unit else {}
    defaults.update(panel.field_config.get("defaults", {}))
    out = {
        "type": panel.kind, "title": panel.title, "id": pid, "datasource": DS, "targets": targets,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": panel.field_config.get("overrides", [])},
        "options": panel.options, "transformations": panel.transformations,
    }
    if panel.description:
        out["description"] = panel.description
    if panel.links:
        out["links"] = panel.links
    return out


def dashboard(uid: str, title: str, panels: list[Panel], variables: list[dict[str, Any]],
              tags: list[str], links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    laid, x, y, row_height, pid = [], 0, 0, 0, 1
    for panel in panels:
        if panel.kind == "row" or x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid.append(_panel_json(panel, pid, x, y))
        pid += 1
        if panel.kind == "row":
            y += 1
            continue
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": uid, "title": title, "tags": ["egov-agent", *tags], "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-24h", "to": "now"}, "refresh": "1m",
        "templating": {"list": variables}, "annotations": {"list": []},
        "links": links or [{"type": "dashboards", "tags": ["egov-agent"], "asDropdown": True,
                            "title": "egov-agent", "includeVars": True, "keepTime": True}],
        "panels": laid,
    }




def _of_unit(kpi_unit: str) -> str:
    """Keeps a (province, kpi) series only for KPIs of the selected areas measured in ``kpi_unit``."""
    return (f'* on(province, kpi) group_left() max by (province, kpi) '
            f'(egov_kpi_info{{{PROVINCE}, area=~"$area", unit="{kpi_unit}"}})')


def _kpi_table(kpi_unit: str) -> Panel:
    """The KPIs of one unit against their active targets: value, target and shortfall in that unit."""
    keep = _of_unit(kpi_unit)
    info = (f'max by (province, kpi, title_vi, title_en, area) '
            f'(egov_kpi_info{{{PROVINCE}, area=~"$area", unit="{kpi_unit}"}})')
    value, target, short = "Giá trị / Value", "Mục tiêu / Target", "Còn thiếu / Short by"
    return Panel(
        f"Chỉ tiêu: {UNIT_TITLES[kpi_unit]} ($area) / KPIs", "table", width=24, height=10,
        description="Mỗi chỉ tiêu so với mục tiêu đang áp dụng, thiếu bao nhiêu và từ khi nào / each KPI against "
                    "its active target, by how much it misses it and since when",
        queries=[
            Query(info, instant=True, table=True),
            Query(f"kpi:egov_kpi_value:province{{{PROVINCE}}} {keep}", instant=True, table=True),
            Query(f"max by (province, kpi, phase, comparator, origin) (kpi:egov_kpi_target:max{{{PROVINCE}}})"
                  f" {keep}", instant=True, table=True),
            Query(f"max by (province, kpi) (kpi:egov_kpi_shortfall:abs{{{PROVINCE}}}) {keep}", instant=True,
                  table=True),
            Query(f"max by (province, kpi) (kpi:egov_kpi_below_target_since:timestamp{{{PROVINCE}}}) * 1000 {keep}",
                  instant=True, table=True),
            Query(f"max by (province, kpi) (kpi:egov_kpi_target_deadline:max{{{PROVINCE}}}) * 1000 {keep}",
                  instant=True, table=True),
        ],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value #A": True, "province": True, "area": True},
                "renameByName": {"kpi": "KPI", "title_vi": "Chỉ tiêu", "title_en": "Indicator",
                                 "Value #B": value, "phase": "Giai đoạn / Phase", "comparator": "So sánh",
                                 "origin": "Nguồn mục tiêu / Origin", "Value #C": target, "Value #D": short,
                                 "Value #E": "Chưa đạt từ / Below since", "Value #F": "Hạn / Deadline"}}},
        ],
        field_config={"overrides": [
            *({"matcher": {"id": "byName", "options": name}, "properties": _unit_field(kpi_unit)}
              for name in (value, target, short)),
            {"matcher": {"id": "byName", "options": short},
             "properties": [{"id": "custom.cellOptions", "value": {"type": "color-text"}},
                            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]},
            {"matcher": {"id": "byName", "options": "Chưa đạt từ / Below since"},
             "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},
            {"matcher": {"id": "byName", "options": "Hạn / Deadline"},
             "properties": [{"id": "unit", "value": "dateTimeAsIsoNoDateIfToday"}]},
        ]},
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )


def _kpi_trend(kpi_unit: str) -> Panel:
    decimals = {p["id"]: p["value"] for p in _unit_field(kpi_unit) if p["id"] == "decimals"}
    return Panel(f"Xu hướng: {UNIT_TITLES[kpi_unit]} ($area) / Trend", "timeseries", width=24, height=8,
                 unit=grafana_unit(kpi_unit), field_config={"defaults": decimals},
                 queries=[Query(f"kpi:egov_kpi_value:province{{{PROVINCE}}} * on(province, kpi) group_left(title_vi) "
                                f"max by (province, kpi, title_vi) (egov_kpi_info{{{PROVINCE}, area=~\"$area\", "
                                f"unit=\"{kpi_unit}\"}})", legend="{{title_vi}}")])


def _met_share(origin: str) -> str:
    """Share of the KPIs judged against a target of this origin that meet it, from the province-wide
    recording rules (the shards summed); qualitative targets are never judged, so never counted."""
    targets = f'max by (province, kpi) (kpi:egov_kpi_target:max{{{PROVINCE}, origin="{origin}"}})'
    met = f"kpi:egov_kpi_target_met_at:timestamp{{{PROVINCE}}} and on(province, kpi) {targets}"
    judged = f"{targets} and on(province, kpi) kpi:egov_kpi_value:province{{{PROVINCE}}}"
    return f"(count({met}) or vector(0)) / count({judged})"


def kpi_overview(config: Config, job: str = DEFAULT_JOB) -> dict[str, Any]:
    """Each KPI against its active target in its own unit, by how much and since when it misses it."""
    units = [u for u in GRAFANA_UNITS if any(k.unit == u for k in config.kpis)]
    met_share = {"defaults": {"thresholds": {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "orange", "value": 0.5}, {"color": "green", "value": 0.9}]}}}
    panels = [
        Panel("Tổng quan / Summary", "row"),
        # Plan targets and the ops team's own objectives are counted apart: one never passes for the other.
        Panel("Chỉ tiêu kế hoạch đạt / Plan targets met", "stat", width=4, height=5, unit="percentunit",
              queries=[Query(_met_share("plan"), instant=True)],
              options={**STAT, "colorMode": "background"}, field_config=met_share),
        Panel("Chỉ tiêu kế hoạch chưa đạt / Plan targets missed", "stat", width=4, height=5, unit="none",
              queries=[Query(f'count(kpi:egov_kpi_shortfall:abs{{{PROVINCE}, origin="plan"}}) or vector(0)',
                             instant=True)],
              options={**STAT, "colorMode": "value"}),
        Panel("Mục tiêu vận hành đạt / Ops objectives met", "stat", width=4, height=5, unit="percentunit",
              description="Mục tiêu do tổ vận hành đặt, không phải chỉ tiêu kế hoạch / objectives the operations "
                          "team set itself, not plan targets",
              queries=[Query(_met_share("ops"), instant=True)],
              options={**STAT, "colorMode": "value"}),
        Panel("Mục tiêu vận hành chưa đạt / Ops objectives missed", "stat", width=4, height=5, unit="none",
              queries=[Query(f'count(kpi:egov_kpi_shortfall:abs{{{PROVINCE}, origin="ops"}}) or vector(0)',
                             instant=True)],
              options={**STAT, "colorMode": "value"}),
        Panel("Chờ số liệu / Pending", "stat", width=3, height=5, unit="none",
              description="Chỉ tiêu chưa có giá trị: số liệu ví dụ, danh mục chưa đủ, nguồn chưa trả lời / KPIs "
                          "without a value: example data only, inventory incomplete, source not answering",
              queries=[Query(f"count(egov_kpi_pending{{{PROVINCE}}}) or vector(0)", instant=True)],
              options={**STAT, "colorMode": "value"}),
        Panel("Số liệu cũ / Stale KPI data", "stat", width=2, height=5, unit="none",
              queries=[Query(f"count(egov_kpi_stale{{{PROVINCE}}} == 1) or vector(0)", instant=True)],
              options={**STAT, "colorMode": "value"}),
        # Prometheus's own view: an agent that stopped answering is down here, whatever it last said of itself.
        Panel("Tác tử hoạt động / Agents up", "stat", width=3, height=5, unit="none",
              description=f"Prometheus: up{{job=\"{job}\"}}",
              queries=[Query(f'sum(up{{job="{job}"}})', instant=True, legend="up"),
                       Query(f'count(up{{job="{job}"}})', instant=True, legend="all")],
              options={**STAT, "textMode": "value_and_name", "colorMode": "value"}),
    ]
    for kpi_unit in units:
        panels += [Panel(UNIT_TITLES[kpi_unit], "row"), _kpi_table(kpi_unit), _kpi_trend(kpi_unit)]
    variables = [_variable_datasource(), _province_variable(config),
                 _variable("area", "Lĩnh vực / Area", "label_values(egov_kpi_info{province=\"$province\"}, area)",
                           multi=True, include_all=True)]
    return dashboard("egov-kpi-overview", "egov-agent — Chỉ tiêu kế hoạch / Plan KPIs", panels, variables, ["kpi"])


def wan(config: Config) -> dict[str, Any]:
    """Coverage of the configured WAN KPIs (opening on commune coverage), by district when the province has
    districts, drill-down to the unit, loss and RTT, uplink utilisation."""
    kpis = probe_coverages(config, WAN_AREA)
    opening = opening_kpi(kpis)
    group = drill_level(config, opening)
    sel, scope = drill_selector(BoardContext("wan", group))
    ratio = {"defaults": {"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "orange", "value": 0.95}, {"color": "green", "value": 1}]}}}
    panels = [
        Panel("Độ phủ / Coverage", "row"),
        Panel("$kpi", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f'kpi:egov_kpi_value:province{{{PROVINCE}, kpi="$kpi"}}', instant=True)],
              options={**STAT, "colorMode": "background"}, field_config=ratio),
        Panel("Đơn vị kết nối / Units connected", "stat", width=8, height=5, unit="none",
              queries=[Query(f'kpi:egov_kpi_numerator:sum{{{PROVINCE}, kpi="$kpi"}}', instant=True, legend="up"),
                       Query(f'kpi:egov_kpi_denominator:sum{{{PROVINCE}, kpi="$kpi"}}', instant=True, legend="all")],
              options={**STAT, "textMode": "value_and_name"}),
        Panel("Mục tiêu / Target", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f'max(kpi:egov_kpi_target:max{{{PROVINCE}, kpi="$kpi"}})', instant=True)],
              options=STAT),
        # The plan's «230/230 xã kết nối» as a state over the period, from the counters (hourly precision).
        Panel("Kết nối trong quý, năm / Connected over the quarter and year", "stat", width=24, height=4,
              unit="percentunit",
              description="Đơn vị tính là kết nối khi đường truyền hoạt động ít nhất connected_min_up thời gian của "
                          "kỳ (ngưỡng vận hành, không phải chỉ tiêu kế hoạch) / a unit counts as connected when its "
                          "link was up at least connected_min_up of the period (an ops threshold, not a plan target)",
              queries=[Query(f'max by (period, period_start, connected_min_up) '
                             f'(kpi:egov_kpi_period_coverage:ratio{{{PROVINCE}, kpi="$kpi"}})', instant=True,
                             legend="{{period}} {{period_start}} (≥ {{connected_min_up}})")],
              options={**STAT, "textMode": "value_and_name"}),
    ]
    if group:
        panels.append(Panel(
            f"Độ phủ theo {LEVEL_NAMES_VI.get(group, group).lower()} / Coverage by {group}", "bargauge", width=12,
            height=10, unit="percentunit",
            queries=[Query(f'kpi_group:egov_kpi_group_value:ratio{{{PROVINCE}, kpi="$kpi", group_level="{group}"}}',
                           legend="{{group}}", instant=True)],
            options={**STAT, "orientation": "horizontal", "displayMode": "gradient"},
            field_config={"defaults": {"min": 0, "max": 1, "links": [{
                "title": "Xem các đơn vị / Show its units",
                "url": f"/d/egov-wan?var-province=$province&var-kpi=$kpi&var-{group}=${{__field.labels.group}}"}]}}))
    panels += [
        Panel(f"Đơn vị mất kết nối / Units down{scope}", "table", width=12 if group else 24, height=10,
              queries=[Query(f'unit:egov_kpi_unit_up:bool{{kpi="$kpi", {sel}}} == 0', instant=True, table=True)],
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}],
              field_config={"overrides": [{"matcher": {"id": "byName", "options": "Value"},
                                           "properties": [{"id": "mappings", "value": _mappings_up()}]}]}),
        Panel(f"Chất lượng đường truyền / Link quality{scope}", "row"),
    ]
    panels += _kinds_panels(config, BoardContext("wan", group, _counted_level(opening)))
    variables = [_variable_datasource(), _province_variable(config)]
    if opening is not None:
        variables.append(_custom_variable("kpi", "Chỉ tiêu / KPI", [k.id for k in kpis], opening.id))
    if group and opening is not None and isinstance(opening.measure, CoverageMeasure):
        level = opening.measure.select.level
        at = f', level="{level}"' if level else ""
        variables.append(_variable(group, level_label(group),
                                   f'label_values(egov_target_up{{province="$province"{at}}}, {group})',
                                   multi=True, include_all=True))
    return dashboard("egov-wan", "egov-agent — Mạng WAN / WAN links", panels, variables, ["wan"])


def portals(config: Config) -> dict[str, Any]:
    panels = _kinds_panels(config, BoardContext("portals"))
    variables = [_variable_datasource(), _province_variable(config)]
    return dashboard("egov-portals", "egov-agent — Cổng thông tin / Portals", panels, variables, ["portals"])


def datacentre(config: Config) -> dict[str, Any]:
    panels = _kinds_panels(config, BoardContext("datacentre"))
    variables = [_variable_datasource(), _province_variable(config)]
    return dashboard("egov-datacentre", "egov-agent — Trung tâm THDL / Data centre", panels, variables,
                     ["datacentre"])


def videoconference(config: Config) -> dict[str, Any]:
    """Endpoints (điểm cầu) ready by level and district, why the others are not, the MCU's load and meetings.

    Opens on the configured endpoint-readiness KPI (the first VC coverage with a drill-down)."""
    kpis = probe_coverages(config, VC_AREA)
    opening = opening_kpi(kpis)
    group = drill_level(config, opening)
    level = _counted_level(opening)
    stat = STAT
    ratio_steps = {"defaults": {"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "orange", "value": 0.95}, {"color": "green", "value": 0.98}]}}}
    panels = [
        Panel("Điểm cầu sẵn sàng / Endpoints ready", "row"),
        Panel("$kpi", "stat", width=6, height=5, unit="percentunit",
              description="Chỉ tiêu hội nghị truyền hình đã chọn / the selected video-conference KPI",
              queries=[Query(f'kpi:egov_kpi_value:province{{{PROVINCE}, kpi="$kpi"}}', instant=True)],
              options={**stat, "colorMode": "background"}, field_config=ratio_steps),
        Panel("Mục tiêu / Target", "stat", width=6, height=5, unit="percentunit",
              queries=[Query(f'max(kpi:egov_kpi_target:max{{{PROVINCE}, kpi="$kpi"}})', instant=True)],
              options=stat),
    ]
    panels += _kinds_panels(config, BoardContext("videoconference", group, level))
    variables = [_variable_datasource(), _province_variable(config)]
    if opening is not None:
        variables.append(_custom_variable("kpi", "Chỉ tiêu / KPI", [k.id for k in kpis], opening.id))
    if group:
        variables.append(_variable(group, level_label(group),
                                   f'label_values(egov_target_up{{province="$province", collector="sip"}}, {group})',
                                   multi=True, include_all=True))
    return dashboard("egov-videoconference", "egov-agent — Hội nghị truyền hình / Video conference", panels,
                     variables, ["videoconference"])


def dashboards(config: Config, job: str = DEFAULT_JOB) -> dict[str, dict[str, Any]]:
    """File name -> dashboard, for this province; the WAN and video-conference dashboards only where the
    configuration has KPIs for them to open on."""
    out = {"egov-kpi-overview.json": kpi_overview(config, job)}
    if probe_coverages(config, WAN_AREA):
        out["egov-wan.json"] = wan(config)
    out["egov-portals.json"] = portals(config)
    out["egov-datacentre.json"] = datacentre(config)
    if probe_coverages(config, VC_AREA):
        out["egov-videoconference.json"] = videoconference(config)
    return out


PROVISIONING_DASHBOARDS = """\
# Grafana provisioning: copy to /etc/grafana/provisioning/dashboards/egov-agent.yml and the JSON
# files to /var/lib/grafana/dashboards/egov-agent/.
apiVersion: 1
providers:
  - name: egov-agent
    folder: egov-agent
    type: file
    disableDeletion: false
    allowUiUpdates: false
    options:
      path: /var/lib/grafana/dashboards/egov-agent
"""

PROVISIONING_DATASOURCE = """\
# Grafana provisioning: copy to /etc/grafana/provisioning/datasources/egov-prometheus.yml and set the URL.
apiVersion: 1
datasources:
  - name: Prometheus (egov)
    type: prometheus
    access: proxy
    url: http://127.0.0.1:9090
    isDefault: true
"""


def render_all(config: Config, job: str = DEFAULT_JOB) -> dict[str, str]:
    """File name (relative to the output directory) -> content."""
    files = {name: json.dumps(board, ensure_ascii=False, indent=2) + "\n"
             for name, board in dashboards(config, job).items()}
    files["provisioning/dashboards/egov-agent.yml"] = PROVISIONING_DASHBOARDS
    files["provisioning/datasources/egov-prometheus.yml"] = PROVISIONING_DATASOURCE
    return files


def write_all(config: Config, directory: Path, job: str = DEFAULT_JOB) -> list[Path]:
    written = []
    for name, content in render_all(config, job).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query in a dashboard, for the end-to-end check."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]
