#!/usr/bin/env python3
"""The endpoint under load: 200 parallel scrapers, then 300 slow-loris clients beside two scrapers.

Runs the real agent (a small province: 50 TCP targets on loopback) and, as the peer, Debian's
prometheus-node-exporter, each on its own loopback address, and puts the same load on both in the
same run:

1. ``--clients`` threads at once (200), each scraping ``/metrics`` ``--per-client`` times on a new
   connection each time: p50, p99, failures.
2. ``--slow`` slow-loris sockets (300), each sending one byte of a request that never ends per second
   and reconnecting whenever closed, for ``--seconds``, while a kept-alive scraper (as Prometheus) and
   a new-connection scraper (as curl) scrape every 50 ms: their p50, p99, failures, and the server's
   thread count and open connections at their highest.

The issue's figures before this change: p99 3.7-8.3 s and 1-2 % failures with 200 clients; 300
slow clients held 187 connections and 203 threads. Goal: scrapes p99 < 100 ms under the attack.
Usage: .venv/bin/python bench/http_server.py [--clients 200] [--slow 300] [--seconds 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil
from benchutil import wait_ready

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from support.http_load import (  # noqa: E402
    Latencies,
    parallel_scrapes,
    scrape_for,
    slow_loris_process,
    slow_loris_result,
)

AGENT_HOST, NODE_HOST, PEER_HOST = "127.43.0.10", "127.43.0.11", "127.43.0.12"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def accept_forever(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.close()




def province(port: int, targets: int = 50) -> str:
    head = textwrap.dedent("""\
        province: {code: bench, name_vi: Tỉnh Đo, name_en: Bench Province}
        levels: [province, commune]
        units:
          - id: p
            name_vi: Tỉnh Đo
            level: province
            children:
        """)
    units = "".join(f"      - {{id: c{i}, name_vi: Xã {i}, level: commune}}\n" for i in range(targets))
    body = "collectors:\n  tcp: {interval: 5s, timeout: 2s}\ntargets:\n" + "".join(
        f"  - {{id: t{i}, unit: c{i}, collector: tcp, params: {{host: {PEER_HOST}, port: {port}}}}}\n"
        for i in range(targets))
    return head + units + body


def watch(pid: int, stop: threading.Event, port: int, peak: dict[str, int]) -> None:
    """The server's threads and established connections on its port, at their highest."""
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak["threads"] = max(peak.get("threads", 0), proc.num_threads())
            conns = [c for c in proc.net_connections("tcp")
                     if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED]
            peak["connections"] = max(peak.get("connections", 0), len(conns))
        except psutil.Error:
            return
        time.sleep(0.2)


def attack(host: str, port: int, pid: int, slow: int, seconds: float) -> str:
    kept, fresh = Latencies(), Latencies()
    stop = threading.Event()
    peak: dict[str, int] = {}
    watcher = threading.Thread(target=watch, args=(pid, stop, port, peak), daemon=True)
    watcher.start()
    cpu = psutil.Process(pid).cpu_times()
    attacker = slow_loris_process(host, port, slow, seconds + 2)  # its own process: no GIL taken from the scrapers
    time.sleep(1.5)  # the attack in full swing before the scrapes start
    scrapers = [threading.Thread(target=scrape_for, args=(host, port, seconds, 0.05, kept_alive, into), daemon=True)
                for kept_alive, into in ((True, kept), (False, fresh))]
    for thread in scrapers:
        thread.start()
    for thread in scrapers:
        thread.join(seconds + 30)
    loris = slow_loris_result(attacker, seconds + 60)
    stop.set()
    watcher.join(5)
    used = sum(psutil.Process(pid).cpu_times()[:2]) - sum(cpu[:2])
    return (f"    kept-alive scraper:     {kept.summary()}\n"
            f"    new-connection scraper: {fresh.summary()}\n"
            f"    slow clients: {loris['connects']} connections made, {loris['closed']} closed by the server, "
            f"longest seen open {loris['oldest_open']:.1f} s; server at most {peak.get('threads', 0)} threads, "
            f"{peak.get('connections', 0)} established connections on the port, {used:.2f} CPU-s used "
            f"({used / (seconds + 2) * 100:.0f} % of a CPU)")


def run(name: str, host: str, port: int, proc: subprocess.Popen, args: argparse.Namespace) -> None:
    threads = psutil.Process(proc.pid).num_threads()
    burst = parallel_scrapes(host, port, args.clients, args.per_client)
    print(f"{name} ({threads} threads at rest)")
    print(f"  {args.clients} parallel clients x {args.per_client}: {burst.summary()}")
    if burst.failures:
        print(f"    first failures: {sorted(set(burst.failures))[:3]}")
    print(f"  {args.slow} slow-loris clients for {args.seconds:g} s:")
    print(attack(host, port, proc.pid, args.slow, args.seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--agent-args", default="", help="extra arguments for egov-agent run")
    args = parser.parse_args()
    node_exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if node_exporter is None:
        raise SystemExit("prometheus-node-exporter not found (Debian package prometheus-node-exporter)")

    peer = socket.socket()
    peer.bind((PEER_HOST, 0))
    peer.listen(128)
    threading.Thread(target=accept_forever, args=(peer,), daemon=True).start()
    agent_port, node_port = free_port(AGENT_HOST), free_port(NODE_HOST)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yml"
        config.write_text(province(peer.getsockname()[1]))
        log = open(Path(tmp) / "agent.log", "wb")  # noqa: SIM115  # closed with the directory
        agent = subprocess.Popen([sys.executable, "-m", "agent.app.cli", "run", "--config", str(config),
                                  "--listen", f"{AGENT_HOST}:{agent_port}", "--log-level", "warning",
                                  *args.agent_args.split()],
                                 cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "EGOV_AGENT_PROBE_ALLOW": "127.0.0.0/8"})
        node_args = ["--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.loadavg",
                     "--log.level=warn"]
        node = subprocess.Popen([node_exporter, f"--web.listen-address={NODE_HOST}:{node_port}", *node_args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        unlimited_port = free_port(NODE_HOST)
        unlimited = subprocess.Popen([node_exporter, f"--web.listen-address={NODE_HOST}:{unlimited_port}",
                                      "--web.max-requests=0", *node_args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"http://{AGENT_HOST}:{agent_port}/-/ready", agent)
            wait_ready(f"http://{NODE_HOST}:{node_port}/metrics", node)
            wait_ready(f"http://{NODE_HOST}:{unlimited_port}/metrics", unlimited)
            print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]} on {os.cpu_count()} CPUs")
            run("egov-agent", AGENT_HOST, agent_port, agent, args)
            run("node_exporter (default --web.max-requests=40)", NODE_HOST, node_port, node, args)
            run("node_exporter --web.max-requests=0 (no cap)", NODE_HOST, unlimited_port, unlimited, args)
            print(f"load after: {Path('/proc/loadavg').read_text().split()[:3]}")
        finally:
            for proc in (agent, node, unlimited):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
            peer.close()


if __name__ == "__main__":
    main()
