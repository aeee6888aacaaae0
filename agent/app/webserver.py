"""The connection engine behind the agent's endpoint: one event loop does all the I/O, a few threads answer.

One thread per connection let 300 slow clients hold 300 threads, and a listen backlog of 5 dropped
connections under 200 parallel scrapers. Here a single asyncio loop (in the ``http`` thread) accepts
connections, runs their TLS handshakes and reads their requests, each under a deadline; a client that
sends a byte a second holds a file descriptor and a few bytes, never a thread. Only a complete request
goes to the small worker pool, and its reply is written back by the loop under a deadline too, so a
client that stops reading holds no thread either. A connection that has sent nothing yet gets no task
and no transport, only a watched descriptor, so a flood of them costs little.

When ``max_connections`` are open, a new connection takes the place of the one that has waited
longest for the rest of its request (the likeliest to be a slow client: a scraper sends its request
in one packet), else of the longest idle kept-alive one, else of a reply untaken for a second. A
connection that arrived with its request is never dropped before that has been read. With nobody to
drop, a connection that sent its request waits, without a task, until one ends. Connections without a
task (silent ones, and those waiting) are at most four times the cap; past that the oldest silent one
is dropped. So the listen backlog is always drained, and a scraper is not stuck behind a flood in it.
HTTP/1.1 framing (keep-alive, pipelining, chunked bodies, malformed requests) is h11's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import re
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import h11
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.app.webconfig import WebConfigSource, WebSettings
from agent.domain.version import __version__

log = logging.getLogger("agent.app.http")

PLAIN_HTTP_TO_TLS = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
                     b"\r\nClient sent an HTTP request to an HTTPS server.\n")
_BUSY = b"too many connections to the agent; retry\n"
AT_CAPACITY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n"
               b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY), _BUSY))
ACCEPT_BATCH = 32  # connections accepted per turn of the loop
PENDING_PER_ACTIVE = 4  # connections without a task (silent, or queued) per --web.max-connections
WRITE_GRACE = 1.0  # seconds a reply may take before its connection can be dropped to make room
MAX_HEAD = 16384  # bytes of request line and headers
_HEAD_END = re.compile(rb"\r?\n\r?\n")
DROP_REASONS = ("capacity", "read_deadline", "write_deadline")


@dataclass(frozen=True)
class Limits:
    """What one client, and all of them together, may hold of the server."""

    max_connections: int = 64  # with a task (being read or answered); 4 x as many more may wait without one
    read_timeout: float = 10.0  # TLS handshake, request line, headers and body, from accept or the first byte
    idle_timeout: float = 30.0  # silence allowed on a kept-alive connection between two requests
    write_timeout: float = 30.0  # for the client to take the whole reply
    workers: int = 8  # threads answering complete requests
    backlog: int = 1024  # a burst of connections waits here rather than have its SYNs dropped (1 s retransmit)
    max_body: int = 65536


@dataclass
class Request:
    method: str
    path: str  # the target without its query string
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    client: str
    web: WebSettings | None  # a TLS connection's settings, fixed at its handshake; None: the current ones


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class ConnectionStats:
    """Self-metrics of the endpoint, a prometheus_client collector."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.accepted = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("egov_web_connections_open", "Connections open to the agent's endpoint.",
                                value=self.open)
        yield GaugeMetricFamily("egov_web_connections_max", "Connections the endpoint reads or answers at once "
                                "(--web.max-connections); as many again times 4 may wait.",
                                value=self.limits.max_connections)
        yield CounterMetricFamily("egov_web_connections_accepted", "Connections accepted by the endpoint.",
                                  value=self.accepted)
        dropped = CounterMetricFamily(
            "egov_web_connections_dropped",
            "Connections closed by the endpoint: capacity (dropped to make room: the longest waiting for its "
            "request, or past 4 x the cap the oldest silent one), read_deadline (handshake or request not "
            "complete in time), "
            "write_deadline (the reply not taken in time).", labels=["reason"])
        for reason, count in self.dropped.items():
            dropped.add_metric([reason], count)
        yield dropped


