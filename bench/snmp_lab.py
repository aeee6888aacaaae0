#!/usr/bin/env python3
"""The SNMP collector against the lab's simulated routers: does a cycle of N routers fit?

Starts N lab routers (agent/lab/snmp.py) in a child process, a share of them dead, then probes
every router with the snmp collector in this process, ``--rounds`` times (the first round also
walks ifName/ifAlias; later ones are the steady state: one GET per router). Prints per round the
wall time, the CPU-seconds of the agent side and of the lab side, and CPU per target, so the lab's
own cost can be told from the collector's. Figures for the benchmark against snmp_exporter belong
to bench/wan.py; this one sizes the lab and the collector.

It also counts false timeouts: routers the lab answers for that read ``timeout`` (issue 15:
none at 10,000 links with the concurrency raised 4×, ``--routers 10000 --concurrency 512``). The
lab's CPU per round is printed beside them: a lab that cannot keep up would be the cause, not the
agent. The routers live on 127.91.0.0/16.

Usage: .venv/bin/python bench/snmp_lab.py [--routers 262 2620] [--dead 0.1] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import multiprocessing as mp
import os
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.lab_addresses import AddressPool
from collectors.snmp.lab import SnmpSimulator
from collectors.snmp.probe import SnmpCollector, SnmpParams, SnmpSettings

NETWORK = ipaddress.IPv4Network("127.91.0.0/16")


def serve_lab(routers: int, dead: float, pipe) -> None:
    """Child process: the routers, until the parent asks for the lab's CPU time and closes the pipe."""

    async def main() -> None:
        os.environ.setdefault("EGOV_SNMP_COMMUNITY", "bench-community")
        simulator = SnmpSimulator(AddressPool(NETWORK))
        draw = random.Random(7)
        started = time.perf_counter()
        params, truth = [], []
        for i in range(routers):
            target = f"bg-x-{i:04d}-snmp"
            up = draw.random() >= dead
            p = await simulator.add(target, {"host": f"10.99.{i // 250}.{i % 250}",
                                             "community": "env:EGOV_SNMP_COMMUNITY",
                                             "interface": {"name": "GigabitEthernet0/0/0"}}, up)
            params.append(p)
            truth.append(up)
        pipe.send((params, truth, time.perf_counter() - started))
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, pipe.recv)
            if message == "cpu":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                pipe.send(usage.ru_utime + usage.ru_stime)
            else:
                break
        await simulator.close()

    asyncio.run(main())


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def probe_all(collector: SnmpCollector, params: list[SnmpParams], truth: list[bool], concurrency: int,
                    ) -> tuple[int, dict, int]:
    """(routers up, reasons of the others, false timeouts: answering routers read as timeout)."""
    slots = asyncio.Semaphore(concurrency)
    reasons: dict[str, int] = {}
    false = 0

    async def one(i: int, p: SnmpParams) -> bool:
        nonlocal false
        async with slots:
            result = await collector.probe(f"r{i}", p, 6.0)
        if not result.up:
            reasons[result.reason] = reasons.get(result.reason, 0) + 1
            false += truth[i] and result.reason == "timeout"
        return result.up

    ups = await asyncio.gather(*(one(i, p) for i, p in enumerate(params)))
    return sum(ups), reasons, false


def run(routers: int, dead: float, concurrency: int, rounds: int) -> None:
    parent, child = mp.Pipe()
    lab = mp.get_context("fork").Process(target=serve_lab, args=(routers, dead, child), daemon=True)
    lab.start()
    try:
        raw, truth, startup = parent.recv()
        params = [SnmpParams.model_validate(p) for p in raw]
        print(f"{routers} routers ({routers - sum(truth)} dead), {concurrency} at a time: lab ready in "
              f"{startup:.2f}s; load average {os.getloadavg()[0]:.2f}")

        async def cycles() -> None:
            collector = SnmpCollector(SnmpSettings(timeout=2.0, retries=1))
            try:
                for r in range(rounds):
                    parent.send("cpu")
                    lab_before, agent_before = parent.recv(), cpu_self()
                    started = time.perf_counter()
                    up, reasons, false = await probe_all(collector, params, truth, concurrency)
                    wall = time.perf_counter() - started
                    parent.send("cpu")
                    lab_cpu, agent_cpu = parent.recv() - lab_before, cpu_self() - agent_before
                    print(f"  round {r + 1}: {up}/{routers} up {reasons}; FALSE TIMEOUTS {false}; wall {wall:.2f}s; "
                          f"agent CPU {agent_cpu:.2f}s ({agent_cpu / routers * 1000:.2f} ms/target); lab CPU "
                          f"{lab_cpu:.2f}s ({lab_cpu / routers * 1000:.2f} ms/target); load average "
                          f"{os.getloadavg()[0]:.2f}", flush=True)
            finally:
                await collector.close()

        asyncio.run(cycles())
    finally:
        parent.send("stop")
        lab.join(60)  # closing 2,620 sockets and the lab's secret directory
        if lab.is_alive():
            lab.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, nargs="+", default=[262, 2620])
    parser.add_argument("--dead", type=float, default=0.1, help="share of routers that never answer")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for n in args.routers:
        run(n, args.dead, args.concurrency, args.rounds)


if __name__ == "__main__":
    main()
