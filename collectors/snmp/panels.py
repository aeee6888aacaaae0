"""The snmp kind's panels: the WAN routers' uplinks (utilisation, traffic, errors) and reboots, by unit."""

from __future__ import annotations

from collectors.contrib import BoardContext, Panel, Query, drill_selector


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "wan":
        return []
    sel, _scope = drill_selector(board)
    return [
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
