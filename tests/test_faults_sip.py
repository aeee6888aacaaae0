"""A SIP peer that misbehaves: garbage before its answer, 100 Trying then silence, huge messages, floods.

The peers are real UDP and TCP sockets on loopback, answering the agent's real OPTIONS request with
what each test scripts. What an operator expects: a live stack that also sent junk is still up
(RFC 3261 §18.3.1: a malformed message is discarded, not taken as the answer); a stack that only
said "100 Trying" is not ready and the log says that is what it did; a huge or endless answer is
cut off at the cap, quickly, and reads ``bad_response``; nothing takes longer than the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from collectors.api import ProbeResult
from collectors.runner import run_probe
from collectors.sip.probe import MAX_MESSAGE_BYTES, SipCollector, SipParams, SipSettings

HOST = "127.45.3.1"


def header(request: bytes, name: str) -> str:
    for line in request.decode().split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line
    raise AssertionError(f"the request has no {name}")


def response(request: bytes, status: str = "200 OK", extra: list[str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"SIP/2.0 {status}", header(request, "Via"), header(request, "From"), header(request, "To") + ";tag=f",
             header(request, "Call-ID"), header(request, "CSeq"), *(extra or []), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class UdpPeer(asyncio.DatagramProtocol):
    """Answers every datagram it gets with the datagrams ``script(request, n)`` returns (n: requests so far)."""

    def __init__(self, script: Callable[[bytes, int], list[bytes]]) -> None:
        self.script = script
        self.requests: list[tuple[float, bytes]] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.requests.append((time.monotonic(), data))
        for datagram in self.script(data, len(self.requests)):
            self.transport.sendto(datagram, addr)


def probe_udp(script: Callable[[bytes, int], list[bytes]], timeout: float = 1.5,
              settings: SipSettings | None = None) -> tuple[ProbeResult, float, UdpPeer]:
    async def run():
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(lambda: UdpPeer(script), local_addr=(HOST, 0))
        collector = SipCollector(settings or SipSettings())
        try:
            port = transport.get_extra_info("sockname")[1]
            started = time.monotonic()
            result = await run_probe(collector, "t", SipParams(host=HOST, port=port), timeout)
            return result, time.monotonic() - started, peer
        finally:
            transport.close()

    return asyncio.run(run())


def probe_tcp(serve: Callable[[bytes, asyncio.StreamWriter], Awaitable[None]],
              timeout: float = 1.5) -> tuple[ProbeResult, float]:
    async def run():
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = await reader.readuntil(b"\r\n\r\n")
                await serve(request, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the agent hung up: what a bounded reader does
            finally:
                writer.close()

        server = await asyncio.start_server(handle, HOST, 0)
        collector = SipCollector(SipSettings())
        try:
            port = server.sockets[0].getsockname()[1]
            started = time.monotonic()
            result = await run_probe(collector, "t", SipParams(host=HOST, port=port, transport="tcp"), timeout)
            return result, time.monotonic() - started
        finally:
            server.close()

    return asyncio.run(run())


def status_code(result: ProbeResult) -> float:
    (code,) = [s.value for s in result.samples if s.family == "sip_status_code"]
    return code


# --- malformed ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("junk", [
    b"\xff\xfe\x00\x01 binary junk",
    b"SIP/2.0 2000 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nthis line has no colon\r\n\r\n",
    b"\r\n\r\n",  # a keep-alive
], ids=["binary", "four_digit_status", "http", "no_colon", "keepalive"])
def test_junk_before_the_answer_is_discarded_and_the_stack_is_up(junk: bytes):
    result, elapsed, _ = probe_udp(lambda request, n: [junk, response(request)] if n == 1 else [])
    assert (result.up, result.reason) == (True, ""), result.detail
    assert status_code(result) == 200
    assert elapsed < 0.5  # the answer came at once: the junk made it wait for nothing


def test_only_junk_is_a_bad_response_naming_it():
    result, elapsed, _ = probe_udp(lambda request, n: [b"\xff\xfe\x00 junk"], timeout=1.0)
    assert (result.up, result.reason) == (False, "bad_response"), result.detail
    assert "not UTF-8" in result.detail
    assert status_code(result) == 0
    assert elapsed < 1.1


# --- 100 Trying, then silence ------------------------------------------------------------------------


def test_udp_100_trying_then_silence_is_not_ready_and_says_so():
    """After a provisional answer the request is resent every T2 (RFC 3261 §17.1.2.2), not at T1's doubling."""
    settings = SipSettings(t1=0.1, t2=0.4)
    result, elapsed, peer = probe_udp(lambda request, n: [response(request, "100 Trying")] if n == 1 else [],
                                      timeout=1.5, settings=settings)
    assert (result.up, result.reason) == (False, "timeout"), result.detail
    assert status_code(result) == 0  # a provisional answer is no status of readiness
    assert "100" in result.detail, result.detail
    assert elapsed < 1.6
    gaps = [b[0] - a[0] for a, b in zip(peer.requests, peer.requests[1:], strict=False)]
    assert len(peer.requests) in (3, 4, 5), gaps  # the first, then one every 0.4 s for ~1.45 s
    assert all(gap > 0.3 for gap in gaps), gaps


