"""Helpers for the source tests: a small province, a real HTTP JSON API, and the Agent's exposition."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.app.runtime import Agent
from agent.config.loading import LoadedConfig, load_config
from agent.engine.units import UnitIndex
from agent.sources.runner import SourceRunner
from support.exposition import parse_samples
from support.paths import REPO
from support.province import Province, write_config


def units(**province_fields: str) -> Province:
    """Province p: districts d1 (communes c1, c2) and d2 (commune c3); department s1; quarters from the 10th."""
    p = Province(code="t", levels=["province", "district", "commune", "department"], province_fields=province_fields)
    p.unit("s1", "Sở Một", level="department")
    p.unit("d1", "Huyện Một", level="district").unit("c1", "Xã Một", parent="d1").unit("c2", "Xã Hai", parent="d1")
    p.unit("d2", "Huyện Hai", level="district").unit("c3", "Xã Ba", parent="d2")
    return p.section("reporting", {"quarter_start_month": 12, "quarter_start_day": 10})


# The units as YAML text, for the tests that add their sources and KPIs as text after it.
UNITS = units().yaml()


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


def province(tmp: Path, sources: str, kpis: str, name: str = "province.yml",
             reporting: dict[str, Any] | None = None) -> Path:
    """``units()`` with the sources and KPIs given as YAML text; ``reporting`` replaces its reporting section."""
    head = units() if reporting is None else units().section("reporting", reporting)
    return write_config(tmp / name, head.yaml() + "sources:\n" + sources + "kpis:\n" + kpis)


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


def fetch_elsewhere(path: Path, source: str, series: str, packages: set[str]) -> tuple[bool, float, list[str]]:
    """One fetch of ``source`` in a fresh interpreter, as the agent makes it: whether it succeeded, the sum of
    ``series``' numerators for the year, and which of ``packages`` that interpreter then held (a fetch
    made in its child process leaves none)."""
    code = ("import asyncio, sys; from agent.config.loading import load_config; "
            "from agent.engine.units import UnitIndex; from agent.sources.runner import SourceRunner; "
            f"loaded = load_config({str(path)!r}); "
            "runner = SourceRunner.from_config(loaded, set(UnitIndex(loaded.config).units)); "
            f"up = asyncio.run(runner.fetch({source!r})); _, snap = runner.snapshot({source!r}); "
            f"print(json.dumps([up, sum(r.numerator for r in snap.data[{series!r}]['year'][1]), "
            f"sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(packages)!r}))]))")
    done = subprocess.run([sys.executable, "-c", "import json; " + code], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    up, total, held = json.loads(done.stdout.strip().splitlines()[-1])
    return up, total, held


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


WATCHER = r"""
import os, sys, time
pid, path, how, new, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
size = os.stat(path).st_size
print("ready", flush=True)
deadline = time.monotonic() + timeout
fd = None
while time.monotonic() < deadline:
    try:
        if fd is None:
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{name}") == path:
                        fd = name
                        break
                except OSError:
                    pass
        if fd is not None:
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                position = int(next(line.split()[1] for line in info if line.startswith("pos:")))
            if 0 < position < size // 2:
                if how == "in place":
                    with open(path, "r+b") as f, open(new, "rb") as source:
                        f.truncate(0)
                        f.write(source.read())
                    os.unlink(new)
                else:
                    os.replace(new, path)
                print("done", position, flush=True)
                sys.exit(0)
    except (OSError, StopIteration):
        fd = None  # closed, or another file took the number
    time.sleep(0.0002)
print("missed", flush=True)
"""


class MidRead:
    """Replaces a file once the code under test has read part of it, from another process that watches
    this one's descriptors (/proc/PID/fdinfo), so the change lands in the middle of a real read and the
    watcher never waits for this process's GIL. ``how``: "in place" (truncate and rewrite the same
    inode) or "renamed over" (an atomic rename of a new file onto the path)."""

    def __init__(self, path: Path, new_text: str, how: str, timeout: float = 30.0) -> None:
        self.path, self.how, self.timeout = path, how, timeout
        self.new = path.with_name(path.name + ".new")
        self.new.write_text(new_text, encoding="utf-8")
        self.report = ""

    def __enter__(self) -> MidRead:
        import subprocess
        import sys
        self._process = subprocess.Popen(
            [sys.executable, "-S", "-c", WATCHER, str(os.getpid()), str(self.path), self.how, str(self.new),
             str(self.timeout)], stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        assert self._process.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self._process.communicate(timeout=self.timeout + 5)
        self.report = out.strip()

    @property
    def done(self) -> bool:
        return self.report.startswith("done")
