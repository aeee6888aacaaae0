"""The host kind's panels: the THDL servers' CPU, memory, disks, load, network and processes."""

from __future__ import annotations

from collectors.contrib import BoardContext, Panel, Query


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "datacentre":
        return []
    host = 'province="$province", collector="host"'
    return [
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
    ]
