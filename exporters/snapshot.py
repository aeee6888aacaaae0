"""One frozen view of the store and the KPIs evaluated from it, shared by /metrics and the pages.

Evaluating the KPIs of a province costs tens of milliseconds and reads the manual data file. A
:class:`Snapshots` keeps the latest :class:`Snapshot`: the exposition takes a new one for each of its
renderings (it caches those itself, and a changed manual file or a source's new figures must show at
the next one), and the status and unit pages, shown beside Grafana on the wall, reuse it while it is
recent, so they say the numbers /metrics said and a page render evaluates the KPIs at most once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from agent.engine.kpi import Evaluation
from agent.engine.store import CollectorStats, Store, StoreSnapshot, TargetState

REUSE_SECONDS = 5.0  # a snapshot this young serves the pages (the exposition's own cache span)


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

    def fresh(self) -> Snapshot[V]:
        """A new snapshot, kept for the pages (the exposition's, once per rendering)."""
        snapshot = take(self.store, self._view)
        with self._lock:
            self._latest = snapshot
        return snapshot

    def recent(self) -> Snapshot[V]:
        """The kept snapshot if it is under REUSE_SECONDS old and of this configuration, else a new one, kept
        too (the status and unit pages)."""
        with self._lock:  # one evaluation at a time: a page that waited for another's reuses it
            view, last = self._view, self._latest
            if last is not None and reusable(last, view):
                return last
            self._latest = take(self.store, view)
            return self._latest


def reusable(snapshot: Snapshot[V] | None, view: object, now: float | None = None) -> bool:
    """Recent and from the running configuration."""
    now = time.time() if now is None else now
    return snapshot is not None and snapshot.view is view and 0 <= now - snapshot.taken <= REUSE_SECONDS
