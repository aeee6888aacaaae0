"""Probe scheduling on one asyncio loop: every target on its own interval, bounded and timed out.

Each target runs its own loop, started at a random offset inside ``jitter × interval`` so probes
spread instead of firing together. A semaphore per collector bounds concurrency; the timeout counts
from when a probe gets its slot, so a queue of slow targets does not eat the budget of the next.
A hung target only ever occupies its own slot until its timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from agent.config import LoadedConfig, TargetSpec
from agent.store import Store
from collectors.base import Collector, ProbeResult

log = logging.getLogger(__name__)
TIMEOUT_GRACE = 0.5  # seconds past the collector's own timeout before the scheduler cancels it


class Scheduler:
    def __init__(self, loaded: LoadedConfig, store: Store, collectors: dict[str, Collector],
                 targets: list[TargetSpec]) -> None:
        self.loaded = loaded
        self.store = store
        self.collectors = collectors
        self.targets = targets
        specs = loaded.config.collectors
        self._slots = {name: asyncio.Semaphore(spec.concurrency) for name, spec in specs.items()}
        self._pending = {t.id for t in targets}
        self.first_round = asyncio.Event()
        if not self._pending:
            self.first_round.set()
        self._last_up: dict[str, bool] = {}

    async def probe(self, target: TargetSpec) -> ProbeResult:
        spec = self.loaded.config.collectors[target.collector]
        collector = self.collectors[target.collector]
        params = self.loaded.target_params[target.id]
        async with self._slots[target.collector]:
            started = time.perf_counter()
            try:
                result = await asyncio.wait_for(collector.probe(target.id, params, spec.timeout),
                                                spec.timeout + TIMEOUT_GRACE)
            except TimeoutError:
                result = ProbeResult(False, "timeout", detail=f"no answer within {spec.timeout:g}s")
            except Exception as exc:  # a collector bug must not stop the other targets
                log.exception("collector=%s target=%s: probe raised", target.collector, target.id)
                result = ProbeResult(False, "internal_error", detail=type(exc).__name__)
            duration = time.perf_counter() - started
        self.store.record(target.id, target.collector, result, duration)
        self._note(target, result)
        return result

    def _note(self, target: TargetSpec, result: ProbeResult) -> None:
        """Log changes of state only, so a dead commune logs once, not every interval."""
        before = self._last_up.get(target.id)
        self._last_up[target.id] = result.up
        if before is None and result.up:
            pass
        elif before != result.up:
            if result.up:
                log.info("target up: collector=%s target=%s unit=%s", target.collector, target.id, target.unit)
            else:
                log.warning("target down: collector=%s target=%s unit=%s reason=%s%s", target.collector,
                            target.id, target.unit, result.reason, f" ({result.detail})" if result.detail else "")
        self._pending.discard(target.id)
        if not self._pending:
            self.first_round.set()

    async def run_once(self) -> None:
        """Probe every target once (the ``once`` command and the first round of tests)."""
        await asyncio.gather(*(self.probe(t) for t in self.targets))

    async def run_forever(self) -> None:
        tasks = [asyncio.create_task(self._loop(t), name=f"probe:{t.id}") for t in self.targets]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, target: TargetSpec) -> None:
        spec = self.loaded.config.collectors[target.collector]
        loop = asyncio.get_running_loop()
        await asyncio.sleep(random.uniform(0, spec.interval * spec.jitter))
        next_at = loop.time()
        while True:
            await self.probe(target)
            next_at += spec.interval
            now = loop.time()
            if next_at < now:  # the probe overran its interval: skip the missed ticks, do not pile up
                missed = int((now - next_at) // spec.interval) + 1
                self.store.record_skip(target.collector, missed)
                next_at += missed * spec.interval
            await asyncio.sleep(next_at - now)
