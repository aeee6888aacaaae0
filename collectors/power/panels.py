"""The power kind's panels: the THDL's UPSes, PDUs and room temperature."""

from __future__ import annotations

from collectors.contrib import BoardContext, Panel, Query


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "datacentre":
        return []
    power = 'province="$province", collector="power"'
    return [
        Panel("Nguồn điện và môi trường / Power and environment", "row"),
        Panel("UPS chạy bằng ắc quy / UPS on battery", "stat", width=6, height=5, unit="none",
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
