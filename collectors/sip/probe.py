"""SIP endpoint readiness: is the video-conference codec's SIP stack alive? One OPTIONS request.

An endpoint (điểm cầu) is ready when it answers a SIP OPTIONS request (RFC 3261 §11) over the
configured transport with a final response. Any final response proves a live SIP stack (a 404 or
a 403 comes from the stack, not from a dead box), so by default every final code counts;
``ready_status`` narrows it (e.g. ``[200]``), and another final code then gives ``status_mismatch``.
Reasons: ``timeout`` (nothing matching within the timeout), ``refused`` (TCP RST, or ICMP port
unreachable on UDP), ``unreachable`` (no route to the host), ``bad_response`` (the peer answered
with something that is not SIP, or a malformed SIP message: over TCP at once, as it breaks the
stream's framing; over UDP a malformed datagram is discarded as RFC 3261 §18.3.1 says, and names the
fault only if no good answer followed before the timeout), ``dns_error`` (a host name that does not
resolve), ``network_error`` (any other socket error).

The request is one non-INVITE client transaction (RFC 3261 §17.1.2): Via with a fresh ``z9hG4bK``
branch and ``rport`` (RFC 3581), Max-Forwards, To, From with a tag, Call-ID, CSeq ``1 OPTIONS``,
Content-Length 0. A response belongs to it when its top Via branch, Call-ID and CSeq match; others
are ignored, as a transaction layer does (when only such answers came, the probe says
``bad_response`` rather than ``timeout``). Over UDP the request is retransmitted on timer E (T1,
doubling up to T2; every T2 after a provisional answer) until a final response or the probe's
timeout; over TCP it is sent once and responses are framed by Content-Length. No credentials are
involved: OPTIONS needs none, and a 401/407 challenge is itself a final response from a live stack.

Why hand-written: the Python SIP libraries on PyPI are either unmaintained (aiosip and its fork
asyncsip, last released 2017 and 2020), a C stack with media and audio-device baggage (pjsua2), or
a young 0.x call-handling kit for voice-AI backends (aiosipua) whose UAS, dialog and RTP layers an
OPTIONS ping does not need. One OPTIONS transaction is about a hundred lines of RFC 3261, which the
tests check against SIPp, the reference SIP test tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import secrets
import socket
import time
from dataclasses import dataclass, field

from collectors.api import Collector, Family, ProbeFailure, ProbeResult, Sample
from collectors.sip.models import SipParams, SipSettings

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: a branch starting with it marks an RFC 3261 transaction
MAX_MESSAGE_BYTES = 65536
# RFC 3261 §7.3.3 compact header names.
COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "l": "content-length", "m": "contact",
           "c": "content-type", "e": "content-encoding", "k": "supported", "s": "subject"}
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6]\d\d)(?: (.*))?$")
_REQUEST_LINE = re.compile(r"^[A-Z]+ \S+ SIP/2\.0$")


class BadMessage(ValueError):
    """The peer sent bytes that are not a well-formed SIP message."""


@dataclass
class Response:
    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)  # lower-case full names

    def first(self, name: str) -> str:
        values = self.headers.get(name)
        return values[0] if values else ""


@dataclass
class Request:
    """One OPTIONS transaction's identifiers and wire form."""

    branch: str
    call_id: str
    cseq: int
    wire: bytes


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_options(params: SipParams, settings: SipSettings, local: tuple[str, int]) -> Request:
    """The OPTIONS request from ``local`` (the socket's own address, for Via and From)."""
    branch = MAGIC_COOKIE + secrets.token_hex(10)
    call_id = f"{secrets.token_hex(12)}@{local[0]}"
    tag = secrets.token_hex(6)
    proto = params.transport.upper()
    user = f"{params.user}@" if params.user else ""
    target = _hostport(str(params.host), params.port)
    uri = f"sip:{user}{target}" + (";transport=tcp" if params.transport == "tcp" else "")
    local_host = f"[{local[0]}]" if ":" in local[0] else local[0]
    lines = [
        f"OPTIONS {uri} SIP/2.0",
        f"Via: SIP/2.0/{proto} {_hostport(local[0], local[1])};branch={branch};rport",
        "Max-Forwards: 70",
        f"To: <sip:{user}{target}>",
        f"From: <sip:{settings.from_user}@{local_host}>;tag={tag}",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:{settings.from_user}@{_hostport(local[0], local[1])};transport={params.transport}>",
        "Accept: application/sdp",
        f"User-Agent: {settings.user_agent}",
        "Content-Length: 0",
    ]
    return Request(branch, call_id, 1, ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """(head, rest) at the first blank line, or None if the head is not complete yet."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = data.find(separator)
        if at >= 0:
            return data[:at], data[at + len(separator):]
    return None


def parse_head(head: bytes) -> Response | None:
    """A response's status and headers; None for a request (a UAS may send us one); BadMessage otherwise."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise BadMessage("not UTF-8 text") from None
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0]
    if _REQUEST_LINE.match(start):
        return None
    status = _STATUS_LINE.match(start)
    if status is None:
        raise BadMessage(f"not a SIP status line: {start[:40]!r}")
    response = Response(int(status.group(1)))
    name = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and name:  # folded continuation of the previous header
            response.headers[name][-1] += " " + line.strip()
            continue
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if not colon or not key or not re.fullmatch(r"[a-z0-9!%*_+`'~.-]+", key):
            raise BadMessage(f"malformed header line: {line[:40]!r}")
        name = COMPACT.get(key, key)
        response.headers.setdefault(name, []).append(value.strip())
    for required in ("via", "call-id", "cseq", "from", "to"):
        if required not in response.headers:
            raise BadMessage(f"response lacks {required}")
    return response


