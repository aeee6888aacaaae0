"""One frozen view of the store and the KPIs evaluated from it, shared by /metrics and the status page.

Evaluating the KPIs of a province costs tens of milliseconds and reads the manual data file; the
exposition does it once per rendering, and the status page, shown beside Grafana on the wall, takes
that same snapshot when it is recent instead of evaluating a second time, so both say the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.engine.kpi import Evaluation
from agent.engine.store import CollectorStats, Store, TargetState

REUSE_SECONDS = 5.0  # a snapshot this young serves the status page (the exposition's own cache span)


@dataclass(frozen=True)
class Snapshot:
    states: dict[str, TargetState]
    stats: dict[str, CollectorStats]
    evaluations: list[Evaluation]
    taken: float  # unix time
    view: object  # the configuration's view it was evaluated under (a reload swaps it: then it is stale)


def take(store: Store, evaluate: Callable[[dict[str, TargetState]], list[Evaluation]], view: object) -> Snapshot:
    states, stats = store.snapshot()
    taken = time.time()
    return Snapshot(states, stats, evaluate(states), taken, view)


def reusable(snapshot: Snapshot | None, view: object, now: float | None = None) -> bool:
    """Recent and from the running configuration."""
    now = time.time() if now is None else now
    return snapshot is not None and snapshot.view is view and 0 <= now - snapshot.taken <= REUSE_SECONDS
