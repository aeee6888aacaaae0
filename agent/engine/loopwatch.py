"""How late the agent's own asyncio loop runs: what tells the agent's overload from a target's failure.

A task sleeps ``TICK`` seconds over and over; how much later than asked it wakes is the loop's lag
(CPU starvation, a blocking call, a flood of callbacks). Every probe's answer is read by the same
loop, so a probe that found no answer in time while the loop was this late cannot blame the target:
the answer may have sat unread in a socket buffer while the deadline's timer fired. The scheduler asks
:meth:`LoopWatch.behind_since` before it records such a failure.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

TICK = 0.1  # seconds between wake-ups: lag shorter than this is noise for probes that time out in seconds
KEPT_TICKS = 1200  # late wake-ups remembered (only those late by more than LATE_EPSILON are kept)
LATE_EPSILON = 0.005  # seconds: a wake-up this close to its time is on time
LAG_WINDOW = 10.0  # seconds the exported lag is the maximum over (a scrape every 15 s still sees a stall)
OVERLOAD_LAG = 0.5  # seconds of lag that make the agent overloaded even before a probe overran
# Share of LAG_WINDOW the loop spent behind schedule that makes it overloaded: a CPU quota stalls it for
# 97 ms in every 100 ms, never 0.5 s at once, and no probe overruns until the backlog has grown.
OVERLOAD_BEHIND = 0.5
OVERLOAD_HOLD = 60.0  # seconds the agent stays overloaded after its last overrun or stall
PUBLISH_TICKS = 10  # wake-ups between two statuses handed to the store (once a second)


@dataclass(frozen=True)
class LoopStatus:
    """What the exposition shows of the loop's health."""

    lag_seconds: float = 0.0  # the longest late wake-up within LAG_WINDOW
    overloaded: bool = False


class LoopWatch:
    def __init__(self, publish: Callable[[LoopStatus], None] | None = None) -> None:
        self.publish = publish  # called with the status every PUBLISH_TICKS wake-ups (the store's set_loop_status)
        # (when the wake-up was due, when it came), on the loop's clock; only the late ones.
        self._late: deque[tuple[float, float]] = deque(maxlen=KEPT_TICKS)
        self._due: float | None = None  # the pending wake-up's due time while run() sleeps
        self._last_overrun: float | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        ticks = 0
        try:
            while True:
                ticks += 1
                self._due = loop.time() + TICK
                await asyncio.sleep(TICK)
                woke = loop.time()
                if woke - self._due > LATE_EPSILON:
                    self._late.append((self._due, woke))
                self._due = None
                if self.publish is not None and ticks % PUBLISH_TICKS == 0:
                    self.publish(self.status(woke))
        finally:
            self._due = None

    def lateness_since(self, start: float, now: float | None = None) -> float:
        """The longest the loop was late within [start, now] (loop clock), counting a stall still going on.

        Only the part of a late wake-up after ``start`` counts: a stall that ended before a probe began
        did not delay its answer."""
        now = asyncio.get_running_loop().time() if now is None else now
        worst = 0.0
        for due, woke in reversed(self._late):
            if woke <= start:
                break
            worst = max(worst, woke - max(due, start))
        if self._due is not None and now > self._due:  # the watch itself has not woken yet: the loop is late now
            worst = max(worst, now - max(self._due, start))
        return worst

    def behind_since(self, start: float, now: float | None = None) -> float:
        """Seconds within [start, now] the loop spent behind schedule (late wake-ups, summed)."""
        now = asyncio.get_running_loop().time() if now is None else now
        total = 0.0
        for due, woke in reversed(self._late):
            if woke <= start:
                break
            total += woke - max(due, start)
        if self._due is not None and now > self._due:
            total += now - max(self._due, start)
        return total

    def note_overrun(self, now: float | None = None) -> None:
        """A probe overran: the agent is overloaded from now on, not from the next publication."""
        self._last_overrun = asyncio.get_running_loop().time() if now is None else now
        if self.publish is not None:
            self.publish(self.status(self._last_overrun))

    def status(self, now: float | None = None) -> LoopStatus:
        now = asyncio.get_running_loop().time() if now is None else now
        lag = self.lateness_since(now - LAG_WINDOW, now)
        overran = self._last_overrun is not None and now - self._last_overrun <= OVERLOAD_HOLD
        stalled = self.lateness_since(now - OVERLOAD_HOLD, now) >= OVERLOAD_LAG
        behind = self.behind_since(now - LAG_WINDOW, now) >= OVERLOAD_BEHIND * LAG_WINDOW
        return LoopStatus(lag, overran or stalled or behind)
