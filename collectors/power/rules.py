"""The power kind's alerts: mains lost, battery running out, the room too warm; the thresholds are the
power collector's own settings, so the agent and its alerts agree on them."""

from __future__ import annotations

from typing import Any

from collectors.contrib import TARGETS_GROUP, RuleContext, alert
from collectors.power.models import PowerSettings


def rules(context: RuleContext) -> list[dict[str, Any]]:
    power = PowerSettings.model_validate(context.settings)
    return [{"name": TARGETS_GROUP, "rules": [
        alert(
            "EgovUpsOnBattery", "egov_ups_on_battery == 1", "critical",
            "UPS {{ $labels.target }} đang chạy bằng ắc quy (mất điện lưới)",
            "UPS {{ $labels.target }} is on battery (mains lost)",
            "Kiểm tra điện lưới, ATS và máy phát; theo dõi egov_ups_battery_runtime_seconds / "
            "Check mains, the ATS and the generator; watch egov_ups_battery_runtime_seconds.", "1m"),
        alert(
            "EgovUpsLowRuntime", f"egov_ups_battery_runtime_seconds < {power.runtime_low_seconds:g}", "critical",
            "UPS {{ $labels.target }} chỉ còn {{ $value | humanizeDuration }} thời gian lưu điện",
            "UPS {{ $labels.target }} has {{ $value | humanizeDuration }} of battery runtime left",
            "Chuẩn bị tắt có kiểm soát các hệ thống không thiết yếu; kiểm tra ắc quy / "
            "Prepare a controlled shutdown of non-essential systems; check the batteries.", "1m"),
        alert(
            "EgovTemperatureHigh", f"egov_env_temperature_celsius > {power.temperature_high_celsius:g}", "warning",
            "Nhiệt độ tại {{ $labels.target }} ({{ $labels.sensor }}) là {{ $value }} °C, "
            f"vượt ngưỡng {power.temperature_high_celsius:g} °C",
            "Temperature at {{ $labels.target }} ({{ $labels.sensor }}) is {{ $value }} °C, "
            f"above {power.temperature_high_celsius:g} °C",
            "Kiểm tra điều hòa chính xác và luồng gió của phòng máy / "
            "Check the precision air conditioning and the room's airflow.", "10m"),
    ]}]
