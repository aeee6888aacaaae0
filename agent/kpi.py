"""The KPI engine: turns probe results and imported figures into plan KPIs and judges them.

A KPI's value is computed from the store (coverage, availability, count) or from imported data
(manual ratio or value, a source's series). The active target is the earliest phase whose deadline
is still ahead in the province's time zone, or the last one once every deadline has passed (then
the KPI is overdue). Qualitative targets («hầu hết») are shown, never judged: no number is
invented for them.

A coverage KPI divides by its inventory (``agent.inventory``): the units the plan counts, each
covered only by data of its own. A KPI without a value says why, with a fixed reason word
(``egov_kpi_pending{reason}``) and a sentence for people.

Coverage, counts and shares read a target's debounced state (``TargetState.up``: down only after its
collector's ``down_after`` failures in a row), because they say what is connected now and one lost
answer is not a lost link. Availability counts every probe (``window_counts``), because it says how
often the target answered. Neither counts a probe the agent itself overran (agent/scheduler.py).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from agent.config import Config, CoverageMeasure, KpiSpec, KpiTarget, RatioMeasure, Selector, TargetSpec, ValueMeasure
from agent.inventory import Inventory, at_level, resolve_all
from agent.manual import ManualData
from agent.member_clock import MemberClock
from agent.periods import PeriodValue
from agent.sharding import Shard
from agent.store import TargetState, window_counts
from agent.units import UnitIndex

# Why a KPI has no value (the reason label of egov_kpi_pending).
NOT_PROBED = "not_probed_yet"
NOTHING_SELECTED = "nothing_to_measure"
INVENTORY_INCOMPLETE = "inventory_incomplete"
EXAMPLE_ONLY = "example_data_only"
NO_DATA = "no_data"
SOURCE_UNAVAILABLE = "source_unavailable"
OTHER_SHARD = "other_shard"
PENDING_REASONS = (NOT_PROBED, NOTHING_SELECTED, INVENTORY_INCOMPLETE, EXAMPLE_ONLY, NO_DATA, SOURCE_UNAVAILABLE,
                   OTHER_SHARD)


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
        assert target.low is not None and target.high is not None  # a range target has both (KpiTarget)
        return target.low <= value <= target.high
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


@dataclass(frozen=True)
class MemberValue:
    """One unit of a coverage KPI's inventory: covered by its own data, or not."""

    unit: str
    up: bool


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
    pending: str = ""  # why there is no value yet, for people
    pending_reason: str = ""  # the same as a fixed word (PENDING_REASONS)
    groups: list[GroupValue] = field(default_factory=list)
    group_level: str = ""
    periods: list[PeriodValue] = field(default_factory=list)  # per reporting period (source-backed KPIs)
    members: list[MemberValue] = field(default_factory=list)  # coverage over an inventory
    inventory: Inventory | None = None
    approximate: bool = False  # monthly figures accepted for a period that does not begin on the 1st

    @property
    def met(self) -> bool | None:
        if self.value is None or self.active is None:
            return None
        return is_met(self.active, self.value)

    def pend(self, reason: str, message: str) -> None:
        """No value: say why (``reason`` a fixed word, ``message`` a sentence)."""
        self.pending_reason, self.pending = reason, message
        self.value = self.numerator = self.denominator = None


