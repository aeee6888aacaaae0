"""Load on an HTTP endpoint, shared by tests/test_http_server.py and bench/http_server.py: scrapers that time
each scrape (a fresh connection each, or one kept alive as Prometheus does) and slow-loris clients."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    retries: int = 0  # kept-alive requests sent again on a new connection (the server had closed the old one)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, value: float) -> None:
        with self.lock:
            self.seconds.append(value)

    def fail(self, why: str) -> None:
        with self.lock:
            self.failures.append(why)

    def quantile(self, q: float) -> float:
        if not self.seconds:
            return float("nan")
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> str:
        return (f"{len(self.seconds)} ok, {len(self.failures)} failed, p50 {self.quantile(0.5) * 1000:.1f} ms, "
                f"p99 {self.quantile(0.99) * 1000:.1f} ms, max {max(self.seconds, default=0) * 1000:.1f} ms")


def scrape_once(host: str, port: int, path: str = "/metrics", timeout: float = 10.0) -> None:
    """One GET on a new connection, the whole body read; raises unless 200."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
    finally:
        conn.close()


class KeptAliveScraper:
    """One connection reused for every scrape; a request on a connection the server has closed meanwhile is
    sent again once on a new one, as Go's HTTP client (Prometheus's) does for an idempotent request."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.retries = 0

    def scrape(self, path: str = "/metrics") -> None:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", path)
                response = self.conn.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
                self.retries += 1
                continue
            if response.status != 200:
                raise OSError(f"HTTP {response.status}")
            return

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def scrape_for(host: str, port: int, seconds: float, every: float, kept_alive: bool, into: Latencies,
               stop: threading.Event | None = None) -> None:
    """Scrape every ``every`` seconds for ``seconds`` (or until ``stop``), timing each scrape."""
    scraper = KeptAliveScraper(host, port) if kept_alive else None
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end and not (stop and stop.is_set()):
            started = time.perf_counter()
            try:
                if scraper is not None:
                    scraper.scrape()
                else:
                    scrape_once(host, port)
                into.add(time.perf_counter() - started)
            except OSError as exc:
                into.fail(f"{type(exc).__name__}: {exc}")
            time.sleep(every)
    finally:
        if scraper is not None:
            into.retries = scraper.retries
            scraper.close()


def parallel_scrapes(host: str, port: int, clients: int, per_client: int, timeout: float = 10.0) -> Latencies:
    """``clients`` threads at once, each scraping ``per_client`` times on a new connection each time."""
    out = Latencies()
    start = threading.Barrier(clients)

    def client() -> None:
        start.wait()
        for _ in range(per_client):
            began = time.perf_counter()
            try:
                scrape_once(host, port, timeout=timeout)
                out.add(time.perf_counter() - began)
            except OSError as exc:
                out.fail(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(per_client * timeout + 30)
    return out


SLOW_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: agent\r\n" + b"X-Slow: " + b"a" * 4000


@dataclass
class SlowLoris:
    """``count`` sockets, each sending one more byte of a request that never ends every ``every`` seconds,
    reconnecting whenever the server closes it; all from this one thread, with a bounded run."""

    host: str
    port: int
    count: int = 300
    every: float = 1.0
    source_net: str = "127.43.1"  # sources 127.43.1.1-250: many ports to reconnect from
    lifetimes: list[float] = field(default_factory=list)  # of the connections the server closed
    connects: int = 0
    refused: int = 0  # connects that failed outright
    oldest_open: float = 0.0  # the longest any connection was seen open

    def _connect(self, i: int) -> tuple[socket.socket, float, int] | None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)  # a server whose backlog is full leaves connects hanging: do not wait on them
        try:
            s.bind((f"{self.source_net}.{i % 250 + 1}", 0))
            s.connect((self.host, self.port))
        except OSError:
            s.close()
            self.refused += 1
            return None
        s.setblocking(False)
        self.connects += 1
        return s, time.monotonic(), 0

    @staticmethod
    def _closed(s: socket.socket) -> bool:
        try:
            s.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True  # EOF, or an answer (the 503 at the cap): either way it is over

    def run(self, seconds: float, stop: threading.Event | None = None) -> None:
        sockets: list[tuple[socket.socket, float, int] | None] = [None] * self.count  # connected in the loop
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end and not (stop and stop.is_set()):
                tick = time.monotonic()
                for i, entry in enumerate(sockets):
                    if time.monotonic() >= end:
                        break
                    if entry is None:
                        sockets[i] = self._connect(i)
                        continue
                    s, since, sent = entry
                    now = time.monotonic()
                    if self._closed(s):
                        self.lifetimes.append(now - since)
                        s.close()
                        sockets[i] = self._connect(i)
                        continue
                    self.oldest_open = max(self.oldest_open, now - since)
                    try:
                        s.send(SLOW_REQUEST[sent % len(SLOW_REQUEST):][:1])
                        sockets[i] = (s, since, sent + 1)
                    except OSError:
                        self.lifetimes.append(now - since)
                        s.close()
                        sockets[i] = self._connect(i)
                time.sleep(max(0.0, self.every - (time.monotonic() - tick)))
        finally:
            for entry in sockets:
                if entry is not None:
                    entry[0].close()


def slow_loris_process(host: str, port: int, count: int, seconds: float) -> subprocess.Popen:
    """A :class:`SlowLoris` run in a child process, so that its 300 sockets do not take the GIL from the
    scrapers being timed, and at a lower CPU priority, as if it ran on another machine rather than on
    the two cores it shares with the agent; ``slow_loris_result`` reads what it saw."""
    return subprocess.Popen([sys.executable, __file__, host, str(port), str(count), str(seconds)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(10))


def slow_loris_result(proc: subprocess.Popen, timeout: float) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    return json.loads(out)


if __name__ == "__main__":
    loris = SlowLoris(sys.argv[1], int(sys.argv[2]), count=int(sys.argv[3]))
    loris.run(float(sys.argv[4]))
    print(json.dumps({"connects": loris.connects, "closed": len(loris.lifetimes), "refused": loris.refused,
                      "oldest_open": loris.oldest_open, "longest_life": max(loris.lifetimes, default=0.0)}))
