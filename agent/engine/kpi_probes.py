"""The measure kinds read from the agent's own probes: coverage, availability and count.

Coverage, counts and shares read a target's debounced state (``TargetState.up``: down only after its
collector's ``down_after`` failures in a row), because they say what is connected now and one lost
answer is not a lost link. Availability counts every probe (``window_counts``), because it says how
often the target answered. Neither counts a probe the agent itself overran (agent/scheduler.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.schema import AvailabilityMeasure, CountMeasure, CoverageMeasure, TargetSpec
from agent.engine.evaluation import INVENTORY_INCOMPLETE, NOT_PROBED, Context, Evaluation, MemberValue, group_members
from agent.engine.inventory import Inventory
from agent.engine.store import TargetState, window_counts


def _unprobed(target: TargetSpec, states: Mapping[str, TargetState]) -> bool:
    return target.id not in states or states[target.id].result is None


def _all_probed(ev: Evaluation, selected: list[TargetSpec], ctx: Context) -> bool:
    """Say so and stop until every selected target has been probed once; then measured at the latest probe."""
    missing = [t.id for t in selected if _unprobed(t, ctx.states)]
    if missing:
        ev.pend(NOT_PROBED, f"{len(missing)} of {len(selected)} targets not probed yet")
        return False
    ev.measured_at = max((ctx.states[t.id].last_probe_time for t in selected), default=ctx.now)
    return True


def count(ev: Evaluation, measure: CountMeasure, ctx: Context) -> None:
    """How many selected targets are up."""
    selected = ctx.select(measure.select)
    if _all_probed(ev, selected, ctx):
        ev.value = float(sum(1 for t in selected if ctx.states[t.id].up))


def availability(ev: Evaluation, measure: AvailabilityMeasure, ctx: Context) -> None:
    """Up probes over all probes of the selected targets in the window."""
    selected = ctx.select(measure.select)
    if not _all_probed(ev, selected, ctx):
        return
    up = total = 0
    for t in selected:
        u, n = window_counts(ctx.states[t.id], measure.window, ctx.now)
        up, total = up + u, total + n
    ev.ratio(up, total)


def coverage(ev: Evaluation, measure: CoverageMeasure, ctx: Context) -> None:
    """A share of an inventory's units, or (without one) of the selected targets: the portals, the THDL's
    systems, where the configured targets are the list."""
    if measure.over_units:
        _coverage_of_units(ev, measure, ctx)
        return
    selected = ctx.select(measure.select)
    if _all_probed(ev, selected, ctx):
        ev.ratio(sum(1 for t in selected if ctx.states[t.id].up), len(selected))


def probe_members(measure: CoverageMeasure, inventory: Inventory, ctx: Context) -> list[MemberValue] | None:
    """Each member unit covered when its own selected targets are up (any/all); None until all are probed."""
    members = [u for u in inventory.members if ctx.owns_unit(u)]
    wanted = set(members)
    own: dict[str, list[TargetSpec]] = {u: [] for u in members}
    for target in ctx.select(measure.select):
        if target.unit in wanted:
            own[target.unit].append(target)
    if any(_unprobed(t, ctx.states) for ts in own.values() for t in ts):
        return None
    combine = any if measure.unit_up == "any" else all
    return [MemberValue(u, bool(ts) and combine(ctx.states[t.id].up for t in ts))
            for u, ts in own.items()]


def _coverage_of_units(ev: Evaluation, measure: CoverageMeasure, ctx: Context) -> None:
    inventory = ctx.inventory_of(measure)
    assert inventory is not None  # over_units: the measure names an inventory or a level
    ev.inventory = inventory
    members = probe_members(measure, inventory, ctx)
    wanted = set(inventory.members)
    own = [t for t in ctx.select(measure.select) if t.unit in wanted]
    if members is None:
        missing = sum(1 for t in own if _unprobed(t, ctx.states))
        ev.pend(NOT_PROBED, f"{missing} of {len(own)} targets not probed yet")
        return
    ev.members = members
    probed = [ctx.states[t.id].last_probe_time for t in own if t.id in ctx.states]
    ev.measured_at = max(probed, default=ctx.now)
    if not inventory.complete:
        ev.pend(INVENTORY_INCOMPLETE, f"inventory incomplete: {inventory.incomplete_reason}")
        return
    ev.ratio(sum(m.up for m in members), len(members))
    if measure.group_by:
        ev.group_level = measure.group_by
        ev.groups = group_members(members, measure.group_by, ctx.units)
