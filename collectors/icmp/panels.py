"""The icmp kind's panels: the WAN links' loss and round-trip time, by unit."""

from __future__ import annotations

from collectors.contrib import BoardContext, Panel, Query, drill_selector

WAN_LINK = 'egov_target_info{tags=~".*,wan_link,.*"}'  # a unit's link, not the other devices pinged there


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "wan":
        return []
    sel, _scope = drill_selector(board)
    return [
        Panel("Mất gói ICMP / ICMP loss", "timeseries", width=12, unit="percentunit",
              queries=[Query(f"egov_icmp_loss_ratio{{{sel}}} * on(target) group_left() {WAN_LINK}",
                             legend="{{unit}}")]),
        Panel("Độ trễ ICMP / ICMP round-trip time", "timeseries", width=12, unit="s",
              queries=[Query(f'egov_icmp_rtt_seconds{{stat="avg", {sel}}}', legend="{{unit}}")]),
    ]
