#!/usr/bin/env python3
"""WAN collection cycle: the agent against Debian's blackbox and snmp exporters, on the simulated province.

For Bắc Giang as configured (262 WAN links: a router per department, district and commune, each an
ICMP and an SNMP target) and for a generated province 10× its size (2,620 links), with 10 % of the
routers dead (nftables drops their echo requests, their SNMP agent never answers), it measures one
full collection cycle, every ICMP and SNMP target probed once:

* the agent (bench/wan_agent.py: ``agent.service.Agent`` built from a configuration as
  ``egov-agent run`` builds it, each cycle a ``Scheduler.run_once()`` over its targets, in a process
  of its own): full cycles (ICMP and SNMP together, the settings of bac-giang.yml: 5 echoes 0.5 s
  apart, 5 s timeout, 256 at a time; SNMP 2 s × 2 tries, 128 at a time), ICMP alone (5 echoes as
  shipped), then SNMP alone and ICMP with 1 echo (as the blackbox exporter sends), for CPU per target;
* ``prometheus-snmp-exporter`` (a module for the same IF-MIB/SNMPv2-MIB objects,
  bench/wan_exporters.py) and ``prometheus-blackbox-exporter`` (icmp module), driven by one HTTP
  request per target with the same concurrency and timeouts, as Prometheus would scrape them.

The comparisons alternate in one run, A B A B (``--repeat`` times, 3 by default): an agent SNMP
cycle, an snmp_exporter cycle, an agent ICMP cycle, a blackbox cycle, and again; the summary gives
each side's median CPU per target with its spread, the ratio of the medians and of each pair, and
the load average at the end of every row, so a change in the machine's load shows.

CPU is each process's user+system time from psutil before and after the cycle; "right" counts the
targets whose up/down matches the lab's truth. The lab (bench/wan_lab.py) runs in its own process.
The whole run re-executes itself in a network namespace of its own (``unshare --net``): every lab
uses 127.77.0.0/16, and another lab's nftables rules on the host's loopback would drop this one's
echo requests.

Needs root (nftables for dead ICMP routers, raw ICMP sockets), nft, unshare, and the Debian packages
prometheus-blackbox-exporter and prometheus-snmp-exporter. Only loopback (127.77.0.0/16) is probed.
``--scales 10`` (2,620 links) takes about 5 minutes on 2 cores, ``--no-icmp`` (SNMP only) less;
``--quick`` (Bắc Giang only, one cycle each) about 40 s.
Usage: sudo .venv/bin/python bench/wan.py [--quick] [--scales 1 10] [--cycles 2] [--repeat 3] [--no-icmp]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wan_exporters as exporters
import wan_lab as lab
from benchutil import rerun_in_own_netns

ALLOW = "127.0.0.0/8,::1/128"
NETNS_ENV = "EGOV_BENCH_WAN_NETNS"  # set inside the benchmark's own network namespace
RUN_TIMEOUT = 1800.0  # the whole run, as a last resort
AGENT_READY_TIMEOUT = 180.0
CYCLE_TIMEOUT = 300.0  # a cycle that takes this long has failed anyway (the goal is 60 s)
GOAL_SMALL_WALL, GOAL_LARGE_WALL, GOAL_CPU_RATIO = 10.0, 60.0, 3.0
GOAL_SNMP_RATIO = 1.0  # issue 15: SNMP CPU per device poll at most snmp_exporter's


def cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@dataclass
class Row:
    what: str
    targets: int
    wall: float
    cpu: float
    right: int
    wrong: Counter = field(default_factory=Counter)
    lab_cpu: float = 0.0
    note: str = ""
    example: str = ""  # one wrong target and what was said of it
    load: float = 0.0  # the 1-minute load average when the row ended

    @property
    def per_target_ms(self) -> float:
        return self.cpu / self.targets * 1000 if self.targets else 0.0


@dataclass
class SizeResult:
    label: str
    links: int
    dead: int
    rows: dict[str, Row] = field(default_factory=dict)
    dead_serial: float = 0.0  # seconds the dead links' probes would take one after another
    dead_overlap: int = 0  # most dead-link probes running at one moment


class AgentWorker:
    """bench/wan_agent.py in a subprocess, one cycle per command."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("wan_agent.py")), str(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        ready = self._read(AGENT_READY_TIMEOUT)
        if not ready.get("ready"):
            raise SystemExit(f"the agent did not start; see {log}")

    def _read(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not out or not out[0]:
            self.stop()
            tail = Path(self.log.name).read_text(errors="replace")[-3000:]
            raise SystemExit(f"the agent gave no answer within {timeout:g}s (exit {self.proc.poll()}); "
                             f"its log ends:\n{tail}")
        return json.loads(out[0])

    def cycle(self, kinds: list[str], tag: str) -> tuple[dict, float]:
        """One cycle; returns the worker's answer and the CPU-seconds the agent process spent on it."""
        assert self.proc.stdin is not None
        before = cpu(self.proc.pid)
        self.proc.stdin.write(json.dumps({"cycle": kinds, "tag": tag}) + "\n")
        self.proc.stdin.flush()
        answer = self._read(CYCLE_TIMEOUT)
        return answer, cpu(self.proc.pid) - before

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def judge(results: dict[str, list], truth: dict[str, bool]) -> tuple[int, Counter, str]:
    """How many targets match the lab's truth; the others by what was said, and one example."""
    right, wrong, example = 0, Counter(), ""
    for target_id, (up, reason, *rest) in results.items():
        if up == truth[target_id]:
            right += 1
            continue
        wrong[f"{'up' if up else reason or 'down'} (truth {'up' if truth[target_id] else 'dead'})"] += 1
        if not example:
            example = f"{target_id}: {rest[-1] if len(rest) == 3 else reason}"
    return right, wrong, example


def dead_parallelism(results: dict[str, list], dead: set[str]) -> tuple[float, int]:
    """Sum of the dead targets' probe durations, and how many of them ran at once at most."""
    spans = [(row[3] - row[2], row[3]) for t, row in results.items() if t in dead]
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return sum(e - s for s, e in spans), most


# Agent row -> the peer row it is compared with, alternated A B A B in one run.
PAIRS = {"agent SNMP": "snmp_exporter SNMP", "agent ICMP 1 echo": "blackbox_exporter ICMP"}


def run_size(province: lab.Province, args: argparse.Namespace, workdir: Path) -> SizeResult:
    lab.kill_some(province.routers, args.dead)
    routers = province.routers
    dead_routers = [r for r in routers if not r.up]
    result = SizeResult(province.label, len(routers), len(dead_routers))
    print(f"\n== {province.label}: {2 * len(routers)} targets ({len(routers)} ICMP + {len(routers)} SNMP), "
          f"{len(dead_routers)} routers dead ==", flush=True)
    lab_proc, ready = lab.start_lab(routers)
    try:
        if dead_routers and not ready["icmp_faults"]:
            raise SystemExit("the lab could not make ICMP routers dead (needs root and nft)")
        print(f"lab: {len(routers)} routers on loopback in {ready['startup']:.1f} s "
              f"({ready['dead_icmp']} dead in nftables)", flush=True)
        lab_pid = lab_proc.pid

        def measured(fn):
            lab_before = cpu(lab_pid)
            row = fn()
            row.lab_cpu = cpu(lab_pid) - lab_before
            row.load = os.getloadavg()[0]
            result.rows[row.what] = row
            print(format_row(row), flush=True)
            return row

        truth = {}
        for r in routers:
            truth[r.icmp_id] = truth[r.snmp_id] = truth[f"{r.icmp_id}-1"] = r.up
        dead_ids = {r.icmp_id for r in dead_routers} | {r.snmp_id for r in dead_routers}
        config = workdir / f"agent-{len(routers)}.yml"
        lab.write_yaml(lab.agent_config(province, args.snmp_scope == "all", args.echoes), config)
        print(header(), flush=True)
        worker = AgentWorker(config, workdir / f"agent-{len(routers)}.log")
        try:
            def agent_cycle(what: str, kinds: list[str], tag: str, note: str = "") -> Row:
                answer, spent = worker.cycle(kinds, tag)
                right, wrong, example = judge(answer["results"], truth)
                if kinds == ["icmp", "snmp"]:
                    result.dead_serial, result.dead_overlap = dead_parallelism(answer["results"], dead_ids)
                return Row(what, len(answer["results"]), answer["wall"], spent, right, wrong, note=note,
                           example=example)

            for i in range(args.cycles):
                kind = "cold: ifName walks" if i == 0 else "steady"
                measured(lambda i=i, kind=kind: agent_cycle(f"agent full cycle {i + 1}", ["icmp", "snmp"], "wan_link",
                                                            f"ICMP+SNMP together, {kind}"))
            echoes = f"{args.echoes} echoes per target" if args.echoes else "5 echoes per target, as shipped"
            scope = "the uplink's row, one GET" if args.snmp_scope == "uplink" else "every interface, walks"
            if args.icmp:
                measured(lambda: agent_cycle("agent ICMP", ["icmp"], "wan_link", echoes))
            # A B A B: each agent cycle next to its peer's, so a change of the machine's load hits both.
            peers = [] if args.no_exporters else start_exporters(province, args, workdir, truth)
            try:
                for n in range(1, args.repeat + 1):
                    measured(lambda n=n: agent_cycle(f"agent SNMP {n}", ["snmp"], "wan_link", scope))
                    for name, cycle in peers:
                        if name.startswith("snmp_exporter"):
                            measured(partial(cycle, f"{name} {n}"))
                    if args.icmp:
                        measured(lambda n=n: agent_cycle(f"agent ICMP 1 echo {n}", ["icmp"], "one_echo",
                                                         "1 echo, as blackbox sends"))
                        for name, cycle in peers:
                            if name.startswith("blackbox"):
                                measured(partial(cycle, f"{name} {n}"))
            finally:
                for exporter in {id(c.args[0]): c.args[0] for _, c in peers}.values():
                    exporter.stop()
        finally:
            worker.stop()
    finally:
        lab.stop_lab(lab_proc)
    return result


def start_exporters(province: lab.Province, args: argparse.Namespace, workdir: Path, truth: dict[str, bool],
                    ) -> list[tuple[str, partial]]:
    """The exporters running, and for each a cycle to call with the row's name."""
    icmp_spec, snmp_spec = province.document["collectors"]["icmp"], province.document["collectors"]["snmp"]
    icmp_timeout, snmp_timeout = seconds(icmp_spec["timeout"]), seconds(snmp_spec["timeout"])
    snmp_settings = snmp_spec.get("settings", {})
    blackbox, snmp = exporters.write_configs(
        workdir / "exporters", os.environ["EGOV_SNMP_COMMUNITY"], args.snmp_scope, icmp_timeout,
        float(snmp_settings.get("timeout", 2)), int(snmp_settings.get("retries", 1)),
        int(snmp_settings.get("max_repetitions", 25)))
    routers = province.routers
    icmp_queries = {r.icmp_id: {"target": r.host, "module": "icmp"} for r in routers}
    snmp_queries = {r.snmp_id: {"target": f"{r.host}:{r.snmp_port}", "module": "egov_wan"} for r in routers}
    if exporters.version(exporters.SNMP_EXPORTER) >= (0, 23, 0):
        for query in snmp_queries.values():
            query["auth"] = "lab"
    plan = [(snmp, "/snmp", snmp_queries, int(snmp_spec["concurrency"]), snmp_timeout, exporters.snmp_up,
             "snmp_exporter SNMP")]
    if args.icmp:
        plan.append((blackbox, "/probe", icmp_queries, int(icmp_spec["concurrency"]), icmp_timeout + 0.5,
                     exporters.blackbox_up, "blackbox_exporter ICMP"))
    cycles = []
    for exporter, path, queries, concurrency, timeout, up_rule, name in plan:
        exporter.start()
        cycles.append((name, partial(exporter_cycle, exporter, path, queries, concurrency, timeout, up_rule,
                                     truth=truth)))
    return cycles


def exporter_cycle(exporter: exporters.Exporter, path: str, queries: dict[str, dict[str, str]], concurrency: int,
                   timeout: float, up_rule, what: str, *, truth: dict[str, bool]) -> Row:
    """One request per target; CPU is the exporter process's (the HTTP client's, in this process, is noted)."""
    assert exporter.proc is not None
    before, mine = cpu(exporter.proc.pid), cpu(os.getpid())
    started = time.perf_counter()
    got = exporters.drive(exporter.port, path, queries, concurrency, timeout, up_rule)
    wall = time.perf_counter() - started
    spent, driver = cpu(exporter.proc.pid) - before, cpu(os.getpid()) - mine
    right, wrong, example = judge({t: [up, reason] for t, (up, reason, _s) in got.items()}, truth)
    return Row(what, len(got), wall, spent, right, wrong,
               note=f"{concurrency} requests at a time; HTTP client {driver:.2f} CPU-s", example=example)


def seconds(value) -> float:
    text = str(value)
    return float(text[:-1]) * {"s": 1, "m": 60}[text[-1]] if text[-1] in "sm" else float(text)


def header() -> str:
    return (f"  {'':34} {'wall s':>7} {'CPU s':>7} {'CPU/target':>11} {'right':>11} {'lab CPU s':>9} {'load':>5}  note")


def format_row(row: Row) -> str:
    wrong = f"\n  {'':34} WRONG: {dict(row.wrong)}, e.g. {row.example}" if row.wrong else ""
    return (f"  {row.what:34} {row.wall:7.2f} {row.cpu:7.2f} {row.per_target_ms:8.2f} ms "
            f"{row.right:5d}/{row.targets:<5d} {row.lab_cpu:9.2f} {row.load:5.1f}  {row.note}{wrong}")


def last(result: SizeResult, prefix: str) -> Row | None:
    rows = [r for name, r in result.rows.items() if name.startswith(prefix)]
    return rows[-1] if rows else None


def repeated(result: SizeResult, prefix: str) -> list[Row]:
    """The rows of one alternated measurement, "<prefix> 1", "<prefix> 2", ..."""
    return [r for name, r in result.rows.items()
            if name.startswith(prefix + " ") and name[len(prefix) + 1:].isdigit()]


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}, n {len(values)})"


