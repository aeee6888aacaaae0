"""The dns kind's alert: a name of the province that does not resolve, as a citizen's resolver sees it.

A portal whose name fails is down for every citizen even while its server answers (the http kind probes it by
address), so the name alerts on its own, critical, saying since when and why (NXDOMAIN, SERVFAIL, no answer, a
wrong address, DNSSEC bogus) from the probe's failure reason.
"""

from __future__ import annotations

from typing import Any

from collectors.contrib import TARGET_NAME, TARGET_SINCE, TARGETS_GROUP, RuleContext, alert, since, target_down

# The reason its probes failed in the last 15 minutes.
REASON = ('{{ with printf "topk(1, increase(egov_target_probe_failures_total{target=%q}[15m]))" $labels.target '
          '| query }}{{ . | first | label "reason" }}{{ else }}?{{ end }}')


def rules(context: RuleContext) -> list[dict[str, Any]]:
    since_vi, since_en = since(TARGET_SINCE, "$labels.target", context.utc_offset)
    return [{"name": TARGETS_GROUP, "rules": [
        alert(
            "EgovDnsNameNotResolving", target_down("dns"), "critical",
            f"Tên miền {TARGET_NAME} không phân giải được ({REASON}){since_vi}",
            f"Name {TARGET_NAME} does not resolve ({REASON}){since_en}",
            "nxdomain: bản ghi bị xóa hoặc tên miền hết hạn; servfail: máy chủ DNS hoặc ủy quyền hỏng; timeout: "
            "máy chủ DNS không trả lời; wrong_answer: địa chỉ khác địa chỉ đã công bố (kiểm tra chiếm quyền); "
            "dnssec_bogus: chữ ký DNSSEC sai hoặc hết hạn / nxdomain: the record was deleted or the domain "
            "expired; servfail: the DNS server or the delegation is broken; timeout: the DNS server does not "
            "answer; wrong_answer: not the published address (check for a hijack); dnssec_bogus: a wrong or "
            "expired DNSSEC signature. dig @<server> <name> <type> +dnssec from the agent's host.", "5m"),
    ]}]
