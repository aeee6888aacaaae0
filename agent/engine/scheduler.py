"""Probe scheduling on one asyncio loop: every target on its own interval, bounded and timed out.

Each target runs its own loop, started at a random offset inside ``jitter × interval`` so probes
spread instead of firing together. A semaphore per collector bounds concurrency; the timeout counts
from when a probe gets its slot, so a queue of slow targets does not eat the budget of the next.
A hung target only ever occupies its own slot until its timeout: the probe runner (collectors/runner.py)
enforces it, names the failure and checks the samples, the same for every kind.

The agent's own overload is not a target's failure. A probe that found no answer in time
(NO_ANSWER_REASONS) while the loop spent more than OVERRUN_SHARE of its timeout behind schedule, or
that ended past its own deadline, is an *overrun*: ``egov_collector_overrun_total`` counts it, and the target
keeps its state and its availability counts, as if the probe had been skipped, for at most
OVERRUN_PATIENCE seconds of overruns in a row. A target that was up goes down only after its collector's
``down_after`` failed probes in a row.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass

from agent.config.loading import LoadedConfig
from agent.config.schema import TargetSpec
from agent.engine.loopwatch import LoopWatch
from agent.engine.store import Store
from collectors import REGISTRY
from collectors.api import ANSWER_HOOK, ANSWER_TIME, Collector, ProbeResult
from collectors.runner import ProbeRunner, own_families

log = logging.getLogger(__name__)
TIMEOUT_GRACE = 0.5  # seconds a probe may end past its timeout (the loop's own lateness) before it is an overrun
# Reasons that mean "no answer within the time allowed": the only verdicts a late loop can fake.
# A refusal, a wrong community or an HTTP 500 is an answer, and counts however late the loop was.
NO_ANSWER_REASONS = frozenset({"timeout", "loss"})
# Time the loop spent behind schedule during a probe, as a share of its timeout, past which the probe's
# timeout is not the target's. Summed, not the longest stall: a loop saturated by a burst of probes is
# late by 0.1-0.5 s at each step, and a probe of several round trips pays every step (0.8-1.8 s of 3 s
# measured with 200 routers).
OVERRUN_SHARE = 0.25
# How long a target's state is held through overruns in a row. Past this the agent reports what it sees
# (and still says it is overloaded): a dead router is hidden by the agent's own overload for at most
# this long, while a burst of starvation (a minute of it is tested) fools nobody.
OVERRUN_PATIENCE = 90.0
# The first round starts every target within a spread of the agent's start sized to what can be in flight at
# once: each collector's targets up to its concurrency (the rest wait for a slot anyway), started at
# FIRST_ROUND_RATE a second, at most FIRST_ROUND_SPREAD seconds (the configured jitter still spreads the later
# rounds: each target keeps its random phase). At 2,000 a second the demo's 854 starts take 0.43 s; started
# all at once they kept its loop at most 50 ms late and every SNMP answer came within 0.42 s, so the pace
# leaves room for a machine twice as slow (docs/benchmarks.md). The agent is *ready* once every first probe
# has started, and each has ended or outlived the time a live target takes to answer: it waits for the
# targets that answer, never for the dead ones' timeouts.
FIRST_ROUND_RATE = 2000.0
FIRST_ROUND_SPREAD = 1.5
READY_TICK = 0.05  # seconds between looks at the first round's probes until the agent is ready


@dataclass
class _FirstProbe:
    """A target's first probe, as readiness sees it."""

    started: float  # when it asked for a slot (loop clock)
    answer_time: float  # how long a live target's whole probe takes (Collector.answer_time)
    early: bool  # the collector says when the target first answered (Collector.answers_early)
    answered: bool = False


def first_round_spread(in_flight: int) -> float:
    """Seconds over which the first round starts ``in_flight`` probes (the most that can run at once)."""
    return min(FIRST_ROUND_SPREAD, in_flight / FIRST_ROUND_RATE)


