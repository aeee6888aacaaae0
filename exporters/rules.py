"""Prometheus recording and alerting rules generated from the province configuration.

The rules are generated, not hand-written, so they follow the configuration: which KPIs exist,
which of them measure coverage at which level (a commune's link down, a whole district down),
which carry an availability objective (multi-window multi-burn-rate alerts, as Sloth generates
them), each collector's interval (staleness), and the province's reporting quarters.

Province-wide KPIs are sums of numerators over sums of denominators across every agent, so
shards and sites add up. Every alert has Vietnamese and English summaries, a runbook hint, and the ``unit`` and
hierarchy labels (``district``...) of what it is about, for routing; province-wide alerts (a KPI
below target, the agent down) have none, since Prometheus drops empty labels.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import CoverageMeasure, KpiSpec, LoadedConfig, Selector

# Sloth's defaults for a 30-day objective: (long window, short window, burn factor, severity).
BURN_ALERTS = (
    ("1h", "5m", 14.4, "critical"), ("6h", "30m", 6.0, "critical"),
    ("1d", "2h", 3.0, "warning"), ("3d", "6h", 1.0, "warning"),
)
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
AVAILABILITY_WINDOWS = ("1d", "7d", "30d")
QUARTERS_GENERATED = 8  # regenerate the rules within two years
YEARS_GENERATED = 3
SINCE_LOOKBACK = "1h"  # a gap in a KPI's data this long does not restart its «below target since»


def _matchers(selector: Selector, loaded: LoadedConfig, level: str | None = None) -> str:
    """PromQL label matchers for the targets a KPI selects (tags go through egov_target_info)."""
    parts = []
    if selector.collector:
        parts.append(f'collector="{selector.collector}"')
    if level:
        parts.append(f'level="{level}"')
    if selector.under:
        under_level = _unit_level(loaded, selector.under)
        parts.append(f'{under_level}="{selector.under}"')
    return ",".join(parts)


def _unit_level(loaded: LoadedConfig, unit_id: str) -> str:
    from agent.units import UnitIndex

    return UnitIndex(loaded.config).units[unit_id].level


def _selected(metric: str, selector: Selector, loaded: LoadedConfig, level: str | None = None,
              inner: str | None = None) -> str:
    """``metric`` for the selected targets; ``inner`` wraps the selector (e.g. ``increase(%s[1h])``)."""
    series = f"{metric}{{{_matchers(selector, loaded, level)}}}"
    if inner:
        series = inner % series
    if not selector.tags:
        return series
    # One matcher per tag: Prometheus accepts several on one label, and all must hold.
    info = "egov_target_info{" + ",".join(f'tags=~".*,{tag},.*"' for tag in selector.tags) + "}"
    return f"({series} * on(target) group_left() {info})"


def _alert(name: str, expr: str, severity: str, summary_vi: str, summary_en: str, runbook: str,
           for_: str = "5m", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {"summary_vi": summary_vi, "summary_en": summary_en, "summary": summary_en,
                        "runbook": runbook},
    }


def _kpi_group(loaded: LoadedConfig) -> dict[str, Any]:
    value = "kpi:egov_kpi_value:province"
    target = "kpi:egov_kpi_target:max"
    rules: list[dict[str, Any]] = [
        {"record": "kpi:egov_kpi_numerator:sum", "expr": "sum by (province, kpi) (egov_kpi_numerator)"},
        {"record": "kpi:egov_kpi_denominator:sum", "expr": "sum by (province, kpi) (egov_kpi_denominator)"},
        {"record": value, "expr": (
            "kpi:egov_kpi_numerator:sum / (kpi:egov_kpi_denominator:sum > 0)\n"
            "or sum by (province, kpi) (egov_kpi_value unless on(province, kpi) egov_kpi_denominator)")},
        {"record": target, "expr": "max by (province, kpi, phase, comparator, origin, bound) (egov_kpi_target)"},
        {"record": "kpi:egov_kpi_target_deadline:max",
         "expr": "max by (province, kpi) (egov_kpi_target_deadline_timestamp_seconds)"},
        {"record": "kpi_group:egov_kpi_group_numerator:sum",
         "expr": "sum by (province, kpi, group_level, group) (egov_kpi_group_numerator)"},
        {"record": "kpi_group:egov_kpi_group_denominator:sum",
         "expr": "sum by (province, kpi, group_level, group) (egov_kpi_group_denominator)"},
        {"record": "kpi_group:egov_kpi_group_value:ratio",
         "expr": "kpi_group:egov_kpi_group_numerator:sum / (kpi_group:egov_kpi_group_denominator:sum > 0)"},
        # How far a KPI is from its active target, present only while the target is not met; the target's
        # origin (plan or ops) stays on the series, so a plan shortfall and an ops miss never share an alert.
        {"record": "kpi:egov_kpi_shortfall:abs", "expr": (
            f'(max by (province, kpi, origin) ({target}{{comparator=~">=|approx|="}}) - on(province, kpi) group_left '
            f'{value})'
            f' > 1e-9\n'
            f'or (max by (province, kpi, origin) ({target}{{comparator=">"}}) - on(province, kpi) group_left {value})'
            f' >= 0\n'
            f'or ({value} - on(province, kpi) group_right max by (province, kpi, origin) '
            f'({target}{{comparator="<="}})) > 1e-9\n'
            f'or ({value} - on(province, kpi) group_right max by (province, kpi, origin) '
            f'({target}{{comparator="<"}})) >= 0\n'
            f'or (max by (province, kpi, origin) ({target}{{bound="lower"}}) - on(province, kpi) group_left {value})'
            f' > 1e-9\n'
            f'or ({value} - on(province, kpi) group_right max by (province, kpi, origin) '
            f'({target}{{bound="upper"}})) > 1e-9')},
        *_below_target_since(value, target),
    ]
    info = ("group_left(title_vi, title_en, document, section) "
            "max by (province, kpi, title_vi, title_en, document, section) (egov_kpi_info)")
    overdue = "(kpi:egov_kpi_target_deadline:max < time())"
    far = ("(kpi:egov_kpi_shortfall:abs / on(province, kpi) (max by (province, kpi) (kpi:egov_kpi_target:max) > 0)"
           " >= 0.1)")
    below = f'kpi:egov_kpi_shortfall:abs{{origin="plan"}} * on(province, kpi) {info}'
    missed = 'kpi:egov_kpi_shortfall:abs{origin="ops"} * on(province, kpi) group_left(title_vi, title_en) ' \
             'max by (province, kpi, title_vi, title_en) (egov_kpi_info)'
    runbook = ("Xem egov_kpi_info để biết chỉ tiêu và trích dẫn; tìm đơn vị kém nhất trên bảng KPI / "
               "See egov_kpi_info for the target and its citation; find the worst units on the KPI dashboard.")
    rules += [
        _alert("EgovKpiBelowTargetCritical", f"{below}\nand on(province, kpi) ({overdue} or {far})", "critical",
               "KPI {{ $labels.kpi }} ({{ $labels.title_vi }}) dưới chỉ tiêu kế hoạch: thiếu {{ $value | humanize }} "
               "(đã quá hạn hoặc thiếu từ 10% chỉ tiêu)",
               "KPI {{ $labels.kpi }} ({{ $labels.title_en }}) is below its plan target by {{ $value | humanize }} "
               "(deadline passed or short by 10% of the target or more)", runbook, "15m"),
        _alert("EgovKpiBelowTarget", f"{below}\nunless on(province, kpi) ({overdue} or {far})", "warning",
               "KPI {{ $labels.kpi }} ({{ $labels.title_vi }}) dưới chỉ tiêu kế hoạch: thiếu {{ $value | humanize }}",
               "KPI {{ $labels.kpi }} ({{ $labels.title_en }}) is below its plan target by {{ $value | humanize }}",
               runbook, "15m"),
        # The operations team's own objectives: no plan citation, their own name and route.
        _alert("EgovOpsObjectiveMissed", missed, "warning",
               "Mục tiêu vận hành (không phải chỉ tiêu kế hoạch) {{ $labels.kpi }} ({{ $labels.title_vi }}) chưa đạt: "
               "thiếu {{ $value | humanize }}",
               "Ops objective (not a plan target) {{ $labels.kpi }} ({{ $labels.title_en }}) is missed by "
               "{{ $value | humanize }}",
               "Mục tiêu do tổ vận hành tự đặt; xem bảng điều khiển của lĩnh vực / An objective the operations "
               "team set itself; see the area's dashboard.", "15m"),
        _alert("EgovKpiStale", "max by (province, kpi) (egov_kpi_stale) == 1", "warning",
               "Số liệu KPI {{ $labels.kpi }} đã cũ, cần cập nhật", "KPI {{ $labels.kpi }} data is stale",
               "Cập nhật tệp số liệu thủ công hoặc kiểm tra nguồn dữ liệu / Update the manual data file or "
               "check the data source.", "1h"),
    ]
    return {"name": "egov_kpi", "interval": "1m", "rules": rules}


def _below_target_since(value: str, target: str) -> list[dict[str, Any]]:
    """Since when each KPI has missed its active target, for the overview dashboard.

    Computed here rather than in the agent: the shortfall is province-wide only after the recording rules
    sum every shard, and Prometheus keeps it across agent restarts. The since-series refers to its own last
    value (a rule group is evaluated in order, reading what it stored before), so it holds while the KPI
    stays short; a gap in the data of up to SINCE_LOOKBACK (scrapes failing, an agent restarting) does not
    restart it, but an evaluation where the KPI met its target does."""
    since = "kpi:egov_kpi_below_target_since:timestamp"
    met_at = "kpi:egov_kpi_target_met_at:timestamp"
    shortfall = "kpi:egov_kpi_shortfall:abs"
    keep = f"max by (province, kpi) (last_over_time({since}[{SINCE_LOOKBACK}]))"
    return [
        {"record": met_at, "expr": (
            f"time() + 0 * max by (province, kpi) ({value} unless on(province, kpi) {shortfall})\n"
            f"and on(province, kpi) {target}")},
        {"record": since, "expr": (
            f"(max by (province, kpi, origin) (last_over_time({since}[{SINCE_LOOKBACK}]))\n"
            f"  and on(province, kpi) {shortfall})\n"
            f"unless on(province, kpi) (max by (province, kpi) (last_over_time({met_at}[{SINCE_LOOKBACK}]))"
            f" > on(province, kpi) {keep})\n"
            f"or time() + 0 * max by (province, kpi, origin) ({shortfall})")},
    ]


def _probe_coverages(loaded: LoadedConfig) -> list[tuple[KpiSpec, CoverageMeasure, int]]:
    """Coverage KPIs counted over a complete inventory of units by their own probes, with its size."""
    from agent.kpi import KpiEngine
    from agent.units import UnitIndex

    engine = KpiEngine(loaded.config, UnitIndex(loaded.config), None)
    out = []
    for kpi in loaded.config.kpis:
        measure = kpi.measure
        if not isinstance(measure, CoverageMeasure) or not measure.over_units or measure.from_source:
            continue
        inventory = engine.inventory_of(measure)
        if inventory is not None and inventory.complete:
            out.append((kpi, measure, len(inventory.members)))
    return out


def _coverage_group(loaded: LoadedConfig) -> dict[str, Any] | None:
    """Per-unit state of every coverage KPI over units (the agent's egov_kpi_member_up), a unit-down alert,
    and one alert per group (district) whose units are all down at once: the district uplink, one alert
    rather than 23."""
    levels = [lv for lv in loaded.config.levels if lv != "province"]
    rules: list[dict[str, Any]] = []
    for kpi, measure, _size in _probe_coverages(loaded):
        level = measure.select.level or "unit"
        by = ", ".join(["province", "kpi", "unit", *levels])
        record = "unit:egov_kpi_unit_up:bool"
        rules.append({"record": record,
                      "expr": f'max by ({by}) (egov_kpi_member_up{{kpi="{kpi.id}"}})'})
        rules.append(_alert(
            "EgovUnitDown", f'{record}{{kpi="{kpi.id}"}} == 0', "warning",
            f"{level} {{{{ $labels.unit }}}} mất kết nối ({kpi.title_vi})",
            f"{level} {{{{ $labels.unit }}}} is down ({kpi.title_en})",
            "Kiểm tra đường truyền và thiết bị định tuyến của đơn vị (ping, SNMP ifOperStatus) / Check the unit's "
            "link and router (ping, SNMP ifOperStatus).", "5m", {"kpi": kpi.id}))
        group = measure.group_by
        if group and group in levels:
            down = f'count by (province, kpi, {group}) ({record}{{kpi="{kpi.id}"}} == 0)'
            total = f'count by (province, kpi, {group}) ({record}{{kpi="{kpi.id}"}})'
            rules.append(_alert(
                "EgovGroupAllDown", f"({down} == {total}) and {total} > 1", "critical",
                f"Toàn bộ {{{{ $value }}}} {level} của {group} {{{{ $labels.{group} }}}} mất kết nối: nghi sự cố "
                f"đường truyền cấp {group}",
                f"All {{{{ $value }}}} {level} units of {group} {{{{ $labels.{group} }}}} are down: suspect the "
                f"{group} uplink", "Kiểm tra đường trục tới trung tâm huyện trước / Check the district uplink "
                "first; the unit alerts are inhibited meanwhile.", "3m",
                {"kpi": kpi.id}))
    if not rules:
        return None
    return {"name": "egov_coverage", "interval": "30s", "rules": rules}


def _period_bounds(loaded: LoadedConfig, now: dt.date) -> list[tuple[str, dt.date, int, int]]:
    """(kind, first day, start, end as Unix times) of the current and coming quarters and years."""
    from agent.periods import add_months, period_containing

    tz = ZoneInfo(loaded.config.province.timezone)
    reporting = loaded.config.reporting
    out = []
    for kind, count, months in (("quarter", QUARTERS_GENERATED, 3), ("year", YEARS_GENERATED, 12)):
        period = period_containing(kind, now, reporting)
        for _ in range(count):
            t0 = int(dt.datetime.combine(period.start, dt.time(), tz).timestamp())
            t1 = int(dt.datetime.combine(period.end, dt.time(), tz).timestamp())
            out.append((kind, period.start, t0, t1))
            period = period_containing(kind, add_months(period.start, months), reporting)
    return out


def _period_groups(loaded: LoadedConfig, now: dt.date) -> list[dict[str, Any]]:
    """Reporting-period figures from the counters: availability per target, and the period form of coverage
    («230/230 xã kết nối» over a quarter or a year).

    Every hour, each counter's increase over the last hour is recorded once, then copied with the
    period it falls in as labels (one cheap rule per period, matching only inside it). Summing
    those hourly samples over the period needs no subquery: a target's availability, a member's
    share of the period up. A member counts as connected when its share reaches the KPI's
    ``connected_min_up`` (an ops threshold); the denominator is the inventory from the
    configuration, so a unit with no data counts against the KPI. Hourly precision: the report
    (``egov-agent report``) computes the exact figure over any window with ``increase()``.
    """
    counters = [("target:egov_probe_successes", "egov_target_probe_successes_total"),
                ("target:egov_probes", "egov_target_probes_total")]
    coverages = _probe_coverages(loaded)
    if coverages:
        counters += [("kpi_member:egov_kpi_member_up_seconds", "egov_kpi_member_up_seconds_total"),
                     ("kpi_member:egov_kpi_member_observed_seconds", "egov_kpi_member_observed_seconds_total")]
    hourly: list[dict[str, Any]] = [{"record": f"{name}:increase1h", "expr": f"increase({metric}[1h])"}
                                    for name, metric in counters]
    for kind, start, t0, t1 in _period_bounds(loaded, now):
        labels = {"period": kind, "period_start": start.isoformat()}
        within = f"and on() (vector(time()) > {t0} <= {t1})"
        hourly += [{"record": f"{name}:increase1h_by_period", "labels": labels, "expr": f"{name}:increase1h {within}"}
                   for name, _ in counters]
    rules: list[dict[str, Any]] = []
    spans = (("quarter", 93), ("year", 366))
    for kind, days in spans:
        rules.append({"record": "target:egov_availability:ratio_period", "expr": (
            f'sum_over_time(target:egov_probe_successes:increase1h_by_period{{period="{kind}"}}[{days}d])\n'
            f'/ (sum_over_time(target:egov_probes:increase1h_by_period{{period="{kind}"}}[{days}d]) > 0)')})
    share = "kpi_member:egov_kpi_member_up:ratio_period"
    for kind, days in spans if coverages else ():
        up, seen = ("kpi_member:egov_kpi_member_up_seconds:increase1h_by_period",
                    "kpi_member:egov_kpi_member_observed_seconds:increase1h_by_period")
        rules.append({"record": share, "expr": (f'sum_over_time({up}{{period="{kind}"}}[{days}d])\n'
                                                f'/ (sum_over_time({seen}{{period="{kind}"}}[{days}d]) > 0)')})
    reporting = loaded.config.reporting
    for kpi, measure, size in coverages:
        minimum = measure.connected_min_up if measure.connected_min_up is not None else reporting.connected_min_up
        connected = f'sum by (province, kpi, period, period_start) ({share}{{kpi="{kpi.id}"}} >= bool {minimum:g})'
        rules += [
            {"record": "kpi:egov_kpi_period_coverage_numerator:sum", "expr": connected},
            {"record": "kpi:egov_kpi_period_coverage_denominator:sum", "expr": f"{connected} * 0 + {size}"},
            {"record": "kpi:egov_kpi_period_coverage:ratio", "labels": {"connected_min_up": f"{minimum:g}"},
             "expr": f"{connected} / {size}"},
        ]
    return [{"name": "egov_hourly", "interval": "1h", "rules": hourly},
            {"name": "egov_period", "interval": "1h", "rules": rules}]


def _availability_group(loaded: LoadedConfig) -> dict[str, Any]:
    """Availability per target over rolling windows (the reporting periods' come from _period_groups)."""
    rules: list[dict[str, Any]] = []
    for window in AVAILABILITY_WINDOWS:
        rules.append({"record": f"target:egov_availability:ratio_{window}", "expr": (
            f"increase(egov_target_probe_successes_total[{window}])\n"
            f"/ (increase(egov_target_probes_total[{window}]) > 0)")})
    return {"name": "egov_availability", "interval": "1m", "rules": rules}


def _objective(kpi: KpiSpec) -> float | None:
    targets = [t for t in kpi.targets if t.comparator in (">=", ">", "approx") and t.value is not None]
    return targets[-1].value if targets else None


def _slo_group(loaded: LoadedConfig) -> dict[str, Any] | None:
    rules: list[dict[str, Any]] = []
    for kpi in loaded.config.kpis:
        if kpi.measure.kind != "availability":
            continue
        objective = _objective(kpi)
        if objective is None or not 0 < objective < 1:
            continue
        budget = 1 - objective
        select = kpi.measure.select
        for window in SLI_WINDOWS:
            good = _selected("egov_target_probe_successes_total", select, loaded, inner=f"increase(%s[{window}])")
            total = _selected("egov_target_probes_total", select, loaded, inner=f"increase(%s[{window}])")
            rules.append({"record": f"kpi:egov_sli_error:ratio_rate{window}", "labels": {"kpi": kpi.id},
                          "expr": f"1 - (sum({good}) / (sum({total}) > 0))"})
        for long, short, factor, severity in BURN_ALERTS:
            threshold = round(factor * budget, 10)
            expr = (f'kpi:egov_sli_error:ratio_rate{long}{{kpi="{kpi.id}"}} > {threshold}\n'
                    f'and kpi:egov_sli_error:ratio_rate{short}{{kpi="{kpi.id}"}} > {threshold}')
            rules.append(_alert(
                "EgovAvailabilityBurnRate", expr, severity,
                f"{kpi.title_vi}: ngân sách lỗi tiêu hao nhanh gấp {factor:g} lần ({long}/{short})",
                f"{kpi.title_en}: error budget burning {factor:g}x too fast ({long}/{short} windows)",
                "Mục tiêu vận hành (không phải chỉ tiêu kế hoạch); xem bảng điều khiển THDL / An operations "
                "objective, not a plan target; see the data-centre dashboard.",
                "2m" if severity == "critical" else "15m",
                {"kpi": kpi.id, "window": f"{long}/{short}"}))
    if not rules:
        return None
    return {"name": "egov_slo", "interval": "30s", "rules": rules}


def _targets_group(loaded: LoadedConfig) -> dict[str, Any]:
    collectors = loaded.config.collectors
    rules: list[dict[str, Any]] = []
    if "http" in collectors:
        rules.append(_alert(
            "EgovPortalDown", 'egov_target_up{collector="http"} == 0', "critical",
            "Cổng {{ $labels.target }} không truy cập được", "Portal {{ $labels.target }} is down",
            "Xem egov_target_probe_failures_total{reason} để biết nguyên nhân (TLS, mã trạng thái, nội dung) / "
            "See egov_target_probe_failures_total by reason (TLS, status, content).", "5m"))
        rules.append(_alert(
            "EgovTlsCertificateExpiring", "(egov_http_tls_cert_expiry_timestamp_seconds - time()) < 14 * 86400",
            "warning",
            "Chứng thư TLS của {{ $labels.target }} hết hạn trong {{ $value | humanizeDuration }}",
            "TLS certificate of {{ $labels.target }} expires in {{ $value | humanizeDuration }}",
            "Gia hạn chứng thư số cho cổng / Renew the portal's certificate.", "1h"))
        rules.append(_alert(
            "EgovClientCertificateExpiring",
            "(egov_http_tls_client_cert_expiry_timestamp_seconds - time()) < 14 * 86400", "warning",
            "Chứng thư máy khách của agent cho {{ $labels.target }} hết hạn trong {{ $value | humanizeDuration }}",
            "The agent's client certificate for {{ $labels.target }} expires in {{ $value | humanizeDuration }}",
            "Gia hạn chứng thư (client_cert) trước khi cổng từ chối / Renew client_cert before the portal "
            "refuses it.", "1h"))
    if "mcu" in collectors:
        rules.append(_alert(
            "EgovMcuCounterGoingBack", "increase(egov_mcu_meetings_held_resets_total[1h]) > 2", "warning",
            "Bộ đếm cuộc họp của MCU {{ $labels.target }} lùi lại nhiều lần trong 1 giờ",
            "The meetings counter of MCU {{ $labels.target }} went back several times within an hour",
            "Mỗi lần lùi được tính là MCU khởi động lại; lùi liên tục (hai MCU sau một địa chỉ, bộ đếm lỗi) làm "
            "số cuộc họp bị tính thừa / Each fall counts as an MCU restart; repeated falls (two MCUs behind one "
            "address, a faulty counter) overcount meetings held.", "0m"))
    if "tcp" in collectors:
        rules.append(_alert(
            "EgovHostedSystemDown", 'egov_target_up{collector="tcp"} == 0', "warning",
            "Hệ thống {{ $labels.target }} tại THDL không phản hồi", "Hosted system {{ $labels.target }} is down",
            "Kiểm tra máy chủ ứng dụng và cổng dịch vụ / Check the application server and its port.", "5m"))
    if "power" in collectors:
        from collectors.power import PowerSettings  # its thresholds are the power collector's settings

        power = PowerSettings.model_validate(collectors["power"].settings)
        rules.append(_alert(
            "EgovUpsOnBattery", "egov_ups_on_battery == 1", "critical",
            "UPS {{ $labels.target }} đang chạy bằng ắc quy (mất điện lưới)",
            "UPS {{ $labels.target }} is on battery (mains lost)",
            "Kiểm tra điện lưới, ATS và máy phát; theo dõi egov_ups_battery_runtime_seconds / "
            "Check mains, the ATS and the generator; watch egov_ups_battery_runtime_seconds.", "1m"))
        rules.append(_alert(
            "EgovUpsLowRuntime", f"egov_ups_battery_runtime_seconds < {power.runtime_low_seconds:g}", "critical",
            "UPS {{ $labels.target }} chỉ còn {{ $value | humanizeDuration }} thời gian lưu điện",
            "UPS {{ $labels.target }} has {{ $value | humanizeDuration }} of battery runtime left",
            "Chuẩn bị tắt có kiểm soát các hệ thống không thiết yếu; kiểm tra ắc quy / "
            "Prepare a controlled shutdown of non-essential systems; check the batteries.", "1m"))
        rules.append(_alert(
            "EgovTemperatureHigh", f"egov_env_temperature_celsius > {power.temperature_high_celsius:g}", "warning",
            "Nhiệt độ tại {{ $labels.target }} ({{ $labels.sensor }}) là {{ $value }} °C, "
            f"vượt ngưỡng {power.temperature_high_celsius:g} °C",
            "Temperature at {{ $labels.target }} ({{ $labels.sensor }}) is {{ $value }} °C, "
            f"above {power.temperature_high_celsius:g} °C",
            "Kiểm tra điều hòa chính xác và luồng gió của phòng máy / "
            "Check the precision air conditioning and the room's airflow.", "10m"))
    for name, spec in collectors.items():
        stale_after = int(3 * spec.interval + spec.timeout)
        rules.append(_alert(
            "EgovCollectorStale",
            f'time() - egov_collector_last_success_timestamp_seconds{{collector="{name}"}} > {stale_after}',
            "warning",
            f"Bộ thu thập {name} không có lần đo thành công nào trong {stale_after} giây",
            f"Collector {name} has had no successful probe for {stale_after} s",
            "Xem nhật ký của egov-agent (journalctl -u egov-agent) / Check the agent's log.", "5m",
            {"collector": name}))
    rules.append(_alert(
        "EgovCollectorFailing",
        "sum by (collector) (rate(egov_collector_errors_total[10m]))\n"
        "/ (sum by (collector) (rate(egov_collector_probes_total[10m])) > 0) > 0.5",
        "warning", "Hơn một nửa số lần đo của bộ thu thập {{ $labels.collector }} thất bại",
        "More than half of collector {{ $labels.collector }}'s probes fail",
        "Một sự cố chung (mạng, thông tin xác thực SNMP)? / A shared fault (network, SNMP credentials)?", "15m",
))
    return {"name": "egov_targets", "interval": "30s", "rules": rules}


def _agent_group(job: str) -> dict[str, Any]:
    return {"name": "egov_agent", "rules": [
        _alert("EgovAgentDown", f'up{{job="{job}"}} == 0 or absent(up{{job="{job}"}})', "critical",
               "Tác tử giám sát egov-agent không hoạt động: mọi KPI ngừng cập nhật",
               "egov-agent is down: no KPI is being updated",
               "systemctl status egov-agent; journalctl -u egov-agent", "5m"),
        _alert("EgovAgentOverloaded", "egov_agent_overloaded == 1", "warning",
               "egov-agent quá tải: không đo đúng hạn được, các lần đo trễ không bị tính là mất kết nối; "
               "đây không phải sự cố của tỉnh",
               "egov-agent is overloaded: it cannot time its own probes; late probes are not counted as "
               "targets down, so this is not a province outage",
               "Xem egov_agent_loop_lag_seconds và egov_collector_overrun_total; kiểm tra CPU của máy chủ (top, "
               "systemd-cgtop), giảm concurrency hoặc chia shard / See egov_agent_loop_lag_seconds and "
               "egov_collector_overrun_total; check the server's CPU (top, systemd-cgtop), lower concurrency "
               "or shard the province.", "2m"),
        _alert("EgovConfigReloadFailed", "egov_config_last_reload_successful == 0", "warning",
               "Tải lại cấu hình thất bại: cấu hình cũ vẫn đang dùng",
               "Configuration reload failed: the previous configuration stays in force",
               "egov-agent check-config /etc/egov-agent/config.yml", "5m"),
    ]}


def _seconds(duration: str) -> float:
    from agent.config import parse_duration

    return parse_duration(duration)


def build_rules(loaded: LoadedConfig, job: str = "egov-agent", now: float | None = None,
                evaluation_interval: str | None = None, alert_for: str | None = None) -> dict[str, Any]:
    """The rule groups. ``evaluation_interval`` and ``alert_for`` override every group's interval and
    every alert's ``for`` (a demonstration or an end-to-end test cannot wait fifteen minutes)."""
    today = dt.datetime.fromtimestamp(time.time() if now is None else now,
                                      ZoneInfo(loaded.config.province.timezone)).date()
    groups = [_kpi_group(loaded), _coverage_group(loaded), _availability_group(loaded), _slo_group(loaded),
              *_period_groups(loaded, today), _targets_group(loaded), _agent_group(job)]
    groups = [g for g in groups if g is not None]
    for group in groups:
        if evaluation_interval and group["name"] in ("egov_hourly", "egov_period"):
            # The hourly samples tile time: the window must equal the interval, or hours are counted twice;
            # a window shorter than a minute would hold fewer than two scrapes.
            tile = evaluation_interval if _seconds(evaluation_interval) >= 60 else "1m"
            for rule in group["rules"]:
                rule["expr"] = rule["expr"].replace("[1h]", f"[{tile}]")
            group["interval"] = tile
        elif evaluation_interval:
            group["interval"] = evaluation_interval
        if alert_for:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = alert_for
    return {"groups": groups}
