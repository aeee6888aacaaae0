#!/usr/bin/env python3
"""ICMP engines side by side: icmplib's ``async_ping`` (a socket per host) and the icmp collector.

Pings N loopback addresses (127.78.0.0/16, all answer on Linux) with ``--count`` echoes each, at
most ``--concurrency`` hosts at a time, and prints wall time, CPU-seconds and the loss each engine
reports. On loopback the true loss is 0, so any reported loss is the engine's own (socket buffers
overflowing). It is why the collector shares one socket instead of using ``async_ping``: a raw
ICMP socket receives every ICMP packet of the host, so N concurrent sockets cost N² copies.

Needs CAP_NET_RAW (run as root). Usage: .venv/bin/python bench/icmp.py [--hosts 262 2620] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from icmplib import async_ping

from collectors.icmp.probe import IcmpCollector, IcmpParams, IcmpSettings


def addresses(n: int) -> list[str]:
    return [f"127.78.{i // 250}.{i % 250 + 1}" for i in range(n)]


async def run_icmplib(hosts: list[str], count: int, interval: float, concurrency: int) -> tuple[float, float]:
    slots = asyncio.Semaphore(concurrency)

    async def one(address: str):
        async with slots:
            return await async_ping(address, count=count, interval=interval, timeout=2, privileged=True)

    results = await asyncio.gather(*(one(a) for a in hosts))
    sent = sum(h.packets_sent for h in results)
    return sent, sum(h.packets_received for h in results)


async def run_collector(hosts: list[str], count: int, interval: float, concurrency: int) -> tuple[float, float]:
    collector = IcmpCollector(IcmpSettings(privileged=True))
    slots = asyncio.Semaphore(concurrency)
    received = 0

    async def one(i: int, address: str) -> None:
        nonlocal received
        async with slots:
            result = await collector.probe(f"t{i}", IcmpParams(host=address, count=count, interval=interval), 4.0)
        received += sum(int(s.value) for s in result.samples if s.family == "icmp_echo_replies")

    try:
        await asyncio.gather(*(one(i, a) for i, a in enumerate(hosts)))
    finally:
        await collector.close()
    return len(hosts) * count, received


def measure(engine, hosts: list[str], args: argparse.Namespace) -> str:
    wall, cpu = time.perf_counter(), time.process_time()
    sent, received = asyncio.run(engine(hosts, args.count, args.interval, args.concurrency))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    loss = 1 - received / sent if sent else 1.0
    return (f"wall {wall:6.2f} s  cpu {cpu:6.2f} s  cpu/host {cpu / len(hosts) * 1000:6.2f} ms  "
            f"reported loss {loss:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[262, 2620])
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    for n in args.hosts:
        hosts = addresses(n)
        print(f"{n} hosts × {args.count} echoes, {args.concurrency} at a time")
        print(f"  collector (shared socket) {measure(run_collector, hosts, args)}", flush=True)
        print(f"  icmplib async_ping        {measure(run_icmplib, hosts, args)}", flush=True)


if __name__ == "__main__":
    main()
