"""The mcu kind's panels: the MCU's state, conferences, ports, registrations and meetings held."""

from __future__ import annotations

from collectors.contrib import STAT, BoardContext, Panel, Query, mappings_up


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "videoconference":
        return []
    mcu = 'province="$province", collector="mcu"'
    return [
        Panel("MCU", "row"),
        Panel("MCU hoạt động / MCU up", "stat", width=4, height=5, unit="none",
              queries=[Query(f"egov_target_up{{{mcu}}}", instant=True, legend="{{target}}")],
              options={**STAT, "colorMode": "background"},
              field_config={"defaults": {"mappings": mappings_up()}}),
        Panel("Phiên họp đang diễn ra / Conferences in progress", "stat", width=4, height=5, unit="none",
              queries=[Query(f"sum(egov_mcu_active_conferences{{{mcu}}})", instant=True)], options=STAT),
        Panel("Cổng đang dùng / Ports in use", "stat", width=4, height=5, unit="none",
              queries=[Query(f"sum(egov_mcu_ports_in_use{{{mcu}}})", instant=True, legend="in use"),
                       Query(f"sum(egov_mcu_ports_capacity{{{mcu}}})", instant=True, legend="total")],
              options={**STAT, "textMode": "value_and_name"}),
        Panel("Điểm cầu đăng ký / Endpoints registered", "stat", width=4, height=5, unit="none",
              queries=[Query(f"sum(egov_mcu_registered_endpoints{{{mcu}}})", instant=True)], options=STAT),
        Panel("Cuộc họp (24h) / Meetings held (24 h)", "stat", width=4, height=5, unit="none",
              queries=[Query(f"sum(increase(egov_mcu_meetings_held_total{{{mcu}}}[1d]))", instant=True)],
              options=STAT, field_config={"defaults": {"decimals": 0}}),
        Panel("MCU khởi động lại (24h) / MCU restarts (24 h)", "stat", width=4, height=5, unit="none",
              queries=[Query(f"sum(increase(egov_mcu_meetings_held_resets_total{{{mcu}}}[1d]))", instant=True)],
              options=STAT, field_config={"defaults": {"decimals": 0}}),
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
