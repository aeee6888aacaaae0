"""The SNMPv2c fast path: one UDP socket per address family, requests from templates, answers read by
``collectors.snmp_ber`` and matched to their request by the rules of ``collectors.snmp_replies``.

A reply counts only from the address its request went to, with the community and version the
request carried, as a Response PDU, for a pending random request id; anything else is dropped and
counted by reason (``unknown_request``, ``wrong_source``, ``wrong_community``, ``malformed``) while
the request keeps waiting. A message the fast codec refuses is decoded by pysnmp (``pysnmp_decode``)
before it is judged, so an unusual but valid encoding means what it meant before; only what pysnmp
cannot read either is ``malformed``.

Why it does not lose answers it was sent: every readable wake-up reads all the datagrams waiting
(up to ``_READS_PER_WAKE``), the receive buffer is sized for a burst of thousands of answers, a
request's timer first reads what is waiting before it calls the request timed out (a busy loop
runs timers and socket reads in the same pass, and an answer that arrived in time must not read as
a timeout), the timer starts when the datagram leaves, and sends are paced (``send_rate``) so a
round of thousands of probes does not leave in one burst.

Values reach the collectors as small int/bytes/tuple subclasses that carry pysnmp's ``tagSet`` and
class names, so the collectors' type checks and messages are the same for both paths.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import socket
from typing import Any

from pysnmp.proto import rfc1902, rfc1905

from collectors.snmp import ber
from collectors.snmp.drops import Address, OnDrop, source_key

_READS_PER_WAKE = 4096  # datagrams read per readable event at most: bounds one callback's work
_ID_DRAWS = 64


class Timeout(Exception):
    """No answer to any try of a request."""


# -- values -------------------------------------------------------------------------------------


class Integer(int):
    __slots__ = ()
    tagSet = rfc1902.Integer.tagSet  # pysnmp's attribute names, for the checks both paths share

    def prettyPrint(self) -> str:
        return str(int(self))


class Counter32(Integer):
    __slots__ = ()
    tagSet = rfc1902.Counter32.tagSet


class Gauge32(Integer):
    __slots__ = ()
    tagSet = rfc1902.Gauge32.tagSet


class TimeTicks(Integer):
    __slots__ = ()
    tagSet = rfc1902.TimeTicks.tagSet


class Counter64(Integer):
    __slots__ = ()
    tagSet = rfc1902.Counter64.tagSet


class OctetString(bytes):
    __slots__ = ()
    tagSet = rfc1902.OctetString.tagSet

    def prettyPrint(self) -> str:
        return self.decode("utf-8", "replace")


class IpAddress(OctetString):
    __slots__ = ()
    tagSet = rfc1902.IpAddress.tagSet

    def prettyPrint(self) -> str:
        return ".".join(str(b) for b in self)


class Opaque(OctetString):
    __slots__ = ()
    tagSet = rfc1902.Opaque.tagSet


class ObjectIdentifier(tuple[int, ...]):
    __slots__ = ()
    tagSet = rfc1902.ObjectIdentifier.tagSet

    def prettyPrint(self) -> str:
        return ".".join(map(str, self))


class Null:
    __slots__ = ()
    tagSet = rfc1902.Null.tagSet

    def prettyPrint(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoSuchObject(Null):
    __slots__ = ()
    tagSet = rfc1905.NoSuchObject.tagSet


class NoSuchInstance(Null):
    __slots__ = ()
    tagSet = rfc1905.NoSuchInstance.tagSet


class EndOfMibView(Null):
    __slots__ = ()
    tagSet = rfc1905.EndOfMibView.tagSet


_NULLS = {ber.NULL: Null(), ber.NO_SUCH_OBJECT: NoSuchObject(), ber.NO_SUCH_INSTANCE: NoSuchInstance(),
          ber.END_OF_MIB_VIEW: EndOfMibView()}
_TYPES: dict[int, Any] = {ber.INTEGER: Integer, ber.COUNTER32: Counter32, ber.GAUGE32: Gauge32,
                          ber.TIMETICKS: TimeTicks, ber.COUNTER64: Counter64, ber.OCTET_STRING: OctetString,
                          ber.IP_ADDRESS: IpAddress, ber.OPAQUE: Opaque, ber.OBJECT_IDENTIFIER: ObjectIdentifier}


def typed(tag: int, value: ber.Value) -> Any:
    """The collector-facing value of a decoded varbind."""
    null = _NULLS.get(tag)
    return null if null is not None else _TYPES[tag](value)


# -- pysnmp as the reference and the fallback ---------------------------------------------------


def _identifier(tag_set: Any) -> int:
    base = tag_set[0]
    return int(base.tagClass) | int(base.tagFormat) | int(base.tagId)


def pysnmp_decode(data: bytes) -> ber.Message:
    """The message as pysnmp reads it (``collectors.snmp_replies``), in the codec's terms; raises on
    anything pysnmp cannot read. The codec's reference in the tests and its fallback here."""
    from collectors.snmp.decode import decode_reply  # pyasn1's decoder, only when it is needed

    version, community, pdu, request_id, status, index, varbinds = decode_reply(data)
    out: list[ber.VarBind] = []
    for name, value in varbinds:
        tag = _identifier(value.tagSet)
        plain: ber.Value
        if tag in _NULLS:
            plain = None
        elif tag in (ber.OCTET_STRING, ber.IP_ADDRESS, ber.OPAQUE):
            plain = bytes(value)
        elif tag == ber.OBJECT_IDENTIFIER:
            plain = tuple(value)
        else:
            plain = int(value)
        out.append((tuple(name), tag, plain))
    return ber.Message(version, community, _identifier(pdu.tagSet), request_id, status, index, out)


