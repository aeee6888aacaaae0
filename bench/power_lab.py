#!/usr/bin/env python3
"""The power collector against N simulated THDL power devices on loopback: how long one round takes.

Starts ``--devices`` lab power devices (agent/lab/ups.py, one UDP socket each), a quarter of each
profile (ups_mib, xups, apc_rpdu, geist), probes each once (``--concurrency`` in flight) and prints the round's wall
time, the process's CPU-seconds (the simulated devices run in the same process, so the figure
includes their share), and the median and 95th-percentile probe time. A province's THDL has a
handful of these devices; the larger counts show the headroom.

Usage: .venv/bin/python bench/power_lab.py [--devices 8 400] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.lab_addresses import AddressPool
from collectors.power.lab import PowerSimulator
from collectors.power.probe import PowerCollector, PowerParams, PowerSettings
from collectors.snmp.lab import ensure_community

PROFILES = ("ups_mib", "xups", "apc_rpdu", "geist")


async def round_of(devices: int, concurrency: int) -> None:
    ensure_community()
    simulator = PowerSimulator(AddressPool())
    collector = PowerCollector(PowerSettings(timeout=2.0, retries=0))
    try:
        targets = {}
        for n in range(devices):
            raw = {"host": f"10.24.{20 + n // 250}.{n % 250 + 1}", "profile": PROFILES[n % 4],
                   "community": "env:EGOV_SNMP_COMMUNITY"}
            targets[f"dev-{n}"] = PowerParams.model_validate(await simulator.add(f"dev-{n}", raw, True))
        times: list[float] = []
        limit = asyncio.Semaphore(concurrency)  # as the scheduler bounds a collector's probes in flight

        async def one(target: str, params: PowerParams) -> bool:
            async with limit:
                started = time.perf_counter()
                result = await collector.probe(target, params, 10.0)
            times.append(time.perf_counter() - started)
            return result.up

        cpu, wall = time.process_time(), time.perf_counter()
        ups = await asyncio.gather(*(one(t, p) for t, p in targets.items()))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        times.sort()
        print(f"{devices:5d} devices: {sum(ups)} up, round {wall * 1000:.0f} ms wall, {cpu:.2f} CPU-s "
              f"({cpu / devices * 1000:.2f} ms per probe incl. the simulator), probe median "
              f"{statistics.median(times) * 1000:.1f} ms, p95 {times[int(0.95 * (len(times) - 1))] * 1000:.1f} ms")
    finally:
        await collector.close()
        await simulator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[8, 400])
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    for count in args.devices:
        asyncio.run(round_of(count, args.concurrency))


if __name__ == "__main__":
    main()
