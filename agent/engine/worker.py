"""A collector worker of ``egov-agent run --workers N``: probes one share of the units, reports to the main process.

``python -m agent.worker FD PARENT_PID`` is started by agent/pool.py with one end of a socket pair.
It receives the configuration and its targets, runs the collectors and the scheduler for them on its
own asyncio loop (so its own lateness is what the overrun rule reads, agent/loopwatch.py), and sends
every result, skip, overrun and loop status to the main process, which owns the store, the KPIs,
the state file and the exposition: nothing about a target is kept here beyond its probe loop.

It never outlives the main process: the kernel kills it when the parent dies
(``PR_SET_PDEATHSIG``), and it stops when the socket reaches its end. SIGINT (a terminal's Ctrl-C
reaches the whole process group) and SIGHUP are the main process's to handle; SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import time

from agent.config.loading import LoadedConfig
from agent.config.schema import TargetSpec
from agent.domain import gcpause
from agent.domain.logs import DEFAULT_RATE, setup_logging
from agent.engine import wire
from agent.engine.loopwatch import LoopStatus
from agent.engine.scheduler import Scheduler, collectors_for
from collectors.api import Collector, Family, ProbeResult, Sample

log = logging.getLogger("egov-agent.worker")
PR_SET_PDEATHSIG = 1
LOGGING_ENV = "EGOV_AGENT_WORKER_LOGGING"  # the main process's level, format and rate limit, tab-separated


FLUSH_EVERY = 0.05  # seconds a message may wait for others to share its frame (40,000 targets: ~20 frames/s)


class Outbox:
    """Messages go out in one frame per FLUSH_EVERY, not one per loop iteration (a frame is a pickle, a
    write and the main process's read and unpickle: at 20,000 targets a worker's loop answers probes in
    hundreds of iterations a second); the collectors' own counters only as they are last. Each result
    carries the time its probe ended, so the wait changes no figure."""

    def __init__(self, writer: asyncio.StreamWriter, every: float = FLUSH_EVERY) -> None:
        self.writer = writer
        self.every = every
        self._pending: list[tuple] = []
        self._self: dict[str, list[tuple]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def put(self, message: tuple) -> None:
        self._pending.append(message)
        self._schedule()

    def put_self(self, collector: str, samples: list[Sample]) -> None:
        self._self[collector] = [(s.family, s.value, s.labels) for s in samples]
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.every, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        messages = self._pending + [("f", c, s) for c, s in self._self.items()]
        self._pending, self._self = [], {}
        if messages and not self.writer.is_closing():
            self.writer.write(wire.frame(messages))


class ForwardingStore:
    """What the scheduler asks of a store, sent to the main process (results go through WorkerScheduler)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def record_skip(self, collector: str, missed: int) -> None:
        self.outbox.put(("s", collector, missed))

    def record_overrun(self, collector: str) -> None:
        self.outbox.put(("o", collector))

    def record_self(self, collector: str, families: tuple[Family, ...], samples: list[Sample]) -> None:
        self.outbox.put_self(collector, samples)

    def set_loop_status(self, status: LoopStatus) -> None:
        self.outbox.put(("l", status.lag_seconds, status.overloaded))

    def set_first_round_pending(self, count: int) -> None:
        """Nothing to send: the main process counts the first round from the results (agent/pool.py)."""


class WorkerScheduler(Scheduler):
    """The scheduler as it is, each verdict sent to the main process, which debounces and stores it."""

    def __init__(self, outbox: Outbox, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.outbox = outbox

    def _record(self, target: TargetSpec, result: ProbeResult, duration: float, down_after: int) -> None:
        samples = [(s.family, s.value, s.labels) for s in result.samples]
        self.outbox.put(("r", target.id, time.time(), duration, result.up, result.reason, samples, result.detail))
        self._settled(target)

    def _settled(self, target: TargetSpec) -> None:
        if target.id in self._pending:
            self.outbox.put(("d", target.id))
            if len(self._pending) == 1:  # the last: every target's state (caches, history) is built
                gcpause.keep_alive_objects()
        super()._settled(target)


def _targets(loaded: LoadedConfig, ids: list[str]) -> list[TargetSpec]:
    mine = set(ids)
    return [t for t in loaded.config.targets if t.id in mine]


async def _close(collectors: list[Collector]) -> None:
    for collector in collectors:
        try:
            await asyncio.wait_for(collector.close(), 5.0)
        except Exception:
            log.exception("closing collector %s", collector.kind)


async def serve(sock: socket.socket) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with gcpause.paused():  # unpickling 20,000 targets: every object is kept (agent/domain/gcpause.py)
        first = await wire.read(reader)
        if not first:
            return
        _, loaded, ids, share_of = first[-1]
        outbox = Outbox(writer)
        collectors = collectors_for(loaded, {})
        scheduler = WorkerScheduler(outbox, loaded, ForwardingStore(outbox), collectors, _targets(loaded, ids),
                                    share_of)
        gc.collect()  # nothing probes yet: the one full collection that costs nothing
        gcpause.keep_alive_objects()
    probing = asyncio.create_task(scheduler.run_forever(), name="scheduler")
    stopping = asyncio.create_task(stop.wait())
    try:
        while True:
            reading = asyncio.create_task(wire.read(reader))
            done, _ = await asyncio.wait({reading, probing, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if reading not in done:
                reading.cancel()
                if probing in done:
                    probing.result()  # a crashed probe loop ends the worker; the main process restarts it
                return
            messages = reading.result()
            if messages is None:
                return  # the main process is gone or stopping
            _, loaded, ids, share_of = messages[-1]  # only the latest configuration matters
            old = collectors
            collectors = collectors_for(loaded, old)
            await scheduler.update(loaded, collectors, _targets(loaded, ids))
            await _close([c for name, c in old.items() if collectors.get(name) is not c])
    finally:
        for task in (probing, stopping):
            task.cancel()
        await asyncio.wait({probing, stopping}, timeout=5.0)
        outbox.flush()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.drain(), 2.0)
        await _close(list(collectors.values()))
        writer.close()


def _die_with_parent(parent: int) -> None:
    """Killed by the kernel when the main process dies, even by SIGKILL; gone already if it died first."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


def main(argv: list[str]) -> int:
    fd, parent = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(*os.environ.get(LOGGING_ENV, "info\tplain\t" + DEFAULT_RATE).split("\t"))
    sock = socket.socket(fileno=fd)
    asyncio.run(serve(sock))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