def goals(results: list[SizeResult]) -> None:
    print("\n== goals (issues 3 and 15) ==")
    for res in results:
        full = last(res, "agent full cycle")
        if full is not None:
            goal = GOAL_SMALL_WALL if res.links <= 262 else GOAL_LARGE_WALL
            verdict = "met" if full.wall < goal else "NOT met"
            print(f"  {res.links} links: full cycle {full.wall:.1f} s, goal < {goal:g} s: {verdict}; "
                  f"{res.dead} dead routers' {2 * res.dead} probes = {res.dead_serial:.0f} s if one after another, "
                  f"up to {res.dead_overlap} timing out at once")
        for agent_name, peer_name in PAIRS.items():
            mine, theirs = repeated(res, agent_name), repeated(res, peer_name)
            if not mine or not theirs or any(r.per_target_ms == 0 for r in theirs):
                continue
            goal = GOAL_SNMP_RATIO if "SNMP" in agent_name else GOAL_CPU_RATIO
            pairs = list(zip(mine, theirs, strict=False))
            ratios = [a.per_target_ms / b.per_target_ms for a, b in pairs]
            ratio = (statistics.median(a.per_target_ms for a in mine)
                     / statistics.median(b.per_target_ms for b in theirs))
            loads = ", ".join(f"{a.load:.1f}/{b.load:.1f}" for a, b in pairs)
            print(f"    {agent_name} CPU per target, ms: {spread([r.per_target_ms for r in mine])}")
            print(f"    {peer_name} CPU per target, ms: {spread([r.per_target_ms for r in theirs])}")
            print(f"    ratio agent/{peer_name.split()[0]}: {ratio:.2f}x of the medians; per pair {spread(ratios)}; "
                  f"load (agent/peer) {loads}; goal <= {goal:g}x: {'met' if ratio <= goal else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Bắc Giang only (262 links), one cycle each")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10],
                        help="province sizes: 1 is Bắc Giang as configured, N > 1 a generated N× province")
    parser.add_argument("--cycles", type=int, default=2, help="agent full cycles (ICMP and SNMP together)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternated agent/peer cycles (A B A B ...), for a median and a spread")
    parser.add_argument("--no-icmp", dest="icmp", action="store_false",
                        help="SNMP only: no ICMP rows beside the full cycles (the SNMP comparison, faster)")
    parser.add_argument("--dead", type=float, default=0.1, help="share of routers dead")
    parser.add_argument("--echoes", type=int, default=None, help="ICMP echoes per probe (default: as shipped, 5)")
    parser.add_argument("--snmp-scope", choices=["uplink", "all"], default="uplink",
                        help="uplink: the agent's default (one GET); all: every interface on both sides (walks)")
    parser.add_argument("--no-exporters", action="store_true", help="measure the agent only")
    parser.add_argument("--no-netns", action="store_true",
                        help="run on the host's loopback, not in a network namespace of its own")
    args = parser.parse_args()
    if args.quick:
        args.scales, args.cycles, args.repeat = [1], 1, 1

    if os.geteuid() != 0 or shutil.which("nft") is None:
        raise SystemExit("run as root with nft installed: dead ICMP routers are nftables rules on loopback")
    missing = [] if args.no_exporters else exporters.available()
    if missing:
        raise SystemExit(f"missing {', '.join(missing)} (Debian packages of the same names)")
    if not os.environ.get(NETNS_ENV) and not args.no_netns:
        raise SystemExit(rerun_in_own_netns(__file__, NETNS_ENV, RUN_TIMEOUT))
    os.environ["EGOV_AGENT_PROBE_ALLOW"] = ALLOW  # the agent refuses any address outside loopback
    os.environ["EGOV_SNMP_COMMUNITY"] = "bench-" + secrets.token_urlsafe(9)

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start; "
          f"blackbox {'.'.join(map(str, exporters.version(exporters.BLACKBOX)))}, snmp_exporter "
          f"{'.'.join(map(str, exporters.version(exporters.SNMP_EXPORTER)))}")
    print("agent: bench/wan_agent.py, agent.service.Agent + Scheduler.run_once() per cycle in its own process; "
          "CPU = psutil user+system of each process over the cycle")
    if os.environ.get(NETNS_ENV):
        print("network: a namespace of its own (unshare --net), its loopback only")
    started = time.perf_counter()
    results = []
    base = lab.bac_giang()
    with tempfile.TemporaryDirectory(prefix="egov-bench-wan-") as tmp:
        for scale in args.scales:
            province = lab.bac_giang() if scale == 1 else lab.generated(scale, base.document["collectors"])
            results.append(run_size(province, args, Path(tmp)))
    goals(results)
    print(f"\n(total {time.perf_counter() - started:.0f} s; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
