"""Shared parts of the fault tests (tests/test_faults_*.py): the real agent driven round by round, and
scripted peers whose every answer the test chooses."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.engine.scheduler import Scheduler
from support.exposition import parse_samples
from support.icmp_netns import RouterNamespace
from support.province import Province


def province() -> Province:
    """Province ``faults``: communes c1 and c2 under the root; each test adds its collectors and targets."""
    return Province(code="faults").unit("c1", "Xã Một").unit("c2", "Xã Hai")


class H5Namespace(RouterNamespace):
    """The shared simulated router (tests/support/icmp_netns.py), its namespace and veth named ``egovh5-*``/``egh5*``
    so these tests' leftovers, if any, are told from other suites' at a glance."""

    def __init__(self) -> None:
        super().__init__()
        tag = secrets.token_hex(3)
        self.name, self.host_if, self.ns_if = f"egovh5-{tag}", f"egh5{tag}h", f"egh5{tag}n"


class InProcessAgent:
    """The real agent (its Agent, Scheduler and exposition) on one event loop, one probe round at a time,
    so a collector keeps its per-target state (ICMP rule history, MCU counters) between the test's faults."""

    def __init__(self, path: Path) -> None:
        self.runner = asyncio.Runner()
        loaded = load_config(path)
        self.agent = Agent(loaded)
        self.scheduler = Scheduler(loaded, self.agent.store, self.agent.collectors, self.agent.targets)

    def probe(self) -> dict:
        self.runner.run(self.scheduler.run_once())
        return self.samples()

    def samples(self) -> dict:
        body, _ = self.agent.exposition.render(None)
        return parse_samples(body.decode())

    def close(self) -> None:
        self.runner.run(self.agent.close())
        self.runner.close()


class ScriptedHttp:
    """A real HTTP server whose next answer the test sets: ``(status, body bytes, content type)``."""

    def __init__(self, host: str) -> None:
        self.answer: Callable[[], tuple[int, bytes, str]] = lambda: (200, b"{}", "application/json")
        self.requests = 0
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted.requests += 1
                status, body, content_type = scripted.answer()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = type("Server", (ThreadingHTTPServer,), {
            "daemon_threads": True, "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        self.httpd = server((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def serve(self, body: bytes, status: int = 200, content_type: str = "application/json") -> None:
        self.answer = lambda: (status, body, content_type)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
