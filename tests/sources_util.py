"""Helpers for the source tests: a small province, a real HTTP JSON API, and the Agent's exposition."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conftest import parse_samples, write_config

from agent.config import LoadedConfig, load_config
from agent.service import Agent
from agent.sources.runner import SourceRunner
from agent.units import UnitIndex

# Province p: districts d1 (commune c1, c2) and d2 (commune c3); department s1.
UNITS = """\
province: {code: t, name_vi: Tỉnh Thử, name_en: Test Province}
levels: [province, district, commune, department]
units:
  - id: p
    name_vi: Tỉnh Thử
    level: province
    children:
      - {id: s1, name_vi: Sở Một, level: department}
      - id: d1
        name_vi: Huyện Một
        level: district
        children:
          - {id: c1, name_vi: Xã Một, level: commune}
          - {id: c2, name_vi: Xã Hai, level: commune}
      - id: d2
        name_vi: Huyện Hai
        level: district
        children:
          - {id: c3, name_vi: Xã Ba, level: commune}
reporting: {quarter_start_month: 12, quarter_start_day: 10}
"""


def kpi(kpi_id: str, measure: str, targets: str = "") -> str:
    """One KPI entry (ops target by default, so no citation is needed)."""
    target = targets or '[{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 90%, origin: ops}]'
    return f"""\
  - id: {kpi_id}
    class: from_system
    title_vi: {kpi_id}
    title_en: {kpi_id}
    measure: {measure}
    targets: {target}
"""


def province(tmp: Path, sources: str, kpis: str, name: str = "province.yml") -> Path:
    return write_config(tmp / name, UNITS + "sources:\n" + sources + "kpis:\n" + kpis)


def fetch(loaded: LoadedConfig, times: int = 1) -> SourceRunner:
    """A runner over the configuration's sources, fetched ``times`` in a fresh event loop."""
    runner = SourceRunner.from_config(loaded, set(UnitIndex(loaded.config).units))
    assert runner is not None

    async def main() -> None:
        try:
            for _ in range(times):
                await runner.fetch_all()
        finally:
            await runner.close()
    asyncio.run(main())
    return runner


def exposition(path: Path) -> dict:
    """The real Agent collects once (probes and sources); its /metrics text, parsed."""
    agent = Agent(load_config(path))
    asyncio.run(agent.collect_once())
    body, _ = agent.exposition.render(None)
    return parse_samples(body.decode())


class Api:
    """A real HTTP JSON API on loopback that demands a bearer token (or basic credentials)."""

    def __init__(self, token: str = "", basic: tuple[str, str] | None = None) -> None:
        self.token = token
        self.basic = basic
        self.bodies: dict[str, Callable[[dict[str, str]], Any]] = {}
        self.requests: list[tuple[str, dict[str, str], str]] = []  # (path, query, Authorization)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                auth = self.headers.get("Authorization", "")
                api.requests.append((parts.path, query, auth))
                if not api.authorised(auth):
                    self._send(401, b'{"error": "unauthorized"}')
                    return
                make = api.bodies.get(parts.path)
                if make is None:
                    self._send(404, b"{}")
                    return
                body = make(query)
                self._send(200, body if isinstance(body, bytes) else json.dumps(body).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client that gave up (timeout test) is not the server's error

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def authorised(self, header: str) -> bool:
        if self.basic is not None:
            import base64
            return header == "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
        return header == f"Bearer {self.token}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def open_position(path: Path) -> int | None:
    """How far this process has read ``path`` through an open descriptor (None: it is not open)."""
    fd_dir = Path("/proc/self/fd")
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(fd_dir / fd) == str(path):
                info = Path(f"/proc/self/fdinfo/{fd}").read_text()
                return int(next(line.split()[1] for line in info.splitlines() if line.startswith("pos:")))
        except (OSError, StopIteration):
            continue
    return None


class MidRead:
    """Does ``change`` to a file once the code under test has read part of it (seen in /proc/self/fdinfo),
    from a thread, so the change lands in the middle of a real read. ``done`` says whether it did."""

    def __init__(self, path: Path, change: Callable[[], None], timeout: float = 20.0) -> None:
        self.path, self.change, self.timeout = path, change, timeout
        self.done = threading.Event()
        self.size = path.stat().st_size
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            position = open_position(self.path)
            if position is not None and 0 < position < self.size // 2:
                self.change()
                self.done.set()
                return
            time.sleep(0.0005)

    def __enter__(self) -> MidRead:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(self.timeout + 1)
