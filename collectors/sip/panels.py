"""The sip kind's panels: the video-conference endpoints (điểm cầu) answering, by level and by the
board's drill-down group, why the others do not, and how SIP answers."""

from __future__ import annotations

from collectors.contrib import LEVEL_NAMES_VI, STAT, BoardContext, Panel, Query, drill_selector

RATIO_STEPS = {"defaults": {"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
    {"color": "red", "value": None}, {"color": "orange", "value": 0.95}, {"color": "green", "value": 0.98}]}}}


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "videoconference":
        return []
    group, level = board.group, board.level
    sip = 'province="$province", collector="sip"'
    sel, scope = drill_selector(board, 'collector="sip"')
    panels = [
        Panel("Điểm cầu trả lời SIP / Endpoints answering SIP", "stat", width=6, height=5, unit="none",
              queries=[Query(f"sum(egov_target_up{{{sip}}})", instant=True, legend="ready"),
                       Query(f"count(egov_target_up{{{sip}}})", instant=True, legend="all")],
              options={**STAT, "textMode": "value_and_name"}),
        Panel("Sẵn sàng theo cấp / Ready by level", "bargauge", width=6, height=5, unit="percentunit",
              queries=[Query(f"avg by (level) (egov_target_up{{{sip}}})", legend="{{level}}", instant=True)],
              options={**STAT, "orientation": "horizontal", "displayMode": "gradient"}, field_config=RATIO_STEPS),
    ]
    if group:
        at = f', level="{level}"' if level else ""
        panels.append(Panel(
            f"Điểm cầu {LEVEL_NAMES_VI.get(level or '', level or '').lower()} sẵn sàng theo "
            f"{LEVEL_NAMES_VI.get(group, group).lower()} / {(level or 'endpoint').capitalize()} endpoints ready by "
            f"{group}", "bargauge", width=12, height=10, unit="percentunit",
            queries=[Query(f"avg by ({group}) (egov_target_up{{{sip}{at}}})", legend=f"{{{{{group}}}}}",
                           instant=True)],
            options={**STAT, "orientation": "horizontal", "displayMode": "gradient"},
            field_config={"defaults": {**RATIO_STEPS["defaults"], "links": [{
                "title": "Xem các điểm cầu / Show its endpoints",
                "url": f"/d/egov-videoconference?var-province=$province&var-kpi=$kpi"
                       f"&var-{group}=${{__field.labels.{group}}}"}]}}))
    panels += [
        Panel(f"Điểm cầu chưa sẵn sàng / Endpoints not ready{scope}", "table", width=12 if group else 24,
              height=10,
              queries=[Query(f"egov_target_up{{{sel}}} == 0", instant=True, table=True),
                       Query(f"egov_sip_status_code{{{sel}}} and on(target) (egov_target_up{{{sel}}} == 0)",
                             instant=True, table=True)],
              transformations=[
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {
                      "excludeByName": {"Time": True, "__name__": True, "collector": True, "province": True,
                                        "department": True, "site": True, "Value #A": True},
                      "renameByName": {"Value #B": "Mã SIP / SIP status"}}}]),
        Panel(f"Lỗi theo nguyên nhân / Failures by reason{scope}", "timeseries", width=12, unit="short",
              queries=[Query(f"sum by (reason) (increase(egov_target_probe_failures_total{{{sel}}}"
                             f"[$__rate_interval]))", legend="{{reason}}")]),
        Panel(f"Thời gian trả lời SIP / SIP response time{scope}", "timeseries", width=12, unit="s",
              queries=[Query(f"quantile by (level) (0.95, egov_sip_response_seconds{{{sel}}})",
                             legend="p95 {{level}}"),
                       Query(f"max(egov_sip_response_seconds{{{sel}}})", legend="max")]),
        Panel("Mã trả lời SIP / SIP status codes", "bargauge", width=12, height=6, unit="none",
              description="0: không có trả lời / no answer",
              queries=[Query(f'count_values("code", egov_sip_status_code{{{sel}}})', legend="{{code}}",
                             instant=True)],
              options={**STAT, "orientation": "horizontal"}),
        Panel("Gửi lại qua UDP / UDP retransmissions", "timeseries", width=12, height=6, unit="short",
              queries=[Query(f"sum(egov_sip_retransmissions{{{sel}}})", legend="retransmissions")]),
    ]
    return panels
