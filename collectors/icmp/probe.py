"""ICMP echo to every WAN router: is the link to the commune up, how lossy, how slow.

A probe sends ``count`` echo requests (default 5, so one lost packet is not an outage) spaced by
``interval``, then waits for the replies until the collector's timeout, so a dead link costs one
timeout however many echoes it was sent, and dead links time out in parallel. Whether the link is
*up* is a configured rule over a short per-target history kept here: with
``up_rule: {max_loss: 0.5, over_probes: 3}`` a target is up while the echo loss summed over its last
3 probes stays below 50 %. A lossy link that is still up keeps ``icmp_loss_ratio`` above 0.

Sockets and privileges (``settings.privileged``):

* ``true``: raw ICMP sockets. They need ``CAP_NET_RAW``; the systemd unit grants it to an
  unprivileged service user with ``AmbientCapabilities=CAP_NET_RAW`` (and
  ``CapabilityBoundingSet=CAP_NET_RAW``). ICMP errors (host/network unreachable, TTL exceeded) are
  seen and reported as such.
* ``false``: unprivileged ICMP datagram sockets ("ping sockets"). No capability, but the sysctl
  ``net.ipv4.ping_group_range`` (it covers IPv6 too) must include the agent's group, e.g.
  ``sysctl -w net.ipv4.ping_group_range="0 2147483647"`` (or a drop-in in ``/etc/sysctl.d``). The
  kernel hides ICMP errors from these sockets, so an unreachable link reads as ``timeout``.
* ``auto`` (default): raw if permitted, else datagram; if neither is, every probe reports
  ``permission`` with the remedy in the log.

Packets are built, sent and parsed by icmplib's socket classes, but not through its
``async_ping``/``async_multiping``: those open one socket per pinged host, and every raw ICMP
socket receives a copy of every ICMP packet the host gets, so N concurrent pings cost N² packet
copies. ``bench/icmp.py`` on loopback, 5 echoes per host, 256 hosts at a time: for 262 hosts
``async_ping`` took 5.3 CPU-seconds and reported 58 % loss that did not exist (its socket buffers
overflowed), for 2,620 hosts 57 CPU-seconds and 43 %; this collector took 0.11 and 1.6 CPU-seconds
with no loss. Here one shared socket per address family sends every echo, the kernel filters it
down to echo replies and errors, and a single reader matches replies to requests by (identifier,
sequence, and for echo replies the address): linear in the number of echoes. A reply counts once
however often it comes, and only intact: raw IPv4 sockets see packets before the kernel checks their
checksum, so the reader checks it (tests/test_faults_icmp.py: duplicates, reordering, floods,
replies from another address, ICMP errors, corrupt and truncated packets).

The reader is an event-loop reader callback that drains the socket until it would block, not
icmplib's ``AsyncSocket.receive``, which takes one packet per one or two passes of the loop: while
other collectors keep the loop busy (SNMP at 2,620 links), replies then wait in the kernel past
their probe's deadline and live links read as down. ``bench/wan.py --scales 10`` (2,620 links,
ICMP and SNMP in the same cycle, load average 5 to 10 on 2 cores): 3,393 of 5,240 targets judged
right with ``AsyncSocket.receive``, 5,240 with the drain.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import re
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from icmplib import (
    DestinationUnreachable,
    ICMPLibError,
    ICMPRequest,
    ICMPSocketError,
    ICMPv4Socket,
    ICMPv6Socket,
    NameLookupError,
    SocketBroadcastError,
    SocketPermissionError,
    TimeExceeded,
    async_resolve,
)
from icmplib.utils import unique_identifier

from collectors.api import ANSWER_TIME, Collector, Family, ProbeResult, Sample, answer_hook
from collectors.icmp.models import IcmpParams, IcmpSettings, UpRule  # noqa: F401 (UpRule: importers of the probe)

log = logging.getLogger(__name__)

PERMISSION_HELP = (
    "cannot open an ICMP socket: raw sockets need CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW), "
    "unprivileged ICMP sockets need net.ipv4.ping_group_range to include the agent's group"
)
RECEIVE_BUFFER = 4 * 1024 * 1024  # bursts of replies from hundreds of routers must not overflow it
SOL_RAW = 255  # Linux; the socket module does not name it
DEADLINE_MARGIN = 0.05  # seconds kept back from the timeout to account the probe before it is cancelled
RECEIVE_SIZE = 2048  # a whole reply to the largest echo (1,500 bytes); errors quote only 28 bytes of it
TTL = 64  # icmplib's default for every request
MAX_DESTINATIONS = 100_000  # resolved socket addresses kept (one per probed address)
_HEADER = struct.Struct("!HHHH")  # type and code, checksum, identifier, sequence
DRAIN_BATCH = 4096  # packets read per wake-up at most: a flood cannot hold the loop; the rest wake it again


@dataclass
class _Echo:
    request: ICMPRequest
    reply: asyncio.Future
    source: str  # the address an echo reply must come from: the request's destination, as the kernel writes it


class _Pinger:
    """One ICMP socket for one address family, shared by every probe of the collector.

    Echo requests get a sequence number unique within the socket (16 bits wrap after 65,536 echoes,
    far beyond any timeout), so a single reader hands each reply to the probe that waits for it.
    """

    def __init__(self, family: int, privileged: bool) -> None:
        cls = ICMPv6Socket if family == 6 else ICMPv4Socket
        self.icmp = cls(None, privileged)
        self.sock: socket.socket = self.icmp.sock
        try:
            for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
                    break
                except OSError:
                    continue
            if privileged:
                _only_replies(self.sock, family)
            self.sock.setblocking(False)
            self.loop = asyncio.get_running_loop()
            self.loop.add_reader(self.sock.fileno(), self._drain)
        except BaseException:
            self.icmp.close()
            raise
        self.privileged = privileged
        self.family = family
        # Echo request type in the header's first byte, code 0 in the second (one 16-bit word).
        self.type_code = self.icmp._ICMP_ECHO_REQUEST << 8
        self._payloads: dict[int, tuple[bytes, int]] = {}
        self._destinations: dict[str, tuple] = {}
        self.icmp._set_ttl(TTL)  # once: icmplib's send sets them again on every echo
        self.icmp._set_traffic_class(0)
        self.ident = unique_identifier()  # datagram sockets: the kernel sets its own, read back after send
        self.sequence = random.randrange(0x10000)
        self.waiting: dict[tuple[int, int], _Echo] = {}
        self.closed = False

    def _drain(self) -> None:
        """Read every packet the kernel holds, not one per pass of the loop: a busy loop must not age replies."""
        for _ in range(DRAIN_BATCH):
            try:
                packet, peer = self.sock.recvfrom(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # a pending socket error is cleared by reading it: the next wake-up reads on
                log.warning("ICMP receive failed: %s", exc)
                return
            if self.privileged and self.family == 4:
                intact = _intact_icmpv4(packet)
                if intact is None:
                    continue  # corrupted on the way (or not ICMP): no answer at all
                packet = intact
            reply = self.icmp._parse_reply(packet, peer[0], time.time())  # icmplib's parser, as its receive uses
            if reply is None:
                continue  # too short to be ICMP
            echo = self.waiting.get((reply.id, reply.sequence))
            if echo is None or echo.reply.done():
                continue  # someone else's ICMP, a duplicate, or a reply after its probe gave up
            reason = reply_error(reply)
            if reason is None:
                if _bare(peer[0]) != echo.source:
                    continue  # an echo reply with our numbers from another host: not this link's answer
            elif reason not in ("unreachable", "ttl_exceeded"):
                continue  # errors come from a router on the way, so only their numbers are checked
            echo.reply.set_result(reply)

    def send(self, address: str, payload_size: int) -> _Echo:
        """Send one echo request now; raises OSError-derived icmplib errors when it cannot leave.

        The packet is icmplib's (``ICMPSocket._create_packet``: type, code 0, checksum, identifier,
        sequence, payload; tests/test_icmp_reader.py compares them byte for byte), built here because
        icmplib's ``send`` also resolves the address, sets the TTL and traffic class with two system
        calls, draws a random payload and sums the checksum byte pair by byte pair on every echo: at
        20,000 links that was a tenth of a worker's CPU. Here the payload (random once per size), its
        checksum share, the TTL and the address are computed once."""
        for _ in range(0x10000):
            self.sequence = (self.sequence + 1) & 0xFFFF
            if (self.ident, self.sequence) not in self.waiting:
                break
        payload, payload_sum = self._payload(payload_size)
        request = ICMPRequest(address, self.ident, self.sequence, payload=payload, payload_size=payload_size)
        try:
            destination = self._destinations.get(address) or self._destination(address)
            packet = echo_request(self.type_code, self.ident, self.sequence, payload, payload_sum)
            request._time = time.time()
            self.sock.sendto(packet, destination)
            if not self.privileged:
                request._id = self.ident = self.sock.getsockname()[1]  # the kernel's identifier for this socket
        except PermissionError:
            raise SocketBroadcastError from None
        except OSError as err:
            raise ICMPSocketError(str(err)) from None
        key = (request.id, request.sequence)
        echo = _Echo(request, self.loop.create_future(), _canonical(address, self.sock.family))
        self.waiting[key] = echo
        echo.reply.add_done_callback(lambda _f: self.waiting.pop(key, None))
        return echo

    def _payload(self, size: int) -> tuple[bytes, int]:
        """The echo payload of this size (random bytes, as icmplib's, drawn once) and its 16-bit word sum."""
        known = self._payloads.get(size)
        if known is None:
            payload = random.randbytes(size)
            known = self._payloads[size] = (payload, _word_sum(payload))
        return known

    def _destination(self, address: str) -> tuple:
        """The socket address icmplib's send resolves for this host (an IPv6 zone included), kept."""
        destination = socket.getaddrinfo(address, None, self.sock.family, self.sock.type)[0][4]
        if len(self._destinations) >= MAX_DESTINATIONS:
            self._destinations.clear()
        self._destinations[address] = destination
        return destination

    async def close(self) -> None:
        """Stop reading before closing the socket (a closed descriptor's number may be reused at once)."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())  # a no-op once that loop is closed
        self.icmp.close()
        for echo in list(self.waiting.values()):
            echo.reply.cancel()
        self.waiting.clear()


def _word_sum(data: bytes) -> int:
    """The sum of ``data``'s big-endian 16-bit words (a last odd byte padded with zero), not yet folded."""
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def _fold(total: int) -> int:
    """The Internet checksum of words summing to ``total``: the ones' complement of their end-around sum."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(type_code: int, ident: int, sequence: int, payload: bytes, payload_sum: int) -> bytes:
    """An echo request packet, as icmplib's ``_create_packet`` builds it (``payload_sum``: ``_word_sum(payload)``)."""
    checksum = _fold(payload_sum + type_code + ident + sequence)
    return _HEADER.pack(type_code, checksum, ident, sequence) + payload


def _intact_icmpv4(packet: bytes) -> bytes | None:
    """The packet with any IP options cut out, or None when its ICMP checksum is wrong.

    A raw IPv4 socket gets ICMP packets before the kernel checks their checksum (ping sockets and
    ICMPv6 raw sockets get only checked ones), and icmplib reads the ICMP header at a fixed 20-byte
    offset, so a reply whose IP header carries options would be misread.
    """
    if len(packet) < 20:
        return None
    header = (packet[0] & 0x0F) * 4
    message = packet[header:]
    if header < 20 or len(message) < 4:
        return None
    words = int.from_bytes(message + b"\0" * (len(message) % 2), "big")
    if words == 0 or words % 0xFFFF:  # the ones' complement sum of an intact message is 0xFFFF (2^16 = 1 mod 0xFFFF)
        return None
    return packet if header == 20 else packet[:20] + message


def _bare(address: str) -> str:
    """An address as the kernel reports it, less an IPv6 zone (``fe80::1%eth0``)."""
    return address.partition("%")[0]


def _canonical(address: str, family: int) -> str:
    """The text recvfrom will give for ``address`` (``0:0::1`` -> ``::1``), so replies compare as strings."""
    bare = _bare(address)
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, bare))
    except (OSError, ValueError):
        return bare


