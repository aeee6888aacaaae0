"""The agent's HTTP endpoint: ``/metrics``, the status page and ``/units/<id>``, health/readiness probes and
``POST /-/reload``.

It runs in its own threads (:mod:`agent.webserver`: one event loop for the connections, a few workers
for the answers), apart from the probe loop, so a burst of probes never delays a scrape and a slow
scraper never delays a probe. TLS, basic authentication, extra headers and a request rate limit come
from an exporter-toolkit web configuration file (:mod:`agent.webconfig`).
"""

from __future__ import annotations

import html
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from agent.app.listen import DEFAULT_PORT, parse_listen  # noqa: F401 - where callers import them from
from agent.app.webconfig import WebConfigSource, WebSettings
from agent.app.webserver import Limits, Reply, Request, WebServer
from agent.domain.version import __version__

if TYPE_CHECKING:
    from exporters.prometheus import Exposition

log = logging.getLogger(__name__)


class Endpoints:
    """What the handler serves; ``title`` and ``exposition`` may be replaced on reload.

    ``reload`` is called from a request thread for ``POST /-/reload`` and returns (HTTP status, text).
    ``exposition`` is None while the configuration loads (the listener opens first, for /-/healthy): the
    pages that need it answer 503 until the agent is built.
    """

    def __init__(self, exposition: Exposition | None, title: str, ready: Callable[[], bool],
                 reload: Callable[[], tuple[int, str]] | None = None,
                 status: Callable[[], bytes] | None = None,
                 unit_page: Callable[[str], bytes | None] | None = None,
                 first_round_pending: Callable[[], int] = lambda: 0) -> None:
        self.exposition = exposition
        self.title = title
        self.ready = ready
        self.reload = reload
        self.status = status  # the status page (exporters/status_page.py); the plain landing page without it
        self.unit_page = unit_page  # a unit's page (exporters/unit_page.py), None for an unknown unit
        self.first_round_pending = first_round_pending  # targets still in their first probe, for /-/ready


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


class ReloadGuard:
    """Who may trigger ``POST /-/reload``, and how often: each reload costs a third of a CPU-second.

    Off unless ``--web.enable-lifecycle`` (as in Prometheus; SIGHUP always reloads). A browser's simple
    cross-site request (a form, a ``fetch`` without preflight) is refused the way Go's
    ``http.CrossOriginProtection`` does it, and so is any form content type, which no reload needs. At
    most one reload over HTTP runs at a time and one starts per ``min_interval``; sooner gets 429.
    """

    FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")

    def __init__(self, enabled: bool = False, min_interval: float = 5.0) -> None:
        self.enabled = enabled
        self.min_interval = min_interval
        self._last = -float("inf")
        self._running = False
        self._lock = threading.Lock()

    def refusal(self, request: Request) -> Reply | None:
        if not self.enabled:
            return Reply(403, b"the lifecycle API is off: start the agent with --web.enable-lifecycle to reload "
                              b"over HTTP, or send SIGHUP (systemctl reload egov-agent)\n")
        why = cross_origin(request)
        if why:
            log.warning("http: cross-origin POST /-/reload refused: client=%s (%s)", request.client, why,
                        extra={"client": request.client})
            return Reply(403, f"cross-origin request refused: {why}\n".encode())
        return None

    def start(self) -> Reply | None:
        """Take the reload slot, or the 429 saying when to come back; ``done`` gives the slot back."""
        with self._lock:
            now = time.monotonic()
            wait = self._last + self.min_interval - now
            if self._running or wait > 0:
                retry = max(1, math.ceil(wait))
                text = ("a reload is running" if self._running
                        else f"the last reload started {now - self._last:.1f}s ago")
                return Reply(429, f"reload refused: {text}; at most one every {self.min_interval:g}s, "
                                  f"retry in {retry}s\n".encode(), headers={"Retry-After": str(retry)})
            self._running = True
            self._last = now
            return None

    def done(self) -> None:
        with self._lock:
            self._running = False


