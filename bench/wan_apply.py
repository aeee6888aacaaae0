#!/usr/bin/env python3
"""The main process's cost per probe result under ``--workers``: what bench/wan_scale.py's 40,000 targets pay.

With collector workers, the main process applies every result a worker sends (agent/engine/pool.py):
it reads the frame, unpickles it, rebuilds the result and counts it in the store. At 40,000 targets a
minute that is the per-result cost that, with /metrics rendering, fills the main process's one core
(the GIL). This bench drives the real code paths with no network: a worker's ``WorkerScheduler``
records one cycle of results (bench/wan_lab.py's province at ``--scale``, 10% dead, the ICMP and SNMP
collectors' real sample shapes) into its Outbox, and the pool of the main process reads and applies the
frames from a stream, as it does from the worker's socket. It prints, per result, the worker's
encoding CPU and the main process's CPU (read and apply), median and spread of ``--repeats`` cycles,
and checks that every result reached the store in order.

Run it from a checkout to measure that checkout (the code before a change: ``git worktree add``):
    .venv/bin/python bench/wan_apply.py [--scale 76] [--repeats 5]
    cd ../base && /path/to/.venv/bin/python /path/to/bench/wan_apply.py
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path.cwd()
# The checkout measured is the one run from, whichever the venv's editable install points at: its finder
# (on sys.meta_path) would otherwise win over sys.path.
sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path.insert(0, str(CHECKOUT))
sys.path.insert(1, str(CHECKOUT / "bench"))  # its wan_lab (which puts its own checkout first)

import wan_lab as lab  # noqa: E402

from agent.config.loading import load_config  # noqa: E402
from agent.engine import pool as pool_module  # noqa: E402
from agent.engine.store import Store  # noqa: E402
from agent.engine.worker import ForwardingStore, Outbox, WorkerScheduler  # noqa: E402
from collectors.api import ProbeResult, Sample  # noqa: E402


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


class Capture:
    """The Outbox's writer: keeps the frames it is given."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.frames.append(data)

    def is_closing(self) -> bool:
        return False


def icmp_result(up: bool) -> ProbeResult:
    if not up:
        return ProbeResult(False, "timeout", [Sample("icmp_echo_requests", 5.0), Sample("icmp_echo_replies", 0.0),
                                              Sample("icmp_loss_ratio", 1.0), Sample("icmp_rule_loss_ratio", 1.0)],
                           "no reply to 5 echoes")
    return ProbeResult(True, "", [Sample("icmp_echo_requests", 5.0), Sample("icmp_echo_replies", 5.0),
                                  Sample("icmp_loss_ratio", 0.0), Sample("icmp_rule_loss_ratio", 0.0),
                                  Sample("icmp_rtt_seconds", 0.00021, ("min",)),
                                  Sample("icmp_rtt_seconds", 0.00034, ("avg",)),
                                  Sample("icmp_rtt_seconds", 0.00052, ("max",))])


def snmp_result(up: bool, i: int) -> ProbeResult:
    if not up:
        return ProbeResult(False, "timeout", [], "no answer after 2s")
    labels = ("1", "ge-0/0/0")
    return ProbeResult(True, "", [
        Sample("snmp_uptime_seconds", 86400.0 + i), Sample("snmp_reboots", 0.0),
        Sample("snmp_if_info", 1.0, (*labels, "ge-0/0/0")), Sample("snmp_if_oper_status", 1.0, labels),
        Sample("snmp_if_admin_status", 1.0, labels), Sample("snmp_if_in_octets", 1.5e9 + i, labels),
        Sample("snmp_if_out_octets", 2.5e9 + i, labels), Sample("snmp_if_in_errors", 0.0, labels),
        Sample("snmp_if_out_errors", 0.0, labels), Sample("snmp_if_speed_bytes_per_second", 1.25e8, labels),
        Sample("snmp_if_utilisation_ratio", 0.12, (*labels, "in")),
        Sample("snmp_if_utilisation_ratio", 0.08, (*labels, "out"))])


async def cycle(scheduler: WorkerScheduler, outbox: Outbox, capture: Capture, results: list) -> float:
    """One cycle of results recorded by the worker's scheduler, flushed every BATCH results as its loop does;
    returns the worker's CPU seconds."""
    started = time.process_time()
    for n, (target, result, down_after) in enumerate(results, 1):
        scheduler._record(target, result, 0.012, down_after)
        if n % BATCH == 0:
            outbox.flush()
    outbox.flush()
    return time.process_time() - started


BATCH = 20  # results per frame: a worker's loop iteration answers a few to a few dozen probes


async def apply(pool: pool_module.WorkerPool, frames: list[bytes]) -> float:
    reader = asyncio.StreamReader(limit=2**26)
    for data in frames:
        reader.feed_data(data)
    reader.feed_eof()
    worker = pool_module._Worker(0, None, reader, None)  # type: ignore[arg-type]  # no process: a stream
    started = time.process_time()
    await pool._read(worker)
    return time.process_time() - started


