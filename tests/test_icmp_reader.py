"""The ICMP reader: every reply counted while other work keeps the loop busy, and only the right ones.

The real agent (its Agent, Scheduler and exposition on one loop) pings 200 loopback addresses, 5
echoes each, while a chain of CPU-bound callbacks makes every pass of the loop take 5 ms, as a
cycle's SNMP work does at thousands of links. Loopback answers within microseconds, so every reply
is in the socket long before the 2 s deadline: a reader that drains the socket on each pass counts
all 1,000, whatever the machine's speed. A reader that takes one packet per one or two passes
(icmplib's ``AsyncSocket.receive``) gets through at most ~400 in 2 s and reports live links as lossy.

The reader matches replies to probes by (identifier, sequence): an echo reply carrying those numbers
counts only if it comes from the address that was pinged.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path

from support.exposition import parse_samples, sample
from support.icmp_netns import RouterNamespace, router_ns  # noqa: F401 - fixture
from support.province import Province

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.engine.scheduler import Scheduler
from collectors.api import ProbeResult
from collectors.icmp.probe import IcmpCollector, IcmpParams, IcmpSettings
from collectors.runner import run_probe

TARGETS, ECHOES = 200, 5
PASS_SECONDS = 0.005  # CPU time each pass of the loop spends outside the ICMP reader
NETWORK = "127.81.0"  # outside the lab's 127.77.0.0/16, whose nftables faults must not touch this test

def config(tmp_path: Path) -> Path:
    """Commune c1 pinging TARGETS loopback addresses at once (concurrency: all of them)."""
    p = Province().unit("c1", "Xã Một").collector("icmp", timeout="2s", concurrency=TARGETS)
    for i in range(1, TARGETS + 1):
        p.target(f"r{i}", "c1", "icmp", params={"host": f"{NETWORK}.{i}", "count": ECHOES, "interval": 0.02})
    return p.write(tmp_path / "icmp.yml")


async def cycle_on_a_busy_loop(agent: Agent, scheduler: Scheduler) -> int:
    """One cycle with every pass of the loop kept busy; returns how many busy passes it took."""
    loop = asyncio.get_running_loop()
    passes = 0
    done = False

    def busy() -> None:
        nonlocal passes
        end = time.perf_counter() + PASS_SECONDS
        while time.perf_counter() < end:
            pass
        passes += 1
        if not done:
            loop.call_soon(busy)

    loop.call_soon(busy)
    try:
        await scheduler.run_once()
    finally:
        done = True
    return passes


def test_every_reply_is_counted_while_the_loop_is_busy(tmp_path):
    loaded = load_config(config(tmp_path))
    with asyncio.Runner() as runner:
        agent = Agent(loaded)
        scheduler = Scheduler(loaded, agent.store, agent.collectors, agent.targets)
        try:
            passes = runner.run(cycle_on_a_busy_loop(agent, scheduler))
            body, _ = agent.exposition.render(None)
        finally:
            runner.run(agent.close())
    assert passes >= 3, "the loop was not kept busy: the test would prove nothing"
    s = parse_samples(body.decode())
    replies = {i: sample(s, "egov_icmp_echo_replies_total", target=f"r{i}") for i in range(1, TARGETS + 1)}
    short = {i: n for i, n in replies.items() if n != ECHOES}
    examples = dict(list(short.items())[:5])
    assert not short, f"{len(short)} of {TARGETS} targets missed replies after {passes} busy passes, e.g. {examples}"
    for i in range(1, TARGETS + 1):
        assert sample(s, "egov_target_up", target=f"r{i}") == 1
        assert sample(s, "egov_icmp_loss_ratio", target=f"r{i}") == 0


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))  # even length here
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def forge_echo_reply(source: str, destination: str, ident: int, sequence: int) -> None:
    """Deliver an echo reply from ``source`` (any address: the IP header is ours) to a local ``destination``."""
    icmp = struct.pack("!BBHHH", 0, 0, 0, ident, sequence) + bytes(56)
    icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, socket.IPPROTO_ICMP, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        raw.sendto(header + icmp, (destination, 0))


def test_an_echo_reply_counts_only_from_the_pinged_address(router_ns: RouterNamespace):  # noqa: F811
    """The test's /29 has an address nobody owns: its 4 echoes go unanswered (ARP gives up after ~3 s, past
    the 1 s timeout), and the test answers them itself, 2 from that address and 2 from the router next to it."""
    ns = router_ns

    async def run() -> ProbeResult:
        collector = IcmpCollector(IcmpSettings(privileged=True))
        try:
            probe = asyncio.create_task(run_probe(collector, "gone", IcmpParams(host=ns.absent, count=4, interval=0.01),
                                                        1.0))
            for _ in range(50):  # until every echo is sent (none is answered)
                await asyncio.sleep(0.01)
                keys = sorted(collector._pingers[4].waiting) if 4 in collector._pingers else []
                if len(keys) == 4:
                    break
            assert len(keys) == 4, keys
            for i, (ident, sequence) in enumerate(keys):
                forge_echo_reply(ns.absent if i % 2 else ns.router, ns.host_address, ident, sequence)
            return await probe
        finally:
            await collector.close()

    result = asyncio.run(run())
    replies = [s.value for s in result.samples if s.family == "icmp_echo_replies"]
    assert replies == [2], result.detail
    assert result.detail.startswith("2/4 replies"), result.detail


def test_echo_requests_are_built_as_icmplib_builds_them():
    """The pinger builds its echo requests itself (checksum share of the payload computed once): byte for byte
    what icmplib's own ``_create_packet`` makes, for both families, every payload size, odd ones included."""
    import random

    from icmplib import ICMPv4Socket, ICMPv6Socket

    from collectors.icmp.probe import _word_sum, echo_request

    rng = random.Random(15)
    for cls in (ICMPv4Socket, ICMPv6Socket):
        icmplib_socket = cls.__new__(cls)  # no socket opened: _create_packet reads only its class constants
        icmplib_socket._sock = None  # what its close (and __del__) looks at
        for _ in range(2000):
            size = rng.choice([0, 1, 2, 55, 56, 57, 1472, rng.randrange(0, 1500)])
            payload = rng.randbytes(size) if rng.random() < 0.8 else b"\xff" * size
            ident, sequence = rng.randrange(0x10000), rng.choice([0, 0xFFFF, rng.randrange(0x10000)])
            ours = echo_request(cls._ICMP_ECHO_REQUEST << 8, ident, sequence, payload, _word_sum(payload))
            assert ours == icmplib_socket._create_packet(ident, sequence, payload), (cls, size, ident, sequence)
