"""How long each member of a coverage KPI (a commune, a department) was up, as counters.

The plan's «230/230 xã kết nối» is a state that holds over a period, not the last probe. The agent
counts, per KPI and member unit, the seconds it observed the member and the seconds the member was
up (``egov_kpi_member_up_seconds_total`` / ``egov_kpi_member_observed_seconds_total``); the
generated recording rules and the report take ``increase()`` of both over a reporting period, so
the period form survives agent restarts (a reset counter is what ``increase()`` handles).

Each observation credits the time since the previous one to the state seen then. A gap longer than
``MAX_GAP`` (the agent stopped observing: stalled, reloaded, not running) is credited to neither,
so it is missing data, not downtime.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

MAX_GAP = 120.0  # seconds; observations come every few seconds


@dataclass(slots=True)  # one per sample, target or member: no __dict__ each
class MemberTime:
    last_seen: float
    last_up: bool
    up_seconds: float = 0.0
    observed_seconds: float = 0.0


class MemberClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[tuple[str, str], MemberTime] = {}

    def observe(self, kpi: str, members: Iterable[tuple[str, bool]], now: float) -> None:
        with self._lock:
            for unit, up in members:
                state = self._members.get((kpi, unit))
                if state is None:
                    self._members[(kpi, unit)] = MemberTime(now, up)
                    continue
                elapsed = now - state.last_seen
                if 0.0 < elapsed <= MAX_GAP:
                    state.observed_seconds += elapsed
                    if state.last_up:
                        state.up_seconds += elapsed
                if elapsed > 0.0:
                    state.last_seen, state.last_up = now, up

    def forget(self, keep: set[tuple[str, str]]) -> None:
        """Drop members no longer configured (after a reload)."""
        with self._lock:
            for key in set(self._members) - keep:
                del self._members[key]

    def snapshot(self) -> dict[tuple[str, str], MemberTime]:
        with self._lock:
            return {k: MemberTime(v.last_seen, v.last_up, v.up_seconds, v.observed_seconds)
                    for k, v in self._members.items()}
