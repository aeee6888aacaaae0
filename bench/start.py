#!/usr/bin/env python3
"""How lean the agent starts: import time, check-config, time to /-/healthy and /-/ready, RSS after warm-up.

Prints, each with the load average beside it:

1. ``import agent.app.cli`` (the command line's imports) in a fresh interpreter, and what it loads.
2. ``egov-agent check-config`` of Bắc Giang (wall time of the whole command, secrets skipped).
3. The demo's agent: the lab for Bắc Giang runs in its own process (its memory and CPU are not the
   agent's), then ``egov-agent run`` on the configuration it wrote is started ``--repeat`` times:
   seconds from exec to the first 200 of ``/-/healthy`` and of ``/-/ready``; the last start keeps
   running ``--warmup`` seconds and its RSS (and USS) is read then.
   The agent's children (source fetches in their own processes) are read at every scrape, and what the
   sql and file_drop fetch children cost is measured apart, so no memory hides by moving to a child.
4. Peers from the same run: node_exporter and blackbox_exporter (Debian packages), start to first
   200 and RSS after a few scrapes (blackbox: ICMP probes of the lab's live routers), and the ratio.

Goals (issue 15): check-config ≤ 0.5 s, /-/healthy ≤ 1 s, /-/ready ≤ 5 s, RSS ≤ 80 MiB after warm-up.
Usage: .venv/bin/python bench/start.py [--network 127.93.0.0/16] [--warmup 180] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
PROVINCE = REPO / "config" / "provinces" / "bac-giang.yml"
AGENT = [sys.executable, "-m", "agent.app.cli"]
POLL = 0.01  # seconds between polls of an endpoint while timing a start
BLACKBOX_CONFIG = "modules:\n  icmp:\n    prober: icmp\n    timeout: 5s\n"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# What a scraping Prometheus sends (scrape_protocols' default, and gzip): the renderings the agent then keeps.
PROMETHEUS_HEADERS = {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
                      "Accept-Encoding": "gzip"}


def status(url: str, headers: dict[str, str] | None = None) -> int | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=1) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def timed_start(command: list[str], urls: list[str], timeout: float = 120.0, env: dict | None = None,
                ) -> tuple[subprocess.Popen, list[float]]:
    """Start ``command``; seconds from exec until each of ``urls`` first answers 200 (polled in order)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    times: list[float] = []
    for url in urls:
        while status(url) != 200:
            if proc.poll() is not None:
                raise SystemExit(f"{command[0]} exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            if time.perf_counter() - started > timeout:
                stop(proc)
                raise SystemExit(f"{url} not 200 within {timeout:g}s")
            time.sleep(POLL)
        times.append(time.perf_counter() - started)
    return proc, times


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def memory(pid: int) -> tuple[float, float]:
    """RSS and USS (memory only this process holds) in MiB."""
    info = psutil.Process(pid).memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


def children_rss(pid: int) -> float:
    """RSS of every process the agent started and still runs, in MiB (nothing hides by moving to a child)."""
    total = 0.0
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # it exited meanwhile
            total += child.memory_info().rss / 2**20
    return total


def first_round(base: str, timeout: float = 60.0) -> str:
    """Once every target was probed once: how many read down per collector (the lab kills ~3% on purpose)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            text = response.read().decode()
        if "\negov_agent_first_round_pending_targets 0.0\n" in text:
            down: dict[str, int] = {}
            for line in text.splitlines():
                if line.startswith("egov_target_up{") and line.endswith(" 0.0"):
                    kind = re.search(r'collector="([^"]+)"', line)
                    down[kind.group(1) if kind else "?"] = down.get(kind.group(1) if kind else "?", 0) + 1
            sources = [line for line in text.splitlines() if line.startswith("egov_source_up{")]
            up = sum(1 for line in sources if line.endswith(" 1.0"))
            return ("down " + ", ".join(f"{k} {n}" for k, n in sorted(down.items()))
                    + f"; sources up {up}/{len(sources)} (they fetch on their own schedule)")
        time.sleep(0.5)
    return f"not complete within {timeout:g} s"


def median_of(values: list[float]) -> str:
    spread = f" (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})" if len(values) > 1 else ""
    return f"{statistics.median(values):.2f} s{spread}"


def import_time(repeat: int) -> None:
    code = ("import sys, time; t = time.perf_counter(); import agent.app.cli; "
            "print(time.perf_counter() - t, len(sys.modules), "
            "' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'pysnmp', 'pycurl', 'pydantic', 'yaml', "
            "'sqlglot', 'sqlalchemy', 'httpx', 'openpyxl', 'docx', 'matplotlib', 'jinja2', 'trustme', 'psutil', "
            "'icmplib', 'prometheus_client', 'cryptography'})))")
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        seconds, modules, *names = out.stdout.split()
        runs.append(float(seconds))
    print(f"import agent.app.cli      {median_of(runs)}   {modules} modules   [{load()}]")
    print(f"  of which: {' '.join(names) or '-'}")


# What the demo's agent imports, in the order it does (each step adds what the previous ones did not).
IMPORT_STEPS = [
    ("python + psutil", "import psutil"),
    ("pydantic", "import pydantic"),
    ("agent.config (schema)", "import agent.config.loading"),
    ("agent.app.runtime (scheduler, KPI, exposition)", "import agent.app.runtime"),
    ("the web server, status pages", "import agent.app.daemon, exporters.status_page, exporters.unit_page"),
    ("icmp, tcp, sip, host collectors", "from collectors import REGISTRY; [REGISTRY[k] for k in "
                                        "('icmp', 'tcp', 'sip', 'host')]"),
    ("snmp, power (pysnmp)", "[REGISTRY[k] for k in ('snmp', 'power')]"),
    ("mcu (pysnmp v3arch, httpx)", "REGISTRY['mcu']"),
    ("http (pycurl; pyasn1-modules for certificates)", "REGISTRY['http']"),
    ("http_json source (jsonpath; httpx only in its fetch child)", "from agent.sources import source_class; "
                                                                  "source_class('http_json')"),
    ("sql source (its settings; sqlglot and sqlalchemy only in children)", "source_class('sql')"),
    ("file_drop source + openpyxl (now only in its child)", "source_class('file_drop'); from "
                                                            "agent.sources.file_drop import _openpyxl_reader; "
                                                            "_openpyxl_reader()"),
    ("sql query check: sqlglot (check-config; in a child under run)", "import agent.sources.sqlcheck"),
    ("sql fetch: sqlalchemy (now only in its child)", "import agent.sources.sqldb"),
    ("http_json fetch: httpx (now only in its child)", "import httpx"),
]


def rss_per_import() -> None:
    """RSS each step of the demo agent's imports adds, in a fresh interpreter."""
    code = ["import os, sys, psutil", "p = psutil.Process()", "last = 0"]
    for label, statement in IMPORT_STEPS:
        code += [statement, f"r = p.memory_info().rss / 2**20; print(f'{{r:6.1f}} {{r - last:+6.1f}}  {label}'); "
                            "last = r"]
    out = subprocess.run([sys.executable, "-c", "\n".join(code)], cwd=REPO, capture_output=True, text=True,
                         check=True)
    print(f"RSS per import (MiB: total, added)   [{load()}]")
    for line in out.stdout.splitlines():
        print(f"  {line}")


def source_child(config: Path) -> None:
    """What reading the demo's dropped workbooks costs in the child process that does it (agent.sources.child):
    its lifetime and peak RSS, measured in a fresh interpreter so no other child's peak is counted."""
    folders = re.findall(r"kind: file_drop\n(?:  .*\n)*?  folder: (.+)\n", config.read_text(encoding="utf-8"))
    books = sorted(str(p) for folder in folders for p in Path(folder).glob("*.xlsx"))
    if not books or not (REPO / "agent" / "sources" / "child.py").exists():  # the code before the child
        return
    code = ("import resource, sys, time; from agent.sources import child; t = time.perf_counter(); "
            "answers = child.call('agent.sources.file_drop', 'read_workbooks', (sys.argv[1:], 10 << 20, None), 60); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
            "sum(len(a[2]) for a in answers if a[0] == 'cells'))")
    out = subprocess.run([sys.executable, "-c", code, *books], cwd=REPO, capture_output=True, text=True, check=True)
    seconds, peak, rows = out.stdout.split()
    print(f"  source child (file_drop): {len(books)} workbooks, {rows} rows read in {float(seconds):.2f} s, "
          f"peak RSS {float(peak):.1f} MiB, then it exits   [{load()}]")


def sql_child(config: Path) -> None:
    """What the demo's sql fetches cost in the child process each runs in (agent.sources.sqldb): the whole
    fetch as the agent makes it, in a fresh interpreter, and the child's peak RSS, polled every 5 ms
    (getrusage's ru_maxrss would count the RSS of the parent it was forked from)."""
    if not (REPO / "agent" / "sources" / "sqldb.py").exists():  # the code before the child
        return
    code = ("import asyncio, sys, threading, time, psutil; from agent.config.loading import load_config; "
            "from agent.engine.units import UnitIndex; from agent.sources.runner import SourceRunner; "
            "loaded = load_config(sys.argv[1]); runner = SourceRunner.from_config(loaded, "
            "set(UnitIndex(loaded.config).units)); "
            "ids = [i for i, s in runner.states.items() if s.source.kind == 'sql']; peak = [0.0]; done = [];\n"
            "def poll():\n"
            "    me = psutil.Process()\n"
            "    while not done:\n"
            "        for c in me.children(recursive=True):\n"
            "            try: peak[0] = max(peak[0], c.memory_info().rss / 2**20)\n"
            "            except psutil.Error: pass\n"
            "        time.sleep(0.005)\n"
            "threading.Thread(target=poll, daemon=True).start(); t = time.perf_counter()\n"
            "ups = [asyncio.run(runner.fetch(i)) for i in ids]; fetched = time.perf_counter() - t; "
            "fetch_peak = peak[0]; peak[0] = 0.0\n"
            "from agent.sources import sqlspec; sqlspec.parse_queries_in_child(); t = time.perf_counter()\n"
            "for i in ids:\n"
            "    source = runner.states[i].source\n"
            "    sqlspec.read_only_problem([(n, s.query) for n, s in source.spec.series.items()], source.backend)\n"
            "done.append(1)\n"
            "print(fetched, fetch_peak, (time.perf_counter() - t) / len(ids), peak[0], sum(ups), len(ids), "
            "'sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(config)], cwd=REPO, capture_output=True, text=True,
                         check=True)
    seconds, peak, check, check_peak, up, count, in_agent = out.stdout.split()
    print(f"  source child (sql): {count} sources fetched ({up} up) in {float(seconds):.2f} s, one child each, "
          f"peak RSS {float(peak):.1f} MiB, then it exits; sqlalchemy in the agent: {in_agent}   [{load()}]")
    print(f"  query check child (sqlglot, at run's load): {float(check):.2f} s per sql source, peak RSS "
          f"{float(check_peak):.1f} MiB   [{load()}]")


def check_config_time(repeat: int) -> None:
    runs, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([*AGENT, "check-config", str(PROVINCE), "--skip-secrets"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
        runs.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    print(f"check-config bac-giang    {median_of(runs)}, CPU {statistics.median(cpu):.2f} s   (goal ≤ 0.5 s)"
          f"   [{load()}]")


def start_lab(network: str, workdir: Path) -> tuple[subprocess.Popen, Path]:
    config = workdir / "agent.yml"
    host = str(ipaddress.ip_network(network).broadcast_address - 1)
    lab = subprocess.Popen([*AGENT, "lab", "--config", str(PROVINCE), "--write-config", str(config), "--network",
                            network, "--control", f"{host}:{free_port(host)}", "--parent-pid", str(os.getpid()),
                            "--log.level", "warning"], cwd=REPO)
    deadline = time.monotonic() + 300
    while not config.exists():
        if lab.poll() is not None or time.monotonic() > deadline:
            stop(lab)
            raise SystemExit("the lab did not start")
        time.sleep(0.2)
    return lab, config


def aged_state_file(config: Path, path: Path) -> int:
    """A state file as the agent leaves it after a day or more: every target's history full (HISTORY_POINTS
    points a step apart, ending now), so the RSS after warm-up includes what the history grows to."""
    from agent.app.runtime import longest_window
    from agent.config.loading import load_config
    from agent.engine.state import StateFile
    from agent.engine.store import HISTORY_POINTS, TargetState

    loaded = load_config(config, resolve_secrets=False)
    step = max(longest_window(loaded) / (HISTORY_POINTS - 2), 1.0)
    now = time.time()
    start = now - step * (HISTORY_POINTS - 1)
    probes = int(step * (HISTORY_POINTS - 1) / 60)  # one a minute
    states = {target.id: TargetState(probes_total=probes, up_total=probes, up=True, up_since=start,
                                     history=[(start + step * i, i * probes // (HISTORY_POINTS - 1),
                                               i * probes // (HISTORY_POINTS - 1)) for i in range(HISTORY_POINTS)])
              for target in loaded.config.targets}
    state = StateFile(path, loaded.config.province.code)
    try:
        state.save(states)
    finally:
        state.close()
    return len(states)


def agent_starts(config: Path, host: str, repeat: int, warmup: float, scrape: str, aged: bool) -> float:
    headers = PROMETHEUS_HEADERS if scrape == "prometheus" else {}
    with tempfile.TemporaryDirectory(prefix="egov-start-state-") as tmp:
        state = Path(tmp) / "state.db"
        if aged:
            targets = aged_state_file(config, state)
            print(f"  the last start restores a full history ({targets} targets) from {state}   [{load()}]")
        return _agent_starts(config, host, repeat, warmup, headers, state if aged else None)


def _agent_starts(config: Path, host: str, repeat: int, warmup: float, headers: dict[str, str],
                  state: Path | None) -> float:
    healthy, ready = [], []
    for i in range(repeat):
        port = free_port(host)
        base = f"http://{host}:{port}"
        aged = ["--storage.state-file", str(state)] if state is not None and i == repeat - 1 else []
        proc, (to_healthy, to_ready) = timed_start(
            [*AGENT, "run", "--config", str(config), "--web.listen-address", f"{host}:{port}", "--log.level", "error",
             *aged], [f"{base}/-/healthy", f"{base}/-/ready"])
        healthy.append(to_healthy)
        ready.append(to_ready)
        print(f"  start {i + 1}: /-/healthy {to_healthy:.2f} s, /-/ready {to_ready:.2f} s   [{load()}]")
        if i < repeat - 1:
            stop(proc)
            continue
        try:
            rss, uss = memory(proc.pid)
            print(f"  at ready: RSS {rss:.1f} MiB (USS {uss:.1f})   [{load()}]")
            print(f"  first round: {first_round(base)}   [{load()}]")
            deadline = time.monotonic() + warmup
            children: list[float] = []  # RSS of the agent's children (source fetches, workers) at each scrape
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise SystemExit(f"the agent exited with {proc.returncode}")
                status(f"{base}/metrics", headers)  # every 15 s, as Prometheus would (--scrape)
                children.append(children_rss(proc.pid))
                time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
            rss, uss = memory(proc.pid)
            children.append(children_rss(proc.pid))
            probes = 0.0
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("egov_collector_probes_total{"):
                        probes += float(line.split()[-1])
        finally:
            stop(proc)
    print(f"/-/healthy after exec     {median_of(healthy)}   (goal ≤ 1 s)")
    print(f"/-/ready after exec       {median_of(ready)}   (goal ≤ 5 s)")
    how = f"scraped {'as Prometheus does' if headers else 'as text, no gzip'}, history {'full' if state else 'empty'}"
    print(f"RSS after {warmup:.0f} s warm-up  {rss:.1f} MiB (USS {uss:.1f}), {probes:.0f} probes done, {how}"
          f"   (goal ≤ 80 MiB)   [{load()}]")
    print(f"  its children (source fetches, workers) at each of {len(children)} scrapes: "
          f"at most {max(children):.1f} MiB RSS, {children[-1]:.1f} at the end")
    return rss


def peers(config: Path, host: str, agent_rss: float) -> None:
    """node_exporter and blackbox_exporter: start to first 200, and RSS after some work."""
    port = free_port(host)
    proc, (started,) = timed_start(["prometheus-node-exporter", f"--web.listen-address={host}:{port}"],
                                   [f"http://{host}:{port}/metrics"])
    try:
        for _ in range(5):
            status(f"http://{host}:{port}/metrics")
        rss, _ = memory(proc.pid)
    finally:
        stop(proc)
    print(f"node_exporter             first 200 of /metrics {started:.2f} s, RSS {rss:.1f} MiB after 5 scrapes"
          f" (agent/peer RSS {agent_rss / rss:.1f}×)   [{load()}]")
    routers = re.findall(r"host: (127\.[0-9.]+)", config.read_text(encoding="utf-8"))[:50]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write(BLACKBOX_CONFIG)
    port = free_port(host)
    try:
        proc, (started,) = timed_start(["prometheus-blackbox-exporter", f"--config.file={f.name}",
                                        f"--web.listen-address={host}:{port}"], [f"http://{host}:{port}/-/healthy"])
        try:
            for router in routers:
                status(f"http://{host}:{port}/probe?module=icmp&target={router}")
            rss, _ = memory(proc.pid)
        finally:
            stop(proc)
    finally:
        os.unlink(f.name)
    print(f"blackbox_exporter         /-/healthy {started:.2f} s, RSS {rss:.1f} MiB after {len(routers)} ICMP probes"
          f" (agent/peer RSS {agent_rss / rss:.1f}×)   [{load()}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="127.93.0.0/16", help="loopback range for the lab and the agent")
    parser.add_argument("--warmup", type=float, default=180.0, help="seconds the last agent runs before its RSS")
    parser.add_argument("--repeat", type=int, default=3, help="agent starts (and import/check-config runs)")
    parser.add_argument("--skip-demo", action="store_true", help="only imports and check-config")
    parser.add_argument("--lab-config", type=Path, help="the configuration a lab already running wrote (no new lab)")
    parser.add_argument("--scrape", choices=("prometheus", "plain"), default="prometheus",
                        help="the warm-up's scrapes: Prometheus's headers (OpenMetrics, gzip) or none (text format)")
    parser.add_argument("--aged", action="store_true",
                        help="the last start restores a state file whose histories are full (the agent after a day)")
    args = parser.parse_args()
    os.environ["EGOV_AGENT_PROBE_ALLOW"] = "127.0.0.0/8,::1/128"
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    import_time(args.repeat)
    rss_per_import()
    check_config_time(args.repeat)
    if args.skip_demo:
        return
    host = str(ipaddress.ip_network(args.network).network_address + 1)
    if args.lab_config:
        rss = agent_starts(args.lab_config, host, args.repeat, args.warmup, args.scrape, args.aged)
        source_child(args.lab_config)
        sql_child(args.lab_config)
        peers(args.lab_config, host, rss)
        return
    with tempfile.TemporaryDirectory(prefix="egov-start-") as tmp:
        lab, config = start_lab(args.network, Path(tmp))
        try:
            print(f"lab ready (pid {lab.pid}, its own process); agent on {host}   [{load()}]")
            rss = agent_starts(config, host, args.repeat, args.warmup, args.scrape, args.aged)
            source_child(config)
            sql_child(config)
            peers(config, host, rss)
        finally:
            stop(lab)


if __name__ == "__main__":
    main()
