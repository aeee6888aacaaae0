"""Prometheus recording and alerting rules generated from the province configuration.

The rules are generated, not hand-written, so they follow the configuration: which KPIs exist,
which of them measure coverage at which level (a commune's link down, a whole district down),
which carry an availability objective (multi-window multi-burn-rate alerts, as Sloth generates
them), each collector's interval (staleness), and the province's reporting quarters.

Province-wide KPIs are sums of numerators over sums of denominators across every agent, so
shards and sites add up. Every alert has Vietnamese and English summaries, a runbook hint, and the ``unit`` and
hierarchy labels (``district``...) of what it is about, for routing; province-wide alerts (a KPI
below target, the agent down) have none, since Prometheus drops empty labels.

What is about one kind of target (a portal down, a UPS on battery) each kind brings itself, through its
descriptor's ``rules`` (collectors/<kind>/rules.py), for the kinds the configuration has a collector of;
this module adds the KPI-level rules and those about every collector.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

from agent.config.loading import LoadedConfig
from agent.config.schema import CoverageMeasure, KpiSpec, Selector
from collectors.contrib import TARGETS_GROUP, RuleContext, alerts_each_target, contributions
from collectors.contrib import alert as _alert
from collectors.contrib import since as _since

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
    from agent.engine.units import UnitIndex

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


# The shortfall in the KPI's own unit: (factor applied to the recorded shortfall, Vietnamese, English, format).
SHORTFALL_UNITS = {
    "ratio": (100, "điểm phần trăm", "percentage points", "%.1f"),
    "count": (1, "đơn vị", "units", "%.0f"),
    "vnd": (1, "đồng", "VND", "%.0f"),
    "value": (1, "", "", "%.4g"),
    "yes_no": (1, "", "", "%.0f"),
}
AT_RISK_HORIZON_DAYS = 365  # a plan deadline further ahead than this is a report fact, not an alert
DROP_SHARE = 0.05  # a direct KPI whose numerator falls by 5% of its denominator within an hour pages


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
    rules.append({"record": "kpi:egov_kpi_value:deriv6h", "expr": f"deriv({value}[6h])"})
    rules += _plan_alerts(loaded)
    rules += [
        # The operations team's own objectives: no plan citation, their own name and route. Availability
        # objectives are watched by their burn rate instead (one alert for one incident).
        _alert("EgovOpsObjectiveMissed", _ops_missed(loaded), "warning",
               "Mục tiêu vận hành (không phải chỉ tiêu kế hoạch) «{{ $labels.title_vi }}» chưa đạt: "
               "thiếu {{ $value | humanize }}",
               "Ops objective (not a plan target) «{{ $labels.title_en }}» is missed by {{ $value | humanize }}",
               "Mục tiêu do tổ vận hành tự đặt; xem bảng điều khiển của lĩnh vực / An objective the operations "
               "team set itself; see the area's dashboard.", "1h"),
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


def _kpis_by_unit(loaded: LoadedConfig, kpis: list[KpiSpec]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kpi in kpis:
        out.setdefault(kpi.unit, []).append(kpi.id)
    return out


def _ids(ids: list[str]) -> str:
    return "|".join(sorted(ids))


def _plan_alerts(loaded: LoadedConfig) -> list[dict[str, Any]]:
    """A plan shortfall is a report fact: it alerts (a warning, never a page) only while its deadline is
    ahead within the horizon and the trend of the last six hours does not reach the target by then; a
    deadline passed never alerts. A sudden fall of a direct KPI is a page: something broke just now.
    Coverage KPIs counted by the agent's own probes are left out of the fall: their units alert one by one."""
    titles = "kpi:egov_kpi_titles:max"
    info = f"group_left(title_vi, title_en, document, section) {titles}"
    deadline = "kpi:egov_kpi_target_deadline:max"
    left = f"({deadline} - time())"
    target = "kpi:egov_kpi_target:max"
    lower = f'max by (province, kpi) ({target}{{comparator=~">=|>|=|approx"}} or {target}{{bound="lower"}})'
    upper = f'max by (province, kpi) ({target}{{comparator=~"<=|<"}} or {target}{{bound="upper"}})'
    trend = "kpi:egov_kpi_value:deriv6h"
    # The shortfall left at the deadline if the last six hours' trend goes on; positive: still short.
    projected = (f'(kpi:egov_kpi_shortfall:abs{{origin="plan"}} - on(province, kpi) group_left() ({trend} * {left})'
                 f' and on(province, kpi) {lower})\n'
                 f'or (kpi:egov_kpi_shortfall:abs{{origin="plan"}} + on(province, kpi) group_left() ({trend} * {left})'
                 f' and on(province, kpi) {upper})')
    ahead = f"({left} > 0 < {AT_RISK_HORIZON_DAYS} * 86400)"
    # Recorded once for every alert below: the titles, and the projected shortfall of KPIs due within the horizon.
    rules = [{"record": titles,
              "expr": "max by (province, kpi, title_vi, title_en, document, section) (egov_kpi_info)"},
             {"record": "kpi:egov_kpi_shortfall:projected",
              "expr": f"(({projected}) >= 0)\nand on(province, kpi) {ahead}"}]
    for unit, ids in _kpis_by_unit(loaded, [k for k in loaded.config.kpis if k.targets]).items():
        factor, unit_vi, unit_en, fmt = SHORTFALL_UNITS[unit]
        scaled = f"(kpi:egov_kpi_shortfall:abs{{origin=\"plan\",kpi=~\"{_ids(ids)}\"}} * {factor:g})"
        shown = f'{{{{ $value | printf "{fmt}" }}}}'
        # A «>» target met with equality is short by 0: say that it must be exceeded, not «below by 0».
        short_vi = (f"{{{{ if eq $value 0.0 }}}}mới bằng chỉ tiêu, cần vượt{{{{ else }}}}thiếu {shown} {unit_vi}"
                    "{{ end }}").replace(" {{ end", "{{ end")
        short_en = (f"{{{{ if eq $value 0.0 }}}}only equal to it, must exceed it{{{{ else }}}}short by {shown} "
                    f"{unit_en}{{{{ end }}}}").replace(" {{ end", "{{ end")
        rules.append(_alert(
            "EgovKpiTargetAtRisk",
            f"{scaled} * on(province, kpi) {info}\nand on(province, kpi) kpi:egov_kpi_shortfall:projected",
            "warning",
            f"«{{{{ $labels.title_vi }}}}» chưa đạt chỉ tiêu kế hoạch ({{{{ $labels.document }}}} "
            f"{{{{ $labels.section }}}}): {short_vi}, theo xu hướng hiện tại sẽ không đạt đúng hạn",
            f"«{{{{ $labels.title_en }}}}» is short of its plan target ({{{{ $labels.document }}}} "
            f"{{{{ $labels.section }}}}): {short_en}; at the current trend it misses the deadline",
            "Chỉ tiêu kế hoạch còn hạn trong năm tới: báo cáo lãnh đạo, không phải sự cố trực / A plan target due "
            "within a year: report it to the leadership, it is not an on-call incident.", "1h",
            {"kpi_unit": unit}))
    direct = _droppable(loaded)
    if direct:
        num = f'kpi:egov_kpi_numerator:sum{{kpi=~"{_ids(direct)}"}}'
        fall = f"(max_over_time({num}[1h]) - {num})"
        rules.append(_alert(
            "EgovKpiDropped",
            f"{fall} * on(province, kpi) {info}\n"
            f"and on(province, kpi) ({fall} >= {DROP_SHARE:g} * kpi:egov_kpi_denominator:sum and {fall} >= 1)",
            "critical",
            "«{{ $labels.title_vi }}» giảm {{ $value | printf \"%.0f\" }} đơn vị trong một giờ",
            "«{{ $labels.title_en }}» fell by {{ $value | printf \"%.0f\" }} units within an hour",
            "Một nguồn dữ liệu hoặc hệ thống vừa hỏng: xem nguồn của KPI (egov_source_*) / A source or system "
            "just broke: check the KPI's source (egov_source_*).", "5m"))
    return rules