def _only_replies(sock: socket.socket, family: int) -> None:
    """Have the kernel pass a raw socket only echo replies and the errors that answer an echo.

    A raw ICMP socket otherwise gets every ICMP packet of the host, our own echo requests included
    when probing loopback: filtering in the kernel halves the work and the buffer the reader needs.
    """
    if family == 4:  # ICMP_FILTER (SOL_RAW, 1): a 32-bit mask of the types to drop
        keep = (1 << 0) | (1 << 3) | (1 << 11)  # echo reply, destination unreachable, time exceeded
        sock.setsockopt(SOL_RAW, 1, struct.pack("I", ~keep & 0xFFFFFFFF))
    else:  # ICMP6_FILTER (IPPROTO_ICMPV6, 1): 256 bits, a set bit blocks that type
        words = [0xFFFFFFFF] * 8
        for kind in (1, 3, 129):  # destination unreachable, time exceeded, echo reply
            words[kind >> 5] &= ~(1 << (kind & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, 1, struct.pack("8I", *words))


def reply_error(reply) -> str | None:
    """The reason word an ICMP error reply stands for, or None for an echo reply."""
    try:
        reply.raise_for_status()
    except DestinationUnreachable:
        return "unreachable"
    except TimeExceeded:
        return "ttl_exceeded"
    except ICMPLibError:
        return "icmp_error"
    return None


_ERRNO = re.compile(r"\[Errno (\d+)\]")
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}