async def main_async(args: argparse.Namespace) -> None:
    base = lab.bac_giang()
    province = lab.generated(args.scale, {k: dict(v) for k, v in base.document["collectors"].items()})
    lab.kill_some(province.routers, 0.1)
    for r in province.routers:
        r.host, r.snmp_port, r.community = "127.0.0.1", 161, "env:EGOV_SNMP_COMMUNITY"
    document = lab.agent_config(province, False, None)
    document["targets"] = [t for t in document["targets"] if "wan_link" in t["tags"]]
    with tempfile.TemporaryDirectory(prefix="egov-bench-apply-") as tmp:
        path = Path(tmp) / "agent.yml"
        lab.write_yaml(document, path)
        os.environ.setdefault("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8")
        os.environ.setdefault("EGOV_SNMP_COMMUNITY", "bench")
        started = time.perf_counter()
        loaded = load_config(path)
        print(f"checkout {Path(pool_module.__file__).parent.parent.parent} "
              f"(commit {os.popen('git -C ' + str(CHECKOUT) + ' rev-parse --short HEAD').read().strip()})")
        print(f"configuration: {len(loaded.config.targets)} targets, loaded in {time.perf_counter() - started:.1f} s"
              f"  [{load()}]", flush=True)
    targets = loaded.config.targets
    up = {}
    for r in province.routers:
        up[r.icmp_id] = up[r.snmp_id] = r.up
    results = []
    for i, t in enumerate(targets):
        result = icmp_result(up[t.id]) if t.collector == "icmp" else snmp_result(up[t.id], i)
        results.append((t, result, loaded.config.collectors[t.collector].down_after))
    store = Store()
    pool = pool_module.WorkerPool(loaded, store, targets, 2)
    worker_cpu, main_cpu, sizes = [], [], []
    for _ in range(args.repeats):
        capture = Capture()
        outbox = Outbox(capture)  # type: ignore[arg-type]
        scheduler = WorkerScheduler(outbox, loaded, ForwardingStore(outbox), {}, targets, 2)
        worker_cpu.append(await cycle(scheduler, outbox, capture, results))
        sizes.append(sum(len(f) for f in capture.frames))
        main_cpu.append(await apply(pool, capture.frames))
    states = store.snapshot().targets
    lost = [t.id for t in targets if states[t.id].probes_total != args.repeats]
    wrong = [t.id for t in targets if states[t.id].up != up[t.id]]
    if lost or wrong or pool.first_round.is_set() is False:
        raise SystemExit(f"results lost: {len(lost)}, judged wrong: {len(wrong)}, first round set: "
                         f"{pool.first_round.is_set()}")
    n = len(results)

    def per(values: list[float]) -> str:
        us = sorted(v / n * 1e6 for v in values)
        return f"{statistics.median(us):6.1f} µs (spread {us[0]:.1f}-{us[-1]:.1f})"

    print(f"{n} results a cycle, {args.repeats} cycles, {statistics.median(sizes) / n:.0f} bytes a result on the wire")
    print(f"  worker, recording and encoding: {per(worker_cpu)} a result  [{load()}]")
    print(f"  main, reading and applying:     {per(main_cpu)} a result = "
          f"{statistics.median(main_cpu) / 60:.3f} cores at one cycle a minute  [{load()}]")
    print(f"  every result reached the store ({args.repeats} probes a target), every target judged right")
    snapshots(store, results)
    if args.render:
        render(loaded, results)


def snapshots(store: Store, results: list) -> None:
    """A snapshot of the store: one per rendering, and one every 5 s for the coverage members' clock."""
    for target, result, down_after in results:
        store.record(target.id, target.collector, result, 0.012, down_after=down_after)
    started = time.process_time()
    store.snapshot()
    every = time.process_time() - started
    for target, result, down_after in results[::12]:  # 5 s of a 60 s cycle
        store.record(target.id, target.collector, result, 0.012, down_after=down_after)
    started = time.process_time()
    store.snapshot()
    twelfth = time.process_time() - started
    started = time.process_time()
    store.snapshot()
    none = time.process_time() - started
    print(f"  a store snapshot: {every * 1e3:.0f} ms after every target changed, {twelfth * 1e3:.0f} ms after 5 s "
          f"of a 60 s cycle, {none * 1e3:.0f} ms with nothing changed  [{load()}]")


def render(loaded, results: list) -> None:
    """For telling the parts apart: one /metrics rendering of the same store, as the agent's render thread
    does it (exporters/prometheus.py, measured here, not changed)."""
    from agent.app.runtime import Agent

    agent = Agent(loaded, workers=2)
    for target, result, down_after in results:
        agent.store.record(target.id, target.collector, result, 0.012, down_after=down_after)
    started = time.process_time()
    body, _ = agent.exposition.render(None)
    took = time.process_time() - started
    lines = body.count(b"\n")
    print(f"  /metrics of the same {len(results)} targets: {lines} lines, {len(body) / 2**20:.0f} MiB, "
          f"rendered in {took:.2f} s CPU  [{load()}]")


def main() -> None:
    logging.basicConfig(stream=open(os.devnull, "w"), level=logging.INFO)  # noqa: SIM115 - as the agent's log file
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=76)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--render", action="store_true", help="also time one /metrics rendering of the store")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
