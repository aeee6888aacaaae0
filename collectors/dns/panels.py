"""The dns kind's Grafana panels, on the portals dashboard: are the province's names resolving, how fast, why not."""

from __future__ import annotations

from collectors.contrib import STAT, BoardContext, Panel, Query, mappings_up

SEL = 'province="$province", collector="dns"'
HIDDEN = {"Time": True, "__name__": True, "collector": True, "level": True, "province": True, "commune": True,
          "site": True, "department": True, "district": True}


def panels(board: BoardContext) -> list[Panel]:
    if board.board != "portals":
        return []
    return [
        Panel("Tên miền / Domain names", "row"),
        Panel("Tên miền phân giải được / Names resolving", "stat", width=8, height=5, unit="percentunit",
              queries=[Query(f"avg(egov_target_up{{{SEL}}})", instant=True)],
              options={**STAT, "colorMode": "background"}),
        Panel("Thời gian phân giải / Lookup time", "timeseries", width=16, height=5, unit="s",
              queries=[Query(f"egov_dns_lookup_seconds{{{SEL}}}", legend="{{target}}")]),
        Panel("Từng tên miền / Each name", "table", width=24, height=10,
              queries=[Query(f"egov_target_up{{{SEL}}}", instant=True, table=True),
                       Query(f"egov_dns_lookup_seconds{{{SEL}}}", instant=True, table=True),
                       Query(f"egov_dns_rcode{{{SEL}}}", instant=True, table=True),
                       Query(f"egov_dns_dnssec_validated{{{SEL}}}", instant=True, table=True)],
              transformations=[
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {
                      "indexByName": {"target": 0, "unit": 1}, "excludeByName": HIDDEN,
                      "renameByName": {"Value #A": "Phân giải / Resolves", "Value #B": "Thời gian / Time (s)",
                                       "Value #C": "Mã trả lời / Rcode", "Value #D": "DNSSEC"}}}],
              field_config={"overrides": [
                  {"matcher": {"id": "byName", "options": "Phân giải / Resolves"},
                   "properties": [{"id": "mappings", "value": mappings_up()},
                                  {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]}),
        Panel("Lỗi phân giải theo nguyên nhân / Lookup failures by reason", "timeseries", width=24, unit="short",
              queries=[Query(f"sum by (reason) (increase(egov_target_probe_failures_total{{{SEL}}}"
                             "[$__rate_interval]))", legend="{{reason}}")]),
    ]
