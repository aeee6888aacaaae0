#!/usr/bin/env python3
"""20,000 WAN links on one box: ``egov-agent run --workers N`` on a 60 s cycle, cold cycle and steady cycles.

The province is bench/wan_lab.py's generated one at ``--scale`` (76: 19,912 links, an ICMP and an SNMP
target each, 39,824 targets), ``--dead`` of its routers dead (nftables drops their echoes, their SNMP
agent never answers). The lab runs in ``--labs`` processes of its own (one /18 of 127.92.0.0/16
each), so its CPU is measured apart and one lab process is not the bottleneck. The agent is the
real service, ``python -m agent.app.cli run`` in a process of its own, with Bắc Giang's probe settings
(5 echoes 0.5 s apart, 5 s timeout; SNMP 2 s × 2 tries, 6 s) on a ``--interval`` cycle and the
concurrency scaled with the links (bac-giang.yml's 512 ICMP / 128 SNMP serve 10,000 links).

Figures, each with the load average beside it:
* cold: process start to ``/-/healthy`` (imports and configuration load), then to ``/-/ready``
  (every target probed once: the cold first cycle, ifName walks included);
* each steady cycle (``--interval`` long, from one scrape to the next): targets probed in the cycle,
  the oldest last probe at its end (must stay within interval + timeout), probes skipped and
  overrun (the agent's own lateness), targets judged right against the lab's truth, CPU of the
  main process and of each worker as a share of one core, the lab processes' CPU apart;
* the peer: the single-process agent (``--workers 1``) on the same lab, cold cycle and one steady
  cycle (``--no-peer`` to skip it).

Needs root (nftables, raw ICMP sockets), nft and unshare: it re-executes itself in a network
namespace of its own. About 8 minutes on 2 cores at the default sizes (a cold cycle not complete
within 120 s is reported as such, and that run ends there).
Usage: sudo .venv/bin/python bench/wan_scale.py [--scale 76] [--workers 2] [--cycles 2] [--no-peer]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wan_lab as lab
from benchutil import rerun_in_own_netns

REPO = Path(__file__).resolve().parent.parent
NETNS_ENV = "EGOV_BENCH_WAN_SCALE_NETNS"
NETWORK = ipaddress.ip_network("127.92.0.0/16")
RUN_TIMEOUT = 1500.0
START_TIMEOUT = 300.0  # configuration load of 40,000 targets (44 s on a quiet machine)
READY_TIMEOUT = 120.0  # /-/healthy to /-/ready: the cold cycle, whose goal is 60 s
SCRAPE_EVERY = 15.0  # seconds, Prometheus's usual scrape interval


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


def get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


@dataclass
class Scrape:
    """One /metrics, as rendered at ``at``: the newest probe in it (the agent serves its latest rendering,
    re-rendered at most every 10 × its render time, so a scrape's data can be tens of seconds old)."""

    at: float
    up: dict[str, bool]
    probes: dict[str, float]
    last: dict[str, float]
    skipped: float
    overrun: float
    lag: float
    seconds: float  # how long the scrape took
    cpu: tuple[float, list[float]] = (0.0, [])  # the agent's, when it was fetched
    lab_cpu: float = 0.0
    fetched: float = 0.0


TARGET = re.compile(r'target="([^"]*)"')


def scrape(base: str) -> Scrape:
    """The few families the figures need, read line by line (a full parser costs seconds of CPU at 40k)."""
    started = time.perf_counter()
    status, body = get(base + "/metrics", 120)
    if status != 200:
        raise SystemExit(f"/metrics answered {status}")
    took = time.perf_counter() - started
    up, probes, last = {}, {}, {}
    skipped = overrun = lag = 0.0
    for line in body.decode().splitlines():
        if line.startswith("egov_target_up{"):
            up[TARGET.search(line).group(1)] = line.endswith(" 1.0")  # type: ignore[union-attr]
        elif line.startswith("egov_target_probes_total{"):
            probes[TARGET.search(line).group(1)] = float(line.rsplit(" ", 1)[1])  # type: ignore[union-attr]
        elif line.startswith("egov_target_last_probe_timestamp_seconds{"):
            last[TARGET.search(line).group(1)] = float(line.rsplit(" ", 1)[1])  # type: ignore[union-attr]
        elif line.startswith("egov_collector_skipped_probes_total{"):
            skipped += float(line.rsplit(" ", 1)[1])
        elif line.startswith("egov_collector_overrun_total{"):
            overrun += float(line.rsplit(" ", 1)[1])
        elif line.startswith("egov_agent_loop_lag_seconds "):
            lag = float(line.rsplit(" ", 1)[1])
    return Scrape(max(last.values(), default=time.time()), up, probes, last, skipped, overrun, lag, took)


class Scraper:
    """Scrapes every SCRAPE_EVERY seconds, as Prometheus would, and keeps the newest rendering."""

    def __init__(self, agent: AgentRun, labs: Labs) -> None:
        import threading

        self.agent, self.labs = agent, labs
        self.latest: Scrape | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = scrape(self.agent.base)
                got.cpu, got.lab_cpu, got.fetched = self.agent.cpu(), self.labs.cpu(), time.time()
                if self.latest is None or got.at > self.latest.at:
                    self.latest = got
            except BaseException as exc:  # reported by the waiting side
                self.error = exc
                return
            self._stop.wait(SCRAPE_EVERY)

    def newer_than(self, at: float, timeout: float) -> Scrape:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise SystemExit(f"scrape failed: {self.error}")
            if self.latest is not None and self.latest.at >= at:
                return self.latest
            time.sleep(0.5)
        raise SystemExit(f"no rendering newer than {at - time.time():.0f} s from now within {timeout:g}s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(150)


def judge(up: dict[str, bool], truth: dict[str, bool]) -> tuple[int, Counter]:
    right, wrong = 0, Counter[str]()
    for target, state in truth.items():
        if target not in up:
            wrong["never probed"] += 1
        elif up[target] == state:
            right += 1
        else:
            wrong["up (truth dead)" if up[target] else "down (truth up)"] += 1
    return right, wrong


class Labs:
    """The lab in ``count`` processes, each serving its share of the routers on its own /18."""

    def __init__(self, routers: list[lab.Router], count: int) -> None:
        subnets = list(NETWORK.subnets(new_prefix=18))[:count]
        shares = [routers[i::count] for i in range(count)]
        started = time.perf_counter()
        self.procs: list[subprocess.Popen] = []
        import threading

        errors: list[BaseException] = []

        def start(share: list[lab.Router], net: ipaddress.IPv4Network) -> None:
            try:
                proc, ready = lab.start_lab(share, timeout=START_TIMEOUT, network=str(net))
                if not ready["icmp_faults"] and any(not r.up for r in share):
                    raise SystemExit("the lab could not make ICMP routers dead (needs root and nft)")
                self.procs.append(proc)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(s, n)) for s, n in zip(shares, subnets, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        self.startup = time.perf_counter() - started
        self.ps = [psutil.Process(p.pid) for p in self.procs]

    def cpu(self) -> float:
        return sum(cpu(p) for p in self.ps)

    def stop(self) -> None:
        for proc in self.procs:
            lab.stop_lab(proc)


class AgentRun:
    """``egov-agent run --workers N`` as a child process; CPU of the main process and of each worker."""

    def __init__(self, config: Path, workers: int, log: Path, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "agent.app.cli", "run", "--config", str(config),
                                      "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
                                      "--log.level", "warning"],
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.main = psutil.Process(self.proc.pid)

    def wait(self, path: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the agent exited with {self.proc.returncode}; see {self.log.name}")
            if get(self.base + path, 2)[0] == 200:
                return time.perf_counter() - self.started
            time.sleep(0.25)
        raise TimeoutError(f"{path} not answered within {timeout:g}s")

    def workers(self) -> list[psutil.Process]:
        try:
            return [p for p in self.main.children() if "agent.engine.worker" in " ".join(p.cmdline())]
        except psutil.NoSuchProcess:
            return []

    def cpu(self) -> tuple[float, list[float]]:
        main = self.main.cpu_times()
        return main.user + main.system, [cpu(w) for w in self.workers()]

    def rss_mib(self) -> tuple[float, list[float]]:
        return (self.main.memory_info().rss / 2**20, [w.memory_info().rss / 2**20 for w in self.workers()])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def measure(config: Path, workers: int, cycles: int, interval: float, timeout: float, truth: dict[str, bool],
            labs: Labs, workdir: Path, port: int) -> dict:
    print(f"\n-- egov-agent run --workers {workers}: {len(truth)} targets, {interval:g} s cycle "
          f"({load()} before start) --", flush=True)
    agent = AgentRun(config, workers, workdir / f"agent-{workers}.log", port)
    figures: dict = {"workers": workers}
    try:
        lab_before = labs.cpu()
        try:
            healthy = agent.wait("/-/healthy", START_TIMEOUT)
        except TimeoutError as exc:
            raise SystemExit(str(exc)) from None
        cpu_at_healthy = agent.cpu()
        try:
            ready = agent.wait("/-/ready", READY_TIMEOUT)
        except TimeoutError:
            main_cpu, worker_cpu = agent.cpu()
            spent = main_cpu - cpu_at_healthy[0] + sum(worker_cpu) - sum(cpu_at_healthy[1])
            lab_cpu = labs.cpu() - lab_before
            seen = scrape(agent.base)
            probed = sum(1 for t in truth if seen.probes.get(t, 0) > 0)
            print(f"  start to /-/healthy {healthy:6.1f} s; cold first cycle NOT complete within {READY_TIMEOUT:g} s: "
                  f"{probed}/{len(truth)} targets probed, {seen.overrun:.0f} overrun; agent CPU {spent:.1f} s = "
                  f"{spent / READY_TIMEOUT:.2f} cores, lab {lab_cpu / READY_TIMEOUT:.2f} cores; "
                  f"loop lag {seen.lag:.1f} s (see {agent.log.name})  [{load()}]", flush=True)
            figures.update(healthy=healthy, cold=float("inf"), cold_wrong=len(truth), steady=[])
            return figures
        cold = ready - healthy
        main_cpu, worker_cpu = agent.cpu()
        lab_cpu = labs.cpu() - lab_before
        scraper = Scraper(agent, labs)
        try:
            first = scraper.newer_than(0, 120)
            right, wrong = judge(first.up, truth)
            cold_cpu = main_cpu - cpu_at_healthy[0] + sum(worker_cpu) - sum(cpu_at_healthy[1])
            print(f"  start to /-/healthy {healthy:6.1f} s (imports, configuration load)                  "
                  f"[{load()}]")
            print(f"  cold first cycle   {cold:6.1f} s  /-/healthy to /-/ready: every target probed once, right "
                  f"{right}/{len(truth)}{'' if not wrong else f' WRONG {dict(wrong)}'}; agent CPU {cold_cpu:.1f} s "
                  f"= {cold_cpu / cold:.2f} cores, lab CPU {lab_cpu:.1f} s = {lab_cpu / cold:.2f} cores  [{load()}]",
                  flush=True)
            figures.update(healthy=healthy, cold=cold, cold_right=right, cold_wrong=sum(wrong.values()))
            previous = first
            steady = []
            for cycle in range(1, cycles + 1):
                now = scraper.newer_than(previous.at + interval, interval + 120)
                span, wall = now.at - previous.at, now.fetched - previous.fetched
                probed = sum(1 for t in truth if now.probes.get(t, 0) > previous.probes.get(t, 0))
                oldest = max(now.at - now.last.get(t, 0.0) for t in truth)
                late = sum(1 for t in truth if now.at - now.last.get(t, 0.0) > interval + timeout)
                right, wrong = judge(now.up, truth)
                main_share = (now.cpu[0] - previous.cpu[0]) / wall
                shares = [(w - p) / wall for w, p in zip(now.cpu[1], previous.cpu[1], strict=False)]
                lab_share = (now.lab_cpu - previous.lab_cpu) / wall
                row = {"span": span, "probed": probed, "oldest": oldest, "late": late,
                       "skipped": now.skipped - previous.skipped, "overrun": now.overrun - previous.overrun,
                       "right": right, "wrong": sum(wrong.values()), "main": main_share, "workers": shares,
                       "lab": lab_share, "lag": now.lag, "scrape": now.seconds}
                steady.append(row)
                print(f"  steady cycle {cycle}     {span:6.1f} s  probed {probed}/{len(truth)}, oldest last probe "
                      f"{oldest:.1f} s ({late} older than {interval + timeout:g} s), skipped {row['skipped']:.0f}, "
                      f"overrun {row['overrun']:.0f}, right {right}/{len(truth)}"
                      f"{'' if not wrong else f' WRONG {dict(wrong)}'}; CPU main {main_share:.2f}"
                      f"{''.join(f' + worker {w:.2f}' for w in shares)} = {main_share + sum(shares):.2f} cores, "
                      f"lab {lab_share:.2f} cores; loop lag {now.lag:.2f} s  [{load()}]", flush=True)
                previous = now
        finally:
            scraper.stop()
        main_rss, worker_rss = agent.rss_mib()
        print(f"  RSS main {main_rss:.0f} MiB{''.join(f' + worker {w:.0f} MiB' for w in worker_rss)}")
        figures["steady"] = steady
    finally:
        agent.stop()
    return figures


def verdict(figures: dict, targets: int, interval: float) -> str:
    steady = figures.get("steady", [])
    ok = (figures.get("cold", 1e9) <= interval and figures.get("cold_wrong", 1) == 0 and steady
          and all(r["probed"] == targets and r["late"] == 0 and r["wrong"] == 0 and r["skipped"] == 0
                  and r["overrun"] == 0 for r in steady))
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=76, help="bench/wan_lab.py's generated province, N× Bắc Giang")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=2, help="steady cycles after the cold one")
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--dead", type=float, default=0.1)
    parser.add_argument("--labs", type=int, default=2, help="lab processes (at most 4)")
    parser.add_argument("--no-peer", action="store_true", help="skip the single-process agent's run")
    parser.add_argument("--no-netns", action="store_true")
    parser.add_argument("--keep", metavar="DIR", help="write the configuration and the agents' logs here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: dead ICMP routers are nftables rules, ICMP probes raw sockets")
    if not os.environ.get(NETNS_ENV) and not args.no_netns:
        raise SystemExit(rerun_in_own_netns(__file__, NETNS_ENV, RUN_TIMEOUT))
    os.environ["EGOV_AGENT_PROBE_ALLOW"] = str(NETWORK)
    os.environ["EGOV_SNMP_COMMUNITY"] = "bench-" + secrets.token_urlsafe(9)

    print(f"machine: {os.cpu_count()} cores, {load()} at start (others' load: nothing of this run is running yet)")
    base = lab.bac_giang()
    collectors = {k: dict(v) for k, v in base.document["collectors"].items()}
    factor = max(1.0, args.scale / 38)  # bac-giang.yml's concurrency serves ~10,000 links (38×)
    for spec in collectors.values():
        spec["interval"] = f"{args.interval:g}s"
        spec["concurrency"] = int(int(spec.get("concurrency", 64)) * factor)
    province = lab.generated(args.scale, collectors)
    lab.kill_some(province.routers, args.dead)
    truth = {}
    for r in province.routers:
        truth[r.icmp_id] = truth[r.snmp_id] = r.up
    dead = sum(1 for r in province.routers if not r.up)
    labs = Labs(province.routers, args.labs)
    print(f"lab: {len(province.routers)} routers ({dead} dead) in {args.labs} processes, started in "
          f"{labs.startup:.1f} s  [{load()}]")
    print("agent collectors: " + "; ".join(f"{k} every {v['interval']}, timeout {v['timeout']}, "
                                           f"concurrency {v['concurrency']}" for k, v in collectors.items()))
    timeout = max(float(str(v["timeout"]).rstrip("s")) for v in collectors.values())
    results = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="egov-bench-scale-") as scratch:
            tmp = args.keep or scratch
            Path(tmp).mkdir(parents=True, exist_ok=True)
            document = lab.agent_config(province, False, None)
            document["targets"] = [t for t in document["targets"] if "wan_link" in t["tags"]]
            config = Path(tmp) / "agent.yml"
            lab.write_yaml(document, config)
            runs = [(args.workers, args.cycles)] + ([] if args.no_peer or args.workers == 1 else [(1, 1)])
            for workers, cycles in runs:
                results.append(measure(config, workers, cycles, args.interval, timeout, truth, labs, Path(tmp),
                                       18000 + workers))
    finally:
        labs.stop()
    print(f"\n== goal: {len(truth)} targets on a {args.interval:g} s cycle, cold cycle included, every target right ==")
    for figures in results:
        steady = figures.get("steady", [])
        cores = [r["main"] + sum(r["workers"]) for r in steady] or [0.0]
        print(f"  --workers {figures['workers']}: cold {figures['cold']:.1f} s, steady cycles "
              f"{', '.join(str(r['probed']) + ' probed' for r in steady) or 'none'}; agent "
              f"{min(cores):.2f}-{max(cores):.2f} cores, lab {max((r['lab'] for r in steady), default=0):.2f} cores: "
              f"{verdict(figures, len(truth), args.interval)}")
    if len(results) == 2 and results[1]["cold"] not in (0, float("inf")):
        print(f"  cold cycle --workers {results[0]['workers']} vs 1: {results[0]['cold']:.1f} s vs "
              f"{results[1]['cold']:.1f} s = {results[0]['cold'] / results[1]['cold']:.2f}×")
    print(f"(total {time.perf_counter() - started:.0f} s; {load()} now)")


if __name__ == "__main__":
    main()
