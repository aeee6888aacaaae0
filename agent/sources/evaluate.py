"""A source-backed ratio or value KPI: the records of one series summed per reporting period.

The measure picks the series and which units count (``levels``, ``under``); ratios sum numerators
and denominators over those units (so a big district weighs more than a small commune, as in the
plans' province-wide rates) and values sum. The measure's ``period`` (year to date by default)
gives the KPI's headline value; every period the source serves is exported too.
"""

from __future__ import annotations

from agent.kpi import Evaluation, GroupValue
from agent.periods import PeriodValue
from agent.sources.base import Record
from agent.sources.runner import SourceRunner
from agent.units import UnitIndex


def _selected(records: list[Record], measure, units: UnitIndex) -> list[Record]:
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


def evaluate_source(ev: Evaluation, runner: SourceRunner | None, units: UnitIndex, now: float) -> None:
    measure = ev.kpi.measure
    if runner is None or measure.source not in runner.states:
        ev.pending = f"source {measure.source} is not running"
        return
    source, snapshot = runner.snapshot(measure.source)
    ev.source = f"{source.spec.id} ({source.kind})"
    if snapshot is None:
        error = runner.states[measure.source].last_error
        ev.pending = f"source {measure.source} has not answered yet" + (f" ({error})" if error else "")
        return
    shape = "value" if measure.kind == "value" else "ratio"
    by_period = snapshot.data.get(measure.series or "", {})
    for _kind, (period, records) in by_period.items():
        value, numerator, denominator = _sum(_selected(records, measure, units), shape)
        ev.periods.append(PeriodValue(period, value, numerator, denominator))
    ev.measured_at = snapshot.fetched_at
    limit = ev.kpi.stale_after if ev.kpi.stale_after is not None else source.spec.stale_limit
    ev.stale = now - snapshot.fetched_at > limit
    headline = by_period.get(measure.period)
    if headline is None:
        ev.pending = f"source {measure.source} does not serve the {measure.period} period"
        return
    period, records = headline
    chosen = _selected(records, measure, units)
    ev.value, ev.numerator, ev.denominator = _sum(chosen, shape)
    if ev.value is None:
        ev.pending = f"nothing reported yet for {period.name}"
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
