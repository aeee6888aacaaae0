"""The agent's HTTP endpoint: ``/metrics``, a landing page, and health/readiness probes.

It runs in its own threads (the standard library's threading server), apart from the probe loop,
so a burst of probes never delays a scrape and a slow scraper never delays a probe.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent import __version__
from exporters.prometheus import Exposition

log = logging.getLogger(__name__)
DEFAULT_PORT = 9747


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``[::1]:PORT``; port 0 picks a free port."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Endpoints:
    """What the handler serves; swapped whole on reload."""

    def __init__(self, exposition: Exposition, title: str, ready: Callable[[], bool]) -> None:
        self.exposition = exposition
        self.title = title
        self.ready = ready


def landing_page(title: str) -> bytes:
    name = html.escape(title)
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>egov-agent — {name}</title></head>
<body>
<h1>egov-agent — {name}</h1>
<p>Tác tử giám sát hạ tầng Chính quyền điện tử, đối chiếu số đo với chỉ tiêu của kế hoạch CNTT.<br>
Monitoring agent for the province's e-government infrastructure, measured against its IT plan's KPIs.</p>
<ul>
<li><a href="/metrics">/metrics</a> — Prometheus metrics (text format or OpenMetrics)</li>
<li><a href="/-/healthy">/-/healthy</a>, <a href="/-/ready">/-/ready</a></li>
</ul>
<p>version {html.escape(__version__)}</p>
</body></html>
""".encode()


class Handler(BaseHTTPRequestHandler):
    server_version = f"egov-agent/{__version__}"
    endpoints: Endpoints  # set on the server subclass

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s " + format, self.client_address[0], *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        endpoints: Endpoints = self.server.endpoints  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = endpoints.exposition.render(self.headers.get("Accept"))
            self._send(200, body, content_type)
        elif path == "/":
            self._send(200, landing_page(endpoints.title), "text/html; charset=utf-8")
        elif path == "/-/healthy":
            self._send(200, b"OK\n", "text/plain; charset=utf-8")
        elif path == "/-/ready":
            ok = endpoints.ready()
            self._send(200 if ok else 503, b"ready\n" if ok else b"first collection not finished\n",
                       "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], endpoints: Endpoints) -> None:
        if ":" in address[0]:
            import socket

            self.address_family = socket.AF_INET6
        self.endpoints = endpoints
        super().__init__(address, Handler)


def serve_in_thread(server: AgentHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