def _kinds_rules(loaded: LoadedConfig, offset: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """(kind, rule groups) of each kind the configuration has a collector of, in the kinds' order."""
    collectors = loaded.config.collectors
    return [(kind, rules(RuleContext(collectors[kind].settings, offset)))
            for kind, rules in contributions("rules", collectors)]


def _target_alerted(loaded: LoadedConfig) -> set[str]:
    """Collectors whose targets alert one by one when down (a portal, a hosted system): their kind's rules
    alert on its target down."""
    return {kind for kind, groups in _kinds_rules(loaded, 0) if alerts_each_target(groups, kind)}


def _droppable(loaded: LoadedConfig) -> list[str]:
    """Direct KPIs whose fall no other alert tells: not counted over units that alert one by one, not over
    targets that do, not availability (its burn rate does)."""
    from agent.engine.kpi import KpiEngine
    from agent.engine.units import UnitIndex

    engine = KpiEngine(loaded.config, UnitIndex(loaded.config), None)
    probed = {kpi.id for kpi, _measure, _size in _probe_coverages(loaded)}
    alerted = _target_alerted(loaded)
    out = []
    for kpi in loaded.config.kpis:
        if kpi.kpi_class != "direct" or kpi.id in probed or kpi.measure.kind == "availability":
            continue
        select = getattr(kpi.measure, "select", None)
        if select is not None and not getattr(kpi.measure, "from_source", False):
            targets = engine.select(select)
            if targets and all(t.collector in alerted for t in targets):
                continue
        out.append(kpi.id)
    return out


def _ops_missed(loaded: LoadedConfig) -> str:
    """Only for objectives whose miss no other alert tells: not over units or targets that alert one by one
    (a portal down would raise its own alert and this one), not availability (its burn rate)."""
    droppable = set(_droppable(loaded))
    told = [k.id for k in loaded.config.kpis if k.id not in droppable or k.measure.kind == "availability"]
    unless = f'{{origin="ops",kpi!~"{_ids(told)}"}}' if told else '{origin="ops"}'
    return (f"kpi:egov_kpi_shortfall:abs{unless} * on(province, kpi) group_left(title_vi, title_en) "
            "max by (province, kpi, title_vi, title_en) (egov_kpi_info)")


def _probe_coverages(loaded: LoadedConfig) -> list[tuple[KpiSpec, CoverageMeasure, int]]:
    """Coverage KPIs counted over a complete inventory of units by their own probes, with its size."""
    from agent.engine.kpi import KpiEngine
    from agent.engine.units import UnitIndex

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


def _unit_names(label: str = "unit") -> str:
    """The units' names (egov_unit_info) joined on ``label``: one copy, however many agents export it."""
    names = ("max by (province, unit, name_vi, name_en, parent_name_vi, parent_name_en) (egov_unit_info)")
    if label != "unit":
        names = f'label_replace({names}, "{label}", "$1", "unit", "(.*)")'
    kept = "name_vi, name_en, parent_name_vi, parent_name_en"
    return f"on(province, {label}) group_left({kept}) {names}"


def _utc_offset(loaded: LoadedConfig, now: float) -> int:
    zone = ZoneInfo(loaded.config.province.timezone)
    offset = dt.datetime.fromtimestamp(now, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


# When a unit's failure began: the earliest run of failed probes among its targets down now (recorded once
# per evaluation, so that each firing alert's text reads one series, not every target's).
UNIT_DOWN_SINCE = "unit:egov_unit_down_since:min"
UNIT_SINCE = f"min({UNIT_DOWN_SINCE}{{unit=%q}})"
# When a whole group (district) went down: the last of its units to fail (one may have been down for days).
GROUP_SINCE = f"max({UNIT_DOWN_SINCE}{{%s=%%q}})"

# What failed at a unit, for the description: the names of its targets that are down now.
FAILED_TARGETS = ('{{ range printf "max by (target, name) (egov_target_info{unit=%q}) and on(target) '
                  '(egov_target_up{unit=%q} == 0)" $labels.unit $labels.unit | query }}'
                  '{{ if .Labels.name }}{{ .Labels.name }}{{ else }}{{ .Labels.target }}{{ end }}; {{ end }}')


def _coverage_group(loaded: LoadedConfig, offset: int) -> dict[str, Any] | None:
    """Per-unit state of every coverage KPI over units (the agent's egov_kpi_member_up); one alert per unit
    down, however many KPIs count it (the incident is the unit, not the KPIs), and one per group (district)
    whose units are all down at once: the district uplink, one alert rather than 23, which inhibits its units'."""
    levels = [lv for lv in loaded.config.levels if lv != "province"]
    coverages = _probe_coverages(loaded)
    if not coverages:
        return None
    by = ", ".join(["province", "kpi", "unit", *levels])
    record = "unit:egov_kpi_unit_up:bool"
    ids = _ids([kpi.id for kpi, _m, _s in coverages])
    rules: list[dict[str, Any]] = [
        {"record": record, "expr": f'max by ({by}) (egov_kpi_member_up{{kpi=~"{ids}"}})'},
        # The unit is down when a KPI counting it does; the value is how many KPIs count it down.
        {"record": "unit:egov_unit_down:count",
         "expr": f'count by ({", ".join(["province", "unit", *levels])}) ({record} == 0)'},
        {"record": UNIT_DOWN_SINCE,
         "expr": f'min by ({", ".join(["province", "unit", *levels])}) (egov_target_down_since_timestamp_seconds)'},
    ]
    since_vi, since_en = _since(UNIT_SINCE, "$labels.unit", offset)
    rules.append(_alert(
        "EgovUnitDown", f"unit:egov_unit_down:count * {_unit_names()}", "warning",
        "{{ $labels.name_vi }} ({{ $labels.parent_name_vi }}) mất kết nối" + since_vi,
        "{{ $labels.name_en }} ({{ $labels.parent_name_en }}) is down" + since_en,
        "Hỏng / Failed: " + FAILED_TARGETS + "\nKiểm tra đường truyền và thiết bị định tuyến của đơn vị (ping, SNMP "
        "ifOperStatus) / Check the unit's link and router (ping, SNMP ifOperStatus).", "5m"))
    groups = sorted({m.group_by for _k, m, _s in coverages if m.group_by and m.group_by in levels})
    for group in groups:
        grouped = _ids([k.id for k, m, _s in coverages if m.group_by == group])
        down = f'count by (province, kpi, {group}) ({record}{{kpi=~"{grouped}"}} == 0)'
        total = f'count by (province, kpi, {group}) ({record}{{kpi=~"{grouped}"}})'
        rules.append({"record": f"{group}:egov_units_all_down:count",
                      "expr": f"max by (province, {group}) (({down} == {total}) and {total} > 1)"})
        group_vi, group_en = _since(GROUP_SINCE % group, f"$labels.{group}", offset)
        rules.append(_alert(
            "EgovGroupAllDown", f"{group}:egov_units_all_down:count * {_unit_names(group)}", "critical",
            f"Toàn bộ {{{{ $value }}}} đơn vị của {{{{ $labels.name_vi }}}} mất kết nối{group_vi}: nghi sự cố "
            f"đường truyền cấp {group}",
            f"All {{{{ $value }}}} units of {{{{ $labels.name_en }}}} are down{group_en}: suspect the {group} "
            "uplink",
            "Kiểm tra đường trục tới trung tâm huyện trước; cảnh báo của từng xã bị chặn trong lúc này / Check the "
            "district uplink first; the units' alerts are inhibited meanwhile.", "3m"))
    return {"name": "egov_coverage", "interval": "30s", "rules": rules}


def _period_bounds(loaded: LoadedConfig, now: dt.date) -> list[tuple[str, dt.date, int, int]]:
    """(kind, first day, start, end as Unix times) of the current and coming quarters and years."""
    from agent.domain.periods import add_months, period_containing

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
    labels of the periods it falls in (joined from egov:reporting_period:current, one rule). Summing
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
    # One group per counter: Prometheus runs groups side by side and the rules of a group one after the other.
    # The periods the present falls in (a quarter, a year), one tiny series each, every minute; each hourly
    # increase takes their labels in one join instead of one copy rule per period reading every target.
    current = "egov:reporting_period:current"
    periods: list[dict[str, Any]] = [
        {"record": current, "labels": {"period": kind, "period_start": start.isoformat()},
         "expr": f"vector(1) and on() (vector(time()) > {t0} <= {t1})"}
        for kind, start, t0, t1 in _period_bounds(loaded, now)]
    hourly: dict[str, list[dict[str, Any]]] = {
        name: [{"record": f"{name}:increase1h", "expr": f"increase({metric}[1h])"},
               *({"record": f"{name}:increase1h_by_period",
                  "expr": f'{name}:increase1h * on() group_left(period, period_start) {current}{{period="{kind}"}}'}
                 for kind in ("quarter", "year"))]
        for name, metric in counters}
    spans = (("quarter", 93), ("year", 366))
    availability = {kind: [{"record": "target:egov_availability:ratio_period", "expr": (
        f'sum_over_time(target:egov_probe_successes:increase1h_by_period{{period="{kind}"}}[{days}d])\n'
        f'/ (sum_over_time(target:egov_probes:increase1h_by_period{{period="{kind}"}}[{days}d]) > 0)')}]
        for kind, days in spans}
    share = "kpi_member:egov_kpi_member_up:ratio_period"
    reporting = loaded.config.reporting
    coverage: dict[str, list[dict[str, Any]]] = {}
    for kind, days in spans if coverages else ():
        up, seen = ("kpi_member:egov_kpi_member_up_seconds:increase1h_by_period",
                    "kpi_member:egov_kpi_member_observed_seconds:increase1h_by_period")
        ratio = (f'sum_over_time({up}{{period="{kind}"}}[{days}d])\n'
                 f'/ (sum_over_time({seen}{{period="{kind}"}}[{days}d]) > 0)')
        kept = coverage[kind] = [{"record": share, "expr": ratio}]
        numerator = "kpi:egov_kpi_period_coverage_numerator:sum"
        for kpi, measure, size in coverages:
            minimum = measure.connected_min_up if measure.connected_min_up is not None else reporting.connected_min_up
            connected = (f'sum by (province, kpi, period, period_start) ({share}{{kpi="{kpi.id}",period="{kind}"}} '
                         f'>= bool {minimum:g})')
            # The members are counted once; the denominator and the ratio read that count back (a group's rules
            # run in order, each seeing what the ones before it recorded), not every member again.
            counted = f'{numerator}{{kpi="{kpi.id}",period="{kind}"}}'
            kept += [
                {"record": numerator, "expr": connected},
                {"record": "kpi:egov_kpi_period_coverage_denominator:sum", "expr": f"{counted} * 0 + {size}"},
                {"record": "kpi:egov_kpi_period_coverage:ratio", "labels": {"connected_min_up": f"{minimum:g}"},
                 "expr": f"{counted} / {size}"},
            ]
    # One group per period kind: each reads every target or member over its whole period, side by side.
    groups = [{"name": "egov_reporting_periods", "interval": "1m", "rules": periods}]
    groups += [{"name": "egov_hourly_" + name.split(":")[1].removeprefix("egov_"), "interval": "1h", "rules": tiles}
               for name, tiles in hourly.items()]
    groups += [{"name": f"egov_period_{what}_{kind}", "interval": "1h", "rules": kept}
               for what, by_kind in (("availability", availability), ("coverage", coverage))
               for kind, kept in by_kind.items()]
    return groups


def _availability_groups(loaded: LoadedConfig) -> list[dict[str, Any]]:
    """Availability per target over rolling windows, summed from the hourly increases egov_hourly records:
    720 samples a target for 30 days instead of every scrape (2.5 s an evaluation with raw counters). Precision
    is the hour, as for the reporting periods'; ``egov-agent report`` computes exact figures. One group per
    window: each reads every target, and Prometheus runs groups side by side."""
    return [{"name": f"egov_availability_{window}", "interval": "1m", "rules": [
        {"record": f"target:egov_availability:ratio_{window}", "expr": (
            f"sum_over_time(target:egov_probe_successes:increase1h[{window}])\n"
            f"/ (sum_over_time(target:egov_probes:increase1h[{window}]) > 0)")}]}
        for window in AVAILABILITY_WINDOWS]


def _objective(kpi: KpiSpec) -> float | None:
    targets = [t for t in kpi.targets if t.comparator in (">=", ">", "approx") and t.value is not None]
    return targets[-1].value if targets else None


def _slo_groups(loaded: LoadedConfig) -> list[dict[str, Any]]:
    """One group per objective, so that Prometheus evaluates them side by side."""
    groups = []
    for kpi in loaded.config.kpis:
        rules: list[dict[str, Any]] = []
        if kpi.measure.kind != "availability":
            continue
        objective = _objective(kpi)
        if objective is None or not 0 < objective < 1:
            continue
        budget = 1 - objective
        select = kpi.measure.select
        # Incremental: the raw counters are read over five minutes only, once per KPI; every longer window
        # sums those province-wide samples (one series per KPI). The samples overlap (a 5-minute increase
        # every 30 s), alike in the numerator and the denominator, so their ratio is the window's.
        good = _selected("egov_target_probe_successes_total", select, loaded, inner="increase(%s[5m])")
        total = _selected("egov_target_probes_total", select, loaded, inner="increase(%s[5m])")
        labels = {"kpi": kpi.id}
        rules += [
            {"record": "kpi:egov_sli_good:increase5m", "labels": labels, "expr": f"sum by (province) ({good})"},
            {"record": "kpi:egov_sli_total:increase5m", "labels": labels, "expr": f"sum by (province) ({total})"},
        ]
        for window in SLI_WINDOWS:
            sel = f'{{kpi="{kpi.id}"}}'
            if window == "5m":
                ratio = f"kpi:egov_sli_good:increase5m{sel} / (kpi:egov_sli_total:increase5m{sel} > 0)"
            else:
                ratio = (f"sum_over_time(kpi:egov_sli_good:increase5m{sel}[{window}])\n"
                         f"/ (sum_over_time(kpi:egov_sli_total:increase5m{sel}[{window}]) > 0)")
            rules.append({"record": f"kpi:egov_sli_error:ratio_rate{window}", "labels": labels,
                          "expr": f"1 - ({ratio})"})
        # A target of the objective down already has its own alert (portal, hosted system, unit): the burn
        # rate pages only for what no other alert says, failures spread over targets that stay up. Counted in
        # a group of its own (it reads every target of the objective again); the alerts read its last count.
        down = _selected("egov_target_up", select, loaded)
        groups.append({"name": f"egov_slo_{kpi.id}_targets_down", "interval": "30s", "rules": [
            {"record": "kpi:egov_kpi_targets_down:count", "labels": {"kpi": kpi.id},
             "expr": f"count by (province) ({down} == 0)"}]})
        for long, short, factor, severity in BURN_ALERTS:
            threshold = round(factor * budget, 10)
            expr = (f'(kpi:egov_sli_error:ratio_rate{long}{{kpi="{kpi.id}"}} > {threshold}\n'
                    f'and kpi:egov_sli_error:ratio_rate{short}{{kpi="{kpi.id}"}} > {threshold})\n'
                    f'unless on(province, kpi) kpi:egov_kpi_targets_down:count')
            rules.append(_alert(
                "EgovAvailabilityBurnRate", expr, severity,
                f"{kpi.title_vi}: ngân sách lỗi tiêu hao nhanh gấp {factor:g} lần ({long}/{short}); tỷ lệ lỗi "
                f"{{{{ $value | humanizePercentage }}}}",
                f"{kpi.title_en}: error budget burning {factor:g}x too fast ({long}/{short} windows); error ratio "
                f"{{{{ $value | humanizePercentage }}}}",
                "Mục tiêu vận hành (không phải chỉ tiêu kế hoạch); lỗi rải rác trên các mục tiêu vẫn lên, xem bảng "
                "điều khiển THDL / An operations objective, not a plan target; failures spread over targets that "
                "stay up: see the data-centre dashboard.",
                "2m" if severity == "critical" else "15m",
                {"kpi": kpi.id, "window": f"{long}/{short}"}))
        groups.append({"name": f"egov_slo_{kpi.id}", "interval": "30s", "rules": rules})
    return groups


def _targets_group(loaded: LoadedConfig, kinds_rules: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """The kinds' alerts about their targets, then those about every collector."""
    collectors = loaded.config.collectors
    rules = [rule for _kind, groups in kinds_rules for group in groups if group["name"] == TARGETS_GROUP
             for rule in group["rules"]]
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
    return {"name": TARGETS_GROUP, "interval": "30s", "rules": rules}


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
    from agent.domain.models import parse_duration

    return parse_duration(duration)


def build_rules(loaded: LoadedConfig, job: str = "egov-agent", now: float | None = None,
                evaluation_interval: str | None = None, alert_for: str | None = None,
                runbook_base: str = "docs/runbooks") -> dict[str, Any]:
    """The rule groups. ``evaluation_interval`` and ``alert_for`` override every group's interval and
    every alert's ``for`` (a demonstration or an end-to-end test cannot wait fifteen minutes)."""
    today = dt.datetime.fromtimestamp(time.time() if now is None else now,
                                      ZoneInfo(loaded.config.province.timezone)).date()
    offset = _utc_offset(loaded, time.time() if now is None else now)
    kinds_rules = _kinds_rules(loaded, offset)
    own = [group for _kind, groups in kinds_rules for group in groups if group["name"] != TARGETS_GROUP]
    built = [_kpi_group(loaded), _coverage_group(loaded, offset), *_availability_groups(loaded),
             *_slo_groups(loaded), *_period_groups(loaded, today), _targets_group(loaded, kinds_rules), *own,
             _agent_group(job)]
    groups = [g for g in built if g is not None]
    for group in groups:
        if evaluation_interval and group["name"].startswith(("egov_hourly", "egov_period")):
            # The hourly samples tile time: the window must equal the interval, or hours are counted twice;
            # a window shorter than a minute would hold fewer than two scrapes.
            tile = evaluation_interval if _seconds(evaluation_interval) >= 60 else "1m"
            for rule in group["rules"]:
                rule["expr"] = rule["expr"].replace("[1h]", f"[{tile}]")
            group["interval"] = tile
        elif evaluation_interval:
            group["interval"] = evaluation_interval
        for rule in group["rules"]:
            if "alert" in rule:
                rule["annotations"]["runbook_url"] = f"{runbook_base.rstrip('/')}/{rule['alert']}.md"
                if alert_for:
                    rule["for"] = alert_for
    return {"groups": groups}