class _Workers:
    """A fixed set of daemon threads answering requests, so that a stop never waits for one (a reload can
    take two minutes) and their number never grows with the connections."""

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"http-worker-{i}", daemon=True)
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()
            # An idle worker would otherwise keep its last job, and through its future the reply, alive until
            # the next request: a /metrics body (4 MB for the demo) per worker, up to 8 stale renderings.
            del job

    def run(self, loop: asyncio.AbstractEventLoop, work: Callable[[], Any]) -> asyncio.Future:
        future = loop.create_future()

        def job() -> None:
            try:
                result = work()
            except BaseException as exc:  # handed to the awaiting connection, which logs it
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

        self._jobs.put(job)
        return future

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if future.done():  # the connection was dropped meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class _Connection:
    def __init__(self, client: str, sock: socket.socket, accepted: float) -> None:
        self.client = client
        self.sock = sock
        self.accepted = accepted
        self.task: asyncio.Task | None = None  # None while silent: no task, no transport yet
        self.expiry: asyncio.TimerHandle | None = None  # the read deadline while it has no task
        self.head = bytearray()  # what a plain HTTP connection sent before it had a task
        self.tls = False
        self.evicted = False


class WebServer:
    """``serve_forever`` in one thread, ``shutdown`` from another, like socketserver's servers."""

    def __init__(self, address: tuple[str, int], respond: Callable[[Request], Reply],
                 web: WebConfigSource | None = None, limits: Limits | None = None,
                 inline: Callable[[Request], Reply | None] | None = None) -> None:
        self.respond = respond
        # Answers on the loop itself what needs no work (a ready-made /metrics body), or None: a scrape
        # then waits for no worker thread, nor for the GIL twice more while a render or the probes hold it.
        self.inline = inline
        self.web = web or WebConfigSource(None)
        self.limits = limits or Limits()
        self.stats = ConnectionStats(self.limits)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(self.limits.backlog)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self._connections: dict[_Connection, None] = {}  # every one, for the stop
        self._active: dict[_Connection, None] = {}  # with a task: at most max_connections
        # Who may make room among the active, longest waiting first: connections whose request is not
        # complete (a slow client's always), then connections kept alive between two requests (a
        # scraper's), then replies not taken for WRITE_GRACE. One that came with its request is in none
        # until that has been read.
        self._reading: OrderedDict[_Connection, None] = OrderedDict()
        self._idle: OrderedDict[_Connection, None] = OrderedDict()
        self._writing: OrderedDict[_Connection, float] = OrderedDict()
        # Pending, with no task: connections that sent nothing yet, and ones that did while every active
        # one was being answered; at most PENDING_PER_ACTIVE × max_connections, the oldest silent dropped first.
        self._silent: OrderedDict[_Connection, None] = OrderedDict()
        self._ready: OrderedDict[_Connection, None] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_asked = threading.Event()
        self._done = threading.Event()
        self._workers: _Workers | None = None

    # -- life cycle ----------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._done.set()

    def shutdown(self) -> None:
        self._stop_asked.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already ended
                return
            self._done.wait(10)

    def server_close(self) -> None:
        self.socket.close()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._workers = _Workers(self.limits.workers)
        if self._stop_asked.is_set():
            self._stop.set()
        acceptor = asyncio.create_task(self._accept_loop())
        try:
            await self._stop.wait()
        finally:
            acceptor.cancel()
            tasks = [c.task for c in self._connections if c.task is not None]
            for task in tasks:
                task.cancel()
            for connection in [c for c in self._connections if c.task is None]:
                self._close_pending(connection)
            await asyncio.gather(acceptor, *tasks, return_exceptions=True)
            self._workers.stop()

    # -- accepting -----------------------------------------------------------------------------------
    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self._admit(*await loop.sock_accept(self.socket))
                for _ in range(ACCEPT_BATCH - 1):  # what else waits in the backlog, without a loop turn each
                    self._admit(*self.socket.accept())
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:  # EMFILE and the like: wait, rather than spin
                log.error("http: cannot accept a connection: %s", exc)
                await asyncio.sleep(0.1)
            await asyncio.sleep(0)  # let the connections accepted so far read what they were sent

    def _admit(self, sock: socket.socket, address: Any) -> None:
        sock.setblocking(False)
        # A reply goes out in two writes (head, body): without this, Nagle holds the second until the
        # client's delayed ACK, 40 ms later. asyncio sets it only on sockets made with IPPROTO_TCP.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stats.accepted += 1
        loop = asyncio.get_running_loop()
        connection = _Connection(str(address[0]), sock, loop.time())
        self._connections[connection] = None
        self.stats.open = len(self._connections)
        connection.expiry = loop.call_at(connection.accepted + self.limits.read_timeout, self._expire, connection)
        connection.tls = self.web.current().ssl_context is not None
        # Until it has sent a whole request head (plain HTTP) or its first bytes (TLS), a connection is
        # a watched descriptor and a buffer, no task: a slow-loris flood costs little, and is dropped at
        # the read deadline, or oldest first past 4 x the cap.
        self._silent[connection] = None
        loop.add_reader(sock.fileno(), self._wake, connection)
        self._trim_pending()
        self._wake(connection)  # what came with the connection, as a scraper's request does

    def _wake(self, connection: _Connection) -> None:
        if connection not in self._silent:  # dropped meanwhile
            return
        if connection.tls:
            try:
                sent = bool(connection.sock.recv(1, socket.MSG_PEEK))
            except BlockingIOError:
                return
            except OSError:
                sent = True  # the task will meet the error
        else:
            try:
                data = connection.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # gone before it asked anything
                self._close_pending(connection)
                return
            connection.head += data
            if len(connection.head) <= MAX_HEAD and not _HEAD_END.search(connection.head):
                return  # not the whole head yet
            sent = True
        if sent:
            asyncio.get_running_loop().remove_reader(connection.sock.fileno())
            self._silent.pop(connection, None)
            self._activate(connection)

    def _activate(self, connection: _Connection) -> None:
        """Give a connection that sent something a task now if there is room, else queue it."""
        if len(self._active) < self.limits.max_connections or self._evict_one():
            self._start(connection)
        else:
            self._ready[connection] = None
            self._trim_pending()

    def _start(self, connection: _Connection) -> None:
        self._ready.pop(connection, None)
        if connection.expiry is not None:
            connection.expiry.cancel()  # the task keeps the same deadline
        self._active[connection] = None
        if connection.tls:
            self._reading[connection] = None  # a handshake takes round trips: no safe first read
        connection.task = asyncio.create_task(self._serve(connection))

    def _promote_ready(self) -> None:
        while self._ready and (len(self._active) < self.limits.max_connections or self._evict_one()):
            self._start(next(iter(self._ready)))

    def _trim_pending(self) -> None:
        while len(self._silent) + len(self._ready) > PENDING_PER_ACTIVE * self.limits.max_connections:
            victim = next(iter(self._silent or self._ready))
            self.stats.dropped["capacity"] += 1
            if victim in self._ready:
                with contextlib.suppress(OSError):
                    victim.sock.send(AT_CAPACITY)
            self._close_pending(victim)

    def _expire(self, connection: _Connection) -> None:
        self.stats.dropped["read_deadline"] += 1
        self._close_pending(connection)

    def _close_pending(self, connection: _Connection) -> None:
        if connection in self._silent:
            asyncio.get_running_loop().remove_reader(connection.sock.fileno())
        if connection.expiry is not None:
            connection.expiry.cancel()
        self._forget(connection)
        connection.sock.close()

    def _waits(self, connection: _Connection, state: OrderedDict) -> None:
        """``connection`` may now be dropped to make room (state: _reading or _idle)."""
        if connection in self._active and connection not in state:
            state[connection] = None
            self._promote_ready()

    def _evict_one(self) -> bool:
        """Drop the active connection that has waited longest for its request; False if each is being answered."""
        victim = next(iter(self._reading or self._idle), None)
        if victim is None:
            oldest = next(iter(self._writing.items()), None)
            if oldest is None or oldest[1] > asyncio.get_running_loop().time() - WRITE_GRACE:
                return False
            victim = oldest[0]
        self.stats.dropped["capacity"] += 1
        self._forget(victim)
        victim.evicted = True
        with contextlib.suppress(OSError):  # the client sees the end now, not when the task next runs
            victim.sock.shutdown(socket.SHUT_RDWR)
        if victim.task is not None:
            victim.task.cancel()
        return True

    def _forget(self, connection: _Connection) -> None:
        self._connections.pop(connection, None)
        self._active.pop(connection, None)
        self._silent.pop(connection, None)
        self._ready.pop(connection, None)
        self._reading.pop(connection, None)
        self._idle.pop(connection, None)
        self._writing.pop(connection, None)
        self.stats.open = len(self._connections)

    # -- one connection ------------------------------------------------------------------------------
    async def _serve(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        sock = connection.sock
        writer: asyncio.StreamWriter | None = None
        workers = self._workers
        assert workers is not None  # set by _main, which started this task
        phase = "read_deadline"
        try:
            deadline: float | None = connection.accepted + self.limits.read_timeout  # the first request's
            async with asyncio.timeout_at(deadline):
                opened = await self._open(sock, connection.client)
            if opened is None:
                return
            reader, writer, web = opened
            http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            if connection.head:
                http.receive_data(bytes(connection.head))
                connection.head.clear()
            while True:
                phase = "read_deadline"
                request = await self._read_request(http, reader, writer, connection, web, deadline)
                self._reading.pop(connection, None)
                if request is None:
                    return
                reply = self.inline(request) if self.inline is not None else None
                if reply is None:
                    reply = await workers.run(loop, functools.partial(self.respond, request))
                phase = "write_deadline"
                self._writing[connection] = loop.time()
                async with asyncio.timeout(self.limits.write_timeout):
                    await self._write_reply(http, writer, request, reply)
                self._writing.pop(connection, None)
                if http.our_state is not h11.DONE or http.their_state is not h11.DONE:
                    return
                http.start_next_cycle()
                deadline = None
        except TimeoutError:
            self.stats.dropped[phase] += 1
            log.debug("http: %s passed for client=%s", phase.replace("_", " "), connection.client)
        except asyncio.CancelledError:
            if not connection.evicted:
                raise
        except (ConnectionError, ssl.SSLError, OSError, h11.ProtocolError) as exc:
            log.debug("http: connection from %s ended: %s", connection.client, exc)
        except Exception:
            log.error("http: error serving client=%s", connection.client, exc_info=True,
                      extra={"client": connection.client})
        finally:
            self._forget(connection)
            self._promote_ready()
            if writer is not None and connection.evicted:
                writer.transport.abort()
            elif writer is not None:
                writer.close()
            else:
                sock.close()

    async def _open(self, sock: socket.socket, client: str
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, WebSettings | None] | None:
        """The connection as streams, after its TLS handshake when TLS is configured; None if refused."""
        loop = asyncio.get_running_loop()
        web = self.web.current()
        context = web.ssl_context
        if context is not None:
            await _readable(loop, sock)
            first = sock.recv(1, socket.MSG_PEEK)
            if not first:
                return None
            if first != b"\x16":  # not a TLS handshake record: plain HTTP, or noise
                sock.recv(65536)
                if first.isalpha():
                    sock.send(PLAIN_HTTP_TO_TLS)
                log.warning("http: plain HTTP (not TLS) from client=%s refused", client, extra={"client": client})
                return None
        reader = asyncio.StreamReader(limit=MAX_HEAD, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, sock, ssl=context,
                ssl_handshake_timeout=self.limits.read_timeout + 1 if context is not None else None)
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.warning("http: TLS handshake failed: client=%s reason=%s", client, reason,
                        extra={"client": client, "reason": str(reason)})
            return None
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        if context is None:
            return reader, writer, None
        if web.allowed_sans is not None and not _san_allowed(transport.get_extra_info("peercert") or {},
                                                             web.allowed_sans):
            log.warning("http: client certificate has none of client_allowed_sans: client=%s", client,
                        extra={"client": client})
            writer.close()
            return None
        return reader, writer, web

    async def _read_request(self, http: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            connection: _Connection, web: WebSettings | None, deadline: float | None
                            ) -> Request | None:
        """The next complete request; None when the client closed or sent something that is not HTTP."""
        loop = asyncio.get_running_loop()
        client = connection.client
        received = bool(http.trailing_data[0])  # a pipelined request already here
        if deadline is None and not received:  # kept alive: wait for a first byte
            self._waits(connection, self._idle)
            try:
                async with asyncio.timeout(self.limits.idle_timeout):
                    data = await reader.read(65536)
            except TimeoutError:
                return None
            finally:
                self._idle.pop(connection, None)
            if not data:
                return None
            http.receive_data(data)
            received = True
        if deadline is None:
            deadline = loop.time() + self.limits.read_timeout
        head: h11.Request | None = None
        body = bytearray()
        async with asyncio.timeout_at(deadline):
            while True:
                try:
                    event = http.next_event()
                except h11.RemoteProtocolError as exc:
                    await self._refuse(writer, exc.error_status_hint, f"bad request: {exc}")
                    return None
                if event is h11.NEED_DATA:
                    if received:
                        self._waits(connection, self._reading)  # what came was not all of it
                    if http.they_are_waiting_for_100_continue:
                        writer.write(http.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
                    http.receive_data(await reader.read(65536))
                    received = True
                elif isinstance(event, h11.Request):
                    head = event
                    length = dict(event.headers).get(b"content-length", b"0")
                    if length.isdigit() and int(length) > self.limits.max_body:
                        await self._refuse(writer, 413, "request body too large")
                        return None
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > self.limits.max_body:
                        await self._refuse(writer, 413, "request body too large")
                        return None
                elif isinstance(event, h11.EndOfMessage) and head is not None:
                    target = head.target.decode("ascii", "replace")
                    return Request(head.method.decode("ascii", "replace"), target.split("?", 1)[0],
                                   {k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers},
                                   bytes(body), client, web)
                else:  # ConnectionClosed, or PAUSED on a protocol switch nobody offered
                    return None

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, status: int, text: str) -> None:
        body = (text + "\n").encode()
        writer.write(f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _write_reply(self, http: h11.Connection, writer: asyncio.StreamWriter, request: Request,
                           reply: Reply) -> None:
        headers = [("Server", f"egov-agent/{__version__}"), ("Date", formatdate(usegmt=True)),
                   ("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body))),
                   *reply.headers.items()]
        writer.write(http.send(h11.Response(status_code=reply.status, headers=headers,
                                            reason=_reason(reply.status))) or b"")
        if request.method != "HEAD" and reply.body:
            for chunk in http.send_with_data_passthrough(h11.Data(data=reply.body)) or ():
                writer.write(chunk)
        writer.write(http.send(h11.EndOfMessage()) or b"")
        await writer.drain()


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _san_allowed(cert: dict[str, Any], allowed: list[str]) -> bool:
    names = {value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "email", "URI", "IP Address")}
    return any(name in names for name in allowed)
