"""The KPI engine: turns probe results and imported figures into plan KPIs and judges them.

A KPI's value is computed from the store (coverage, availability, count) or from imported data
(manual ratio or value, a source's series). The active target is the earliest phase whose deadline
is still ahead in the province's time zone, or the last one once every deadline has passed (then
the KPI is overdue). Qualitative targets («hầu hết») are shown, never judged: no number is
invented for them.

A coverage KPI divides by its inventory (``agent.inventory``): the units the plan counts, each
covered only by data of its own. A KPI without a value says why, with a fixed reason word
(``egov_kpi_pending{reason}``) and a sentence for people.

Each measure kind has one evaluator, found in one table (EVALUATORS): the probes' in agent/engine/kpi_probes.py,
the manual figures' in agent/engine/kpi_manual.py, the sources' in agent/engine/evaluate.py. They share the
evaluation types of agent/engine/evaluation.py and never import this module, so nothing imports in a circle.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from agent.config.schema import (
    Config,
    CoverageMeasure,
    KpiSpec,
    KpiTarget,
    Measure,
    RatioMeasure,
    Selector,
    TargetSpec,
    ValueMeasure,
)
from agent.engine import kpi_manual, kpi_probes
from agent.engine.evaluation import (
    EXAMPLE_ONLY,
    INVENTORY_INCOMPLETE,
    NO_DATA,
    NOT_PROBED,
    NOTHING_SELECTED,
    OTHER_SHARD,
    PENDING_REASONS,
    SOURCE_UNAVAILABLE,
    Context,
    Evaluation,
    GroupValue,
    MemberValue,
    active_target,
    group_members,
    is_met,
)
from agent.engine.inventory import Inventory, at_level, resolve_all
from agent.engine.member_clock import MemberClock
from agent.engine.sharding import Shard
from agent.engine.store import TargetState
from agent.engine.units import UnitIndex
from agent.sources.manual import ManualData

if TYPE_CHECKING:
    from agent.sources.runner import SourceRunner

__all__ = [  # the evaluation types, still importable from here (agent/engine/evaluation.py holds them)
    "EXAMPLE_ONLY", "INVENTORY_INCOMPLETE", "NOTHING_SELECTED", "NOT_PROBED", "NO_DATA", "OTHER_SHARD",
    "PENDING_REASONS", "SOURCE_UNAVAILABLE", "Evaluation", "GroupValue", "KpiEngine", "MemberValue",
    "active_target", "deadline_timestamp", "evaluator_of", "group_members", "is_met", "today_in",
]


def today_in(timezone: str, now: float | None = None) -> dt.date:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(timezone)).date()


def deadline_timestamp(target: KpiTarget, timezone: str) -> float:
    """The end of the deadline day in the province's time zone."""
    end = dt.datetime.combine(target.deadline + dt.timedelta(days=1), dt.time(), ZoneInfo(timezone))
    return end.timestamp()


def _lazy(module: str, name: str) -> Any:
    """An evaluator imported on its first use: the sources' (SQLAlchemy & co.) only load when sources exist."""
    def evaluate(ev: Evaluation, measure: Any, ctx: Context) -> None:
        getattr(importlib.import_module(module), name)(ev, measure, ctx)
    return evaluate


# One evaluator per measure kind (what the measure reads), the only place the engine branches on it.
# Each takes (evaluation, measure, context) and fills the evaluation in; its measure type is its own.
EVALUATORS: dict[str, Any] = {
    "coverage": kpi_probes.coverage,  # of units (an inventory) or of targets, from the probes
    "availability": kpi_probes.availability,
    "count": kpi_probes.count,
    "manual": kpi_manual.manual_figure,  # a ratio or value from the manual data file
    "source": _lazy("agent.engine.evaluate", "evaluate_source"),  # a ratio or value from a source's series
    "source_coverage": _lazy("agent.engine.evaluate", "evaluate_flag_coverage"),  # yes/no per unit, from a source
}
FROM_IMPORTED_DATA = frozenset({"manual", "source", "source_coverage"})  # the first shard evaluates them


