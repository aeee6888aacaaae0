#!/usr/bin/env python3
"""Scrape latency and memory of the agent with about 20,000 series exposed.

Starts the real agent on a generated configuration (TCP targets on loopback, each giving about
six series, probed every ``--interval`` seconds so the store changes during the run), scrapes it
``--scrapes`` times, and prints median and p99 latency and the agent's RSS. For comparison it runs,
in the same session, a plain prometheus_client exporter serving the same number of gauges: the
floor that the library itself sets on this machine.

Goals (issue 2): median < 100 ms, p99 < 250 ms, RSS < 120 MB.
Usage: .venv/bin/python bench/scrape.py [--series 20000] [--scrapes 200]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import psutil
from benchutil import wait_ready

REPO = Path(__file__).resolve().parent.parent
SERIES_PER_TARGET = 6  # up, duration, last probe, probes, successes, connect seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    return time.perf_counter() - started, body.count(b"\n") - body.count(b"\n#")




def probes_done(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith('egov_collector_probes_total{collector="tcp"}'):
                return int(float(line.split()[-1]))
    return 0


def measure(url: str, scrapes: int, pace: float) -> tuple[list[float], int]:
    latencies, series = [], 0
    for _ in range(scrapes):
        latency, series = scrape(url)
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
n, port = int(sys.argv[1]), int(sys.argv[2])
g = Gauge("bench_value", "A value.", ["target", "unit", "district"])
for i in range(n):
    g.labels(f"t{i}", f"c{i}", f"d{i % 10}").set(i)
start_http_server(port, addr="127.0.0.1")
while True:
    time.sleep(3600)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--interval", type=int, default=5, help="probe interval of each target (s)")
    parser.add_argument("--pace", type=float, default=0.05, help="pause between scrapes (s)")
    args = parser.parse_args()

    os.environ["EGOV_AGENT_PROBE_ALLOW"] = "127.0.0.0/8,::1/128"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    threading.Thread(target=accept_forever, args=(listener,), daemon=True).start()
    targets = args.series // SERIES_PER_TARGET
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yml"
        config.write_text(agent_config(targets, listener.getsockname()[1], args.interval), encoding="utf-8")
        port = free_port()
        agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config), "--listen",
                                  f"127.0.0.1:{port}", "--log-level", "warning"], cwd=REPO)
        peer_port = free_port()
        peer = subprocess.Popen([sys.executable, "-c", PEER, str(args.series), str(peer_port)])
        try:
            wait_ready(f"http://127.0.0.1:{port}/-/ready", agent, 120)
            wait_ready(f"http://127.0.0.1:{peer_port}/metrics", peer, 120)
            url = f"http://127.0.0.1:{port}/metrics"
            scrape(url)
            latencies, series = measure(url, args.scrapes, args.pace)
            rss = psutil.Process(agent.pid).memory_info().rss
            probes = probes_done(url)
            cpu = psutil.Process(agent.pid).cpu_times()
            peer_latencies, peer_series = measure(f"http://127.0.0.1:{peer_port}/metrics", args.scrapes, args.pace)
            peer_rss = psutil.Process(peer.pid).memory_info().rss
        finally:
            for proc in (agent, peer):
                proc.terminate()
                proc.wait(10)
            listener.close()
    print(f"machine: {os.cpu_count()} cores; {args.scrapes} scrapes each, {args.pace * 1000:.0f} ms apart")
    print(f"egov-agent          {series:6d} series  {targets} targets probed every {args.interval}s")
    print(f"  scrape latency    {summary(latencies)}")
    print(f"  RSS               {rss / 2**20:6.1f} MiB   CPU user+sys {cpu.user + cpu.system:.1f} s over the run,"
          f" {probes} probes done")
    print(f"prometheus_client   {peer_series:6d} series  (plain Gauge, start_http_server; the library's floor)")
    print(f"  scrape latency    {summary(peer_latencies)}")
    print(f"  RSS               {peer_rss / 2**20:6.1f} MiB")
    print("goals: median < 100 ms, p99 < 250 ms, RSS < 120 MiB")


if __name__ == "__main__":
    main()