def note_change(last_up: dict[str, bool], target: TargetSpec, result: ProbeResult, up: bool) -> None:
    """Log changes of state only, so a dead commune logs once, not every interval."""
    before = last_up.get(target.id)
    last_up[target.id] = up
    if before is None and up:
        return
    if before != up:
        fields = {"collector": target.collector, "target": target.id, "unit": target.unit}
        if up:
            log.info("target up: collector=%s target=%s unit=%s", target.collector, target.id, target.unit,
                     extra=fields)
        else:
            log.warning("target down: collector=%s target=%s unit=%s reason=%s%s", target.collector,
                        target.id, target.unit, result.reason, f" ({result.detail})" if result.detail else "",
                        extra={**fields, "reason": result.reason})


class Scheduler:
    def __init__(self, loaded: LoadedConfig, store: Store, collectors: dict[str, Collector],
                 targets: list[TargetSpec], share_of: int = 1) -> None:
        self.loaded = loaded
        self.store = store
        self.collectors = collectors
        self.runner = ProbeRunner()
        self.targets = targets
        # A worker of a pool of ``share_of`` gets that share of each collector's concurrency, so the
        # configured figure stays the agent's whole load on the network (agent/pool.py).
        self.share_of = share_of
        specs = loaded.config.collectors
        self._slots = {name: self._semaphore(spec.concurrency) for name, spec in specs.items()}
        self._by_id = {t.id: t for t in targets}
        self._pending = {t.id for t in targets}
        self.first_round = asyncio.Event()  # every target probed once
        self.ready = asyncio.Event()  # every target's first probe started; those that answer, answered
        self._first: dict[str, _FirstProbe] = {}  # target -> its first probe, once it has asked for a slot
        self.spread = self._first_round_spread()
        if not self._pending:
            self.first_round.set()
            self.ready.set()
        store.set_first_round_pending(len(self._pending))
        self._last_up: dict[str, bool] = {}
        self._overrun_since: dict[str, float] = {}  # target -> when its current run of overruns began (loop clock)
        self._tasks: dict[str, asyncio.Task] = {}
        self._failure: asyncio.Future | None = None
        self.watch = LoopWatch(store.set_loop_status)

    def up_count(self) -> int:
        """Targets up at their latest probe since the start (the daemon's STATUS= line)."""
        return sum(1 for up in self._last_up.values() if up)

    def _semaphore(self, concurrency: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(max(1, math.ceil(concurrency / self.share_of)))

    def _first_round_spread(self) -> float:
        counts: dict[str, int] = {}
        for target in self.targets:
            counts[target.collector] = counts.get(target.collector, 0) + 1
        specs = self.loaded.config.collectors
        slots = {name: max(1, math.ceil(specs[name].concurrency / self.share_of)) for name in counts}
        return first_round_spread(sum(min(n, slots[name]) for name, n in counts.items()))

    async def probe(self, target: TargetSpec) -> ProbeResult:
        spec = self.loaded.config.collectors[target.collector]
        collector = self.collectors[target.collector]
        params = self.loaded.target_params[target.id]
        hook = None
        if target.id in self._pending and target.id not in self._first:
            # Its first probe starts, or queues for a slot: one that waits behind dead targets' timeouts is not
            # waited for either.
            first = _FirstProbe(asyncio.get_running_loop().time(), collector.answer_time(params),
                                collector.answers_early)
            self._first[target.id] = first
            if first.early:
                hook = ANSWER_HOOK.set(lambda: setattr(first, "answered", True))
        try:
            async with self._slots[target.collector]:
                slot_at = asyncio.get_running_loop().time()
                probed = await self.runner.run(collector, target.id, params, spec.timeout)
        finally:
            if hook is not None:
                ANSWER_HOOK.reset(hook)
        result, duration = probed.result, probed.seconds
        if collector.self_families or self.runner.has_samples(collector.kind):
            self.store.record_self(target.collector, own_families(collector),
                                   collector.self_samples() + self.runner.self_samples(collector.kind))
        if not result.up and (behind := self._overrun(result, slot_at, spec.timeout)) is not None:
            now = asyncio.get_running_loop().time()
            if now - self._overrun_since.setdefault(target.id, now) < OVERRUN_PATIENCE:
                self._count_overrun(target, result, behind, spec.timeout)
                return result
            # Overloaded for too long to keep waiting: count what was seen (egov_agent_overloaded says why).
        else:
            self._overrun_since.pop(target.id, None)
        self._record(target, result, duration, spec.down_after)
        return result

    def _record(self, target: TargetSpec, result: ProbeResult, duration: float, down_after: int) -> None:
        """Count the probe in the store (a pool's worker sends it to the main process instead)."""
        up = self.store.record(target.id, target.collector, result, duration, down_after=down_after)
        self._note(target, result, up)

    def _overrun(self, result: ProbeResult, slot_at: float, timeout: float) -> float | None:
        """Seconds the loop was behind if this failure is the agent's own (no answer, while the loop was
        too late to read one), else None."""
        if result.reason not in NO_ANSWER_REASONS:
            return None
        now = asyncio.get_running_loop().time()
        behind = max(self.watch.behind_since(slot_at, now), now - slot_at - timeout - TIMEOUT_GRACE)
        return behind if behind > OVERRUN_SHARE * timeout else None

    def _count_overrun(self, target: TargetSpec, result: ProbeResult, behind: float, timeout: float) -> None:
        """Only the counter moves: the target keeps its state and its availability counts."""
        self.store.record_overrun(target.collector)
        self.watch.note_overrun()
        log.warning("collector=%s target=%s: probe overrun, not counted: the agent's loop was %.2fs behind "
                    "within a %gs timeout (%s)", target.collector, target.id, behind, timeout, result.reason,
                    extra={"collector": target.collector, "target": target.id, "reason": "overrun",
                           "limit_key": (target.collector, "overrun")})
        self._settled(target)

    def _note(self, target: TargetSpec, result: ProbeResult, up: bool) -> None:
        note_change(self._last_up, target, result, up)
        self._settled(target)

    def _settled(self, target: TargetSpec) -> None:
        """The target had its turn in the first round (an overrun too: waiting would not make it timely)."""
        self._pending.discard(target.id)
        self.store.set_first_round_pending(len(self._pending))
        if not self._pending:
            self.first_round.set()
            self.ready.set()

    def _outlived(self, target_id: str, now: float) -> bool:
        """The first probe has run longer than a live target takes to answer (for a collector that says when its
        target answered: ANSWER_TIME without an answer, its whole answer time with one), not counting the time
        the loop itself was behind (an agent busy with its first round answers late, its targets did not)."""
        first = self._first.get(target_id)
        if first is None:
            return False  # not started yet
        limit = first.answer_time if first.answered or not first.early else min(ANSWER_TIME, first.answer_time)
        return now - first.started - self.watch.behind_since(first.started, now) >= limit

    async def _watch_ready(self) -> None:
        """Set ``ready`` once no first probe is left that has not started or may still bring an answer."""
        loop = asyncio.get_running_loop()
        while not self.ready.is_set():
            now = loop.time()
            if all(self._outlived(i, now) for i in self._pending):
                log.info("ready: every target's first probe started; %d still wait on their timeout",
                         len(self._pending))
                self.ready.set()
                return
            await asyncio.sleep(READY_TICK)

    async def run_once(self) -> None:
        """Probe every target once (the ``once`` command and the first round of tests)."""
        watching = asyncio.create_task(self.watch.run(), name="loop-watch")
        try:
            await asyncio.gather(*(self.probe(t) for t in self.targets))
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)

    async def run_forever(self) -> None:
        """Run every target's loop until cancelled; a loop that crashes ends it with that exception."""
        self._failure = asyncio.get_running_loop().create_future()
        watching = asyncio.create_task(self.watch.run(), name="loop-watch")
        readiness = asyncio.create_task(self._watch_ready(), name="readiness")
        for target in self.targets:
            self._start(target)
        try:
            await self._failure
        finally:
            watching.cancel()
            readiness.cancel()
            await self._stop(list(self._tasks))
            await asyncio.gather(watching, readiness, return_exceptions=True)

    def _start(self, target: TargetSpec) -> None:
        task = asyncio.create_task(self._loop(target.id), name=f"probe:{target.id}")
        task.add_done_callback(self._loop_ended)
        self._tasks[target.id] = task

    def _loop_ended(self, task: asyncio.Task) -> None:
        """A loop that crashed ends ``run_forever`` (and the agent: systemd restarts it); a stopped one is fine."""
        crash = None if task.cancelled() else task.exception()
        if crash is None or self._failure is None or self._failure.done():
            return
        self._failure.set_exception(crash)

    async def _stop(self, target_ids: list[str]) -> None:
        """Cancel these targets' loops and wait until they have ended.

        Python 3.11's ``asyncio.wait_for`` loses a cancellation that arrives as the awaited probe
        completes (it returns the result instead), so a single ``cancel()`` may not end a loop: the soak
        caught a reload waiting forever on one. Cancel again until every loop is gone; a loop also ends
        by itself once it sees it is no longer the target's registered task.
        """
        pending = {self._tasks.pop(i) for i in target_ids if i in self._tasks}
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)

    async def update(self, loaded: LoadedConfig, collectors: dict[str, Collector], targets: list[TargetSpec]) -> None:
        """Swap in a reloaded configuration. Loops of targets whose probe is unchanged (same collector
        instance and settings, same params) keep running undisturbed; the others are restarted, removed
        targets stopped. Names, units and tags take effect at the next probe either way."""
        old_loaded, old_collectors = self.loaded, self.collectors

        def probe_key(cfg: LoadedConfig, instances: dict[str, Collector], target: TargetSpec) -> tuple:
            return (target.collector, cfg.config.collectors[target.collector], cfg.target_params[target.id],
                    id(instances[target.collector]))

        old_keys = {t.id: probe_key(old_loaded, old_collectors, t) for t in self.targets}
        changed = [t for t in targets if old_keys.get(t.id) != probe_key(loaded, collectors, t)]
        new_ids = {t.id for t in targets}
        gone = [i for i in old_keys if i not in new_ids]
        await self._stop(gone + [t.id for t in changed if t.id in self._tasks])
        for name, spec in loaded.config.collectors.items():
            if name not in self._slots or old_loaded.config.collectors.get(name) != spec:
                self._slots[name] = self._semaphore(spec.concurrency)
        self.loaded, self.collectors, self.targets = loaded, collectors, targets
        self._by_id = {t.id: t for t in targets}
        self.spread = self._first_round_spread()
        for target_id in gone:
            self._last_up.pop(target_id, None)
            self._overrun_since.pop(target_id, None)
        self._pending &= new_ids
        if not self.first_round.is_set():
            self._pending |= {t.id for t in changed}
        self.store.set_first_round_pending(len(self._pending))
        if not self._pending:
            self.first_round.set()
            self.ready.set()
        if self._failure is not None:
            for target in changed:
                self._start(target)
        log.info("configuration applied: %d targets, %d restarted, %d removed", len(targets), len(changed), len(gone))

    async def _loop(self, target_id: str) -> None:
        target = self._by_id[target_id]
        spec = self.loaded.config.collectors[target.collector]
        loop = asyncio.get_running_loop()
        spread = spec.interval * spec.jitter
        phase = random.uniform(0, spread)
        next_at = loop.time() + phase
        # The first probe comes early, at the same share of the first round's spread; the next keeps the phase.
        await asyncio.sleep(phase if spread <= self.spread else phase * self.spread / spread)
        first = True
        while True:
            target = self._by_id[target_id]  # the current spec: a reload may have renamed or moved it
            late = loop.time() - next_at
            if first or late <= OVERRUN_SHARE * spec.timeout:
                await self.probe(target)
                if self._tasks.get(target_id) is not asyncio.current_task():
                    return  # stopped, though the cancellation was lost (see _stop)
            else:
                # Woken this late, the loop was stalled: every target whose tick fell in the stall wakes now,
                # and probing them all at once would make a burst no answer survives (200 false downs
                # right after a starvation ended, tests/test_overload.py). Skip to this target's next tick.
                self.store.record_skip(target.collector, 1)
            first = False
            next_at += spec.interval
            now = loop.time()
            if next_at < now:  # the probe overran its interval: skip the missed ticks, do not pile up
                missed = int((now - next_at) // spec.interval) + 1
                self.store.record_skip(target.collector, missed)
                next_at += missed * spec.interval
            await asyncio.sleep(next_at - now)


def collectors_for(loaded: LoadedConfig, current: dict[str, Collector]) -> dict[str, Collector]:
    """One collector per configured kind, keeping a running one (its sockets, sessions, caches) whose settings
    are unchanged: the agent and each worker of a pool, at start and at every reload."""
    out = {}
    for name in loaded.config.collectors:
        settings = loaded.collector_settings[name]
        running = current.get(name)
        out[name] = running if running is not None and running.settings == settings else REGISTRY[name](settings)
    return out
