"""Soak test: the agent against the lab for thousands of collection cycles while faults are injected.

A generated province (TCP systems and HTTPS portals) is simulated by ``egov-agent lab`` on loopback;
the agent probes it at a short interval while this script, through the lab's control API, makes
links flap (TCP down/up), portals fail (HTTP 500, wrong content, expired certificate, down) and
devices time out (a portal that answers too late), scrapes /metrics every second, and swaps the
configuration by SIGHUP every ``--reload-every`` seconds (a target removed, then added back).

Printed: the agent's RSS and open file descriptors at start, after warm-up and at the end, cycles
done (egov_collector_probes_total / targets), skipped probes (egov_collector_skipped_probes_total),
and whether the log holds a traceback. Goals: RSS growth under 10 % after warm-up, fds flat, no
probe skipped, no traceback. Exit code 0 when every goal is met.

    EGOV_AGENT_PROBE_ALLOW=127.0.0.0/8 .venv/bin/python bench/soak.py --cycles 5000 --interval 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
AGENT = [sys.executable, "-m", "agent.cli"]
HTTP_FAULTS = ("error", "wrong_content", "slow", "down", "cert_expired")
LOADED = ("egov_config_last_reload_success_timestamp_seconds", (("province", "soak"),))


def province(tcp: int, http: int, interval: float) -> dict:
    districts = [f"d{i}" for i in range(4)]
    units = [{"id": d, "name_vi": f"Huyện {i}", "level": "district",
              "children": [{"id": f"{d}-c{j}", "name_vi": f"Xã {j}", "level": "commune"} for j in range(6)]}
             for i, d in enumerate(districts)]
    communes = [c["id"] for d in units for c in d["children"]]
    targets = [{"id": f"link-{i:03d}", "unit": communes[i % len(communes)], "collector": "tcp",
                "tags": ["wan"], "params": {"host": f"10.200.{i // 250}.{i % 250 + 1}", "port": 443}}
               for i in range(tcp)]
    targets += [{"id": f"portal-{i:02d}", "unit": districts[i % len(districts)], "collector": "http",
                 "tags": ["portal"], "params": {"url": f"https://portal-{i}.soak.gov.vn/", "title": f"Soak {i}",
                                                "contains": ["Tin tức"]}}
                for i in range(http)]
    kpi = {"class": "direct", "targets": [{"phase": "ops", "deadline": "2030-12-31", "comparator": ">=",
                                           "value": "95%", "origin": "ops"}]}
    return {
        "province": {"code": "soak", "name_vi": "Tỉnh Thử Tải", "name_en": "Soak Province"},
        "levels": ["province", "district", "commune"],
        "units": [{"id": "soak", "name_vi": "Tỉnh Thử Tải", "level": "province", "children": units}],
        "collectors": {"tcp": {"interval": f"{interval}s", "timeout": f"{interval * 0.8:.3f}s", "concurrency": 64},
                       "http": {"interval": f"{interval * 2}s", "timeout": f"{interval * 1.5:.3f}s",
                                "concurrency": 32}},
        "targets": targets,
        "kpis": [
            {"id": "wan_coverage", "title_vi": "Xã có kết nối WAN", "title_en": "Communes connected",
             "measure": {"kind": "coverage", "select": {"collector": "tcp", "level": "commune"},
                         "group_by": "district"}, **kpi},
            {"id": "wan_availability", "title_vi": "Khả dụng WAN", "title_en": "WAN availability",
             "measure": {"kind": "availability", "select": {"collector": "tcp"}, "window": "1h"}, **kpi},
            {"id": "portals_up", "title_vi": "Cổng thông tin hoạt động", "title_en": "Portals up",
             "measure": {"kind": "coverage", "select": {"collector": "http"}}, **kpi},
        ],
    }


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def by_collector(samples: dict, name: str) -> dict[str, float]:
    return {dict(labels)["collector"]: v for (n, labels), v in samples.items() if n == name}


def cycles(samples: dict) -> dict[str, float]:
    probes = by_collector(samples, "egov_collector_probes_total")
    targets = by_collector(samples, "egov_collector_targets")
    return {k: probes.get(k, 0) / targets[k] for k in targets if targets[k]}


def usage(proc: psutil.Process) -> tuple[float, int]:
    """RSS in MiB, and open fds: the least of a few samples, since scrapes and probes in flight come and go."""
    fds = []
    for _ in range(5):
        fds.append(proc.num_fds())
        time.sleep(0.05)
    return proc.memory_info().rss / 2**20, min(fds)


def control(url: str, target: str, state: str) -> None:
    request = urllib.request.Request(f"{url}/targets/{target}/{state}", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10):
        pass


class Faults(threading.Thread):
    """Changes the state of a random target every ``every`` seconds, keeping about ``share`` of them faulty."""

    def __init__(self, url: str, tcp: list[str], http: list[str], every: float, share: float) -> None:
        super().__init__(daemon=True)
        self.url, self.tcp, self.http, self.every, self.share = url, tcp, http, every, share
        self.faulty: dict[str, str] = {}
        self.changes = 0
        self.stop = threading.Event()
        self.random = random.Random(7)

    def run(self) -> None:
        while not self.stop.wait(self.every):
            everyone = self.tcp + self.http
            if self.faulty and (len(self.faulty) >= self.share * len(everyone) or self.random.random() < 0.4):
                target = self.random.choice(sorted(self.faulty))
                state = "up"
            else:
                target = self.random.choice(everyone)
                state = "down" if target in self.tcp else self.random.choice(HTTP_FAULTS)
            try:
                control(self.url, target, state)
            except OSError as exc:
                print(f"  fault injection {target} -> {state} failed: {exc}", flush=True)
                continue
            self.changes += 1
            if state == "up":
                self.faulty.pop(target, None)
            else:
                self.faulty[target] = state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tcp", type=int, default=40, help="TCP targets (WAN links)")
    parser.add_argument("--http", type=int, default=8, help="HTTPS portals")
    parser.add_argument("--interval", type=float, default=0.2, help="TCP probe interval, s (HTTP: twice that)")
    parser.add_argument("--cycles", type=int, default=5000, help="TCP collection cycles to run")
    parser.add_argument("--warmup", type=int, default=300, help="cycles before the baseline RSS is taken")
    parser.add_argument("--fault-every", type=float, default=0.25, help="seconds between fault injections")
    parser.add_argument("--reload-every", type=float, default=30.0, help="seconds between SIGHUP reloads")
    args = parser.parse_args()
    os.environ.setdefault("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8,::1/128")

    work = Path(tempfile.mkdtemp(prefix="egov-soak-"))
    (work / "province.yml").write_text(yaml.safe_dump(province(args.tcp, args.http, args.interval),
                                                      allow_unicode=True, sort_keys=False))
    agent_yml = work / "agent.yml"
    lab_log = (work / "lab.log").open("wb")
    lab = subprocess.Popen([*AGENT, "lab", "--config", str(work / "province.yml"), "--write-config", str(agent_yml),
                            "--down-ratio", "0"], stdout=lab_log, stderr=subprocess.STDOUT, cwd=REPO)
    agent = None
    try:
        deadline = time.monotonic() + 60
        while not (work / "agent.yml.control").exists():
            if lab.poll() is not None or time.monotonic() > deadline:
                print((work / "lab.log").read_text())
                return 1
            time.sleep(0.1)
        control_url = (work / "agent.yml.control").read_text().strip()
        full = agent_yml.read_text()
        data = yaml.safe_load(full)
        smaller = dict(data, targets=data["targets"][1:])  # the reload alternates: link-000 removed, added back
        variants = [full, yaml.safe_dump(smaller, allow_unicode=True, sort_keys=False)]

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        agent_log = work / "agent.log"
        out = agent_log.open("wb")
        agent = subprocess.Popen([*AGENT, "run", "--config", str(agent_yml), "--listen", f"127.0.0.1:{port}",
                                  "--log-format", "json"], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                 env={**os.environ, "PYTHONFAULTHANDLER": "1"})
        proc = psutil.Process(agent.pid)
        while True:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if agent.poll() is not None:
                print(agent_log.read_text())
                return 1
            time.sleep(0.1)
        rss0, fds0 = usage(proc)
        print(f"soak: {args.tcp} TCP targets every {args.interval:g}s, {args.http} HTTPS portals every "
              f"{args.interval * 2:g}s; {args.cycles} cycles; work dir {work}", flush=True)
        print(f"agent ready: RSS {rss0:.1f} MiB, {fds0} fds", flush=True)

        faults = Faults(control_url, [t["id"] for t in data["targets"] if t["collector"] == "tcp"],
                        [t["id"] for t in data["targets"] if t["collector"] == "http"], args.fault_every, 0.2)
        faults.start()
        started = time.monotonic()
        baseline = None
        last_print = last_reload = started
        reloads = scrapes = 0
        loads: set[float] = set()  # distinct success timestamps of configuration loads: one per applied reload
        stalls: list[float] = []  # the load average at each scrape that found more skipped probes
        skipped_before = 0.0
        while True:
            time.sleep(1.0)
            samples = scrape(base)
            scrapes += 1
            loads.add(samples.get(LOADED, 0.0))
            skipped_now = sum(by_collector(samples, "egov_collector_skipped_probes_total").values())
            if skipped_now > skipped_before:  # a stall: when, and how busy the machine was
                stalls.append(os.getloadavg()[0])
                skipped_before = skipped_now
            done = cycles(samples).get("tcp", 0.0)
            now = time.monotonic()
            if baseline is None and done >= args.warmup:
                baseline = usage(proc)
                print(f"after {done:.0f} cycles (warm-up): RSS {baseline[0]:.1f} MiB, {baseline[1]} fds", flush=True)
            if now - last_reload >= args.reload_every:
                reloads += 1
                agent_yml.write_text(variants[reloads % 2])
                agent.send_signal(signal.SIGHUP)
                last_reload = now
            if now - last_print >= 30:
                rss, fds = usage(proc)
                skipped = sum(by_collector(samples, "egov_collector_skipped_probes_total").values())
                print(f"  {now - started:6.0f}s  cycles {done:7.0f}  RSS {rss:6.1f} MiB  fds {fds:3d}  "
                      f"skipped {skipped:.0f}  faults {faults.changes}  reloads {reloads} (applied {len(loads) - 1})"
                      f"  load {os.getloadavg()[0]:.1f}", flush=True)
                last_print = now
            if done >= args.cycles:
                break
            if agent.poll() is not None:
                print(f"the agent exited with {agent.returncode}")
                break
        faults.stop.set()
        time.sleep(2.0)  # the last reload, if one is in flight
        samples = scrape(base)
        loads.add(samples.get(LOADED, 0.0))
        elapsed = time.monotonic() - started
        rss1, fds1 = usage(proc)
        done_by = cycles(samples)
        skipped = by_collector(samples, "egov_collector_skipped_probes_total")
        errors = {f"{dict(ls)['collector']}/{dict(ls)['reason']}": v for (n, ls), v in samples.items()
                  if n == "egov_collector_errors_total"}
        reload_ok = samples.get(("egov_config_last_reload_successful", (("province", "soak"),)))
        agent.send_signal(signal.SIGTERM)
        stop_started = time.monotonic()
        try:
            code = agent.wait(30)
        except subprocess.TimeoutExpired:  # show where it hangs: faulthandler dumps every thread on SIGABRT
            agent.send_signal(signal.SIGABRT)
            code = agent.wait(10)
        stop_seconds = time.monotonic() - stop_started
        out.close()
        log = agent_log.read_text(errors="replace")
        tracebacks = log.count("Traceback")
        lines = log.count("\n")
        levels: dict[str, int] = {}
        for line in log.splitlines():
            try:
                level = json.loads(line)["level"]
            except (ValueError, KeyError):
                level = "other"
            levels[level] = levels.get(level, 0) + 1

        base_rss, base_fds = baseline or (rss0, fds0)
        growth = (rss1 - base_rss) / base_rss * 100
        print()
        print(f"ran {elapsed:.0f}s: cycles {', '.join(f'{k} {v:.0f}' for k, v in sorted(done_by.items()))}; "
              f"{faults.changes} fault injections, {reloads} reloads (last successful: {reload_ok:g}), "
              f"{scrapes} scrapes")
        print(f"RSS  start {rss0:.1f} MiB, after warm-up {base_rss:.1f} MiB, end {rss1:.1f} MiB: "
              f"{growth:+.1f}% since warm-up")
        print(f"fds  start {fds0}, after warm-up {base_fds}, end {fds1}")
        print(f"skipped probes: {', '.join(f'{k} {v:.0f}' for k, v in sorted(skipped.items()))}"
              + (f" (in {len(stalls)} stalls, at load averages {min(stalls):.1f} to {max(stalls):.1f} on "
                 f"{os.cpu_count()} CPUs)" if stalls else ""))
        print(f"reloads applied: {len(loads) - 1} of {reloads}")
        print(f"failures by reason: {', '.join(f'{k} {v:.0f}' for k, v in sorted(errors.items()))}")
        print(f"log: {lines} lines {levels}, tracebacks {tracebacks}; stopped in {stop_seconds:.1f}s with code {code}")
        goals = {"RSS growth < 10%": growth < 10, "fds flat": fds1 <= base_fds + 2,
                 "no probe skipped": sum(skipped.values()) == 0, "no traceback": tracebacks == 0,
                 "every reload applied": len(loads) - 1 == reloads,
                 f"{args.cycles} cycles": done_by.get("tcp", 0) >= args.cycles, "clean stop": code == 0}
        print("goals: " + ", ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in goals.items()))
        return 0 if all(goals.values()) else 1
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        lab.terminate()
        try:
            lab.wait(15)
        except subprocess.TimeoutExpired:
            lab.kill()
        lab_log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
