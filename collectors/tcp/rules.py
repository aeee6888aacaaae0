"""The tcp kind's alert: a system hosted at the THDL that no longer accepts connections."""

from __future__ import annotations

from typing import Any

from collectors.contrib import TARGET_NAME, TARGET_SINCE, TARGETS_GROUP, RuleContext, alert, since, target_down


def rules(context: RuleContext) -> list[dict[str, Any]]:
    since_vi, since_en = since(TARGET_SINCE, "$labels.target", context.utc_offset)
    return [{"name": TARGETS_GROUP, "rules": [
        alert(
            "EgovHostedSystemDown", target_down("tcp"), "warning",
            f"Hệ thống {TARGET_NAME} tại THDL không phản hồi{since_vi}",
            f"Hosted system {TARGET_NAME} is down{since_en}",
            "Kiểm tra máy chủ ứng dụng và cổng dịch vụ / Check the application server and its port.", "5m"),
    ]}]
