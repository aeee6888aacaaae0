"""Grafana dashboards (JSON, Grafana 10+) generated from code, so panels, units and queries stay consistent.

No province's numbers are written into a dashboard: titles, targets, citations and deadlines come
from the agent's series (``egov_kpi_info``, ``kpi:egov_kpi_target:max``...), and the province and
district are template variables. ``egov-agent dashboards`` writes the JSON and the provisioning
files into ``dashboards/grafana/``; a test checks the committed files equal what this code writes,
and the end-to-end test runs every panel query against a real Prometheus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39  # Grafana 10.4


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


@dataclass
class Panel:
    title: str
    kind: str  # timeseries | stat | table | bargauge | row
    queries: list[Query] = field(default_factory=list)
    width: int = 12
    height: int = 8
    unit: str = ""
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    field_config: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    repeat: str = ""
    links: list[dict[str, Any]] = field(default_factory=list)


def _variable_datasource() -> dict[str, Any]:
    return {"name": "datasource", "label": "Nguồn dữ liệu / Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "options": []}


def _variable(name: str, label: str, query: str, multi: bool = False, include_all: bool = False) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"var-{name}", "qryType": 1},
        "definition": query, "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all,
        "allValue": ".*" if include_all else None, "current": {}, "hide": 0, "options": [],
    }


def _mappings_met() -> list[dict[str, Any]]:
    return [{"type": "value", "options": {
        "1": {"text": "Đạt / met", "color": "green", "index": 0},
        "0": {"text": "Chưa đạt / below", "color": "red", "index": 1},
    }}]


def _mappings_up() -> list[dict[str, Any]]:
    return [{"type": "value", "options": {
        "1": {"text": "Hoạt động / up", "color": "green", "index": 0},
        "0": {"text": "Mất kết nối / down", "color": "red", "index": 1},
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


PROVINCE = 'province="$province"'
INFO = f'max by (province, kpi, title_vi, title_en, area) (egov_kpi_info{{{PROVINCE}, area=~"$area"}})'


def kpi_overview() -> dict[str, Any]:
    """Each KPI against its active target, met or not, deadline and trend, grouped by plan area."""
    in_area = f"* on(province, kpi) group_left() max by (province, kpi) (egov_kpi_info{{{PROVINCE}, area=~\"$area\"}})"
    table = Panel(
        "Chỉ tiêu $area / KPIs: $area", "table", width=24, height=10,
        description="Mỗi chỉ tiêu so với mục tiêu đang áp dụng / each KPI against its active target",
        queries=[
            Query(INFO, instant=True, table=True),
            Query(f"kpi:egov_kpi_value:province{{{PROVINCE}}} {in_area}", instant=True, table=True),
            Query(f"max by (province, kpi, phase, comparator, origin) (kpi:egov_kpi_target:max{{{PROVINCE}}})"
                  f" {in_area}", instant=True, table=True),
            Query(f"max by (province, kpi) (egov_kpi_target_met{{{PROVINCE}}}) {in_area}", instant=True, table=True),
            Query(f"max by (province, kpi) (kpi:egov_kpi_target_deadline:max{{{PROVINCE}}}) * 1000 {in_area}",
                  instant=True, table=True),
        ],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "Value #A": True, "province": True, "area": True},
                "renameByName": {"kpi": "KPI", "title_vi": "Chỉ tiêu", "title_en": "Indicator",
                                 "Value #B": "Giá trị / Value", "phase": "Giai đoạn / Phase",
                                 "comparator": "So sánh", "origin": "Nguồn mục tiêu / Origin",
                                 "Value #C": "Mục tiêu / Target", "Value #D": "Đạt / Met",
                                 "Value #E": "Hạn / Deadline"}}},
        ],
        field_config={"overrides": [
            {"matcher": {"id": "byName", "options": "Giá trị / Value"},
             "properties": [{"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 1}]},
            {"matcher": {"id": "byName", "options": "Mục tiêu / Target"},
             "properties": [{"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 1}]},
            {"matcher": {"id": "byName", "options": "Đạt / Met"},
             "properties": [{"id": "mappings", "value": _mappings_met()},
                            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
            {"matcher": {"id": "byName", "options": "Hạn / Deadline"},
             "properties": [{"id": "unit", "value": "dateTimeAsIsoNoDateIfToday"}]},
        ]},
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )
    panels = [
        Panel("Tổng quan / Summary", "row"),
        # Plan targets and the ops team's own objectives are counted apart: one never passes for the other.
        Panel("Chỉ tiêu kế hoạch đạt / Plan targets met", "stat", width=5, height=5, unit="percentunit",
              queries=[Query(f'sum(egov_kpi_target_met{{{PROVINCE}, origin="plan"}}) '
                             f'/ count(egov_kpi_target_met{{{PROVINCE}, origin="plan"}})', instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
              field_config={"defaults": {"thresholds": {"mode": "absolute", "steps": [
                  {"color": "red", "value": None}, {"color": "orange", "value": 0.5},
                  {"color": "green", "value": 0.9}]}}}),
        Panel("Chỉ tiêu kế hoạch chưa đạt / Plan targets missed", "stat", width=4, height=5,
              queries=[Query(f'count(egov_kpi_target_met{{{PROVINCE}, origin="plan"}} == 0) or vector(0)',
                             instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}),
        Panel("Mục tiêu vận hành đạt / Ops objectives met", "stat", width=5, height=5, unit="percentunit",
              description="Mục tiêu do tổ vận hành đặt, không phải chỉ tiêu kế hoạch / objectives the operations "
                          "team set itself, not plan targets",
              queries=[Query(f'sum(egov_kpi_target_met{{{PROVINCE}, origin="ops"}}) '
                             f'/ count(egov_kpi_target_met{{{PROVINCE}, origin="ops"}})', instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}),
        Panel("Chờ số liệu / Pending", "stat", width=4, height=5,
              description="Chỉ tiêu chưa có giá trị: số liệu ví dụ, danh mục chưa đủ, nguồn chưa trả lời / KPIs "
                          "without a value: example data only, inventory incomplete, source not answering",
              queries=[Query(f"count(egov_kpi_pending{{{PROVINCE}}}) or vector(0)", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}),
        Panel("Số liệu cũ / Stale KPI data", "stat", width=3, height=5,
              queries=[Query(f"count(egov_kpi_stale{{{PROVINCE}}} == 1) or vector(0)", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}),
        Panel("Tác tử hoạt động / Agents up", "stat", width=3, height=5,
              queries=[Query(f"count(egov_config_last_reload_successful{{{PROVINCE}}})", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}}),
        Panel("Lĩnh vực: $area / Area: $area", "row", repeat="area"),
        table,
        Panel("Xu hướng $area / Trend: $area", "timeseries", width=24, height=8, unit="percentunit",
              queries=[Query(f"kpi:egov_kpi_value:province{{{PROVINCE}}} * on(province, kpi) group_left(title_vi) "
                             f"max by (province, kpi, title_vi) (egov_kpi_info{{{PROVINCE}, area=~\"$area\", "
                             f"unit=\"ratio\"}})", legend="{{title_vi}}")]),
    ]
    variables = [_variable_datasource(),
                 _variable("province", "Tỉnh / Province", "label_values(egov_kpi_info, province)"),
                 _variable("area", "Lĩnh vực / Area", "label_values(egov_kpi_info{province=\"$province\"}, area)",
                           multi=True, include_all=True)]
    return dashboard("egov-kpi-overview", "egov-agent — Chỉ tiêu kế hoạch / Plan KPIs", panels, variables, ["kpi"])


def wan() -> dict[str, Any]:
    """Coverage by district, drill-down to the commune, loss and RTT, uplink utilisation."""
    sel = 'province="$province", district=~"$district"'
    wan_link = 'egov_target_info{tags=~".*,wan_link,.*"}'
    panels = [
        Panel("Độ phủ / Coverage", "row"),
        Panel("$kpi", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f'kpi:egov_kpi_value:province{{{PROVINCE}, kpi="$kpi"}}', instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
              field_config={"defaults": {"thresholds": {"mode": "absolute", "steps": [
                  {"color": "red", "value": None}, {"color": "orange", "value": 0.95},
                  {"color": "green", "value": 1}]}}}),
        Panel("Đơn vị kết nối / Units connected", "stat", width=8, height=5,
              queries=[Query(f'kpi:egov_kpi_numerator:sum{{{PROVINCE}, kpi="$kpi"}}', instant=True, legend="up"),
                       Query(f'kpi:egov_kpi_denominator:sum{{{PROVINCE}, kpi="$kpi"}}', instant=True, legend="all")],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"}),
        Panel("Mục tiêu / Target", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f'max(kpi:egov_kpi_target:max{{{PROVINCE}, kpi="$kpi"}})', instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}}),
        # The plan's «230/230 xã kết nối» as a state over the period, from the counters (hourly precision).
        Panel("Kết nối trong quý, năm / Connected over the quarter and year", "stat", width=24, height=4,
              unit="percentunit",
              description="Đơn vị tính là kết nối khi đường truyền hoạt động ít nhất connected_min_up thời gian của "
                          "kỳ (ngưỡng vận hành, không phải chỉ tiêu kế hoạch) / a unit counts as connected when its "
                          "link was up at least connected_min_up of the period (an ops threshold, not a plan target)",
              queries=[Query(f'max by (period, period_start, connected_min_up) '
                             f'(kpi:egov_kpi_period_coverage:ratio{{{PROVINCE}, kpi="$kpi"}})', instant=True,
                             legend="{{period}} {{period_start}} (≥ {{connected_min_up}})")],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"}),
        Panel("Độ phủ theo huyện / Coverage by district", "bargauge", width=12, height=10, unit="percentunit",
              queries=[Query(f'kpi_group:egov_kpi_group_value:ratio{{{PROVINCE}, kpi="$kpi", group_level="district"}}',
                             legend="{{group}}", instant=True)],
              options={"orientation": "horizontal", "displayMode": "gradient",
                       "reduceOptions": {"calcs": ["lastNotNull"]}},
              field_config={"defaults": {"min": 0, "max": 1, "links": [{
                  "title": "Xem các xã / Show its communes",
                  "url": "/d/egov-wan?var-province=$province&var-kpi=$kpi&var-district=${__field.labels.group}"}]}}),
        Panel("Đơn vị mất kết nối / Units down ($district)", "table", width=12, height=10,
              queries=[Query(f'unit:egov_kpi_unit_up:bool{{kpi="$kpi", {sel}}} == 0', instant=True, table=True)],
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}],
              field_config={"overrides": [{"matcher": {"id": "byName", "options": "Value"},
                                           "properties": [{"id": "mappings", "value": _mappings_up()}]}]}),
        Panel("Chất lượng đường truyền / Link quality ($district)", "row"),
        Panel("Mất gói ICMP / ICMP loss", "timeseries", width=12, unit="percentunit",
              queries=[Query(f"egov_icmp_loss_ratio{{{sel}}} * on(target) group_left() {wan_link}",
                             legend="{{unit}}")]),
        Panel("Độ trễ ICMP / ICMP round-trip time", "timeseries", width=12, unit="s",
              queries=[Query(f'egov_icmp_rtt_seconds{{stat="avg", {sel}}}', legend="{{unit}}")]),
        Panel("Tải đường lên / Uplink utilisation", "timeseries", width=12, unit="percentunit",
              queries=[Query(f'egov_snmp_if_utilisation_ratio{{role="uplink", {sel}}}', legend="{{unit}}")]),
        Panel("Lưu lượng đường lên / Uplink traffic", "timeseries", width=12, unit="bps",
              queries=[Query(f'8 * rate(egov_snmp_if_in_octets_total{{role="uplink", {sel}}}[$__rate_interval])',
                             legend="{{unit}} in"),
                       Query(f'-8 * rate(egov_snmp_if_out_octets_total{{role="uplink", {sel}}}[$__rate_interval])',
                             legend="{{unit}} out")]),
        Panel("Khởi động lại thiết bị (24h) / Device reboots (24h)", "table", width=12, height=8,
              queries=[Query(f"increase(egov_snmp_reboots_total{{{sel}}}[1d]) > 0", instant=True, table=True)],
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}]),
        Panel("Lỗi giao diện / Interface errors", "timeseries", width=12, height=8, unit="pps",
              queries=[Query(f'rate(egov_snmp_if_in_errors_total{{role="uplink", {sel}}}[$__rate_interval])'
                             f' + rate(egov_snmp_if_out_errors_total{{role="uplink", {sel}}}[$__rate_interval])',
                             legend="{{unit}}")]),
    ]
    variables = [
        _variable_datasource(),
        _variable("province", "Tỉnh / Province", "label_values(egov_kpi_info, province)"),
        _variable("kpi", "Chỉ tiêu / KPI",
                  'label_values(kpi_group:egov_kpi_group_value:ratio{province="$province"}, kpi)'),
        _variable("district", "Huyện / District",
                  'label_values(egov_target_up{province="$province", level="commune"}, district)',
                  multi=True, include_all=True),
    ]
    return dashboard("egov-wan", "egov-agent — Mạng WAN / WAN links", panels, variables, ["wan"])


def portals() -> dict[str, Any]:
    sel = 'province="$province", collector="http"'
    panels = [
        Panel("Cổng thông tin / Portals", "row"),
        Panel("Cổng hoạt động / Portals up", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f"avg(egov_target_up{{{sel}}})", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}),
        Panel("Sẵn sàng 30 ngày / 30-day availability", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f"sum(increase(egov_target_probe_successes_total{{{sel}}}[30d])) / "
                             f"sum(increase(egov_target_probes_total{{{sel}}}[30d]))", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}}),
        Panel("Chứng thư sắp hết hạn (ngày) / Certificates expiring (days)", "stat", width=8, height=5, unit="d",
              queries=[Query(f"min((egov_http_tls_cert_expiry_timestamp_seconds{{{sel}}} - time()) / 86400)",
                             instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}},
              field_config={"defaults": {"thresholds": {"mode": "absolute", "steps": [
                  {"color": "red", "value": None}, {"color": "orange", "value": 14},
                  {"color": "green", "value": 30}]}}}),
        Panel("Trạng thái từng cổng / Each portal", "table", width=24, height=12,
              queries=[Query(f"egov_target_up{{{sel}}}", instant=True, table=True),
                       Query(f"target:egov_availability:ratio_30d{{{sel}}}", instant=True, table=True),
                       Query(f"egov_http_total_seconds{{{sel}}}", instant=True, table=True),
                       Query(f"(egov_http_tls_cert_expiry_timestamp_seconds{{{sel}}} - time()) / 86400",
                             instant=True, table=True)],
              transformations=[
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {
                      "indexByName": {"target": 0, "unit": 1},
                      "excludeByName": {"Time": True, "__name__": True, "collector": True, "level": True,
                                        "province": True, "commune": True, "site": True, "department": True,
                                        "district": True},
                      "renameByName": {"Value #A": "Hoạt động / Up", "Value #B": "Sẵn sàng 30 ngày / 30 d",
                                       "Value #C": "Thời gian / Time (s)", "Value #D": "Chứng thư / Cert (days)"}}}],
              field_config={"overrides": [
                  {"matcher": {"id": "byName", "options": "Hoạt động / Up"},
                   "properties": [{"id": "mappings", "value": _mappings_up()},
                                  {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
                  {"matcher": {"id": "byName", "options": "Sẵn sàng 30 ngày / 30 d"},
                   "properties": [{"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 2}]},
              ]}),
        Panel("Thời gian phản hồi / Response time", "timeseries", width=12, unit="s",
              queries=[Query(f"egov_http_total_seconds{{{sel}}}", legend="{{target}}")]),
        Panel("Các pha / Phases (all portals)", "timeseries", width=12, unit="s",
              options={"legend": {"displayMode": "list"}},
              field_config={"defaults": {"custom": {"stacking": {"mode": "normal"}, "fillOpacity": 30}}},
              queries=[Query(f"avg by (phase) (egov_http_phase_seconds{{{sel}}})", legend="{{phase}}")]),
        Panel("Lỗi theo nguyên nhân / Failures by reason", "timeseries", width=24, unit="short",
              queries=[Query(f"sum by (reason) (increase(egov_target_probe_failures_total{{{sel}}}[$__rate_interval]))",
                             legend="{{reason}}")]),
    ]
    variables = [_variable_datasource(),
                 _variable("province", "Tỉnh / Province", "label_values(egov_kpi_info, province)")]
    return dashboard("egov-portals", "egov-agent — Cổng thông tin / Portals", panels, variables, ["portals"])


def datacentre() -> dict[str, Any]:
    host = 'province="$province", collector="host"'
    tcp = 'province="$province", collector="tcp"'
    power = 'province="$province", collector="power"'
    panels = [
        Panel("Hệ thống tại THDL / Systems hosted at the THDL", "row"),
        Panel("Hệ thống hoạt động / Systems up", "stat", width=8, height=5,
              queries=[Query(f"sum(egov_target_up{{{tcp}}})", instant=True, legend="up"),
                       Query(f"count(egov_target_up{{{tcp}}})", instant=True, legend="all")],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"}),
        Panel("Sẵn sàng 30 ngày / 30-day availability", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f"sum(increase(egov_target_probe_successes_total{{{tcp}}}[30d])) / "
                             f"sum(increase(egov_target_probes_total{{{tcp}}}[30d]))", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}}),
        Panel("Hệ thống không phản hồi / Systems down", "table", width=8, height=5,
              queries=[Query(f"egov_target_up{{{tcp}}} == 0", instant=True, table=True)],
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}]),
        Panel("Máy chủ / Servers", "row"),
        Panel("CPU", "timeseries", width=12, unit="percentunit",
              queries=[Query(f'sum by (target) (rate(egov_host_cpu_seconds_total{{{host}, mode!="idle"}}'
                             f'[$__rate_interval])) / on(target) max by (target) (egov_host_cpus{{{host}}})',
                             legend="{{target}}")]),
        Panel("Bộ nhớ / Memory used", "timeseries", width=12, unit="percentunit",
              queries=[Query(f"1 - egov_host_memory_available_bytes{{{host}}} / egov_host_memory_total_bytes{{{host}}}",
                             legend="{{target}}")]),
        Panel("Ổ đĩa / Filesystems used", "bargauge", width=12, unit="percentunit",
              queries=[Query(f"egov_host_filesystem_used_ratio{{{host}}}", instant=True,
                             legend="{{target}} {{mountpoint}}")],
              options={"orientation": "horizontal", "displayMode": "gradient",
                       "reduceOptions": {"calcs": ["lastNotNull"]}},
              field_config={"defaults": {"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
                  {"color": "green", "value": None}, {"color": "orange", "value": 0.8},
                  {"color": "red", "value": 0.9}]}}}),
        Panel("Tải / Load (1 min)", "timeseries", width=12, unit="short",
              queries=[Query(f"egov_host_load1{{{host}}}", legend="{{target}}")]),
        Panel("Mạng / Network", "timeseries", width=12, unit="Bps",
              queries=[Query(f"rate(egov_host_network_receive_bytes_total{{{host}}}[$__rate_interval])",
                             legend="{{target}} {{interface}} in"),
                       Query(f"-rate(egov_host_network_transmit_bytes_total{{{host}}}[$__rate_interval])",
                             legend="{{target}} {{interface}} out")]),
        Panel("Tiến trình / Processes running", "table", width=12, height=8,
              queries=[Query(f"egov_host_process_running{{{host}}}", instant=True, table=True)],
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}]),
        Panel("Nguồn điện và môi trường / Power and environment", "row"),
        Panel("UPS chạy bằng ắc quy / UPS on battery", "stat", width=6, height=5,
              queries=[Query(f"sum(egov_ups_on_battery{{{power}}})", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
              field_config={"defaults": {"thresholds": {"mode": "absolute", "steps": [
                  {"color": "green", "value": None}, {"color": "red", "value": 1}]}}}),
        Panel("Thời gian lưu điện / Battery runtime", "stat", width=6, height=5, unit="s",
              queries=[Query(f"min(egov_ups_battery_runtime_seconds{{{power}}})", instant=True)],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}}),
        Panel("Nhiệt độ phòng máy / Room temperature", "timeseries", width=12, height=5, unit="celsius",
              queries=[Query(f"egov_env_temperature_celsius{{{power}}}", legend="{{target}} {{sensor}}")]),
        Panel("Tải UPS / UPS load", "timeseries", width=12, unit="percentunit",
              queries=[Query(f"egov_ups_load_ratio{{{power}}}", legend="{{target}} {{line}}")]),
        Panel("Dòng điện PDU / PDU current", "timeseries", width=12, unit="amp",
              queries=[Query(f"egov_pdu_current_amperes{{{power}}}", legend="{{target}} {{phase}}/{{bank}}")]),
    ]
    variables = [_variable_datasource(),
                 _variable("province", "Tỉnh / Province", "label_values(egov_kpi_info, province)")]
    return dashboard("egov-datacentre", "egov-agent — Trung tâm THDL / Data centre", panels, variables,
                     ["datacentre"])


def videoconference() -> dict[str, Any]:
    """Endpoints (điểm cầu) ready by level and district, why the others are not, the MCU's load and meetings."""
    sip = 'province="$province", collector="sip"'
    sel = f'{sip}, district=~"$district"'
    mcu = 'province="$province", collector="mcu"'
    stat = {"reduceOptions": {"calcs": ["lastNotNull"]}}
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
        Panel("Điểm cầu trả lời SIP / Endpoints answering SIP", "stat", width=6, height=5,
              queries=[Query(f"sum(egov_target_up{{{sip}}})", instant=True, legend="ready"),
                       Query(f"count(egov_target_up{{{sip}}})", instant=True, legend="all")],
              options={**stat, "textMode": "value_and_name"}),
        Panel("Sẵn sàng theo cấp / Ready by level", "bargauge", width=6, height=5, unit="percentunit",
              queries=[Query(f"avg by (level) (egov_target_up{{{sip}}})", legend="{{level}}", instant=True)],
              options={**stat, "orientation": "horizontal", "displayMode": "gradient"}, field_config=ratio_steps),
        Panel("Điểm cầu xã sẵn sàng theo huyện / Commune endpoints ready by district", "bargauge", width=12,
              height=10, unit="percentunit",
              queries=[Query(f'avg by (district) (egov_target_up{{{sip}, level="commune"}})', legend="{{district}}",
                             instant=True)],
              options={**stat, "orientation": "horizontal", "displayMode": "gradient"},
              field_config={"defaults": {**ratio_steps["defaults"], "links": [{
                  "title": "Xem các điểm cầu / Show its endpoints",
                  "url": "/d/egov-videoconference?var-province=$province&var-kpi=$kpi"
                         "&var-district=${__field.labels.district}"}]}}),
        Panel("Điểm cầu chưa sẵn sàng / Endpoints not ready ($district)", "table", width=12, height=10,
              queries=[Query(f"egov_target_up{{{sel}}} == 0", instant=True, table=True),
                       Query(f"egov_sip_status_code{{{sel}}} and on(target) (egov_target_up{{{sel}}} == 0)",
                             instant=True, table=True)],
              transformations=[
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {
                      "excludeByName": {"Time": True, "__name__": True, "collector": True, "province": True,
                                        "department": True, "site": True, "Value #A": True},
                      "renameByName": {"Value #B": "Mã SIP / SIP status"}}}]),
        Panel("Lỗi theo nguyên nhân / Failures by reason ($district)", "timeseries", width=12, unit="short",
              queries=[Query(f"sum by (reason) (increase(egov_target_probe_failures_total{{{sel}}}"
                             f"[$__rate_interval]))", legend="{{reason}}")]),
        Panel("Thời gian trả lời SIP / SIP response time ($district)", "timeseries", width=12, unit="s",
              queries=[Query(f"quantile by (level) (0.95, egov_sip_response_seconds{{{sel}}})",
                             legend="p95 {{level}}"),
                       Query(f"max(egov_sip_response_seconds{{{sel}}})", legend="max")]),
        Panel("Mã trả lời SIP / SIP status codes", "bargauge", width=12, height=6,
              description="0: không có trả lời / no answer",
              queries=[Query(f'count_values("code", egov_sip_status_code{{{sel}}})', legend="{{code}}",
                             instant=True)],
              options={**stat, "orientation": "horizontal"}),
        Panel("Gửi lại qua UDP / UDP retransmissions", "timeseries", width=12, height=6, unit="short",
              queries=[Query(f"sum(egov_sip_retransmissions{{{sel}}})", legend="retransmissions")]),
        Panel("MCU", "row"),
        Panel("MCU hoạt động / MCU up", "stat", width=4, height=5,
              queries=[Query(f"egov_target_up{{{mcu}}}", instant=True, legend="{{target}}")],
              options={**stat, "colorMode": "background"},
              field_config={"defaults": {"mappings": _mappings_up()}}),
        Panel("Phiên họp đang diễn ra / Conferences in progress", "stat", width=4, height=5,
              queries=[Query(f"sum(egov_mcu_active_conferences{{{mcu}}})", instant=True)], options=stat),
        Panel("Cổng đang dùng / Ports in use", "stat", width=4, height=5,
              queries=[Query(f"sum(egov_mcu_ports_in_use{{{mcu}}})", instant=True, legend="in use"),
                       Query(f"sum(egov_mcu_ports_capacity{{{mcu}}})", instant=True, legend="total")],
              options={**stat, "textMode": "value_and_name"}),
        Panel("Điểm cầu đăng ký / Endpoints registered", "stat", width=4, height=5,
              queries=[Query(f"sum(egov_mcu_registered_endpoints{{{mcu}}})", instant=True)], options=stat),
        Panel("Cuộc họp (24h) / Meetings held (24 h)", "stat", width=4, height=5,
              queries=[Query(f"sum(increase(egov_mcu_meetings_held_total{{{mcu}}}[1d]))", instant=True)],
              options=stat, field_config={"defaults": {"decimals": 0}}),
        Panel("MCU khởi động lại (24h) / MCU restarts (24 h)", "stat", width=4, height=5,
              queries=[Query(f"sum(increase(egov_mcu_meetings_held_resets_total{{{mcu}}}[1d]))", instant=True)],
              options=stat, field_config={"defaults": {"decimals": 0}}),
        Panel("Phiên họp và cổng / Conferences and ports", "timeseries", width=12, unit="short",
              queries=[Query(f"sum(egov_mcu_active_conferences{{{mcu}}})", legend="conferences"),
                       Query(f"sum(egov_mcu_ports_in_use{{{mcu}}})", legend="ports in use"),
                       Query(f"sum(egov_mcu_largest_conference_participants{{{mcu}}})", legend="largest conference"),
                       Query(f"sum(egov_mcu_registered_endpoints{{{mcu}}})", legend="registered")]),
        Panel("Tải cổng MCU / MCU port utilisation", "timeseries", width=12, unit="percentunit",
              queries=[Query(f"egov_mcu_port_utilisation_ratio{{{mcu}}}", legend="{{target}}")],
              field_config={"defaults": {"min": 0, "max": 1}}),
        Panel("Cuộc họp mỗi giờ / Meetings per hour", "timeseries", width=12, unit="short",
              description="Từ bộ đếm của MCU, cộng dồn qua các lần MCU khởi động lại / from the MCU's counter",
              queries=[Query(f"sum(increase(egov_mcu_meetings_held_total{{{mcu}}}[1h]))", legend="meetings")]),
        Panel("Điểm cầu chưa đăng ký / Expected endpoints not registered", "table", width=12, height=8,
              queries=[Query(f"egov_mcu_endpoint_registered{{{mcu}}} == 0", instant=True, table=True)],
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}]),
    ]
    variables = [
        _variable_datasource(),
        _variable("province", "Tỉnh / Province", "label_values(egov_kpi_info, province)"),
        _variable("kpi", "Chỉ tiêu / KPI", 'label_values(egov_kpi_info{province="$province", '
                                          'area="video_conference"}, kpi)'),
        _variable("district", "Huyện / District",
                  'label_values(egov_target_up{province="$province", collector="sip"}, district)',
                  multi=True, include_all=True),
    ]
    return dashboard("egov-videoconference", "egov-agent — Hội nghị truyền hình / Video conference", panels,
                     variables, ["videoconference"])


DASHBOARDS = {"egov-kpi-overview.json": kpi_overview, "egov-wan.json": wan, "egov-portals.json": portals,
              "egov-datacentre.json": datacentre, "egov-videoconference.json": videoconference}

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


def render_all() -> dict[str, str]:
    """File name (relative to dashboards/grafana/) -> content."""
    files = {name: json.dumps(build(), ensure_ascii=False, indent=2) + "\n" for name, build in DASHBOARDS.items()}
    files["provisioning/dashboards/egov-agent.yml"] = PROVISIONING_DASHBOARDS
    files["provisioning/datasources/egov-prometheus.yml"] = PROVISIONING_DATASOURCE
    return files


def write_all(directory: Path) -> list[Path]:
    written = []
    for name, content in render_all().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query in a dashboard, for the end-to-end check."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]