class KpiEngine:
    def __init__(self, config: Config, units: UnitIndex, manual: ManualData | None,
                 owned_targets: set[str] | None = None, sources=None, shard: Shard | None = None,
                 clock: MemberClock | None = None) -> None:
        self.config = config
        self.units = units
        self.manual = manual
        self.shard = shard
        self.sources = sources  # agent.sources.runner.SourceRunner, if the configuration has sources
        self.clock = clock  # seconds each coverage member was up (the period form), if the agent keeps them
        self.inventories = resolve_all(config, units)
        owned = owned_targets
        self.targets = [t for t in config.targets if owned is None or t.id in owned]

    def select(self, selector: Selector) -> list[TargetSpec]:
        return [
            t for t in self.targets
            if (selector.collector is None or t.collector == selector.collector)
            and all(tag in t.tags for tag in selector.tags)
            and (selector.under is None or self.units.is_under(t.unit, selector.under))
        ]

    def inventory_of(self, measure: CoverageMeasure) -> Inventory | None:
        """The units a coverage KPI divides by (None: it is a share of targets)."""
        if measure.inventory is not None:
            return self.inventories[measure.inventory]
        if measure.select.level is not None:
            return at_level(measure.select.level, measure.select.under, self.units)
        return None

    def evaluate(self, states: dict[str, TargetState], now: float | None = None) -> list[Evaluation]:
        now = time.time() if now is None else now
        today = today_in(self.config.province.timezone, now)
        if self.manual is not None:
            self.manual.refresh()
        return [self._evaluate(kpi, states, now, today) for kpi in self.config.kpis]

    def observe_members(self, states: dict[str, TargetState], now: float | None = None) -> None:
        """Credit each coverage member's up time to the clock (called every few seconds by the agent)."""
        if self.clock is None:
            return
        now = time.time() if now is None else now
        for kpi in self.config.kpis:
            measure = kpi.measure
            if isinstance(measure, CoverageMeasure) and measure.over_units and not measure.from_source:
                inventory = self.inventory_of(measure)
                assert inventory is not None
                members = self._probe_members(measure, inventory, states)
                if members is not None:
                    self.clock.observe(kpi.id, [(m.unit, m.up) for m in members], now)

    def _evaluate(self, kpi: KpiSpec, states: dict[str, TargetState], now: float,
                  today: dt.date) -> Evaluation:
        ev = Evaluation(kpi, active_target(kpi.targets, today))
        measure = kpi.measure
        if isinstance(measure, RatioMeasure | ValueMeasure) or (isinstance(measure, CoverageMeasure)
                                                                and measure.from_source):
            if self.shard is not None and not self.shard.first:
                ev.pend(OTHER_SHARD, f"evaluated by shard 1/{self.shard.count}")
                return ev
            if isinstance(measure, CoverageMeasure):
                from agent.sources.evaluate import evaluate_flag_coverage

                inventory = self.inventory_of(measure)
                assert inventory is not None
                evaluate_flag_coverage(ev, measure, self.sources, self.units, inventory, now)
            elif measure.source == "manual":
                self._from_manual(ev, now)
            else:
                from agent.sources.evaluate import evaluate_source  # SQLAlchemy & co. only when sources exist

                evaluate_source(ev, measure, self.sources, self.units, now)
            return ev
        if isinstance(measure, CoverageMeasure) and measure.over_units:
            self._coverage_of_units(ev, measure, states, now)
            return ev
        selected = self.select(measure.select)
        missing = [t.id for t in selected if t.id not in states or states[t.id].result is None]
        if missing:
            ev.pend(NOT_PROBED, f"{len(missing)} of {len(selected)} targets not probed yet")
            return ev
        ev.measured_at = max((states[t.id].last_probe_time for t in selected), default=now)
        if measure.kind == "count":
            ev.value = float(sum(1 for t in selected if states[t.id].up))
        elif measure.kind == "availability":
            up = total = 0
            for t in selected:
                u, n = window_counts(states[t.id], measure.window, now)
                up, total = up + u, total + n
            self._ratio(ev, up, total)
        else:  # a share of targets (the portals, the THDL's systems): the configured targets are the list
            self._ratio(ev, sum(1 for t in selected if states[t.id].up), len(selected))
        return ev

    def _probe_members(self, measure: CoverageMeasure, inventory: Inventory,
                       states: dict[str, TargetState]) -> list[MemberValue] | None:
        """Each member unit covered when its own selected targets are up (any/all); None until all are probed."""
        members = [u for u in inventory.members if self.shard is None or self.shard.owns_unit(u)]
        wanted = set(members)
        own: dict[str, list[TargetSpec]] = {u: [] for u in members}
        for target in self.select(measure.select):
            if target.unit in wanted:
                own[target.unit].append(target)
        if any(t.id not in states or states[t.id].result is None for ts in own.values() for t in ts):
            return None
        combine = any if measure.unit_up == "any" else all
        return [MemberValue(u, bool(ts) and combine(states[t.id].up for t in ts))
                for u, ts in own.items()]

    def _coverage_of_units(self, ev: Evaluation, measure: CoverageMeasure, states: dict[str, TargetState],
                           now: float) -> None:
        inventory = self.inventory_of(measure)
        assert inventory is not None
        ev.inventory = inventory
        members = self._probe_members(measure, inventory, states)
        wanted = set(inventory.members)
        own = [t for t in self.select(measure.select) if t.unit in wanted]
        if members is None:
            missing = sum(1 for t in own if t.id not in states or states[t.id].result is None)
            ev.pend(NOT_PROBED, f"{missing} of {len(own)} targets not probed yet")
            return
        ev.members = members
        probed = [states[t.id].last_probe_time for t in own if t.id in states]
        ev.measured_at = max(probed, default=now)
        if not inventory.complete:
            ev.pend(INVENTORY_INCOMPLETE, f"inventory incomplete: {inventory.incomplete_reason}")
            return
        self._ratio(ev, sum(m.up for m in members), len(members))
        if measure.group_by:
            ev.group_level = measure.group_by
            ev.groups = group_members(members, measure.group_by, self.units)

    @staticmethod
    def _ratio(ev: Evaluation, numerator: float, denominator: float) -> None:
        ev.numerator, ev.denominator = float(numerator), float(denominator)
        ev.value = numerator / denominator if denominator else None
        if not denominator:
            ev.pend(NOTHING_SELECTED, "nothing to measure: no unit or target is selected")

    def _from_manual(self, ev: Evaluation, now: float) -> None:
        item = self.manual.values.get(ev.kpi.id) if self.manual is not None else None
        if item is None:
            example = self.manual.examples.get(ev.kpi.id) if self.manual is not None else None
            if example is not None and self.manual is not None:
                ev.source = example.source
                ev.pend(EXAMPLE_ONLY, f"example data only ({self.manual.path.name}: {example.date}); "
                                      f"enter the real figure")
            else:
                ev.pend(NO_DATA, "no value in the manual data file")
            return
        ev.value, ev.numerator, ev.denominator = item.value, item.numerator, item.denominator
        ev.source = item.source
        tz = ZoneInfo(self.config.province.timezone)
        ev.measured_at = dt.datetime.combine(item.date, dt.time(), tz).timestamp()
        limit = ev.kpi.stale_after
        if limit is None and self.config.manual is not None:
            limit = self.config.manual.stale_after
        ev.stale = limit is not None and now - ev.measured_at > limit


def group_members(members: list[MemberValue], level: str, units: UnitIndex) -> list[GroupValue]:
    """Covered members per unit at ``level`` (per district)."""
    groups: dict[str, list[int]] = {}
    for member in members:
        group = units.ancestor_at(member.unit, level)
        if group is None:
            continue
        counts = groups.setdefault(group, [0, 0])
        counts[0] += member.up
        counts[1] += 1
    return [GroupValue(g, float(n), float(d)) for g, (n, d) in sorted(groups.items())]
