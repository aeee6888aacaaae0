"""The agent's latest results: written by probes, read by scrapes and the KPI engine.

Probes run on the asyncio loop; scrapes are served from HTTP threads. A lock held only for a dict
update or for copying keeps the two apart, so a scrape never waits for a probe. What a snapshot hands
out is read-only (frozen dataclasses, tuples, mapping proxies) and shares no container with the live
records, so a render thread can walk it while probes go on. Per target the
store keeps monotonic probe counters (for availability and for Prometheus ``_total`` series) and a
short, thinned history of them, so availability over a window can be answered without Prometheus.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from agent.engine.history import History
from agent.engine.loopwatch import LoopStatus
from collectors.api import Family, ProbeResult, Sample

if TYPE_CHECKING:
    from agent.engine.pool import PoolStatus

# Upper bounds of the per-collector probe duration histogram, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HISTORY_POINTS = 512  # snapshots kept per target for availability windows


@dataclass(frozen=True)
class TargetState:
    """One target's latest probe and its counters, as a snapshot hands them out (it never changes).

    ``result`` is the last probe's own verdict (reason, samples); ``up`` is the target's state, which
    goes down only after its collector's ``down_after`` failed probes in a row, so one lost answer does
    not take a commune off the coverage KPI. Availability counts every probe (``probes_total``,
    ``up_total``): it measures how often the target answered, and a failure nobody was told about
    yet is still a failure.
    """

    result: ProbeResult | None = None
    last_probe_time: float = 0.0
    last_duration: float = 0.0
    probes_total: int = 0
    up_total: int = 0
    failures: Mapping[str, int] = field(default_factory=lambda: _frozen({}))  # failed probes by reason
    down_since: float = 0.0  # when the current failure run began; 0 after a success
    # (unix time, probes_total, up_total), thinned so it spans the longest availability window.
    history: History = field(default_factory=History)
    up: bool = False  # the debounced state coverage, counts and egov_target_up read
    failed_in_row: int = 0  # failed probes since the last success
    up_since: float = 0.0  # when ``up`` last became true; 0 while down

    def __post_init__(self) -> None:
        # Built from a Counter (the state file, the store): keep a read-only copy, never the caller's.
        if type(self.failures) is not MappingProxyType:
            object.__setattr__(self, "failures", _frozen(self.failures))
        if type(self.history) is not History:
            object.__setattr__(self, "history", History(self.history))


@dataclass(frozen=True)
class CollectorStats:
    """One collector's counters, as a snapshot hands them out (it never changes)."""

    probes_total: int = 0
    errors: Mapping[str, int] = field(default_factory=lambda: _frozen({}))  # failed probes by reason
    last_success_time: float = 0.0
    bucket_counts: tuple[int, ...] = (0,) * len(DURATION_BUCKETS)
    duration_sum: float = 0.0
    skipped_total: int = 0
    overrun_total: int = 0  # failed probes discarded because the agent's own loop was late (LoopWatch)
    # The collector's own counters (Collector.self_families and its latest self_samples).
    self_families: tuple[Family, ...] = ()
    self_samples: tuple[Sample, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", _frozen(self.errors))
        object.__setattr__(self, "bucket_counts", tuple(self.bucket_counts))


def _frozen(counts: Mapping[str, int]) -> Mapping[str, int]:
    """A read-only copy: the render thread walks it while the loop goes on counting in the store."""
    return MappingProxyType(dict(counts))


@dataclass
class _LiveTarget:
    """The store's own, changing record of a target; only ever handed out as a TargetState."""

    result: ProbeResult | None = None
    last_probe_time: float = 0.0
    last_duration: float = 0.0
    probes_total: int = 0
    up_total: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    down_since: float = 0.0
    # Replaced (never changed in place) when a point is added, so freezing it copies nothing.
    history: History = field(default_factory=History)
    up: bool = False
    failed_in_row: int = 0
    up_since: float = 0.0
    # The last snapshot's copy, shared by every snapshot until the next probe changes the record: with
    # thousands of targets probed once a minute, a snapshot copies only the few probed since the last one.
    frozen: TargetState | None = None

    @classmethod
    def thaw(cls, state: TargetState) -> _LiveTarget:
        return cls(state.result, state.last_probe_time, state.last_duration, state.probes_total, state.up_total,
                   Counter(state.failures), state.down_since, state.history, state.up, state.failed_in_row,
                   state.up_since)

    def freeze(self) -> TargetState:
        if self.frozen is None:
            self.frozen = TargetState(self.result, self.last_probe_time, self.last_duration, self.probes_total,
                                      self.up_total, _frozen(self.failures), self.down_since, self.history,
                                      self.up, self.failed_in_row, self.up_since)
        return self.frozen


@dataclass
class _LiveCollector:
    """The store's own, changing counters of a collector; only ever handed out as CollectorStats."""

    probes_total: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    last_success_time: float = 0.0
    bucket_counts: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_sum: float = 0.0
    skipped_total: int = 0
    overrun_total: int = 0
    self_families: tuple[Family, ...] = ()
    self_samples: tuple[Sample, ...] = ()

    def freeze(self) -> CollectorStats:
        return CollectorStats(self.probes_total, self.errors, self.last_success_time, tuple(self.bucket_counts),
                              self.duration_sum, self.skipped_total, self.overrun_total, self.self_families,
                              self.self_samples)


class StoreSnapshot(NamedTuple):
    """Everything a rendering reads from the store, copied under one lock hold: read-only throughout.

    A named tuple, so ``snapshot()[0]`` (the targets) reads as it did when the store returned a pair.
    """

    targets: Mapping[str, TargetState]
    collectors: Mapping[str, CollectorStats]
    version: int
    loop_status: LoopStatus
    first_round_pending: int
    pool_status: PoolStatus | None


class Store:
    def __init__(self, history_span: float = 86400.0) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, _LiveTarget] = {}
        self._collectors: dict[str, _LiveCollector] = {}
        self._history_step = max(history_span / (HISTORY_POINTS - 2), 1.0)
        self._version = 0  # bumped on every change, so renderers can cache
        # Each replaced whole (an atomic assignment), never changed in place: read without the lock.
        self._loop_status = LoopStatus()  # the scheduler's LoopWatch
        self._first_round_pending = 0  # targets not yet probed once (the scheduler's count)
        self._pool_status: PoolStatus | None = None  # the collector workers', when there are any (agent/pool.py)

    @property
    def version(self) -> int:
        """Bumped on every change, so renderers can cache."""
        return self._version

    @property
    def loop_status(self) -> LoopStatus:
        return self._loop_status

    @property
    def first_round_pending(self) -> int:
        return self._first_round_pending

    @property
    def pool_status(self) -> PoolStatus | None:
        return self._pool_status

    def record(self, target_id: str, collector: str, result: ProbeResult, duration: float,
               finished_at: float | None = None, down_after: int = 1) -> bool:
        """Count one probe; return the target's state after it (down once ``down_after`` probes in a row
        failed, or at its first failure if it was never seen up: there is no state to keep)."""
        now = time.time() if finished_at is None else finished_at
        with self._lock:
            state = self._targets.get(target_id)
            if state is None:  # (not setdefault: that would build a record, and its Counter, at every probe)
                state = self._targets[target_id] = _LiveTarget()
            state.frozen = None  # changed below: the next snapshot copies it again
            if result.up:
                state.down_since = 0.0
                state.failed_in_row = 0
                if not state.up or not state.up_since:  # (restored up from the state file: since this probe)
                    state.up, state.up_since = True, now
            else:
                if state.down_since == 0.0:
                    state.down_since = now
                state.failed_in_row += 1
                if state.failed_in_row >= down_after:  # (never seen up: it is down already)
                    state.up, state.up_since = False, 0.0
            state.result = result
            state.last_probe_time = now
            state.last_duration = duration
            state.probes_total += 1
            if result.up:
                state.up_total += 1
            else:
                state.failures[result.reason or "unknown"] += 1
            last = state.history.last_time
            if last is None or now - last >= self._history_step:
                state.history = state.history.appended((now, state.probes_total, state.up_total), HISTORY_POINTS)

            stats = self._collector(collector)
            stats.probes_total += 1
            stats.duration_sum += duration
            index = bisect.bisect_left(DURATION_BUCKETS, duration)
            if index < len(DURATION_BUCKETS):
                stats.bucket_counts[index] += 1
            if result.up:
                stats.last_success_time = now
            else:
                stats.errors[result.reason or "unknown"] += 1
            self._version += 1
            return state.up

    def _collector(self, collector: str) -> _LiveCollector:
        """The collector's record, made at its first use (under the lock)."""
        stats = self._collectors.get(collector)
        if stats is None:
            stats = self._collectors[collector] = _LiveCollector()
        return stats

    def record_skip(self, collector: str, missed: int) -> None:
        """A probe overran its interval and ``missed`` scheduled probes were dropped."""
        with self._lock:
            self._collector(collector).skipped_total += missed
            self._version += 1

    def restore(self, states: Mapping[str, TargetState]) -> None:
        """Take over counters and history saved by an earlier run (agent/state.py), before any probe."""
        with self._lock:
            for target_id, state in states.items():
                if target_id not in self._targets:
                    self._targets[target_id] = _LiveTarget.thaw(state)
            self._version += 1

    def record_self(self, collector: str, families: tuple[Family, ...], samples: list[Sample]) -> None:
        """The collector's own counters as they are now (they replace the previous values)."""
        with self._lock:
            stats = self._collector(collector)
            stats.self_families, stats.self_samples = families, tuple(samples)
            self._version += 1

    def record_overrun(self, collector: str) -> None:
        """A probe failed for want of an answer while the agent's loop was late: its verdict is not the
        target's, so only this counter moves (the target keeps its state, availability its counts)."""
        with self._lock:
            self._collector(collector).overrun_total += 1
            self._version += 1

    def set_loop_status(self, status: LoopStatus) -> None:
        """Ten times a second, from the loop itself: no version bump, or the renderers' cache would never
        hold; a rendering is at most CACHE_SECONDS old anyway."""
        self._loop_status = status

    def set_first_round_pending(self, count: int) -> None:
        """Targets not yet probed once since the start or the reload that added them (the scheduler's)."""
        self._first_round_pending = count

    def set_pool_status(self, status: PoolStatus) -> None:
        """The collector workers' state (agent/pool.py), replaced whole."""
        self._pool_status = status

    def forget(self, keep: set[str]) -> None:
        """Drop targets no longer configured (after a reload)."""
        with self._lock:
            for target_id in set(self._targets) - keep:
                del self._targets[target_id]
            self._version += 1

    def set_history_span(self, history_span: float) -> None:
        """After a reload changed the longest availability window: thin new history points to fit it."""
        with self._lock:
            self._history_step = max(history_span / (HISTORY_POINTS - 2), 1.0)

    def snapshot(self) -> StoreSnapshot:
        """A read-only copy of every target and collector: nothing in it is shared with the live store,
        so a render thread may walk it for as long as it likes while probes go on."""
        with self._lock:
            targets = {k: v.freeze() for k, v in self._targets.items()}
            collectors = {k: v.freeze() for k, v in self._collectors.items()}
            version = self._version
        return StoreSnapshot(MappingProxyType(targets), MappingProxyType(collectors), version, self._loop_status,
                             self._first_round_pending, self._pool_status)

    def states(self) -> Mapping[str, TargetState]:
        """The targets of a fresh snapshot (the KPI engine's and the state file's input)."""
        return self.snapshot().targets


def window_counts(state: TargetState, window: float, now: float) -> tuple[int, int]:
    """(up probes, all probes) in the last ``window`` seconds, or since the agent started."""
    baseline = state.history.last_at_or_before(now - window)
    if baseline is None:  # the agent has run for less than the window: count from the beginning
        return (state.up_total, state.probes_total)
    return (state.up_total - baseline[2], state.probes_total - baseline[1])
