"""The dns kind's Grafana panels, for the portals dashboard: are the province's names resolving, how fast, why not.

Plain data, one mapping per panel in the fields of exporters/grafana.py's ``Panel`` (``queries`` holding its
``Query`` fields), so the exporter lays them out with its own; ``$province`` is that dashboard's variable.
"""

from __future__ import annotations

from typing import Any

SEL = 'province="$province", collector="dns"'
UP_MAPPING = [{"type": "value", "options": {
    "1": {"text": "Hoạt động / up", "color": "green", "index": 0},
    "0": {"text": "Lỗi / failing", "color": "red", "index": 1},
}}]


def panels() -> list[dict[str, Any]]:
    return [
        {"title": "Tên miền / Domain names", "kind": "row"},
        {"title": "Tên miền phân giải được / Names resolving", "kind": "stat", "width": 8, "height": 5,
         "unit": "percentunit", "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
         "queries": [{"expr": f"avg(egov_target_up{{{SEL}}})", "instant": True}]},
        {"title": "Thời gian phân giải / Lookup time", "kind": "timeseries", "width": 16, "height": 5, "unit": "s",
         "queries": [{"expr": f"egov_dns_lookup_seconds{{{SEL}}}", "legend": "{{target}}"}]},
        {"title": "Từng tên miền / Each name", "kind": "table", "width": 24, "height": 10,
         "queries": [{"expr": f"egov_target_up{{{SEL}}}", "instant": True, "table": True},
                     {"expr": f"egov_dns_lookup_seconds{{{SEL}}}", "instant": True, "table": True},
                     {"expr": f"egov_dns_rcode{{{SEL}}}", "instant": True, "table": True},
                     {"expr": f"egov_dns_dnssec_validated{{{SEL}}}", "instant": True, "table": True}],
         "transformations": [
             {"id": "merge", "options": {}},
             {"id": "organize", "options": {
                 "indexByName": {"target": 0, "unit": 1},
                 "excludeByName": {"Time": True, "__name__": True, "collector": True, "level": True, "province": True,
                                   "commune": True, "site": True, "department": True, "district": True},
                 "renameByName": {"Value #A": "Phân giải / Resolves", "Value #B": "Thời gian / Time (s)",
                                  "Value #C": "Mã trả lời / Rcode", "Value #D": "DNSSEC"}}}],
         "field_config": {"overrides": [
             {"matcher": {"id": "byName", "options": "Phân giải / Resolves"},
              "properties": [{"id": "mappings", "value": UP_MAPPING},
                             {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]}},
        {"title": "Lỗi phân giải theo nguyên nhân / Lookup failures by reason", "kind": "timeseries", "width": 24,
         "unit": "short",
         "queries": [{"expr": f"sum by (reason) (increase(egov_target_probe_failures_total{{{SEL}}}"
                              "[$__rate_interval]))", "legend": "{{reason}}"}]},
    ]
