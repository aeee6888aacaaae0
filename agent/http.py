"""The agent's HTTP endpoint: ``/metrics``, a landing page, health/readiness probes and ``POST /-/reload``.

It runs in its own threads (the standard library's threading server), apart from the probe loop,
so a burst of probes never delays a scrape and a slow scraper never delays a probe. TLS, basic
authentication, extra headers and a request rate limit come from an exporter-toolkit web
configuration file (:mod:`agent.webconfig`). The TLS handshake runs in each connection's own thread,
never in the accept loop, so a client that stalls its handshake holds up nobody else.
"""

from __future__ import annotations

import html
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent import __version__
from agent.webconfig import WebConfigSource, WebSettings
from exporters.prometheus import Exposition

log = logging.getLogger(__name__)
DEFAULT_PORT = 9747
HANDSHAKE_TIMEOUT = 10.0  # seconds a client gets to complete its TLS handshake
REQUEST_TIMEOUT = 30.0  # seconds of silence before an idle or stalled connection is dropped
PLAIN_HTTP_TO_TLS = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
                     b"\r\nClient sent an HTTP request to an HTTPS server.\n")


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``[::1]:PORT``; port 0 picks a free port."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Endpoints:
    """What the handler serves; ``title`` and ``exposition`` may be replaced on reload.

    ``reload`` is called from a request thread for ``POST /-/reload`` and returns (HTTP status, text).
    """

    def __init__(self, exposition: Exposition, title: str, ready: Callable[[], bool],
                 reload: Callable[[], tuple[int, str]] | None = None,
                 status: Callable[[], bytes] | None = None) -> None:
        self.exposition = exposition
        self.title = title
        self.ready = ready
        self.reload = reload
        self.status = status  # the status page (exporters/status_page.py); the plain landing page without it


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
    timeout = REQUEST_TIMEOUT
    server: AgentHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s " + format, self.client_address[0], *args)

    def end_headers(self) -> None:
        web = getattr(self, "_web", None)
        for name, value in (web.headers if web else {}).items():
            self.send_header(name, value)
        super().end_headers()

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8", headers)

    def _admitted(self) -> bool:
        """Rate limit and basic authentication, as exporter-toolkit applies them to every path."""
        self._web: WebSettings = getattr(self.connection, "web_settings", None) or self.server.web.current()
        web = self._web
        if web.limiter is not None and not web.limiter.allow():
            self._text(429, "Too Many Requests\n")
            return False
        if web.auth is None:
            return True
        ok, _ = web.auth.check(self.headers.get("Authorization"))
        if not ok:
            log.warning("http: unauthorized request: client=%s path=%s", self.client_address[0],
                        self.path.split("?", 1)[0][:100], extra={"client": self.client_address[0]})
            self._text(401, "Unauthorized\n", {"WWW-Authenticate": 'Basic realm="egov-agent", charset="UTF-8"'})
        return ok

    def do_GET(self) -> None:
        if not self._admitted():
            return
        endpoints = self.server.endpoints
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = endpoints.exposition.render(self.headers.get("Accept"))
            self._send(200, body, content_type)
        elif path == "/":
            page = endpoints.status() if endpoints.status is not None else landing_page(endpoints.title)
            self._send(200, page, "text/html; charset=utf-8")
        elif path == "/-/healthy":
            self._text(200, "OK\n")
        elif path == "/-/ready":
            ok = endpoints.ready()
            self._text(200 if ok else 503, "ready\n" if ok else "first collection not finished\n")
        elif path == "/-/reload":
            self._text(405, "use POST /-/reload\n", {"Allow": "POST"})
        else:
            self._text(404, "not found\n")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and 0 < int(length) <= 65536:
            self.rfile.read(int(length))  # drain a body nobody asked for, so closing does not reset the reply
        if not self._admitted():
            return
        path = self.path.split("?", 1)[0]
        reload = self.server.endpoints.reload
        if path in ("/", "/metrics", "/-/healthy", "/-/ready"):
            self._text(405, "method not allowed\n", {"Allow": "GET, HEAD"})
        elif path != "/-/reload":
            self._text(404, "not found\n")
        elif reload is None:
            self._text(503, "reload is not available\n")
        else:
            status, text = reload()
            self._text(status, text if text.endswith("\n") else text + "\n")


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], endpoints: Endpoints, web: WebConfigSource | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.endpoints = endpoints
        self.web = web or WebConfigSource(None)
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the connection's thread: TLS handshake (if configured), then the HTTP exchange."""
        web = self.web.current()
        if web.ssl_context is None:
            super().finish_request(request, client_address)
            return
        client = client_address[0]
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            first = request.recv(1, socket.MSG_PEEK)
            if first and first != b"\x16":  # not a TLS handshake record: plain HTTP, or noise
                request.recv(65536)
                if first.isalpha():
                    request.sendall(PLAIN_HTTP_TO_TLS)
                log.warning("http: plain HTTP (not TLS) from client=%s refused", client, extra={"client": client})
                return
            if not first:
                return
            tls = web.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.warning("http: TLS handshake failed: client=%s reason=%s", client, reason,
                        extra={"client": client, "reason": str(reason)})
            return
        try:
            if web.allowed_sans is not None and not _san_allowed(tls.getpeercert() or {}, web.allowed_sans):
                log.warning("http: client certificate has none of client_allowed_sans: client=%s", client,
                            extra={"client": client})
                return
            tls.web_settings = web  # type: ignore[attr-defined]  # the settings this connection was made with
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A broken connection is the client's business; anything else is logged (rate-limited), never printed."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            log.debug("http: connection from %s ended: %s", client_address[0], exc)
        else:
            log.error("http: error serving client=%s", client_address[0], exc_info=True,
                      extra={"client": client_address[0]})


def _san_allowed(cert: dict[str, Any], allowed: list[str]) -> bool:
    names = {value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "email", "URI", "IP Address")}
    return any(name in names for name in allowed)


def serve_in_thread(server: AgentHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
