"""The http kind's alerts: a portal down, and the certificates on either side of its TLS running out."""

from __future__ import annotations

from typing import Any

from collectors.contrib import TARGET_NAME, TARGET_SINCE, TARGETS_GROUP, RuleContext, alert, since, target_down


def rules(context: RuleContext) -> list[dict[str, Any]]:
    since_vi, since_en = since(TARGET_SINCE, "$labels.target", context.utc_offset)
    return [{"name": TARGETS_GROUP, "rules": [
        alert(
            "EgovPortalDown", target_down("http"), "critical",
            f"Cổng {TARGET_NAME} không truy cập được{since_vi}",
            f"Portal {TARGET_NAME} is down{since_en}",
            "Xem egov_target_probe_failures_total{reason} để biết nguyên nhân (TLS, mã trạng thái, nội dung) / "
            "See egov_target_probe_failures_total by reason (TLS, status, content).", "5m"),
        alert(
            "EgovTlsCertificateExpiring", "(egov_http_tls_cert_expiry_timestamp_seconds - time()) < 14 * 86400",
            "warning",
            f"Chứng thư TLS của {TARGET_NAME} hết hạn trong {{{{ $value | humanizeDuration }}}}",
            f"TLS certificate of {TARGET_NAME} expires in {{{{ $value | humanizeDuration }}}}",
            "Gia hạn chứng thư số cho cổng / Renew the portal's certificate.", "1h"),
        alert(
            "EgovClientCertificateExpiring",
            "(egov_http_tls_client_cert_expiry_timestamp_seconds - time()) < 14 * 86400", "warning",
            "Chứng thư máy khách của agent cho {{ $labels.target }} hết hạn trong {{ $value | humanizeDuration }}",
            "The agent's client certificate for {{ $labels.target }} expires in {{ $value | humanizeDuration }}",
            "Gia hạn chứng thư (client_cert) trước khi cổng từ chối / Renew client_cert before the portal "
            "refuses it.", "1h"),
    ]}]
