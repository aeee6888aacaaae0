#!/usr/bin/env python3
"""The http collector against N simulated HTTPS portals on loopback: how long one round takes.

Starts ``--portals`` lab portals (real TLS servers, trustme certificates), probes each once with
the collector's thread pool at ``--threads``, and prints the round's wall time, the agent process's
CPU-seconds, and the median and 95th-percentile probe time. Each probe is a full TLS handshake
(no connection reuse between probes) plus the content check, as in production. The lab servers
run in the same process, so the CPU figure includes the servers' share.

Usage: .venv/bin/python bench/http_lab.py [--portals 44 400] [--threads 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.http.lab import ND43_SECTIONS, HttpSimulator
from collectors.http.probe import HttpCollector, HttpParams, HttpSettings
from collectors.lab_addresses import AddressPool


async def round_of(portals: int, threads: int) -> None:
    sim = HttpSimulator(AddressPool())
    collector = HttpCollector(HttpSettings(threads=threads))
    try:
        params = []
        for i in range(portals):
            raw = {"url": f"https://portal{i}.bacgiang.gov.vn/", "contains": list(ND43_SECTIONS)}
            params.append(HttpParams.model_validate(await sim.add(f"p{i}", raw, True)))
        slots = asyncio.Semaphore(threads)
        durations: list[float] = []

        async def one(i: int, p: HttpParams) -> bool:
            async with slots:
                started = time.perf_counter()
                result = await collector.probe(f"p{i}", p, 10.0)
                durations.append(time.perf_counter() - started)
                return result.up

        cpu, wall = time.process_time(), time.perf_counter()
        ups = await asyncio.gather(*(one(i, p) for i, p in enumerate(params)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        durations.sort()
        p95 = durations[min(len(durations) - 1, int(0.95 * len(durations)))]
        print(f"portals={portals:5d} threads={threads:3d} up={sum(ups):5d} round={wall:6.2f}s "
              f"cpu={cpu:6.2f}s median={statistics.median(durations) * 1000:6.1f}ms p95={p95 * 1000:6.1f}ms")
    finally:
        await collector.close()
        await sim.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portals", type=int, nargs="+", default=[44, 400])
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    for n in args.portals:
        asyncio.run(round_of(n, args.threads))


if __name__ == "__main__":
    main()