def evaluator_of(measure: Measure) -> str:
    """The EVALUATORS key of a measure."""
    if isinstance(measure, CoverageMeasure):
        return "source_coverage" if measure.from_source else "coverage"
    if isinstance(measure, RatioMeasure | ValueMeasure):
        return "manual" if measure.source == "manual" else "source"
    return measure.kind


class KpiEngine:
    def __init__(self, config: Config, units: UnitIndex, manual: ManualData | None,
                 owned_targets: set[str] | None = None, sources: SourceRunner | None = None,
                 shard: Shard | None = None,
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
        # Each selector's targets, found once: the targets and units are fixed for this engine's life (a reload
        # builds a new one), and scanning 40,000 targets for each KPI at every snapshot cost seconds.
        self._selected: dict[int, tuple[Selector, tuple[TargetSpec, ...]]] = {}

    def select(self, selector: Selector) -> list[TargetSpec]:
        cached = self._selected.get(id(selector))
        if cached is None or cached[0] is not selector:  # (the selector is kept, so its id is not reused)
            cached = self._selected[id(selector)] = (selector, tuple(
                t for t in self.targets
                if (selector.collector is None or t.collector == selector.collector)
                and all(tag in t.tags for tag in selector.tags)
                and (selector.under is None or self.units.is_under(t.unit, selector.under))
            ))
        return list(cached[1])

    def inventory_of(self, measure: CoverageMeasure) -> Inventory | None:
        """The units a coverage KPI divides by (None: it is a share of targets)."""
        if measure.inventory is not None:
            return self.inventories[measure.inventory]
        if measure.select.level is not None:
            return at_level(measure.select.level, measure.select.under, self.units)
        return None

    def _context(self, states: Mapping[str, TargetState], now: float) -> Context:
        shard = self.shard
        return Context(self.config, self.units, states, now, self.select, self.inventory_of,
                       (lambda unit: True) if shard is None else shard.owns_unit, self.manual, self.sources)

    def evaluate(self, states: Mapping[str, TargetState], now: float | None = None) -> list[Evaluation]:
        now = time.time() if now is None else now
        today = today_in(self.config.province.timezone, now)
        if self.manual is not None:
            self.manual.refresh()
        ctx = self._context(states, now)
        return [self._evaluate(kpi, ctx, today) for kpi in self.config.kpis]

    @property
    def observes_members(self) -> bool:
        """Whether ``observe_members`` has anything to do: the agent then skips its snapshot of every target."""
        return self.clock is not None and any(self._observed(kpi) for kpi in self.config.kpis)

    @staticmethod
    def _observed(kpi: KpiSpec) -> bool:
        measure = kpi.measure
        return isinstance(measure, CoverageMeasure) and measure.over_units and not measure.from_source

    def observe_members(self, states: Mapping[str, TargetState], now: float | None = None) -> None:
        """Credit each coverage member's up time to the clock (called every few seconds by the agent)."""
        if self.clock is None:
            return
        now = time.time() if now is None else now
        ctx = self._context(states, now)
        for kpi in self.config.kpis:
            measure = kpi.measure
            if self._observed(kpi):
                assert isinstance(measure, CoverageMeasure)
                inventory = self.inventory_of(measure)
                assert inventory is not None
                members = kpi_probes.probe_members(measure, inventory, ctx)
                if members is not None:
                    self.clock.observe(kpi.id, [(m.unit, m.up) for m in members], now)

    def _evaluate(self, kpi: KpiSpec, ctx: Context, today: dt.date) -> Evaluation:
        ev = Evaluation(kpi, active_target(kpi.targets, today))
        key = evaluator_of(kpi.measure)
        if key in FROM_IMPORTED_DATA and self.shard is not None and not self.shard.first:
            ev.pend(OTHER_SHARD, f"evaluated by shard 1/{self.shard.count}")
            return ev
        EVALUATORS[key](ev, kpi.measure, ctx)
        return ev
