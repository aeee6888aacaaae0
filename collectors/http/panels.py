"""The http kind's panels: the portals board, every portal's state, response time and certificates."""

from __future__ import annotations

from collectors.contrib import BoardContext, Panel, Query, mappings_up


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "portals":
        return []
    sel = 'province="$province", collector="http"'
    return [
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
                   "properties": [{"id": "mappings", "value": mappings_up()},
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
