"""The running agent: configuration, collectors, scheduler, KPI engine and exposition wired together."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from agent.config import LoadedConfig
from agent.kpi import Evaluation, KpiEngine
from agent.manual import ManualData
from agent.scheduler import Scheduler
from agent.store import Store, TargetState
from agent.units import UnitIndex
from collectors import REGISTRY
from collectors.base import Collector
from collectors.netaddr import ALLOW_ENV, check_allowed
from exporters.prometheus import AgentView, ConfigStatus, EgovCollector, Exposition, TargetLabels

log = logging.getLogger(__name__)


def longest_window(loaded: LoadedConfig) -> float:
    windows = [k.measure.window for k in loaded.config.kpis if k.measure.kind == "availability"]
    return max(windows, default=86400.0)


class ProbeNotAllowed(Exception):
    """A target address lies outside EGOV_AGENT_PROBE_ALLOW."""


def check_probe_allowlist(loaded: LoadedConfig) -> None:
    problems = []
    for target in loaded.config.targets:
        for host in loaded.target_params[target.id].probe_hosts():
            try:
                check_allowed(host)
            except ValueError as exc:
                problems.append(f"target {target.id}: {exc}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ProbeNotAllowed(f"refusing to probe outside {ALLOW_ENV}: " + "; ".join(problems[:5]) + more)


class Agent:
    """One configuration's worth of collection; ``collect_once`` and ``run`` drive it."""

    def __init__(self, loaded: LoadedConfig) -> None:
        check_probe_allowlist(loaded)
        self.loaded = loaded
        config = loaded.config
        self.units = UnitIndex(config)
        manual_path = loaded.resolve_path(config.manual.file) if config.manual else None
        self.manual = ManualData(manual_path) if manual_path else None
        self.targets = list(config.targets)
        self.engine = KpiEngine(config, self.units, self.manual, {t.id for t in self.targets})
        self.store = Store(history_span=longest_window(loaded))
        self.collectors: dict[str, Collector] = {
            name: REGISTRY[name](loaded.collector_settings[name]) for name in config.collectors
        }
        self.status = ConfigStatus(config.province.code, str(loaded.source), True, time.time(), time.time())
        self.exposition = Exposition(EgovCollector(self.store, self._view(), self.status))
        self.scheduler: Scheduler | None = None

    def _view(self) -> AgentView:
        labels = {
            t.id: TargetLabels(t.collector, (t.collector, t.id, t.unit, self.units.units[t.unit].level,
                                             *self.units.hierarchy_values(t.unit)))
            for t in self.targets
        }
        families = {name: REGISTRY[name].families for name in self.loaded.config.collectors}
        return AgentView(self.loaded.config.levels, labels, families, self.loaded.config.province.timezone,
                         self.engine.evaluate)

    def evaluate(self) -> list[Evaluation]:
        states, _ = self.store.snapshot()
        return self.engine.evaluate(states)

    def states(self) -> dict[str, TargetState]:
        return self.store.snapshot()[0]

    async def collect_once(self) -> None:
        scheduler = Scheduler(self.loaded, self.store, self.collectors, self.targets)
        try:
            await scheduler.run_once()
        finally:
            await self.close()

    async def run(self, stop: asyncio.Event, on_first_round: Callable[[], Awaitable[None] | None] | None = None,
                  ) -> None:
        self.scheduler = Scheduler(self.loaded, self.store, self.collectors, self.targets)
        probing = asyncio.create_task(self.scheduler.run_forever(), name="scheduler")
        first = asyncio.create_task(self.scheduler.first_round.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({first, stopping, probing}, return_when=asyncio.FIRST_COMPLETED)
            if first in done:
                log.info("first collection round complete: %d targets", len(self.targets))
                if on_first_round is not None:
                    outcome = on_first_round()
                    if outcome is not None:
                        await outcome
            await asyncio.wait({stopping, probing}, return_when=asyncio.FIRST_COMPLETED)
            if probing.done() and not probing.cancelled() and probing.exception():
                raise probing.exception()  # type: ignore[misc]
        finally:
            for task in (probing, first, stopping):
                task.cancel()
            await asyncio.gather(probing, first, stopping, return_exceptions=True)
            await self.close()

    async def close(self) -> None:
        for collector in self.collectors.values():
            try:
                await collector.close()
            except Exception:  # closing must not hide the reason we are stopping
                log.exception("closing collector %s", collector.kind)