def test_tcp_100_trying_then_silence_is_not_ready_and_says_so():
    async def serve(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(response(request, "100 Trying"))
        await writer.drain()
        await asyncio.sleep(5)

    result, elapsed = probe_tcp(serve, timeout=1.0)
    assert (result.up, result.reason) == (False, "timeout"), result.detail
    assert status_code(result) == 0
    assert "100" in result.detail, result.detail
    assert elapsed < 1.1


def test_tcp_an_endless_stream_of_100_trying_ends_at_the_timeout():
    sent = 0

    async def serve(request: bytes, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        trying = response(request, "100 Trying")
        for _ in range(1_000_000):  # bounded: ~100 MB at most, the agent's timeout ends it long before
            writer.write(trying)
            sent += 1
            await writer.drain()

    result, elapsed = probe_tcp(serve, timeout=1.0)
    assert (result.up, result.reason) == (False, "timeout"), result.detail
    assert sent > 100, sent  # the agent really read a flood, and still stopped at its deadline
    assert elapsed < 1.2


# --- huge ------------------------------------------------------------------------------------------


def test_udp_a_huge_but_valid_answer_is_read():
    padding = [f"X-Padding-{i}: {'v' * 900}" for i in range(60)]  # ~55 kB in one datagram
    result, _, _ = probe_udp(lambda request, n: [response(request, extra=padding)] if n == 1 else [])
    assert (result.up, status_code(result)) == (True, 200), result.detail


def test_tcp_headers_without_end_are_cut_at_the_cap_at_once():
    async def serve(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SIP/2.0 200 OK\r\n")
        for _ in range(2_000):  # 2 MB of one header line, never ending the head
            writer.write(b"X" * 1024)
            await writer.drain()
        await asyncio.sleep(5)

    result, elapsed = probe_tcp(serve, timeout=3.0)
    assert (result.up, result.reason) == (False, "bad_response"), result.detail
    assert str(MAX_MESSAGE_BYTES) in result.detail
    assert elapsed < 1.5  # cut at the cap, not at the timeout


def test_tcp_a_body_claiming_a_gigabyte_is_refused_before_it_is_read():
    async def serve(request: bytes, writer: asyncio.StreamWriter) -> None:
        head = response(request).replace(b"Content-Length: 0", b"Content-Length: 1000000000")
        writer.write(head + b"v=0\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    result, elapsed = probe_tcp(serve, timeout=2.0)
    assert (result.up, result.reason) == (False, "bad_response"), result.detail
    assert "Content-Length" in result.detail
    assert elapsed < 0.5


def test_udp_a_burst_of_other_transactions_answers_does_not_hide_ours():
    """50 at once: a default UDP receive buffer holds about 90 such datagrams on loopback (more in one burst
    are dropped by the kernel before the agent can read them, ours among them)."""

    def script(request: bytes, n: int) -> list[bytes]:
        if n > 1:
            return []
        others = [response(request).replace(b"Call-ID: ", b"Call-ID: x%d" % i) for i in range(50)]
        return [*others, response(request)]

    result, elapsed, _ = probe_udp(script, timeout=2.0)
    assert (result.up, status_code(result)) == (True, 200), result.detail
    assert elapsed < 1.0