def _send_reason(exc: ICMPSocketError) -> str:
    """icmplib keeps only the OSError's text ("[Errno 101] Network is unreachable"): read the errno back."""
    match = _ERRNO.search(str(exc))
    return "unreachable" if match and int(match.group(1)) in _NO_ROUTE else "send_error"


class IcmpCollector(Collector[IcmpParams, IcmpSettings]):
    kind = "icmp"
    Params = IcmpParams
    Settings = IcmpSettings
    answers_early = True  # the first echo reply says the link answers; the probe ends after the last echo
    families = (
        Family("icmp_echo_requests", "counter", "ICMP echo requests sent (or that could not leave: no route)."),
        Family("icmp_echo_replies", "counter", "ICMP echo replies received in time."),
        Family("icmp_loss_ratio", "gauge", "Share of the last probe's echo requests without a reply (0..1)."),
        Family("icmp_rule_loss_ratio", "gauge",
               "Echo loss over the last probes the up rule looks at (up while below its max_loss)."),
        Family("icmp_rtt_seconds", "gauge", "Round-trip time of the last probe's replies.", ("stat",)),
    )

    def __init__(self, settings: IcmpSettings) -> None:
        super().__init__(settings)
        self.rule = settings.up_rule
        self._pingers: dict[int, _Pinger] = {}
        self._history: dict[str, deque[tuple[int, int]]] = {}
        self._totals: dict[str, list[int]] = {}

    async def _pinger(self, family: int) -> _Pinger:
        """The shared socket, opened on first use in the running loop (a new loop gets a new one)."""
        pinger = self._pingers.get(family)
        if pinger is not None and pinger.loop is asyncio.get_running_loop() and not pinger.closed:
            return pinger
        if pinger is not None:
            await pinger.close()
        choice = self.settings.privileged
        modes = [True, False] if choice == "auto" else [bool(choice)]
        for i, privileged in enumerate(modes):
            try:
                pinger = _Pinger(family, privileged)
            except SocketPermissionError:
                if i == len(modes) - 1:
                    raise
                continue
            log.info("IPv%d probes use %s ICMP sockets", family, "raw" if privileged else "unprivileged")
            self._pingers[family] = pinger
            return pinger
        raise AssertionError("unreachable")

    def answer_time(self, params: IcmpParams) -> float:
        """A live link's probe lasts as long as its echoes are spaced, plus a round trip."""
        return (params.count - 1) * params.interval + ANSWER_TIME

    async def probe(self, target_id: str, params: IcmpParams, timeout: float) -> ProbeResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        answered = answer_hook()
        deadline = started + max(timeout - DEADLINE_MARGIN, timeout * 0.5)
        try:
            address = await asyncio.wait_for(_resolve(str(params.host)), max(deadline - loop.time(), 0.01))
        except (NameLookupError, TimeoutError):
            return ProbeResult(False, "resolve_error", detail=f"cannot resolve {params.host}")
        family = 6 if ipaddress.ip_address(address).version == 6 else 4
        try:
            pinger = await self._pinger(family)
        except SocketPermissionError:
            return ProbeResult(False, "permission", detail=PERMISSION_HELP)
        except ICMPSocketError as exc:
            return ProbeResult(False, "socket_error", detail=str(exc))

        # Send every echo within the first half of the budget, so the last one still gets time to answer.
        spacing = min(params.interval, (deadline - started) / 2 / max(params.count - 1, 1))
        echoes: list[_Echo] = []
        send_errors: Counter[str] = Counter()
        try:
            for i in range(params.count):
                delay = started + i * spacing - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    echoes.append(pinger.send(address, params.payload_size))
                    if answered is not None:
                        echoes[-1].reply.add_done_callback(_on_echo_reply(answered))
                except ICMPSocketError as exc:
                    send_errors[_send_reason(exc)] += 1
            pending = [e.reply for e in echoes]
            if pending:
                await asyncio.wait(pending, timeout=max(deadline - loop.time(), 0))
        finally:
            for echo in echoes:
                echo.reply.cancel()  # no-op when answered; frees the sequence number otherwise
        return self._judge(target_id, params.count, echoes, send_errors)

    def _judge(self, target_id: str, sent: int, echoes: list[_Echo], send_errors: Counter[str]) -> ProbeResult:
        rtts: list[float] = []
        errors = Counter(send_errors)
        for echo in echoes:
            if echo.reply.cancelled() or not echo.reply.done():
                continue
            reply = echo.reply.result()
            reason = reply_error(reply)
            if reason is None:
                rtts.append(max(reply.time - echo.request.time, 0.0))
            else:
                errors[reason] += 1
        received = len(rtts)
        totals = self._totals.setdefault(target_id, [0, 0])
        totals[0] += sent
        totals[1] += received
        history = self._history.setdefault(target_id, deque(maxlen=self.rule.over_probes))
        history.append((sent, received))
        window_sent = sum(s for s, _ in history)
        window_loss = 1.0 - sum(r for _, r in history) / window_sent if window_sent else 1.0
        loss = 1.0 - received / sent if sent else 1.0

        samples = [
            Sample("icmp_echo_requests", float(totals[0])),
            Sample("icmp_echo_replies", float(totals[1])),
            Sample("icmp_loss_ratio", loss),
            Sample("icmp_rule_loss_ratio", window_loss),
        ]
        if rtts:
            samples += [Sample("icmp_rtt_seconds", min(rtts), ("min",)),
                        Sample("icmp_rtt_seconds", sum(rtts) / len(rtts), ("avg",)),
                        Sample("icmp_rtt_seconds", max(rtts), ("max",))]
        up = window_loss < self.rule.max_loss
        detail = f"{received}/{sent} replies, {window_loss:.0%} loss over the last {len(history)} probe(s)"
        if errors:
            detail += ", " + ", ".join(f"{n} {reason}" for reason, n in sorted(errors.items()))
        if up:
            return ProbeResult(True, samples=samples, detail=detail)
        if received:
            reason = "loss"
        elif errors:
            reason = errors.most_common(1)[0][0]
        else:
            reason = "timeout"
        return ProbeResult(False, reason, samples, detail)

    async def close(self) -> None:
        pingers, self._pingers = list(self._pingers.values()), {}
        for pinger in pingers:
            await pinger.close()


def _on_echo_reply(answered: Callable[[], None]) -> Callable[[asyncio.Future], None]:
    """A reply future's callback that calls ``answered`` for an echo reply (an ICMP error is no answer of the link)."""
    def done(reply: asyncio.Future) -> None:
        if not reply.cancelled() and reply_error(reply.result()) is None:
            answered()
    return done


async def _resolve(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return (await async_resolve(host))[0]
