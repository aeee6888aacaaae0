"""Source-backed KPIs: the records of one series summed per reporting period.

The measure picks the series and which units count (``levels``, ``under``); ratios sum numerators
and denominators over those units (so a big district weighs more than a small commune, as in the
plans' province-wide rates) and values sum. The measure's ``period`` (the calendar year to date by
default) gives the KPI's headline value; every period the source serves is exported too.

A coverage read from a source counts the units of an inventory whose yes/no value is above 0
(«19 sở, ngành ... thống nhất thành một hệ thống một cửa»): the denominator is the inventory, so a
unit missing from the system's table counts as «no». Rows marked as examples are never figures.
"""

from __future__ import annotations

from agent.config import CoverageMeasure, RatioMeasure, ValueMeasure
from agent.inventory import Inventory
from agent.kpi import (
    EXAMPLE_ONLY,
    INVENTORY_INCOMPLETE,
    NO_DATA,
    SOURCE_UNAVAILABLE,
    Evaluation,
    GroupValue,
    MemberValue,
    group_members,
)
from agent.periods import PeriodValue
from agent.sources.base import Record
from agent.sources.runner import Snapshot, SourceRunner
from agent.units import UnitIndex


def _selected(records: list[Record], measure: RatioMeasure | ValueMeasure, units: UnitIndex) -> list[Record]:
    if not measure.levels and measure.under is None:
        return records
    out = []
    for record in records:
        unit = units.units.get(record.unit) if record.unit is not None else None
        if unit is None:
            continue
        if measure.levels and unit.level not in measure.levels:
            continue
        if measure.under is not None and not units.is_under(unit.id, measure.under):
            continue
        out.append(record)
    return out


def _sum(records: list[Record], shape: str) -> tuple[float | None, float | None, float | None]:
    """(value, numerator, denominator)."""
    if shape == "value":
        values = [r.value for r in records if r.value is not None]
        return (sum(values) if values else None), None, None
    numerator = sum(r.numerator or 0.0 for r in records)
    denominator = sum(r.denominator or 0.0 for r in records)
    return (numerator / denominator if denominator else None), numerator, denominator


def _snapshot(ev: Evaluation, runner: SourceRunner | None, source_id: str) -> Snapshot | None:
    """The source's last good fetch, or None after saying why there is none."""
    if runner is None or source_id not in runner.states:
        ev.pend(SOURCE_UNAVAILABLE, f"source {source_id} is not running")
        return None
    source, snapshot = runner.snapshot(source_id)
    ev.source = f"{source.spec.id} ({source.kind})"
    if snapshot is None:
        error = runner.states[source_id].last_error
        ev.pend(SOURCE_UNAVAILABLE, f"source {source_id} has not answered yet" + (f" ({error})" if error else ""))
        return None
    return snapshot


def _stale(ev: Evaluation, runner: SourceRunner, source_id: str, snapshot: Snapshot, now: float) -> None:
    """By the series' own age: a series whose query failed keeps values as old as its last good fetch."""
    source = runner.states[source_id].source
    limit = ev.kpi.stale_after if ev.kpi.stale_after is not None else source.spec.stale_limit
    ev.measured_at = snapshot.fetched_at_of(getattr(ev.kpi.measure, "series", None) or "")
    ev.stale = now - ev.measured_at > limit


def evaluate_source(ev: Evaluation, measure: RatioMeasure | ValueMeasure, runner: SourceRunner | None,
                    units: UnitIndex, now: float) -> None:
    snapshot = _snapshot(ev, runner, measure.source)
    if snapshot is None or runner is None:
        return
    shape = "value" if measure.kind == "value" else "ratio"
    series = measure.series or ""
    by_period = snapshot.data.get(series, {})
    if not by_period and series in snapshot.failed:
        ev.pend(SOURCE_UNAVAILABLE, f"series {series} of source {measure.source} failed: {snapshot.failed[series]}")
        return
    for kind, (period, records) in by_period.items():
        real = [r for r in _selected(records, measure, units) if not r.example]
        value, numerator, denominator = _sum(real, shape)
        ev.periods.append(PeriodValue(period, value, numerator, denominator, kind in snapshot.approximate))
    _stale(ev, runner, measure.source, snapshot, now)
    headline = by_period.get(measure.period)
    if headline is None:
        ev.pend(NO_DATA, f"source {measure.source} does not serve the {measure.period} period")
        return
    period, records = headline
    selected = _selected(records, measure, units)
    chosen = [r for r in selected if not r.example]
    ev.approximate = measure.period in snapshot.approximate
    ev.value, ev.numerator, ev.denominator = _sum(chosen, shape)
    if ev.value is None:
        if selected and not chosen:
            ev.pend(EXAMPLE_ONLY, f"example data only for {period.name}: the rows are marked as examples")
        elif (series, measure.period) in snapshot.no_value:
            ev.pend(NO_DATA, f"no value for {period.name}: {snapshot.no_value[(series, measure.period)]}")
        else:
            ev.pend(NO_DATA, f"nothing reported yet for {period.name}")
        return
    if measure.group_by and shape == "ratio":
        ev.group_level = measure.group_by
        groups: dict[str, list[float]] = {}
        for record in chosen:
            group = units.ancestor_at(record.unit, measure.group_by) if record.unit in units.units else None
            if group is None:
                continue
            sums = groups.setdefault(group, [0.0, 0.0])
            sums[0] += record.numerator or 0.0
            sums[1] += record.denominator or 0.0
        ev.groups = [GroupValue(g, n, d) for g, (n, d) in sorted(groups.items())]


def evaluate_flag_coverage(ev: Evaluation, measure: CoverageMeasure, runner: SourceRunner | None, units: UnitIndex,
                           inventory: Inventory, now: float) -> None:
    """The share of the inventory's units whose yes/no value (for the measure's period) is above 0."""
    assert measure.source is not None  # the model requires it whenever the measure reads a source
    ev.inventory = inventory
    snapshot = _snapshot(ev, runner, measure.source)
    if snapshot is None or runner is None:
        return
    _stale(ev, runner, measure.source, snapshot, now)
    by_period = snapshot.data.get(measure.series or "", {})
    members = set(inventory.members)
    if inventory.complete:
        for kind, (period, records) in by_period.items():  # every period, for the quarterly report
            said_yes = {r.unit for r in records if not r.example and r.value is not None and r.value > 0}
            ev.periods.append(PeriodValue(period, len(said_yes & members) / len(members) if members else None,
                                          float(len(said_yes & members)), float(len(members)),
                                          kind in snapshot.approximate))
    headline = by_period.get(measure.period)
    if headline is None:
        ev.pend(NO_DATA, f"source {measure.source} does not serve the {measure.period} period")
        return
    period, records = headline
    real = [r for r in records if not r.example and r.unit is not None]
    if records and not real:
        ev.pend(EXAMPLE_ONLY, f"example data only for {period.name}: the rows are marked as examples")
        return
    yes = {r.unit for r in real if r.value is not None and r.value > 0}
    ev.members = [MemberValue(u, u in yes) for u in inventory.members]
    if not inventory.complete:
        ev.pend(INVENTORY_INCOMPLETE, f"inventory incomplete: {inventory.incomplete_reason}")
        return
    ev.numerator, ev.denominator = float(len(yes & set(inventory.members))), float(len(inventory.members))
    ev.value = ev.numerator / ev.denominator if ev.denominator else None
    ev.approximate = measure.period in snapshot.approximate
    if measure.group_by:
        ev.group_level = measure.group_by
        ev.groups = group_members(ev.members, measure.group_by, units)
