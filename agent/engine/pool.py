"""``egov-agent run --workers N``: the probes in N worker processes, everything else in this one.

One asyncio loop tops out near one core (~10,000 links on a 60 s cycle). With workers, this process
keeps the configuration, the store, the KPI engine, the state file and the exposition, and N worker
processes (agent/worker.py) each run the collectors and the scheduler for the units that hash to
them: a unit's targets are all probed by one worker, and every target's counters, debounce
(``down_after``) and history are in this process's store, applied in the order its worker sent them,
as the single-process scheduler applies its own. The overrun rule runs in the worker, on the loop
that reads the answers, so a worker late on its own CPU discards its timeouts instead of reporting
false downs.

A worker that dies is restarted (after 1 s, doubling to 30 s while it keeps dying), logged and
counted in ``egov_agent_worker_restarts_total``; its targets keep their state meanwhile. Everything it
sent before it died is applied (the socket holds it); a frame it was cut off in the middle of is
dropped whole; a probe it had not finished is probed again by its successor. A reload sends the new
configuration to every worker, whose scheduler swaps it in as the single-process one does. Workers
die with this process (``PR_SET_PDEATHSIG``, and the end of their socket).

Each worker gets 1/N of every collector's ``concurrency``: the configured figure stays this agent's
whole load on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field

from agent.config.loading import LoadedConfig
from agent.config.schema import TargetSpec
from agent.domain import gcpause, logs
from agent.engine import wire
from agent.engine.loopwatch import LoopStatus
from agent.engine.scheduler import note_change
from agent.engine.store import Store
from agent.engine.worker import LOGGING_ENV
from collectors import REGISTRY
from collectors.api import ProbeResult, Sample
from collectors.runner import own_families

log = logging.getLogger(__name__)
RESTART_FIRST, RESTART_MAX = 1.0, 30.0  # seconds before a dead worker is started again (doubling)
STABLE_AFTER = 60.0  # a worker that ran this long before dying restarts after RESTART_FIRST again
STOP_WAIT = 3.0  # seconds a worker gets to stop after its socket closed, before SIGKILL


def worker_of(unit_id: str, count: int) -> int:
    """The worker (0-based) that probes this unit's targets. Not the CRC of agent/sharding.py: under
    ``--shard 1/2`` every unit of this agent has the same CRC parity, and a pool of 2 would get one share."""
    return int.from_bytes(hashlib.blake2b(unit_id.encode(), digest_size=8).digest(), "big") % count


@dataclass(frozen=True)
class PoolStatus:
    """What the exposition shows of the pool (replaced whole in the store)."""

    workers: int
    running: int
    restarts: int


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loop_status: LoopStatus = field(default_factory=LoopStatus)
    self_samples: dict[str, list[tuple]] = field(default_factory=dict)  # collector -> its latest own samples


class WorkerPool:
    """The scheduler's place in ``Agent.run`` when there are workers: same first round, update and stop."""

    def __init__(self, loaded: LoadedConfig, store: Store, targets: list[TargetSpec], count: int) -> None:
        if count < 2:
            raise ValueError("a pool needs 2 workers or more; 1 is the single-process scheduler")
        self.count = count
        self.store = store
        self.loaded = loaded
        self.targets = targets
        self._by_id = {t.id: t for t in targets}
        self._pending = set(self._by_id)
        self.first_round = asyncio.Event()
        # With workers the agent is ready when every target's first probe has ended: the workers' own
        # schedulers know when a probe outlived its answer time, the main process only sees results.
        self.ready = self.first_round
        store.set_first_round_pending(len(self._pending))
        if not self._pending:
            self.first_round.set()
        self._last_up: dict[str, bool] = {}  # counted for the daemon's STATUS= line (up_count)
        self._workers: dict[int, _Worker] = {}
        self._configs: list[bytes] = []  # each worker's pickled configuration
        self._retired: Counter[tuple[str, str, tuple[str, ...]]] = Counter()  # dead workers' own counters
        self.restarts = 0
        self._publish()
        gcpause.keep_alive_objects()  # the configuration and the store: scanned by every full collection else

    # -- configuration -------------------------------------------------------------------------
    def up_count(self) -> int:
        """Targets up at their latest probe since the start (the daemon's STATUS= line)."""
        return sum(1 for up in self._last_up.values() if up)

    def _split(self, loaded: LoadedConfig, targets: list[TargetSpec]) -> list[bytes]:
        """Each worker's configuration, pickled: its own targets only (not the units, KPIs or sources)."""
        shares: list[list[TargetSpec]] = [[] for _ in range(self.count)]
        for target in targets:
            shares[worker_of(target.unit, self.count)].append(target)
        out = []
        for mine in shares:
            config = loaded.config.model_copy(update={"targets": mine, "units": [], "kpis": [], "sources": [],
                                                      "inventories": [], "manual": None})
            params = {t.id: loaded.target_params[t.id] for t in mine}
            pruned = LoadedConfig(config, loaded.source, loaded.collector_settings, params)
            out.append(pickle.dumps([("config", pruned, [t.id for t in mine], self.count)],
                                    protocol=pickle.HIGHEST_PROTOCOL))
        return out

    async def update(self, loaded: LoadedConfig, collectors: object, targets: list[TargetSpec]) -> None:
        """A reload: every worker gets its new share (its scheduler keeps unchanged targets' loops going)."""
        configs = await asyncio.to_thread(self._split, loaded, targets)
        new_ids = {t.id for t in targets}
        added = new_ids - set(self._by_id)
        self.loaded, self.targets, self._by_id, self._configs = loaded, targets, {t.id: t for t in targets}, configs
        for target_id in [i for i in self._last_up if i not in new_ids]:
            del self._last_up[target_id]
        self._pending &= new_ids
        if not self.first_round.is_set():
            self._pending |= added
        self.store.set_first_round_pending(len(self._pending))
        if not self._pending:
            self.first_round.set()
        for worker in self._workers.values():
            self._send_config(worker)
        log.info("configuration sent to %d workers: %d targets", len(self._workers), len(targets))

    def _send_config(self, worker: _Worker) -> None:
        body = self._configs[worker.index]
        worker.writer.write(len(body).to_bytes(4, "big") + body)  # a frame of one message (agent/wire.py)

    # -- running -------------------------------------------------------------------------------
    async def run_forever(self) -> None:
        self._configs = await asyncio.to_thread(self._split, self.loaded, self.targets)
        supervisors = [asyncio.create_task(self._supervise(i), name=f"worker-{i + 1}") for i in range(self.count)]
        try:
            await asyncio.gather(*supervisors)
        finally:
            for task in supervisors:
                task.cancel()
            await asyncio.gather(*supervisors, return_exceptions=True)
            await self._stop([*self._workers.values()])

    async def _supervise(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_FIRST
        while True:
            worker = await self._spawn(index)
            started = loop.time()
            await self._read(worker)  # until it dies (a stop cancels this, and run_forever stops the workers)
            code = (await self._stop([worker]))[0]
            if loop.time() - started >= STABLE_AFTER:
                delay = RESTART_FIRST
            self.restarts += 1
            self._publish()
            log.error("collector worker %d (pid %d) exited with %s: restarting it in %gs", index + 1,
                      worker.proc.pid, _exit_text(code), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)

    async def _spawn(self, index: int) -> _Worker:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, LOGGING_ENV: "\t".join(logs.current)}
        try:
            argv = [sys.executable, "-m", "agent.engine.worker", str(theirs.fileno()), str(os.getpid())]
            proc = subprocess.Popen(argv,
                                    pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=mine)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        worker = _Worker(index, proc, reader, writer)
        self._workers[index] = worker
        self._send_config(worker)
        self._publish()
        log.info("collector worker %d started: pid %d", index + 1, proc.pid)
        return worker

    async def _stop(self, workers: list[_Worker]) -> list[int | None]:
        """Close their sockets (a live worker stops at the end of its socket), wait STOP_WAIT, then SIGKILL.
        Bounded however it is interrupted: a cancellation kills the workers left at once."""
        for worker in workers:
            self._workers.pop(worker.index, None)
            self._retire(worker)
            worker.writer.close()
        try:
            for _ in range(int(STOP_WAIT / 0.05)):
                if all(w.proc.poll() is not None for w in workers):
                    break
                await asyncio.sleep(0.05)
        finally:
            for worker in workers:
                if worker.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.proc.kill()
            codes: list[int | None] = [w.proc.wait() for w in workers]  # at once: they exited or were just killed
            self._publish()
        return codes

    async def _read(self, worker: _Worker) -> None:
        while (messages := await wire.read(worker.reader)) is not None:
            for message in messages:
                self._apply(worker, message)

    # -- applying what workers send ------------------------------------------------------------
    def _apply(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "r":
            _, target_id, finished_at, duration, up, reason, samples, detail = message
            target = self._by_id.get(target_id)
            if target is None:
                return  # removed by a reload while its probe was on its way
            result = ProbeResult(up, reason, [Sample(*s) for s in samples], detail)
            down_after = self.loaded.config.collectors[target.collector].down_after
            state = self.store.record(target_id, target.collector, result, duration, finished_at, down_after)
            note_change(self._last_up, target, result, state)
        elif kind == "d":
            self._pending.discard(message[1])
            self.store.set_first_round_pending(len(self._pending))
            if not self._pending and not self.first_round.is_set():
                gcpause.keep_alive_objects()  # every target's record and rendered text now exist, for good
                self.first_round.set()
        elif kind == "s":
            self.store.record_skip(message[1], message[2])
        elif kind == "o":
            self.store.record_overrun(message[1])
        elif kind == "f":
            worker.self_samples[message[1]] = message[2]
            self._publish_self(message[1])
        elif kind == "l":
            worker.loop_status = LoopStatus(message[1], message[2])
            statuses = [w.loop_status for w in self._workers.values() if w is not worker] + [worker.loop_status]
            self.store.set_loop_status(LoopStatus(max(s.lag_seconds for s in statuses),
                                                  any(s.overloaded for s in statuses)))

    def _publish_self(self, collector: str) -> None:
        """The collector's own counters summed over the workers, dead workers' counters included."""
        kind = REGISTRY.get(collector)
        families = own_families(kind) if kind is not None else ()
        total: Counter[tuple[str, tuple[str, ...]]] = Counter()
        for (name, family, labels), value in self._retired.items():
            if name == collector:
                total[(family, labels)] += value
        for worker in self._workers.values():
            for family, value, labels in worker.self_samples.get(collector, ()):
                total[(family, tuple(labels))] += value
        self.store.record_self(collector, families, [Sample(f, v, labels) for (f, labels), v in total.items()])

    def _retire(self, worker: _Worker) -> None:
        """Keep a dead worker's counters in the sums, so they do not go backwards (its gauges go with it)."""
        for collector, samples in worker.self_samples.items():
            kind = REGISTRY.get(collector)
            counters = {f.name for f in (own_families(kind) if kind is not None else ()) if f.type == "counter"}
            for family, value, labels in samples:
                if family in counters:
                    self._retired[(collector, family, tuple(labels))] += value
        collectors, worker.self_samples = list(worker.self_samples), {}
        for collector in collectors:
            self._publish_self(collector)

    def _publish(self) -> None:
        self.store.set_pool_status(PoolStatus(self.count, len(self._workers), self.restarts))


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"code {code}"
