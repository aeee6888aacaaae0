"""The dns kind's alerting rule: a name of the province that does not resolve, as a citizen's resolver sees it.

A portal whose name fails is down for every citizen even while its server answers (the http kind probes it by
address), so the name alerts on its own, critical, saying why (NXDOMAIN, SERVFAIL, no answer, a wrong address,
DNSSEC bogus) from the probe's failure reason. Plain data in the shape exporters/rules.py builds: the exporter
collects it with the other kinds' groups and adds each alert's ``runbook_url``.
"""

from __future__ import annotations

from typing import Any

# The target's configured name (egov_target_info), else its id; the reason its probes failed in the last 15 min.
NAME = ('{{ with printf "max by (name) (egov_target_info{target=%q,name!=\\"\\"})" $labels.target | query }}'
        '{{ . | first | label "name" }}{{ else }}{{ $labels.target }}{{ end }}')
REASON = ('{{ with printf "topk(1, increase(egov_target_probe_failures_total{target=%q}[15m]))" $labels.target '
          '| query }}{{ . | first | label "reason" }}{{ else }}?{{ end }}')


def rules() -> list[dict[str, Any]]:
    """Rule groups for the targets of the dns kind."""
    return [{"name": "egov_dns", "interval": "30s", "rules": [{
        "alert": "EgovDnsNameNotResolving",
        "expr": 'egov_target_up{collector="dns"} == 0',
        "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary_vi": f"Tên miền {NAME} không phân giải được ({REASON})",
            "summary_en": f"Name {NAME} does not resolve ({REASON})",
            "summary": f"Name {NAME} does not resolve ({REASON})",
            "description": "nxdomain: bản ghi bị xóa hoặc tên miền hết hạn; servfail: máy chủ DNS hoặc ủy quyền "
                           "hỏng; timeout: máy chủ DNS không trả lời; wrong_answer: địa chỉ khác địa chỉ đã công "
                           "bố (kiểm tra chiếm quyền); dnssec_bogus: chữ ký DNSSEC sai hoặc hết hạn / nxdomain: "
                           "the record was deleted or the domain expired; servfail: the DNS server or the "
                           "delegation is broken; timeout: the DNS server does not answer; wrong_answer: not the "
                           "published address (check for a hijack); dnssec_bogus: a wrong or expired DNSSEC "
                           "signature. dig @<server> <name> <type> +dnssec from the agent's host.",
        },
    }]}]