def decode(data: bytes) -> ber.Message:
    """The fast codec, or pysnmp where the codec refuses; raises when neither can read the bytes."""
    try:
        return ber.decode(data)
    except ber.Refused:
        return pysnmp_decode(data)


# -- the client ---------------------------------------------------------------------------------


class _Pending:
    __slots__ = ("address", "community", "datagram", "family", "future", "request_id", "timeout", "timer", "tries_left")

    def __init__(self, request_id: int, future: asyncio.Future[ber.Message], address: Address, community: bytes,
                 datagram: bytes, family: int, timeout: float, retries: int) -> None:
        self.request_id = request_id
        self.future = future
        self.address = address
        self.community = community
        self.datagram = datagram
        self.family = family
        self.timeout = timeout
        self.tries_left = retries
        self.timer: asyncio.TimerHandle | None = None


class V2cClient:
    """Every v2c device of one collector on one socket per address family, on the running loop."""

    def __init__(self, on_drop: OnDrop, receive_buffer: int, send_rate: float = 20_000.0, burst: int = 256) -> None:
        self._on_drop = on_drop
        self._receive_buffer = receive_buffer
        self._loop = asyncio.get_running_loop()
        self._sockets: dict[int, socket.socket] = {}
        self._pending: dict[int, _Pending] = {}
        self._rate = send_rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled = self._loop.time()
        self._queue: collections.deque[_Pending] = collections.deque()
        self._flush: asyncio.TimerHandle | None = None

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
                if option is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, option, self._receive_buffer)
                        break
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._readable, sock)
            self._sockets[family] = sock
        return sock

    def receive_buffer(self, family: int = socket.AF_INET) -> int:
        """The receive buffer the kernel gave (it reports twice what was asked, for its bookkeeping)."""
        return int(self._socket(family).getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    async def request(self, address: Address, community: bytes, template: ber.Template, timeout: float,
                      retries: int) -> ber.Message:
        """Send the request (``retries`` more times on silence, same id) and return its Response."""
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        for _ in range(_ID_DRAWS):
            request_id = secrets.randbelow(ber.ID_HIGH - ber.ID_LOW + 1) + ber.ID_LOW
            if request_id not in self._pending:
                break
        else:
            raise RuntimeError("no free SNMP request id after 64 random draws")
        pending = _Pending(request_id, self._loop.create_future(), address, community, template.with_id(request_id),
                           family, timeout, retries)
        self._pending[request_id] = pending
        try:
            self._send(pending)
            return await pending.future
        finally:
            if self._pending.get(request_id) is pending:
                del self._pending[request_id]
            if pending.timer is not None:
                pending.timer.cancel()

    # -- sending ----------------------------------------------------------------------------

    def _send(self, pending: _Pending) -> None:
        now = self._loop.time()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens >= 1.0 and not self._queue:
            self._tokens -= 1.0
            self._transmit(pending)
            return
        pending.timer = None
        self._queue.append(pending)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush is None and self._queue:
            wait = max(0.0, (1.0 - self._tokens) / self._rate)
            self._flush = self._loop.call_later(wait, self._drain_queue)

    def _drain_queue(self) -> None:
        self._flush = None
        now = self._loop.time()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        while self._queue and self._tokens >= 1.0:
            pending = self._queue.popleft()
            if pending.future.done():
                continue
            self._tokens -= 1.0
            self._transmit(pending)
        self._schedule_flush()

    def _transmit(self, pending: _Pending) -> None:
        # A full send buffer or an unreachable network loses this try; the timer sends the next.
        with contextlib.suppress(OSError):
            self._socket(pending.family).sendto(pending.datagram, pending.address)
        pending.timer = self._loop.call_later(pending.timeout, self._expired, pending)

    def _expired(self, pending: _Pending) -> None:
        pending.timer = None
        if pending.future.done():
            return
        self._read_waiting()  # an answer that arrived in time, not yet read by a busy loop, still counts
        if pending.future.done():
            return
        if pending.tries_left > 0:
            pending.tries_left -= 1
            self._send(pending)
        else:
            pending.future.set_exception(Timeout(f"no answer after {pending.timeout:g}s"))

    # -- receiving --------------------------------------------------------------------------

    def _read_waiting(self) -> None:
        for sock in self._sockets.values():
            self._readable(sock)

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(_READS_PER_WAKE):
            try:
                data, source = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error queued on the socket (port unreachable): nothing to read
                continue
            self._received(data, source_key(source))

    def _received(self, data: bytes, source: Address) -> None:
        try:
            message = decode(data)
        except Exception:  # bytes from the network: whatever neither decoder reads is malformed
            self._on_drop("malformed", source)
            return
        pending = self._pending.get(message.request_id)
        if pending is None or message.pdu != ber.RESPONSE or pending.future.done():
            self._on_drop("unknown_request", source)
            return
        if pending.address != source:
            self._on_drop("wrong_source", source)
            return
        if message.version != ber.V2C or message.community != pending.community:
            self._on_drop("wrong_community", source)
            return
        pending.future.set_result(message)

    def close(self) -> None:
        for sock in self._sockets.values():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.cancel()
        self._queue.clear()
