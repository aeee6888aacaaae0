#!/usr/bin/env python3
"""Scrape latency and memory of the agent with about 20,000 series exposed.

Starts the real agent on a generated configuration (TCP targets on loopback, each giving about
six series, probed every ``--interval`` seconds so the store changes during the run), scrapes it
``--scrapes`` times, and prints median and p99 latency and the agent's RSS. For comparison it runs,
in the same session, a plain prometheus_client exporter serving the same number of gauges: the
floor that the library itself sets on this machine.

With ``--prometheus`` a real Prometheus (Debian's ``prometheus``) scrapes the agent and the peers every
``--scrape-interval`` seconds (5 s by default: Prometheus's default is 15 s, and a shorter one loads the
agent more and gives more scrapes to count) for at least ``--seconds``, as in production (OpenMetrics,
gzip); the bench's own scrapes are then timed under that load, and Prometheus's
``scrape_duration_seconds`` gives its p50 and p99. That duration includes Prometheus's own parsing and
appending of the body (scrape.go reports it after the append), so a Go exporter serves a body of the
same size in the same run: node_exporter's textfile collector reading the agent's own exposition
(Debian's ``prometheus-node-exporter``), whose duration is the floor Prometheus sets on this machine.

Goals (issue 2): median < 100 ms, p99 < 250 ms, RSS < 120 MB; issue 15: p99 ≤ 50 ms under a scraping Prometheus.
Usage: .venv/bin/python bench/scrape.py [--series 20000] [--scrapes 200] [--prometheus] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
from benchutil import wait_ready

REPO = Path(__file__).resolve().parent.parent
# Per TCP target: info, up, duration, last probe, probes, successes, connect seconds; its commune's
# unit_info; and the coverage KPI's member up, up seconds and observed seconds (36,716 series at 3,333).
SERIES_PER_TARGET = 11


HOST = "127.0.0.1"  # --host: every listener of the run (agent, peer, probed systems, Prometheus)
PROMETHEUS_CONFIG = """\
global: {{scrape_interval: {interval}s, scrape_timeout: {timeout}s}}
scrape_configs:
  - job_name: agent
    static_configs: [{{targets: ["{agent}"]}}]
  - job_name: peer
    static_configs: [{{targets: ["{peer}"]}}]
  - job_name: node_exporter
    static_configs: [{{targets: ["{go_peer}"]}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def start_prometheus(tmp: Path, agent: str, peer: str, go_peer: str, interval: int) -> tuple[subprocess.Popen, str]:
    """A real Prometheus scraping the three every ``interval`` seconds (its own TSDB in ``tmp``)."""
    config = tmp / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(agent=agent, peer=peer, go_peer=go_peer, interval=interval,
                                               timeout=min(interval, 10)), encoding="utf-8")
    address = f"{HOST}:{free_port()}"
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address={address}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://{address}/-/ready", proc, 60)
    return proc, f"http://{address}"


def prometheus_scrapes(url: str, job: str, seconds: int) -> str:
    """p50 and p99 of the scrape durations Prometheus itself recorded for ``job`` over the last ``seconds``."""
    values = []
    for query in (f'quantile_over_time(0.5, scrape_duration_seconds{{job="{job}"}}[{seconds}s])',
                  f'quantile_over_time(0.99, scrape_duration_seconds{{job="{job}"}}[{seconds}s])',
                  f'count_over_time(scrape_duration_seconds{{job="{job}"}}[{seconds}s])',
                  f'sum_over_time(up{{job="{job}"}}[{seconds}s])'):
        with urllib.request.urlopen(f"{url}/api/v1/query?query={urllib.parse.quote(query)}", timeout=10) as r:
            result = json.loads(r.read())["data"]["result"]
        values.append(float(result[0]["value"][1]) if result else float("nan"))
    p50, p99, count, up = values
    return f"median {p50 * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms   ({count:.0f} scrapes, {up:.0f} up)"


def start_node_exporter(tmp: Path, body: bytes) -> tuple[subprocess.Popen, str]:
    """node_exporter serving ``body`` (the agent's text exposition) through its textfile collector only."""
    directory = tmp / "textfile"
    directory.mkdir()
    (directory / "agent.prom").write_bytes(body)
    address = f"{HOST}:{free_port()}"
    proc = subprocess.Popen(["prometheus-node-exporter", "--collector.disable-defaults", "--collector.textfile",
                             f"--collector.textfile.directory={directory}", f"--web.listen-address={address}",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://{address}/metrics", proc, 30)
    return proc, address


def accept_forever(listener: socket.socket) -> None:
    """The probed 'systems': accept and close, as a live service does for a TCP check."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.close()


def scrape(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    return time.perf_counter() - started, series_in(body)


def series_in(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))




def probes_done(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith('egov_collector_probes_total{collector="tcp"}'):
                return int(float(line.split()[-1]))
    return 0


def measure(url: str, scrapes: int, pace: float) -> tuple[list[float], int]:
    """Latencies of ``scrapes`` scrapes; one that fails or times out (10 s) counts as the time it took."""
    latencies, series = [], 0
    for _ in range(scrapes):
        started = time.perf_counter()
        try:
            latency, series = scrape(url)
        except OSError:
            latency = time.perf_counter() - started
        latencies.append(latency)
        time.sleep(pace)
    return latencies, series


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"median {statistics.median(ordered) * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms   "
            f"max {ordered[-1] * 1000:6.1f} ms")


def agent_config(targets: int, port: int, interval: int) -> str:
    lines = [textwrap.dedent("""\
        province: {code: bench, name_vi: Tỉnh Đo, name_en: Bench Province}
        levels: [province, commune]
        units:
          - id: p
            name_vi: Tỉnh Đo
            level: province
            children:
        """)]
    lines += [f"      - {{id: c{i}, name_vi: Xã {i}, level: commune}}\n" for i in range(targets)]
    lines.append(f"collectors:\n  tcp: {{interval: {interval}s, timeout: 2s, concurrency: 64}}\ntargets:\n")
    lines += [f"  - {{id: t{i}, unit: c{i}, collector: tcp, params: {{host: 127.0.0.1, port: {port}}}}}\n"
              for i in range(targets)]
    lines.append(textwrap.dedent("""\
        kpis:
          - id: coverage
            class: direct
            title_vi: Độ phủ
            title_en: Coverage
            measure: {kind: coverage, select: {collector: tcp, level: commune}}
            targets: [{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 99%, origin: ops}]
        """))
    return "".join(lines)


PEER = """
import sys, time
from prometheus_client import Gauge, start_http_server
n, port, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
g = Gauge("bench_value", "A value.", ["target", "unit", "district"])
for i in range(n):
    g.labels(f"t{i}", f"c{i}", f"d{i % 10}").set(i)
start_http_server(port, addr=host)
while True:
    time.sleep(3600)
"""


def main() -> None:
    global HOST
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--interval", type=int, default=5, help="probe interval of each target (s)")
    parser.add_argument("--pace", type=float, default=0.05, help="pause between scrapes (s)")
    parser.add_argument("--prometheus", action="store_true", help="a real Prometheus scrapes the agent and peers")
    parser.add_argument("--scrape-interval", type=int, default=5, help="Prometheus's scrape interval (s)")
    parser.add_argument("--seconds", type=int, default=120, help="with --prometheus: the least measured time (s)")
    parser.add_argument("--host", default=HOST, help="loopback address for every listener of the run")
    args = parser.parse_args()
    HOST = args.host
    window = 0

    os.environ["EGOV_AGENT_PROBE_ALLOW"] = "127.0.0.0/8,::1/128"
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(4096)
    threading.Thread(target=accept_forever, args=(listener,), daemon=True).start()
    targets = args.series // SERIES_PER_TARGET
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yml"
        config.write_text(agent_config(targets, listener.getsockname()[1], args.interval).replace(
            "host: 127.0.0.1", f"host: {HOST}"), encoding="utf-8")
        port = free_port()
        agent = subprocess.Popen([sys.executable, "-m", "agent.app.cli", "run", "--config", str(config), "--listen",
                                  f"{HOST}:{port}", "--log-level", "warning"], cwd=REPO)
        peer_port = free_port()
        peer = subprocess.Popen([sys.executable, "-c", PEER, str(args.series), str(peer_port), HOST])
        procs = [agent, peer]
        try:
            wait_ready(f"http://{HOST}:{port}/-/ready", agent, 120)
            wait_ready(f"http://{HOST}:{peer_port}/metrics", peer, 120)
            if args.prometheus:
                with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
                    node_exporter, go_peer = start_node_exporter(Path(tmp), response.read())
                procs.append(node_exporter)
                node_cpu = psutil.Process(node_exporter.pid).cpu_times()
                prometheus, prometheus_url = start_prometheus(Path(tmp), f"{HOST}:{port}", f"{HOST}:{peer_port}",
                                                              go_peer, args.scrape_interval)
                procs.append(prometheus)
                time.sleep(args.scrape_interval + 2)  # its first scrapes, then the measurement under its load
            measured_from = time.monotonic()
            url = f"http://{HOST}:{port}/metrics"
            scrape(url)
            cpu_before, cpu_from = psutil.Process(agent.pid).cpu_times(), time.monotonic()
            latencies, series = measure(url, args.scrapes, args.pace)
            rss = psutil.Process(agent.pid).memory_info().rss
            probes = probes_done(url)
            cpu = psutil.Process(agent.pid).cpu_times()
            cpu_rate = (cpu.user + cpu.system - cpu_before.user - cpu_before.system) / (time.monotonic() - cpu_from)
            agent_load = load()
            peer_latencies, peer_series = measure(f"http://{HOST}:{peer_port}/metrics", args.scrapes, args.pace)
            peer_rss = psutil.Process(peer.pid).memory_info().rss
            peer_load = load()
            if args.prometheus:
                time.sleep(max(0.0, args.seconds - (time.monotonic() - measured_from)))
                window = max(10, round(time.monotonic() - measured_from))
                used = psutil.Process(node_exporter.pid).cpu_times()
                node_cpu_used = used.user + used.system - node_cpu.user - node_cpu.system
                by_prometheus = tuple(prometheus_scrapes(prometheus_url, job, window)
                                      for job in ("agent", "peer", "node_exporter"))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            listener.close()
    print(f"machine: {os.cpu_count()} cores; {args.scrapes} scrapes each, {args.pace * 1000:.0f} ms apart"
          + (f"; a real Prometheus scrapes all every {args.scrape_interval} s for {window} s"
             if args.prometheus else ""))
    print(f"egov-agent          {series:6d} series  {targets} targets probed every {args.interval}s")
    print(f"  scrape latency    {summary(latencies)}   [{agent_load}]")
    print(f"  RSS               {rss / 2**20:6.1f} MiB   CPU user+sys {cpu.user + cpu.system:.1f} s over the run,"
          f" {cpu_rate * 100:.0f} % of a core while scraped, {probes} probes done")
    print(f"prometheus_client   {peer_series:6d} series  (plain Gauge, start_http_server; the library's floor)")
    print(f"  scrape latency    {summary(peer_latencies)}   [{peer_load}]")
    print(f"  RSS               {peer_rss / 2**20:6.1f} MiB")
    if args.prometheus:
        print(f"Prometheus's scrape_duration_seconds over the run (OpenMetrics, gzip)   [{load()}]")
        print(f"  egov-agent        {by_prometheus[0]}")
        print(f"  prometheus_client {by_prometheus[1]}")
        print(f"  node_exporter     {by_prometheus[2]}   (Go, textfile: the agent's own body; its own CPU "
              f"{node_cpu_used:.1f} s over the run, from its start)")
    print("goals: median < 100 ms, p99 < 250 ms (≤ 50 ms under a scraping Prometheus), RSS < 120 MiB")


if __name__ == "__main__":
    main()
