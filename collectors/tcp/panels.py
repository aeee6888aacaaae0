"""The tcp kind's panels: the systems hosted at the THDL, up or not."""

from __future__ import annotations

from collectors.contrib import BoardContext, Panel, Query


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "datacentre":
        return []
    tcp = 'province="$province", collector="tcp"'
    return [
        Panel("Hệ thống tại THDL / Systems hosted at the THDL", "row"),
        Panel("Hệ thống hoạt động / Systems up", "stat", width=8, height=5, unit="none",
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
    ]
