"""The running agent: configuration, collectors, scheduler, KPI engine and exposition wired together."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config.loading import LoadedConfig, load_config
from agent.config.schema import TargetSpec
from agent.domain.netaddr import ALLOW_ENV, ProbeNotAllowed, check_allowed, probe_hosts
from agent.engine.kpi import Evaluation, KpiEngine
from agent.engine.member_clock import MemberClock
from agent.engine.scheduler import Scheduler, collectors_for
from agent.engine.sharding import Shard
from agent.engine.state import StateFile
from agent.engine.store import Store, TargetState
from agent.engine.units import UnitIndex
from agent.sources.manual import ManualData
from agent.sources.runner import SourceRunner, SourceStatus, manual_status, source_hosts
from collectors import REGISTRY
from collectors.api import Collector
from exporters.prometheus import AgentView, ConfigStatus, EgovCollector, Exposition, TargetLabels
from exporters.snapshot import Snapshots

if TYPE_CHECKING:
    from agent.engine.pool import WorkerPool

log = logging.getLogger(__name__)
CLOSE_TIMEOUT = 5.0  # seconds each collector gets to close its sockets and sessions
MEMBER_TICK = 5.0  # seconds between observations of coverage members (the period form's counters)


def longest_window(loaded: LoadedConfig) -> float:
    windows = [k.measure.window for k in loaded.config.kpis if k.measure.kind == "availability"]
    return max(windows, default=86400.0)


def check_probe_allowlist(loaded: LoadedConfig) -> None:
    """Refuse, before anything is sent, a target whose ProbeHost-typed params lie outside the allowlist."""
    problems = [f"collector {name}: {why}" for name in loaded.config.collectors
                if (why := REGISTRY.undeclared_hosts(name)) is not None]
    for target in loaded.config.targets:
        for host in probe_hosts(loaded.target_params[target.id]):
            try:
                check_allowed(host)
            except ValueError as exc:
                problems.append(f"target {target.id}: {exc}")
    for source_id, host in source_hosts(loaded):
        try:
            check_allowed(host)
        except ValueError as exc:
            problems.append(f"source {source_id}: {exc}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ProbeNotAllowed(f"refusing to probe outside {ALLOW_ENV}: " + "; ".join(problems[:5]) + more)


@dataclass(frozen=True)
class _Derived:
    """Everything built from one configuration, assigned to the agent together (a failed build changes nothing)."""

    loaded: LoadedConfig
    units: UnitIndex
    manual: ManualData | None
    targets: list[TargetSpec]
    sources: SourceRunner | None
    engine: KpiEngine
    collectors: dict[str, Collector]


class Agent:
    """One configuration's worth of collection; ``collect_once`` and ``run`` drive it, ``reload`` swaps it."""

    def __init__(self, loaded: LoadedConfig, shard: Shard | None = None, state_path: Path | None = None,
                 state_save_interval: float = 15.0, workers: int = 1) -> None:
        check_probe_allowlist(loaded)
        self.shard = shard  # this agent probes only its share of the units (agent/sharding.py)
        self.workers = workers  # collector processes for ``run`` (agent/pool.py); 1: probes on this loop
        self.clock = MemberClock()  # up time of each coverage member, kept across reloads
        derived = self._derive(loaded, collectors_for(loaded, {}), None, None)
        self.loaded, self.units, self.manual = derived.loaded, derived.units, derived.manual
        self.targets, self.engine, self.collectors = derived.targets, derived.engine, derived.collectors
        self.sources = derived.sources  # application KPI sources (agent/sources), fetched on their own schedules
        self.store = Store(history_span=longest_window(loaded))
        # Counters and availability history from the previous run, so a restart does not zero the KPIs.
        self.state = StateFile(state_path, loaded.config.province.code) if state_path else None
        self.state_save_interval = state_save_interval
        if self.state is not None:
            self.state.restore(self.store, {t.id for t in self.targets})
        self.status = ConfigStatus(loaded.config.province.code, str(loaded.source), True, time.time(), time.time())
        # One snapshot of the store and the KPIs at a time, for /metrics, the status and the unit pages.
        self.snapshots = Snapshots(self.store, self._view())
        self.exposition = Exposition(EgovCollector(self.snapshots, lambda: self.status,
                                                   self.state.status if self.state else None))
        self.scheduler: Scheduler | WorkerPool | None = None
        self._reload_lock = asyncio.Lock()
        self._sources_task: asyncio.Task[None] | None = None  # while the sources run (_start_sources)

    def _derive(self, loaded: LoadedConfig, collectors: dict[str, Collector], manual_before: ManualData | None,
                sources_before: SourceRunner | None) -> _Derived:
        """Build everything derived from a configuration (the manual data and sources carry state over)."""
        config = loaded.config
        units = UnitIndex(config)
        manual_path = loaded.resolve_path(config.manual.file) if config.manual else None
        manual = (ManualData(manual_path, config.province.timezone, config.manual.max_file_size, manual_before)
                  if manual_path and config.manual else None)
        targets = [t for t in config.targets if self.shard is None or self.shard.owns_unit(t.unit)]
        sources = SourceRunner.from_config(loaded, set(units.units), sources_before)
        engine = KpiEngine(config, units, manual, {t.id for t in targets}, sources, self.shard, self.clock)
        return _Derived(loaded, units, manual, targets, sources, engine, collectors)

    def _apply(self, derived: _Derived) -> None:
        self.loaded, self.units, self.manual = derived.loaded, derived.units, derived.manual
        self.targets, self.engine, self.collectors = derived.targets, derived.engine, derived.collectors
        self.sources = derived.sources

    async def reload(self) -> LoadedConfig:
        """Re-read the configuration file and swap it in; on any error raise it and keep the running one.

        Counters of targets that stay are kept by the store; removed targets are forgotten; loops of
        unchanged targets go on undisturbed. ``egov_config_last_reload_successful`` says how it went.
        """
        async with self._reload_lock:
            source = self.loaded.source
            old = self.collectors
            old_sources = self.sources
            collectors: dict[str, Collector] = {}
            try:
                loaded = await asyncio.to_thread(load_config, source)
                check_probe_allowlist(loaded)
                collectors = collectors_for(loaded, old)
                self._apply(self._derive(loaded, collectors, self.manual, self.sources))
            except Exception:
                await self._close([c for c in collectors.values() if c not in old.values()])
                self.status = replace(self.status, success=False, load_time=time.time())
                self.exposition.invalidate()
                raise
            if self.scheduler is not None:
                await self.scheduler.update(loaded, collectors, self.targets)
            await self._swap_sources(old_sources)
            self.store.forget({t.id for t in self.targets})
            self.clock.forget({(k.id, u) for k in loaded.config.kpis for u in self._member_units(k)})
            self.store.set_history_span(longest_window(loaded))
            await self._close([c for name, c in old.items() if collectors.get(name) is not c])
            now = time.time()
            self.status = ConfigStatus(loaded.config.province.code, str(loaded.source), True, now, now)
            self.snapshots.set_view(self._view())
            self.exposition.invalidate()
            log.info("configuration reloaded from %s: %d targets, %d KPIs", source, len(self.targets),
                     len(loaded.config.kpis))
            return loaded

    def _member_units(self, kpi) -> tuple[str, ...]:
        measure = kpi.measure
        if measure.kind != "coverage" or not measure.over_units:
            return ()
        inventory = self.engine.inventory_of(measure)
        return inventory.members if inventory is not None else ()

    async def _observe_members(self) -> None:
        """Every few seconds, credit each coverage member's state to the clock (egov_kpi_member_*_seconds)."""
        while True:
            if self.engine.observes_members:  # (else a snapshot of every target for nothing, 40 ms at 40,000)
                self.engine.observe_members(self.store.states())
            await asyncio.sleep(MEMBER_TICK)

    async def _save_state(self) -> None:
        """Every few seconds, write the store's counters and history to the state file (off the loop)."""
        assert self.state is not None
        while True:
            await asyncio.sleep(self.state_save_interval)
            await asyncio.to_thread(self.state.save, self.store.states())

    async def _final_save(self) -> None:
        """On a clean stop, save what the last probes added; a kill loses at most one save interval."""
        if self.state is not None:
            await asyncio.to_thread(self.state.save, self.store.states())
            self.state.close()

    def _view(self) -> AgentView:
        labels = {
            t.id: TargetLabels(t.collector, (t.collector, t.id, t.unit, self.units.units[t.unit].level,
                                             *self.units.hierarchy_values(t.unit)), t.name or "", tuple(t.tags))
            for t in self.targets
        }
        families = {name: REGISTRY[name].families for name in self.loaded.config.collectors}
        return AgentView(self.loaded.config.levels, labels, families, self.loaded.config.province.timezone,
                         self.engine.evaluate, self._source_statuses if self.sources or self.manual else None,
                         self.loaded.config.reporting, self.units, self.clock.snapshot,
                         {name: spec.down_after for name, spec in self.loaded.config.collectors.items()})

    def _source_statuses(self) -> list[SourceStatus]:
        """The sources', and the manual data file's under the reserved source id «manual»."""
        statuses = self.sources.statuses() if self.sources else []
        if self.manual is not None:
            statuses.append(manual_status(self.manual))
        return statuses

    def evaluate(self) -> list[Evaluation]:
        return self.engine.evaluate(self.store.states())

    def states(self) -> Mapping[str, TargetState]:
        return self.store.states()

    async def collect_once(self) -> None:
        scheduler = Scheduler(self.loaded, self.store, self.collectors, self.targets)
        try:
            await asyncio.gather(scheduler.run_once(), *([self.sources.fetch_all()] if self.sources else []))
        finally:
            await self.close()

    async def run(self, stop: asyncio.Event, on_first_round: Callable[[], Awaitable[None] | None] | None = None,
                  ) -> None:
        if self.workers > 1:
            from agent.engine.pool import WorkerPool  # only when asked: the single-process agent never loads it

            self.scheduler = WorkerPool(self.loaded, self.store, self.targets, self.workers)
        else:
            self.scheduler = Scheduler(self.loaded, self.store, self.collectors, self.targets)
        probing = asyncio.create_task(self.scheduler.run_forever(), name="scheduler")
        observing = asyncio.create_task(self._observe_members(), name="member-clock")
        background = [observing]
        if self.state is not None:
            background.append(asyncio.create_task(self._save_state(), name="state-file"))
        first = asyncio.create_task(self.scheduler.ready.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({first, stopping, probing}, return_when=asyncio.FIRST_COMPLETED)
            if first in done:
                log.info("first collection round started: %d targets, %d of them still in their first probe",
                         len(self.targets), self.store.first_round_pending)
                if on_first_round is not None:
                    outcome = on_first_round()
                    if outcome is not None:
                        await outcome
                # The sources fetch from now on: their children (~0.4 s of CPU each, a dozen in Bắc Giang)
                # would otherwise take the cores from the first round, whose probes decide up and down.
                self._start_sources()
            await asyncio.wait({stopping, probing}, return_when=asyncio.FIRST_COMPLETED)
            crash = probing.exception() if probing.done() and not probing.cancelled() else None
            if crash is not None:
                raise crash
        finally:
            for task in (probing, first, stopping, *background):
                task.cancel()
            # A probe that ignores its cancellation must not hold up the stop: wait a bounded time.
            _, stuck = await asyncio.wait({probing, first, stopping, *background}, timeout=CLOSE_TIMEOUT)
            if stuck:
                log.error("probe loops did not stop within %gs; closing the collectors anyway", CLOSE_TIMEOUT)
            await self._final_save()
            await self._stop_sources()
            await self.close()

    def _start_sources(self) -> None:
        if self.sources is not None:
            self.sources.on_fetch = self.exposition.invalidate  # new figures show at the next scrape
            self._sources_task = asyncio.create_task(self.sources.run_forever(), name="sources")

    async def _stop_sources(self) -> None:
        task, self._sources_task = self._sources_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _swap_sources(self, old: SourceRunner | None) -> None:
        """After a reload: run the new sources (unchanged ones keep their values), close the dropped ones."""
        if old is self.sources:
            return
        running = self._sources_task is not None
        await self._stop_sources()
        if old is not None:
            await old.close(keep=self.sources)
        if running:
            self._start_sources()

    async def close(self) -> None:
        await self._close(list(self.collectors.values()))
        if self.sources is not None:
            await self.sources.close()

    @staticmethod
    async def _close(collectors: list[Collector]) -> None:
        """Release sockets and sessions, each collector within CLOSE_TIMEOUT so a stop stays prompt."""
        for collector in collectors:
            try:
                await asyncio.wait_for(collector.close(), CLOSE_TIMEOUT)
            except Exception:  # closing must not hide the reason we are stopping
                log.exception("closing collector %s", collector.kind, extra={"collector": collector.kind})
