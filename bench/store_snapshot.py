"""What one store snapshot costs: 20,000 targets with failures and history, 200 probed between snapshots
(each target once a minute, a snapshot about every 0.6 s), timed.

Run from a checkout (or with PYTHONPATH pointing at another one, to compare):
    nice .venv/bin/python bench/store_snapshot.py
"""

from __future__ import annotations

import os
import statistics
import time

from agent.engine.store import Store
from collectors.api import ProbeResult

TARGETS = 20_000
ROUNDS = 30


def main() -> None:
    store = Store(history_span=30 * 86400.0)
    t0 = 1_790_000_000.0
    for minute in range(5):
        for i in range(TARGETS):
            up = (i + minute) % 10 != 0
            store.record(f"t{i}", "snmp" if i % 2 else "icmp", ProbeResult(up, "" if up else "timeout"), 0.01,
                         finished_at=t0 + 60 * minute * 3000)
    seconds = []
    for r in range(ROUNDS):
        for i in range(r * 200, r * 200 + 200):  # the probes that ended since the last snapshot
            store.record(f"t{i}", "snmp" if i % 2 else "icmp", ProbeResult(False, "refused"), 0.01,
                         finished_at=t0 + 86400 + r)
        started = time.perf_counter()
        snap = store.snapshot()
        seconds.append(time.perf_counter() - started)
    assert len(snap[0]) == TARGETS
    load = os.getloadavg()[0]
    print(f"store.snapshot() of {TARGETS} targets: median {statistics.median(seconds) * 1000:.1f} ms, "
          f"min {min(seconds) * 1000:.1f} ms over {ROUNDS} (load average {load:.2f})")


if __name__ == "__main__":
    main()
