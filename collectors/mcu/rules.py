"""The mcu kind's alert: a meetings counter that keeps going back overcounts the meetings held."""

from __future__ import annotations

from typing import Any

from collectors.contrib import TARGETS_GROUP, RuleContext, alert


def rules(context: RuleContext) -> list[dict[str, Any]]:
    return [{"name": TARGETS_GROUP, "rules": [
        alert(
            "EgovMcuCounterGoingBack", "increase(egov_mcu_meetings_held_resets_total[1h]) > 2", "warning",
            "Bộ đếm cuộc họp của MCU {{ $labels.target }} lùi lại nhiều lần trong 1 giờ",
            "The meetings counter of MCU {{ $labels.target }} went back several times within an hour",
            "Mỗi lần lùi được tính là MCU khởi động lại; lùi liên tục (hai MCU sau một địa chỉ, bộ đếm lỗi) làm "
            "số cuộc họp bị tính thừa / Each fall counts as an MCU restart; repeated falls (two MCUs behind one "
            "address, a faulty counter) overcount meetings held.", "0m"),
    ]}]
