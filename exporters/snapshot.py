"""One frozen view of the store and the KPIs evaluated from it, shared by /metrics and the pages.

Evaluating the KPIs of a province costs tens of milliseconds and reads the manual data file. A
:class:`Snapshots` keeps the latest :class:`Snapshot` and hands it to every renderer that finds it
recent enough: the exposition (each format it renders of one store version), the status page and the
unit pages, shown beside Grafana on the wall, so all of them say the same numbers and a page render
evaluates the KPIs at most once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from agent.kpi import Evaluation
from agent.store import CollectorStats, Store, StoreSnapshot, TargetState

REUSE_SECONDS = 5.0  # a snapshot this young serves the pages (the exposition's own cache span)
# ...and the exposition, when the store has not changed since: the formats one refresh renders share it,
# and a rendering stays as close to the clock as before (KPI targets and staleness depend on it).
EXPOSITION_REUSE_SECONDS = 1.0


class Evaluates(Protocol):
    """The running configuration's view: whatever else it holds, it can evaluate the KPIs."""

    @property
    def evaluate(self) -> Callable[[Mapping[str, TargetState]], Sequence[Evaluation]]: ...


V = TypeVar("V", bound=Evaluates)


@dataclass(frozen=True)
class Snapshot(Generic[V]):
    store: StoreSnapshot
    evaluations: tuple[Evaluation, ...]
    taken: float  # unix time
    view: V  # the configuration's view it was evaluated under (a reload swaps it: then it is stale)

    @property
    def states(self) -> Mapping[str, TargetState]:
        return self.store.targets

    @property
    def stats(self) -> Mapping[str, CollectorStats]:
        return self.store.collectors


def take(store: Store, view: V) -> Snapshot[V]:
    frozen = store.snapshot()
    taken = time.time()
    return Snapshot(frozen, tuple(view.evaluate(frozen.targets)), taken, view)


class Snapshots(Generic[V]):
    """The latest snapshot of a running agent and the view it is taken under (swapped on reload)."""

    def __init__(self, store: Store, view: V) -> None:
        self.store = store
        self._view = view
        self._latest: Snapshot[V] | None = None
        self._lock = threading.Lock()  # one evaluation at a time; a renderer that waited reuses its result

    @property
    def view(self) -> V:
        return self._view

    def set_view(self, view: V) -> None:
        """After a reload: the kept snapshot is of the old configuration and serves nobody any more."""
        self._view = view

    def for_exposition(self) -> Snapshot[V]:
        """The kept snapshot if it is of the store as it is now and about a second old at most, else a new one:
        /metrics shows every change."""
        return self._get(lambda s: s.store.version == self.store.version
                         and time.time() - s.taken <= EXPOSITION_REUSE_SECONDS)

    def recent(self) -> Snapshot[V]:
        """The kept snapshot if it is under REUSE_SECONDS old, else a new one (the status and unit pages)."""
        return self._get(lambda s: True)

    def _get(self, still_good: Callable[[Snapshot[V]], bool]) -> Snapshot[V]:
        with self._lock:
            view, last = self._view, self._latest
            if last is not None and reusable(last, view) and still_good(last):
                return last
            self._latest = take(self.store, view)
            return self._latest


def reusable(snapshot: Snapshot[V] | None, view: object, now: float | None = None) -> bool:
    """Recent and from the running configuration."""
    now = time.time() if now is None else now
    return snapshot is not None and snapshot.view is view and 0 <= now - snapshot.taken <= REUSE_SECONDS