def content_length(response: Response) -> int:
    raw = response.first("content-length") or "0"
    if not raw.isdigit() or int(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"bad Content-Length {raw[:20]!r}")
    return int(raw)


def _branch(via: str) -> str:
    top = via.split(",", 1)[0]
    for param in top.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "branch":
            return value.strip()
    return ""


def matches(response: Response, request: Request) -> bool:
    """RFC 3261 §17.1.3 (top Via branch and CSeq method), plus Call-ID and CSeq number."""
    cseq = response.first("cseq").split()
    return (_branch(response.first("via")) == request.branch
            and response.first("call-id") == request.call_id
            and len(cseq) == 2 and cseq[0] == str(request.cseq) and cseq[1].upper() == "OPTIONS")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "dns_error"
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN):
        return "unreachable"
    return "network_error"


@dataclass
class _Outcome:
    response: Response
    seconds: float  # from the first transmission to the final response
    retransmissions: int = 0


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.inbox.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.inbox.put_nowait(exc)


class SipCollector(Collector[SipParams, SipSettings]):
    kind = "sip"
    Params = SipParams
    Settings = SipSettings
    families = (
        Family("sip_status_code", "gauge", "Status of the final response to OPTIONS (0: none received)."),
        Family("sip_response_seconds", "gauge", "From sending OPTIONS to its final response."),
        Family("sip_retransmissions", "gauge", "UDP retransmissions of the request in the last probe."),
    )

    async def probe(self, target_id: str, params: SipParams, timeout: float) -> ProbeResult:
        deadline = time.monotonic() + max(0.05, timeout - 0.05)  # answer before the probe runner gives up
        if params.transport == "udp":
            outcome = await self._udp(params, self.settings, deadline)
        else:
            outcome = await self._tcp(params, self.settings, deadline)
        status = outcome.response.status
        samples = [Sample("sip_status_code", float(status)), Sample("sip_response_seconds", outcome.seconds)]
        if params.transport == "udp":
            samples.append(Sample("sip_retransmissions", float(outcome.retransmissions)))
        if not _ready(status, params.ready_status):
            return ProbeResult(False, "status_mismatch", samples,
                               f"SIP {status}, ready means {params.ready_status}")
        return ProbeResult(True, "", samples)

    def failure_samples(self, target_id: str, params: SipParams) -> list[Sample]:
        return [Sample("sip_status_code", 0.0)]  # no final response received

    # -- UDP: retransmit on timer E until a final response ---------------------------------------

    async def _udp(self, params: SipParams, settings: SipSettings, deadline: float) -> _Outcome:
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                _UdpProtocol, remote_addr=(str(params.host), params.port))
        except OSError as exc:  # connect() on a UDP socket looks the route up
            raise ProbeFailure(_os_reason(exc), exc.strerror or str(exc)) from None
        try:
            local = transport.get_extra_info("sockname")
            request = build_options(params, settings, (str(local[0]), int(local[1])))
            started = time.monotonic()
            transport.sendto(request.wire)
            interval, resend_at, sent_again = settings.t1, started + settings.t1, 0
            mismatched = False
            malformed = ""  # the first malformed datagram's fault: discarded (RFC 3261 §18.3.1), named if nothing else
            provisional = 0
            while True:
                now = time.monotonic()
                if now >= deadline:
                    if provisional:
                        raise ProbeFailure("timeout", f"a {provisional} provisional response, then no final "
                                                      f"response after {sent_again} retransmissions")
                    if malformed or mismatched:
                        raise ProbeFailure("bad_response", malformed or "only responses of other transactions")
                    raise ProbeFailure("timeout", f"no final response after {sent_again} retransmissions")
                if now >= resend_at:
                    transport.sendto(request.wire)
                    sent_again += 1
                    interval = min(interval * 2, settings.t2)
                    resend_at = now + interval
                try:
                    item = await asyncio.wait_for(protocol.inbox.get(), min(resend_at, deadline) - now)
                except TimeoutError:
                    continue
                if isinstance(item, OSError):
                    raise ProbeFailure(_os_reason(item), item.strerror or str(item))
                try:
                    head = split_head(item)  # a datagram is one whole message: tolerate a missing blank line
                    response = parse_head(head[0] if head is not None else item.rstrip(b"\r\n"))
                except BadMessage as exc:
                    malformed = malformed or str(exc)
                    continue
                if response is None:
                    continue  # a request from the peer: not ours to answer here
                if not matches(response, request):
                    mismatched = True
                    continue
                if response.status < 200:
                    provisional = response.status
                    interval = settings.t2  # proceeding: retransmit every T2 (RFC 3261 §17.1.2.2)
                    resend_at = time.monotonic() + interval
                    continue
                return _Outcome(response, time.monotonic() - started, sent_again)
        finally:
            transport.close()

    # -- TCP: send once, read Content-Length framed responses -------------------------------------

    async def _tcp(self, params: SipParams, settings: SipSettings, deadline: float) -> _Outcome:
        writer = None
        provisional = 0
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                try:
                    reader, writer = await asyncio.open_connection(str(params.host), params.port,
                                                                   limit=MAX_MESSAGE_BYTES)
                except OSError as exc:
                    raise ProbeFailure(_os_reason(exc), exc.strerror or str(exc)) from None
                local = writer.get_extra_info("sockname")
                request = build_options(params, settings, (str(local[0]), int(local[1])))
                started = time.monotonic()
                writer.write(request.wire)
                await writer.drain()
                while True:
                    response = await self._read_response(reader)
                    if response is None or not matches(response, request):
                        continue
                    if response.status < 200:
                        provisional = response.status
                        continue
                    return _Outcome(response, time.monotonic() - started)
        except TimeoutError:
            before = f"a {provisional} provisional response, then " if provisional else ""
            raise ProbeFailure("timeout", before + "no final response within the timeout") from None
        except OSError as exc:
            raise ProbeFailure(_os_reason(exc), exc.strerror or str(exc)) from None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 0.5)

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> Response | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            head = head.lstrip(b"\r\n")  # RFC 5626 keep-alive CRLFs before a message
            while not head.strip():
                head = (await reader.readuntil(b"\r\n\r\n")).lstrip(b"\r\n")
            response = parse_head(head[:-4])
            length = content_length(response) if response is not None else 0
            if length:
                await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise ProbeFailure("bad_response", "connection closed " + (
                "inside a message" if exc.partial.strip() else "without a response")) from None
        except asyncio.LimitOverrunError:
            raise ProbeFailure("bad_response", f"headers longer than {MAX_MESSAGE_BYTES} bytes") from None
        except BadMessage as exc:
            raise ProbeFailure("bad_response", str(exc)) from None
        return response


def _ready(status: int, ready: list[int | str] | None) -> bool:
    if status < 200:
        return False
    if ready is None:
        return True
    return any(status == spec if isinstance(spec, int) else str(status)[0] == spec[0] for spec in ready)


def _loop_time(deadline: float) -> float:
    """A time.monotonic() deadline on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())
