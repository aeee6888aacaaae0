"""The KPI engine: turns probe results and imported figures into plan KPIs and judges them.

A KPI's value is computed from the store (coverage, availability, count) or from imported data
(manual ratio or value). The active target is the earliest phase whose deadline is still ahead in
the province's time zone, or the last one once every deadline has passed (then the KPI is
overdue). Qualitative targets («hầu hết») are shown, never judged: no number is invented for them.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from agent.config import Config, KpiSpec, KpiTarget, Selector, TargetSpec
from agent.manual import ManualData
from agent.periods import PeriodValue
from agent.sharding import Shard
from agent.store import TargetState, window_counts
from agent.units import UnitIndex


def today_in(timezone: str, now: float | None = None) -> dt.date:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(timezone)).date()


def active_target(targets: list[KpiTarget], today: dt.date) -> KpiTarget | None:
    """``targets`` are sorted by deadline (the schema sorts them)."""
    for target in targets:
        if target.deadline >= today:
            return target
    return targets[-1] if targets else None


def is_met(target: KpiTarget, value: float) -> bool | None:
    c = target.comparator
    if c == "qualitative":
        return None
    if c == "range":
        return target.low <= value <= target.high  # type: ignore[operator]
    bound = target.value
    assert bound is not None
    eps = 1e-9 * max(1.0, abs(bound))
    return {
        ">=": value >= bound - eps, "approx": value >= bound - eps, ">": value > bound + eps,
        "=": abs(value - bound) <= eps, "<=": value <= bound + eps, "<": value < bound - eps,
    }[c]


def deadline_timestamp(target: KpiTarget, timezone: str) -> float:
    """The end of the deadline day in the province's time zone."""
    end = dt.datetime.combine(target.deadline + dt.timedelta(days=1), dt.time(), ZoneInfo(timezone))
    return end.timestamp()


@dataclass
class GroupValue:
    group: str
    numerator: float
    denominator: float


@dataclass
class Evaluation:
    kpi: KpiSpec
    active: KpiTarget | None
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    measured_at: float | None = None
    source: str = ""
    stale: bool = False
    pending: str = ""  # why there is no value yet
    groups: list[GroupValue] = field(default_factory=list)
    group_level: str = ""
    periods: list[PeriodValue] = field(default_factory=list)  # per reporting period (source-backed KPIs)

    @property
    def met(self) -> bool | None:
        if self.value is None or self.active is None:
            return None
        return is_met(self.active, self.value)


class KpiEngine:
    def __init__(self, config: Config, units: UnitIndex, manual: ManualData | None,
                 owned_targets: set[str] | None = None, sources=None, shard: Shard | None = None) -> None:
        self.config = config
        self.units = units
        self.manual = manual
        self.shard = shard
        self.sources = sources  # agent.sources.runner.SourceRunner, if the configuration has sources
        owned = owned_targets
        self.targets = [t for t in config.targets if owned is None or t.id in owned]

    def select(self, selector: Selector) -> list[TargetSpec]:
        return [
            t for t in self.targets
            if (selector.collector is None or t.collector == selector.collector)
            and all(tag in t.tags for tag in selector.tags)
            and (selector.under is None or self.units.is_under(t.unit, selector.under))
        ]

    def evaluate(self, states: dict[str, TargetState], now: float | None = None) -> list[Evaluation]:
        now = time.time() if now is None else now
        today = today_in(self.config.province.timezone, now)
        if self.manual is not None:
            self.manual.refresh()
        return [self._evaluate(kpi, states, now, today) for kpi in self.config.kpis]

    def _evaluate(self, kpi: KpiSpec, states: dict[str, TargetState], now: float,
                  today: dt.date) -> Evaluation:
        ev = Evaluation(kpi, active_target(kpi.targets, today))
        measure = kpi.measure
        if measure.kind in ("ratio", "value"):
            if self.shard is not None and not self.shard.first:
                ev.pending = f"evaluated by shard 1/{self.shard.count}"
                return ev
            if measure.source == "manual":
                self._from_manual(ev, now)
            else:
                from agent.sources.evaluate import evaluate_source  # SQLAlchemy & co. only when sources exist

                evaluate_source(ev, self.sources, self.units, now)
            return ev
        selected = self.select(measure.select)
        missing = [t.id for t in selected if t.id not in states or states[t.id].result is None]
        if missing:
            ev.pending = f"{len(missing)} of {len(selected)} targets not probed yet"
            return ev
        ev.measured_at = max((states[t.id].last_probe_time for t in selected), default=now)
        if measure.kind == "count":
            ev.value = float(sum(1 for t in selected if states[t.id].result.up))
        elif measure.kind == "availability":
            up = total = 0
            for t in selected:
                u, n = window_counts(states[t.id], measure.window, now)
                up, total = up + u, total + n
            self._ratio(ev, up, total)
        else:
            self._coverage(ev, measure, selected, states)
        return ev

    def _coverage(self, ev: Evaluation, measure, selected: list[TargetSpec],
                  states: dict[str, TargetState]) -> None:
        level = measure.select.level
        if level is None:  # share of targets up
            members = {t.id: [t] for t in selected}
        else:  # share of units at the level with a target of their own up; one without any is not covered
            members = {uid: [] for uid in self.units.at_level(level, measure.select.under)
                       if self.shard is None or self.shard.owns_unit(uid)}
            for t in selected:
                if t.unit in members:
                    members[t.unit].append(t)
        combine = any if measure.unit_up == "any" else all
        covered = {
            member: bool(ts) and combine(states[t.id].result.up for t in ts) for member, ts in members.items()
        }
        self._ratio(ev, sum(covered.values()), len(covered))
        if measure.group_by:
            ev.group_level = measure.group_by
            groups: dict[str, list[int]] = {}
            for member, ok in covered.items():
                unit = member if level is not None else members[member][0].unit
                group = self.units.ancestor_at(unit, measure.group_by)
                if group is None:
                    continue
                counts = groups.setdefault(group, [0, 0])
                counts[0] += ok
                counts[1] += 1
            ev.groups = [GroupValue(g, float(n), float(d)) for g, (n, d) in sorted(groups.items())]

    @staticmethod
    def _ratio(ev: Evaluation, numerator: float, denominator: float) -> None:
        ev.numerator, ev.denominator = float(numerator), float(denominator)
        ev.value = numerator / denominator if denominator else None
        if not denominator:
            ev.pending = "nothing to measure yet"

    def _from_manual(self, ev: Evaluation, now: float) -> None:
        item = self.manual.values.get(ev.kpi.id) if self.manual is not None else None
        if item is None:
            ev.pending = "no value in the manual data file"
            return
        ev.value, ev.numerator, ev.denominator = item.value, item.numerator, item.denominator
        ev.source = item.source
        tz = ZoneInfo(self.config.province.timezone)
        ev.measured_at = dt.datetime.combine(item.date, dt.time(), tz).timestamp()
        limit = ev.kpi.stale_after
        if limit is None and self.config.manual is not None:
            limit = self.config.manual.stale_after
        ev.stale = limit is not None and now - ev.measured_at > limit
