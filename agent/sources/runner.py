"""Fetches every source on its own schedule and keeps its last good values.

Each source runs its own loop on the agent's asyncio loop, next to the probe scheduler and never
in its way: blocking work (SQL drivers, openpyxl) goes to a small thread pool of the runner's
own, and every fetch is bounded by the source's timeout. A failed fetch keeps the previous values
(the KPI turns stale once they are older than ``stale_after``) and counts an error by reason.
If a timed-out fetch's thread is still busy when the next one is due, that fetch is skipped
(reason ``busy``) rather than piling threads up.

The results are swapped in whole (one reference per source), so the exposition thread reads a
consistent snapshot without a lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agent.domain.periods import Period, ReportingSpec, current_periods, cuts_months
from agent.sources import source_class
from agent.sources.base import FetchResult, Record, Source, SourceContext, SourceError

log = logging.getLogger(__name__)
T = TypeVar("T")
THREADS = 4


@dataclass(frozen=True)
class Snapshot:
    """The last good fetch: series -> period kind -> (period, records)."""

    data: dict[str, dict[str, tuple[Period, list[Record]]]]
    fetched_at: float
    problems: tuple[str, ...] = ()
    unknown_units: tuple[str, ...] = ()
    approximate: frozenset[str] = frozenset()  # period kinds monthly figures cannot cut exactly
    # Series fetched apart (sql): when each one's values were fetched (a failed one keeps its older values),
    # why a failed one failed, and (series, period kind) -> why a query that ran gave no value (NULL).
    series_fetched_at: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    no_value: dict[tuple[str, str], str] = field(default_factory=dict)

    def fetched_at_of(self, series: str) -> float:
        return self.series_fetched_at.get(series, self.fetched_at)


@dataclass
class SourceState:
    source: Source
    snapshot: Snapshot | None = None
    up: bool = False
    last_success: float = 0.0
    last_attempt: float = 0.0
    last_duration: float = 0.0
    fetches: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    last_error: str = ""
    series_up: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceStatus:
    """What the exposition shows about one source."""

    id: str
    kind: str
    up: bool
    stale: bool
    last_success: float
    last_duration: float
    fetches: int
    errors: dict[str, int]
    skipped_rows: int
    unknown_units: int
    interval: float
    series_up: dict[str, bool] = field(default_factory=dict)  # series fetched apart (sql): which worked last


class SourceRunner:
    def __init__(self, sources: list[Source], reporting: ReportingSpec, timezone: str) -> None:
        self.reporting = reporting
        self.timezone = timezone
        self.states = {s.spec.id: SourceState(s) for s in sources}
        self.started = time.time()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.version = 0  # bumped on every new snapshot
        self.on_fetch: Callable[[], None] | None = None  # called (in a thread) after every fetch

    @classmethod
    def from_config(cls, loaded: Any, unit_ids: set[str], previous: SourceRunner | None = None,
                    ) -> SourceRunner | None:
        """The configuration's sources; after a reload, a source whose settings did not change keeps
        its state (last values, counters) from ``previous``."""
        specs = getattr(loaded, "source_specs", {}) or {}
        if not specs:
            return None
        config = loaded.config
        runner = cls([], config.reporting, config.province.timezone)
        for spec in specs.values():
            old = previous.states.get(spec.id) if previous is not None else None
            if (old is not None and old.source.spec == spec and old.source.context.base_dir == loaded.source.parent
                    and old.source.context.known_units == unit_ids):
                old.source.context.rebind(runner.run_blocking)
                runner.states[spec.id] = old
                continue
            context = SourceContext(loaded.source.parent, config.province.timezone, unit_ids, dict(spec.unit_map),
                                    runner.run_blocking)
            runner.states[spec.id] = SourceState(source_class(spec.kind)(spec, context))
        return runner

    # -- blocking work -------------------------------------------------------------------------
    async def run_blocking(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="source")
        return await asyncio.wrap_future(self._executor.submit(fn))

    # -- fetching ------------------------------------------------------------------------------
    def periods_for(self, now: float | None = None) -> dict[str, Period]:
        return current_periods(self.reporting, self.timezone, now)

    async def fetch(self, source_id: str, now: float | None = None) -> bool:
        """One bounded fetch; True if it succeeded."""
        state = self.states[source_id]
        source, spec = state.source, state.source.spec
        if source.context.threads_running:
            state.errors["busy"] += 1
            log.warning("source %s: the previous fetch's thread is still running; fetch skipped", spec.id)
            return False
        started = time.perf_counter()
        state.last_attempt = time.time()
        periods = self.periods_for(now)
        try:
            result = await asyncio.wait_for(source.fetch(periods), spec.timeout)
        except TimeoutError:
            self._fail(state, "timeout", f"no complete answer within {spec.timeout:g}s")
        except SourceError as exc:
            self._fail(state, exc.reason, exc.message)
        except Exception as exc:  # a bug in one source must not stop the others
            log.exception("source %s: fetch raised", spec.id)
            self._fail(state, "internal_error", type(exc).__name__)
        else:
            self._succeed(state, result, periods)
        finally:
            state.last_duration = time.perf_counter() - started
            state.fetches += 1
            if self.on_fetch is not None:  # e.g. drop cached renderings; it may wait for a lock: not on the loop
                asyncio.get_running_loop().run_in_executor(None, self.on_fetch)
        return state.up

    def _fail(self, state: SourceState, reason: str, message: str) -> None:
        if state.up or not state.last_error:
            log.error("source %s (%s): fetch failed (%s): %s; keeping the previous values", state.source.spec.id,
                      state.source.describe(), reason, message)
        state.up = False
        state.errors[reason] += 1
        state.last_error = reason

    def _succeed(self, state: SourceState, result: FetchResult, periods: dict[str, Period]) -> None:
        data, problems = result.data, result.problems
        unknown: set[str] = set()
        if not getattr(state.source, "maps_units", False):
            data = {name: {kind: self._map_units(state.source, records, unknown) for kind, records in by_period.items()}
                    for name, by_period in data.items()}
        if unknown:
            log.warning("source %s: unknown unit codes counted in province totals only: %s", state.source.spec.id,
                        ", ".join(sorted(unknown)[:10]))
        snapshot = {name: {kind: (periods[kind], records) for kind, records in by_period.items()}
                    for name, by_period in data.items()}
        if not state.up:
            log.info("source %s (%s): fetched", state.source.spec.id, state.source.describe())
        spec = state.source.spec
        approximate = frozenset(kind for kind in periods if spec.granularity == "monthly"
                                and not cuts_months(self.reporting, kind))
        now = time.time()
        fetched_at = dict.fromkeys(data, now)
        no_value = dict(result.no_value)
        previous = state.snapshot
        for name, error in result.failed.items():  # a failed series keeps its last good values, and their age
            if previous is not None and name in previous.data:
                snapshot[name] = previous.data[name]
                fetched_at[name] = previous.fetched_at_of(name)
                no_value.update({key: why for key, why in previous.no_value.items() if key[0] == name})
            if state.series_up.get(name, True):
                log.error("source %s (%s): series %s failed (%s): %s; keeping its previous values", spec.id,
                          state.source.describe(), name, error.reason, error.message)
            state.errors[error.reason] += 1
        state.series_up = {name: name not in result.failed for name in [*data, *result.failed]}
        failed = {name: f"{error.reason}: {error.message}" for name, error in result.failed.items()}
        state.snapshot = Snapshot(snapshot, now, tuple(problems), tuple(sorted(unknown)), approximate, fetched_at,
                                  failed, no_value)
        state.up = not failed
        state.last_error = next(iter(result.failed.values())).reason if failed else ""
        if not failed:
            state.last_success = now
        self.version += 1

    @staticmethod
    def _map_units(source: Source, records: list[Record], unknown: set[str]) -> list[Record]:
        out = []
        for record in records:
            if record.unit is None:
                out.append(record)
                continue
            unit = source.context.map_unit(record.unit)
            if unit is None:
                unknown.add(record.unit)
            out.append(Record(unit, record.numerator, record.denominator, record.value, record.example))
        return out

    async def fetch_all(self) -> None:
        await asyncio.gather(*(self.fetch(source_id) for source_id in self.states))

    async def run_forever(self) -> None:
        loops = [asyncio.create_task(self._loop(source_id), name=f"source-{source_id}") for source_id in self.states]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _loop(self, source_id: str) -> None:
        interval = self.states[source_id].source.spec.interval
        await asyncio.sleep(random.uniform(0, min(0.1 * interval, 5.0)))  # spread the first fetches a little
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self.fetch(source_id)
            next_at += interval
            now = loop.time()
            if next_at < now:  # the fetch overran its interval: start again from now
                next_at = now + interval
            await asyncio.sleep(next_at - now)

    async def close(self, keep: SourceRunner | None = None) -> None:
        """Close every source (but those ``keep``, the runner replacing this one, took over)."""
        kept = {id(state.source) for state in keep.states.values()} if keep is not None else set()
        for state in self.states.values():
            if id(state.source) in kept:
                continue
            try:
                await state.source.close()
            except Exception:  # closing must not hide the reason we are stopping
                log.exception("closing source %s", state.source.spec.id)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- reading (any thread) -------------------------------------------------------------------
    def snapshot(self, source_id: str) -> tuple[Source, Snapshot | None]:
        state = self.states[source_id]
        return state.source, state.snapshot

    def statuses(self, now: float | None = None) -> list[SourceStatus]:
        now = time.time() if now is None else now
        out = []
        for source_id, state in self.states.items():
            snap, spec = state.snapshot, state.source.spec
            out.append(SourceStatus(
                source_id, spec.kind, state.up,
                now - (snap.fetched_at if snap else self.started) > spec.stale_limit,  # never fetched: stale later
                state.last_success, state.last_duration, state.fetches, dict(state.errors),
                len(snap.problems) if snap else 0, len(snap.unknown_units) if snap else 0, spec.interval,
                dict(state.series_up),
            ))
        return out


def manual_status(manual: Any) -> SourceStatus:
    """The manual data file (agent.manual.ManualData) shown as a source: up while its last read worked,
    its refused rows as skipped rows, its failed reads by reason (missing, unreadable, too_large, empty,
    changed)."""
    return SourceStatus("manual", "manual", manual.loaded_ok, False, manual.last_success, 0.0, manual.reads,
                        dict(manual.errors), manual.rejected_rows, 0, 0.0)


def source_hosts(loaded: Any) -> list[tuple[str, str]]:
    """(source id, host) for every network address the configured sources contact."""
    out = []
    for spec in (getattr(loaded, "source_specs", {}) or {}).values():
        source = source_class(spec.kind)(spec, SourceContext(Path(loaded.source).parent, "UTC"))
        out += [(spec.id, host) for host in source.hosts() if host]
    return out
