"""What a KPI evaluation produces, and what every evaluator is handed: shared by agent/engine/kpi.py and each
measure kind's evaluator (agent/engine/kpi_probes.py, agent/engine/kpi_manual.py, agent/engine/evaluate.py).

It imports no evaluator and no engine, so an evaluator can import it without a cycle through the
engine that dispatches to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.config.schema import Config, CoverageMeasure, KpiSpec, KpiTarget, Measure, Selector, TargetSpec
from agent.domain.periods import PeriodValue
from agent.engine.inventory import Inventory
from agent.engine.store import TargetState
from agent.engine.units import UnitIndex
from agent.sources.manual import ManualData

if TYPE_CHECKING:  # typing only: the source runner loads the source kinds' libraries
    from agent.sources.runner import SourceRunner

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


@dataclass
class GroupValue:
    group: str
    numerator: float
    denominator: float


@dataclass(frozen=True, slots=True)  # one per sample, target or member: no __dict__ each
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

    def ratio(self, numerator: float, denominator: float) -> None:
        """A share as the value; nothing to divide by is a pending reason, not a zero."""
        self.numerator, self.denominator = float(numerator), float(denominator)
        self.value = numerator / denominator if denominator else None
        if not denominator:
            self.pend(NOTHING_SELECTED, "nothing to measure: no unit or target is selected")


@dataclass(frozen=True)
class Context:
    """What one evaluation round reads: one store snapshot, one clock reading, the configuration's indexes.

    ``select`` and ``inventory_of`` are the engine's (the targets this agent owns, the resolved inventories).
    """

    config: Config
    units: UnitIndex
    states: Mapping[str, TargetState]
    now: float
    select: Callable[[Selector], list[TargetSpec]]
    inventory_of: Callable[[CoverageMeasure], Inventory | None]
    owns_unit: Callable[[str], bool]
    manual: ManualData | None
    sources: SourceRunner | None


# One function per measure kind: fills in the evaluation of one KPI (agent/engine/kpi.py's EVALUATORS).
Evaluator = Callable[[Evaluation, Measure, Context], None]


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