def cross_origin(request: Request) -> str:
    """Why a state-changing request looks cross-origin, or "" (Go's CrossOriginProtection, plus form types)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in ReloadGuard.FORM_TYPES:
        return f"Content-Type {content_type} is a form's; send the POST without a body (curl -X POST)"
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site:
        return "" if site in ("same-origin", "none") else f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("origin")
    if origin is None:
        return ""  # not a browser, or a same-origin request from one
    host = urlsplit(origin).netloc if "://" in origin else ""
    if host and host.lower() == request.headers.get("host", "").lower():
        return ""
    return f"Origin {origin[:100]!r} is not this host ({request.headers.get('host', '')[:100]!r})"


def _metrics_reply(body: bytes, content_type: str, encoding: str | None) -> Reply:
    headers = {"Vary": "Accept-Encoding"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return Reply(200, body, content_type, headers)


class Responder:
    """Answers one complete request, in a worker thread of the connection engine."""

    def __init__(self, endpoints: Endpoints, web: WebConfigSource, reloads: ReloadGuard) -> None:
        self.endpoints = endpoints
        self.web = web
        self.reloads = reloads

    def inline(self, request: Request) -> Reply | None:
        """A scrape's reply when it is ready-made and nothing needs checking (no basic auth, whose hash
        takes milliseconds, no rate limit): the HTTP loop sends it without a hop to a worker thread.
        None: the workers answer, as every other request."""
        if request.path != "/metrics" or request.method not in ("GET", "HEAD"):
            return None
        web = request.web or self.web.current()
        if web.auth is not None or web.limiter is not None:
            return None
        exposition = self.endpoints.exposition
        if exposition is None:  # still starting: the workers answer 503
            return None
        try:
            answer = exposition.cached(request.headers.get("accept"),
                                                      request.headers.get("accept-encoding"))
        except Exception:  # the worker's path logs it
            return None
        if answer is None:
            return None
        reply = _metrics_reply(*answer)
        for name, value in web.headers.items():
            reply.headers.setdefault(name, value)
        return reply

    def __call__(self, request: Request) -> Reply:
        web = request.web or self.web.current()
        try:
            reply = self._answer(request, web)
        except Exception:
            log.error("http: error serving client=%s", request.client, exc_info=True,
                      extra={"client": request.client})
            reply = Reply(500, b"internal error; see the agent's log\n")
        for name, value in web.headers.items():
            reply.headers.setdefault(name, value)
        return reply

    def _answer(self, request: Request, web: WebSettings) -> Reply:
        refused = self._admission(request, web)
        if refused is not None:
            return refused
        if request.method in ("GET", "HEAD"):
            return self._get(request)
        if request.method == "POST":
            return self._post(request)
        allowed = "POST" if request.path == "/-/reload" else "GET, HEAD"
        known = is_route(request.path)
        return Reply(405 if known else 404, b"method not allowed\n" if known else b"not found\n",
                     headers={"Allow": allowed})

    @staticmethod
    def _admission(request: Request, web: WebSettings) -> Reply | None:
        """Rate limit and basic authentication, as exporter-toolkit applies them to every path."""
        if web.limiter is not None and not web.limiter.allow():
            return Reply(429, b"Too Many Requests\n")
        if web.auth is None:
            return None
        ok, _ = web.auth.check(request.headers.get("authorization"))
        if ok:
            return None
        log.warning("http: unauthorized request: client=%s path=%s", request.client, request.path[:100],
                    extra={"client": request.client})
        return Reply(401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="egov-agent", charset="UTF-8"'})

    def _get(self, request: Request) -> Reply:
        endpoints = self.endpoints
        path = request.path
        if endpoints.exposition is None and path != "/-/healthy" and is_route(path):
            return Reply(503, STARTING, headers={"Retry-After": "1"})
        if path == "/metrics":
            assert endpoints.exposition is not None  # answered 503 above until the agent is built
            return _metrics_reply(*endpoints.exposition.render_encoded(
                request.headers.get("accept"), request.headers.get("accept-encoding")))
        if path == "/":
            page = endpoints.status() if endpoints.status is not None else landing_page(endpoints.title)
            return Reply(200, page, "text/html; charset=utf-8")
        if path == "/-/healthy":
            return Reply(200, b"OK\n")
        if path == "/-/ready":
            if not endpoints.ready():
                return Reply(503, b"first collection not finished\n")
            waiting = endpoints.first_round_pending()
            return Reply(200, f"ready; {waiting} targets still in their first probe\n".encode() if waiting
                         else b"ready\n")
        if path == "/-/reload":
            return Reply(405, b"use POST /-/reload\n", headers={"Allow": "POST"})
        if path.startswith(UNITS) and endpoints.unit_page is not None:
            return self._unit(path[len(UNITS):])
        return Reply(404, b"not found\n")

    def _unit(self, unit_id: str) -> Reply:
        """``/units/<id>``: the id is checked before any lookup, and never echoed unless it is a valid id."""
        from exporters.unit_page import valid_unit_id

        assert self.endpoints.unit_page is not None
        if not valid_unit_id(unit_id):
            return Reply(404, b"not found: a unit id is lower-case letters, digits, '-' and '_' (see the "
                              b"configuration's units:)\n")
        page = self.endpoints.unit_page(unit_id)
        if page is None:
            return Reply(404, f"not found: no unit {unit_id!r} in the configuration\n".encode())
        return Reply(200, page, "text/html; charset=utf-8")

    def _post(self, request: Request) -> Reply:
        if is_route(request.path) and request.path != "/-/reload":
            return Reply(405, b"method not allowed\n", headers={"Allow": "GET, HEAD"})
        if request.path != "/-/reload":
            return Reply(404, b"not found\n")
        refused = self.reloads.refusal(request)
        if refused is not None:
            return refused
        reload = self.endpoints.reload
        if reload is None:
            return Reply(503, b"reload is not available\n")
        busy = self.reloads.start()
        if busy is not None:
            return busy
        try:
            status, text = reload()
        finally:
            self.reloads.done()
        return Reply(status, (text if text.endswith("\n") else text + "\n").encode())


ROUTES = ("/", "/metrics", "/-/healthy", "/-/ready", "/-/reload")
UNITS = "/units/"  # followed by a unit id: a unit's page
STARTING = b"starting: the configuration is loading; /-/healthy answers, the rest once the agent is built\n"


def is_route(path: str) -> bool:
    if path in ROUTES:
        return True
    from exporters.unit_page import valid_unit_id  # its pages' imports wait until a unit page is asked for

    return path.startswith(UNITS) and valid_unit_id(path[len(UNITS):])


class AgentHTTPServer(WebServer):
    """The agent's endpoint: what :class:`Responder` answers, served by the connection engine."""

    def __init__(self, address: tuple[str, int], endpoints: Endpoints, web: WebConfigSource | None = None,
                 limits: Limits | None = None, reloads: ReloadGuard | None = None) -> None:
        self.endpoints = endpoints
        web = web or WebConfigSource(None)
        responder = Responder(endpoints, web, reloads or ReloadGuard())
        super().__init__(address, responder, web, limits, inline=responder.inline)


def serve_in_thread(server: AgentHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
