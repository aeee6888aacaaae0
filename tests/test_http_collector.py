"""The http collector against real servers: it never blocks the event loop, gives its thread back when
cancelled, caps a declared 1 GiB body before reading it, and tells a DNS failure from the rest."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from collectors.http.lab import HttpSimulator
from collectors.http.probe import HttpCollector, HttpParams, HttpSettings
from collectors.lab_addresses import AddressPool
from collectors.runner import run_probe


async def _portals(sim: HttpSimulator, **states: str) -> dict[str, HttpParams]:
    out = {}
    for name, state in states.items():
        params = await sim.add(name, {"url": f"https://{name}.bacgiang.gov.vn/"}, True)
        if state != "up":
            await sim.set_state(name, state)
        out[name] = HttpParams.model_validate(params)
    return out


def test_slow_probes_never_block_the_event_loop():
    async def main() -> tuple[float, list]:
        sim = HttpSimulator(AddressPool())
        collector = HttpCollector(HttpSettings(threads=4))
        try:
            portals = await _portals(sim, **{f"slow{i}": "slow" for i in range(4)})
            gaps: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.02)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            tick = asyncio.create_task(ticker())
            results = await asyncio.gather(*(run_probe(collector, n, p, 1.0) for n, p in portals.items()))
            done.set()
            await tick
            return max(gaps), results
        finally:
            await collector.close()
            await sim.close()

    worst_gap, results = asyncio.run(main())
    assert [r.reason for r in results] == ["timeout"] * 4
    assert worst_gap < 0.25  # the loop kept ticking every 20 ms while four transfers waited


def test_a_cancelled_probe_gives_its_thread_back():
    async def main() -> tuple[float, str]:
        sim = HttpSimulator(AddressPool())
        collector = HttpCollector(HttpSettings(threads=1))  # one thread: the next probe needs it back
        try:
            portals = await _portals(sim, slow="slow", good="up")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(run_probe(collector, "slow", portals["slow"], 20.0), 0.3)
            started = time.perf_counter()
            result = await run_probe(collector, "good", portals["good"], 5.0)
            return time.perf_counter() - started, result.reason or "up"
        finally:
            await collector.close()
            await sim.close()

    waited, outcome = asyncio.run(main())
    assert outcome == "up"
    assert waited < 2.5  # the aborted transfer freed the thread, long before its 20 s timeout


class _DeclaredHuge(BaseHTTPRequestHandler):
    """Announces a 1 GiB body, then writes at most what the client reads."""

    protocol_version = "HTTP/1.1"
    written = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(1 << 30))
        self.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(16384):
                self.wfile.write(chunk)
                type(self).written += len(chunk)
        except OSError:
            pass


def test_a_declared_1gib_body_is_refused_at_the_cap():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DeclaredHuge)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        params = HttpParams(url=f"http://127.0.0.1:{server.server_address[1]}/", max_body_bytes=65536)
        collector = HttpCollector(HttpSettings())
        started = time.perf_counter()
        result = asyncio.run(run_probe(collector, "huge", params, 5.0))
        elapsed = time.perf_counter() - started
        asyncio.run(collector.close())
    finally:
        server.shutdown()
        server.server_close()
    assert (result.up, result.reason) == (False, "body_too_large")
    assert next(s.value for s in result.samples if s.family == "http_body_bytes") <= 65536
    assert elapsed < 2.0
    assert _DeclaredHuge.written < 64 << 20


def test_an_unresolvable_host_is_a_dns_error():
    """In a network namespace of its own with no interface up, nothing leaves the machine."""
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --net needs root")
    script = textwrap.dedent("""
        import asyncio
        from collectors.http.probe import HttpCollector, HttpParams, HttpSettings
        from collectors.runner import run_probe
        collector = HttpCollector(HttpSettings())
        result = asyncio.run(run_probe(collector, "t", HttpParams(url="https://portal.bacgiang.invalid/"), 5.0))
        print(result.up, result.reason)
    """)
    proc = subprocess.run(["unshare", "--net", sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "dns_error"]


def test_lab_portal_goes_down_and_comes_back_on_the_same_port():
    async def main() -> list[str]:
        sim = HttpSimulator(AddressPool())
        collector = HttpCollector(HttpSettings())
        try:
            params = HttpParams.model_validate(await sim.add("p", {"url": "http://cong.bacgiang.gov.vn/"}, True))
            seen = []
            for state in ("down", "up", "error", "up"):
                await sim.set_state("p", state)
                result = await run_probe(collector, "p", params, 3.0)
                seen.append(result.reason or "up")
            with pytest.raises(ValueError, match="plain HTTP"):
                await sim.set_state("p", "cert_expired")
            with pytest.raises(ValueError, match="not 'melted'"):
                await sim.set_state("p", "melted")
            assert sim.states() == {"p": "up"}
            return seen
        finally:
            await collector.close()
            await sim.close()

    assert asyncio.run(main()) == ["connect_error", "up", "status_mismatch", "up"]
