"""Replies matched to their device (issue #14): a misbehaving device next to healthy lab routers, request
ids that cannot be guessed, a few thousand mutated replies, and a v3 reply arriving from another address."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from support.snmp_peers import UdpRelay, snmpd

from collectors.api import ProbeResult
from collectors.lab_addresses import AddressPool
from collectors.runner import run_probe
from collectors.snmp.lab import SnmpSimulator
from collectors.snmp.probe import COLUMNS, SYS_UPTIME, SnmpCollector, SnmpParams, SnmpSettings

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
NETWORK = ipaddress.ip_network("127.41.0.0/24")  # this file's lab routers; relays on 127.41.1-3.x
REASONS = {"", "timeout", "snmp_auth_error", "snmp_no_such_object", "snmp_wrong_type", "snmp_malformed",
           "snmp_error", "interface_not_found", "uplink_down", "uplink_admin_down"}


async def lab_router(simulator: SnmpSimulator, target: str) -> SnmpParams:
    os.environ.setdefault("EGOV_SNMP_COMMUNITY", "test-community")
    raw = {"host": f"10.41.0.{len(simulator.routers) + 1}", "community": "env:EGOV_SNMP_COMMUNITY",
           "interface": {"name": "GigabitEthernet0/0/0"}}
    return SnmpParams.model_validate(await simulator.add(target, raw, True))


def at(params: SnmpParams, endpoint: tuple[str, int]) -> SnmpParams:
    """The same router, reached at the relay standing in front of it."""
    return params.model_copy(update={"host": ipaddress.ip_address(endpoint[0]), "port": endpoint[1]})


def request_id(datagram: bytes) -> int:
    message, _ = decoder.decode(datagram, asn1Spec=V2C.Message())
    return int(V2C.apiPDU.get_request_id(V2C.apiMessage.get_pdu(message)))


def with_request_id(datagram: bytes, new_id: int) -> bytes:
    message, _ = decoder.decode(datagram, asn1Spec=V2C.Message())
    V2C.apiPDU.set_request_id(V2C.apiMessage.get_pdu(message), new_id)
    return encoder.encode(message)


def with_community(datagram: bytes, community: bytes) -> bytes:
    message, _ = decoder.decode(datagram, asn1Spec=V2C.Message())
    V2C.apiMessage.set_community(message, community)
    return encoder.encode(message)


_FORGED = {COLUMNS["oper"][0]: rfc1902.Integer32(2), COLUMNS["admin"][0]: rfc1902.Integer32(1),
           COLUMNS["in_octets"][0]: rfc1902.Counter64(1), COLUMNS["out_octets"][0]: rfc1902.Counter64(1),
           COLUMNS["speed"][0]: rfc1902.Gauge32(100), COLUMNS["in_errors"][0]: rfc1902.Counter32(0),
           COLUMNS["out_errors"][0]: rfc1902.Counter32(0)}


def forged_reply(request: bytes) -> bytes:
    """What the spoofer answers a router's request with: the same id and community, the OIDs asked,
    a sysUpTime of one second (a reboot) and the uplink down."""
    message, _ = decoder.decode(request, asn1Spec=V2C.Message())
    response = V2C.apiMessage.get_response(message)
    varbinds = []
    for name, _ in V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(message)):
        oid = tuple(name)
        value = rfc1902.TimeTicks(100) if oid == SYS_UPTIME else _FORGED.get(oid[:-1], rfc1902.Integer32(0))
        varbinds.append((name, value))
    V2C.apiPDU.set_varbinds(V2C.apiMessage.get_pdu(response), varbinds)
    return encoder.encode(response)


def test_a_misbehaving_device_cannot_answer_for_its_neighbours() -> None:
    """Eight healthy lab routers (their genuine answers 0.15 s late, as over a slow WAN) and a misbehaving
    device that answers its own requests with the request id shifted by one and, seeing the others'
    requests on the path, answers each of them first from its own address (same id, same community, a
    rebooted router with its uplink down). One relay also sends a copy of the reply with another
    community from the router's own address. The healthy routers stay up with no reboot counted; the
    misbehaving one times out on its own shifted answers."""

    async def run() -> tuple[list[dict[str, ProbeResult]], dict[str, int]]:
        simulator = SnmpSimulator(AddressPool(NETWORK))
        collector = SnmpCollector(SnmpSettings(timeout=1.0, retries=0))
        relays: list[UdpRelay] = []
        try:
            bad_params = await lab_router(simulator, "bad-snmp")
            spoofer = UdpRelay(simulator.endpoint("bad-snmp"),
                               on_reply=lambda data: [with_request_id(data, request_id(data) + 1)])
            relays.append(spoofer)
            targets = {"bad": at(bad_params, await spoofer.start("127.41.2.1"))}

            def spoof(request: bytes, agent: tuple[str, int]) -> None:
                assert spoofer.front is not None
                spoofer.front.sendto(forged_reply(request), agent)  # from the spoofer's own address

            for i in range(8):
                params = await lab_router(simulator, f"ok{i}-snmp")
                relay = UdpRelay(simulator.endpoint(f"ok{i}-snmp"), on_request=spoof, delay=0.15)
                if i == 0:  # from the router's own address, at once: a copy with another community
                    relay.on_reply = lambda data, r=relay: (r._send(with_community(data, b"not-the-community")),
                                                            [data])[1]
                relays.append(relay)
                targets[f"ok{i}"] = at(params, await relay.start(f"127.41.1.{i + 1}"))
            rounds = []
            for _ in range(3):
                results = await asyncio.gather(*(run_probe(collector, t, p, 5.0) for t, p in targets.items()))
                rounds.append(dict(zip(targets, results, strict=True)))
            return rounds, dict(collector.snmp.dropped)
        finally:
            await collector.close()
            for relay in relays:
                relay.close()
            await simulator.close()

    rounds, dropped = asyncio.run(run())
    for results in rounds:
        for target, result in results.items():
            if target == "bad":
                assert (result.up, result.reason) == (False, "timeout"), result
                continue
            assert result.up, (target, result)
            got = {s.family: s.value for s in result.samples if not s.labels}
            assert got["snmp_reboots"] == 0, (target, got)
            assert got["snmp_uptime_seconds"] > 86400, (target, got)
    assert dropped["wrong_source"] >= 8 * 3, dropped  # the forged answers, one per request at least
    assert dropped["wrong_community"] >= 3, dropped
    assert dropped["unknown_request"] >= 3, dropped  # the misbehaving device's shifted answers


def test_request_ids_are_random_not_sequential() -> None:
    async def run() -> list[int]:
        simulator = SnmpSimulator(AddressPool(NETWORK))
        collector = SnmpCollector(SnmpSettings(timeout=1.0, retries=0))
        relay: UdpRelay | None = None
        try:
            params = await lab_router(simulator, "ids-snmp")
            relay = UdpRelay(simulator.endpoint("ids-snmp"))
            params = at(params, await relay.start("127.41.3.1"))
            for _ in range(12):  # names once (ifNumber, the walk), then one GET per probe
                assert (await run_probe(collector, "ids", params, 5.0)).up
            return [request_id(r) for r in relay.requests]
        finally:
            await collector.close()
            if relay is not None:
                relay.close()
            await simulator.close()

    ids = asyncio.run(run())
    assert len(ids) >= 12
    steps = [b - a for a, b in itertools.pairwise(ids)]
    assert not any(abs(step) <= 256 for step in steps), ids  # no two in a row from pysnmp's bank of 256
    assert all(0 < i < 2**31 for i in ids)
    assert max(ids) - min(ids) > 2**24, ids  # spread over the 31-bit range


def mutate(reply: bytes, rng: random.Random) -> bytes:
    """1-3 corrupted bytes, a truncation, a changed length field or trailing junk."""
    kind = rng.randrange(4)
    data = bytearray(reply)
    if kind == 0:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        del data[rng.randrange(1, len(data)):]  # not to nothing: asyncio sends no empty datagram
    elif kind == 2:  # the length octets of the message, community, PDU or varbind list headers
        position = rng.choice([i for i in range(1, min(len(data), 40)) if data[i - 1] in (0x30, 0x04, 0xA2, 0x02)])
        data[position] = (data[position] + rng.choice((-2, -1, 1, 2, 0x80))) % 256
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(data)


class LoopStalls:
    """How late the event loop ran a 10 ms sleep, sampled all along: on this shared 2-core machine a
    stall (the load, a GC pass) lets pysnmp's timeout timer run before a datagram already received."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (loop time, lag)
        self._task: asyncio.Task | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(100_000):  # about 20 minutes at most
            before = loop.time()
            await asyncio.sleep(0.01)
            self.samples.append((loop.time(), loop.time() - before - 0.01))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def worst(self, start: float, end: float) -> float:
        return max((lag for when, lag in self.samples if start <= when <= end + 0.05), default=0.0)


def undecodable(datagram: bytes) -> bool:
    """Whether pyasn1 itself cannot read it as exactly one v2c message (the test's oracle)."""
    try:
        message, rest = decoder.decode(datagram, asn1Spec=V2C.Message())
        V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(message))
    except Exception:  # any decoding failure: that is the point of the oracle
        return True
    return bool(rest)


def test_a_few_thousand_mutated_replies_read_snmp_malformed_without_a_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    """25 lab routers behind relays that, once the interfaces are known, replace each genuine reply with
    a mutant of it (seeded). A probe whose first answer is undecodable says ``snmp_malformed``; every
    probe ends with one of the collector's reasons; nothing is logged with a traceback; the collector
    still reads the routers afterwards."""
    # 25 at a time: asyncio reads one datagram per loop iteration from the shared socket, and more
    # relays than this on a loaded machine queue answers in the kernel past their requests' timeout.
    routers, probes, timeout = 25, 80, 0.5

    async def run() -> tuple[list[tuple[bool, ProbeResult, float]], list[ProbeResult], dict[str, int]]:
        simulator = SnmpSimulator(AddressPool(NETWORK))
        collector = SnmpCollector(SnmpSettings(timeout=timeout, retries=0))
        loop = asyncio.get_running_loop()
        stalls = LoopStalls()
        relays: list[UdpRelay] = []
        outcomes: list[tuple[bool, ProbeResult, float]] = []
        try:
            targets = {}
            for i in range(routers):
                params = await lab_router(simulator, f"fz{i}-snmp")
                relay = UdpRelay(simulator.endpoint(f"fz{i}-snmp"))
                relays.append(relay)
                targets[f"fz{i}"] = at(params, await relay.start(f"127.41.2.{i + 10}"))
            for target, params in targets.items():  # learn the interfaces, one router at a time
                warm = await run_probe(collector, target, params, 5.0)
                assert warm.up, (target, warm)

            async def fuzz(index: int, target: str, params: SnmpParams) -> None:
                rng = random.Random(1414 + index)
                relay = relays[index]
                mutants: dict[int, tuple[bytes, float]] = {}  # request id -> the mutant of its reply, sent when

                def mutated(reply: bytes) -> list[bytes]:
                    mutant = mutate(reply, rng)
                    mutants[request_id(reply)] = (mutant, loop.time())
                    return [mutant]

                relay.on_reply = mutated
                for _ in range(probes):
                    first, started = len(relay.requests), loop.time()
                    result = await run_probe(collector, target, params, 5.0)
                    # The probe's first request decides: an undecodable answer to it ends the probe.
                    sent = mutants.get(request_id(relay.requests[first])) if len(relay.requests) > first else None
                    if sent is None:
                        outcomes.append((False, result, -1.0))
                    else:  # when the mutant was sent, counting the loop's worst stall during the probe
                        delay = sent[1] - started + stalls.worst(started, loop.time())
                        outcomes.append((undecodable(sent[0]), result, delay))
                relay.on_reply = lambda data: [data]

            stalls.start()
            await asyncio.gather(*(fuzz(i, t, p) for i, (t, p) in enumerate(targets.items())))
            stalls.stop()
            after = await asyncio.gather(*(run_probe(collector, t, p, 5.0) for t, p in targets.items()))
            return outcomes, list(after), dict(collector.snmp.dropped)
        finally:
            await collector.close()
            for relay in relays:
                relay.close()
            await simulator.close()

    with caplog.at_level(logging.DEBUG):
        outcomes, after, dropped = asyncio.run(run())
    assert len(outcomes) == routers * probes
    garbled = [(result, when) for bad, result, when in outcomes if bad]
    assert len(garbled) > routers * probes // 2, len(garbled)  # most mutants are undecodable
    # A mutant the relay sent after the request's timeout, or just before it with the loop stalled, did
    # not arrive in time: that probe rightly times out. Those well in time must all read snmp_malformed.
    in_time = [(r, when) for r, when in garbled if when < timeout - 0.15]
    assert len(in_time) > len(garbled) // 4, (len(in_time), len(garbled))
    wrong = [(r.reason, r.detail, round(when, 3)) for r, when in in_time if r.reason != "snmp_malformed"]
    assert not wrong, (len(wrong), wrong[:5])
    assert all(not r.up for r, _ in garbled)
    assert {r.reason for _, r, _ in outcomes} <= REASONS
    assert dropped["malformed"] >= len(garbled), dropped
    tracebacks = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, tracebacks[0].getMessage()
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 10
    assert all(r.up for r in after), [r for r in after if not r.up][:3]


USER, AUTH, PRIV = "egov-monitor", "auth-key-2019-kh59", "priv-key-2019-kh59"
os.environ.update(EGOV_TEST_V3_AUTH=AUTH, EGOV_TEST_V3_PRIV=PRIV)
V3_CLI = ["-v3", "-l", "authPriv", "-u", USER, "-a", "SHA", "-A", AUTH, "-x", "AES", "-X", PRIV]


@pytest.fixture(scope="module")
def v3_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp: Path = tmp_path_factory.mktemp("snmpd")
    with snmpd(f'createUser {USER} SHA "{AUTH}" AES "{PRIV}"\nrouser {USER} priv\n', tmp, V3_CLI) as endpoint:
        yield endpoint


def v3_message_id(datagram: bytes) -> int:
    message, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
    return int(message.getComponentByPosition(1).getComponentByPosition(0))


def test_v3_a_genuine_reply_from_another_address_is_dropped_and_msgids_are_random(
        v3_agent: tuple[str, int]) -> None:
    """snmpd behind a relay that holds each genuine reply back 0.15 s while a copy of it reaches the agent
    at once from another address (a replay by a device on the path). The engine checks the msgID and
    the USM keys, not the source: the copy is dropped as ``wrong_source`` and the probe waits for the
    real answer. The msgIDs the agent sends are random."""

    async def run() -> tuple[ProbeResult, dict[str, int], list[int]]:
        collector = SnmpCollector(SnmpSettings(timeout=1.0, retries=0))
        loop = asyncio.get_running_loop()
        replayer, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.41.3.2", 0))
        relay = UdpRelay(v3_agent, delay=0.15)

        def replay(reply: bytes) -> list[bytes]:
            replayer.sendto(reply, relay.client)
            return [reply]

        relay.on_reply = replay
        try:
            params = SnmpParams.model_validate({
                "host": "127.41.3.3", "port": 161, "version": 3, "interface": {"name": "lo"},
                "v3": {"user": USER, "auth_key": "env:EGOV_TEST_V3_AUTH", "priv_key": "env:EGOV_TEST_V3_PRIV"}})
            params = at(params, await relay.start("127.41.3.3"))
            result = await run_probe(collector, "v3", params, 8.0)
            return result, dict(collector.snmp.dropped), [v3_message_id(r) for r in relay.requests]
        finally:
            await collector.close()
            relay.close()
            replayer.close()

    result, dropped, msg_ids = asyncio.run(run())
    assert result.up, result
    assert dropped["wrong_source"] >= 2, dropped  # discovery and every request after it
    assert len(msg_ids) >= 3
    steps = [b - a for a, b in itertools.pairwise(msg_ids)]
    assert not any(abs(step) <= 256 for step in steps), msg_ids


def test_v3_undecodable_replies_read_snmp_malformed(v3_agent: tuple[str, int]) -> None:
    """snmpd behind a relay that truncates every reply, or breaks its outer length: the engine drops them
    (counting parse errors), and the probe says snmp_malformed instead of snmp_timeout."""

    def truncated(reply: bytes) -> list[bytes]:
        return [reply[: len(reply) // 2]]

    def bad_length(reply: bytes) -> list[bytes]:
        return [reply[:1] + bytes([0x85]) + reply[2:]]  # a 5-octet length that the datagram cannot hold

    async def run() -> list[tuple[ProbeResult, dict[str, int]]]:
        out = []
        for i, mangle in enumerate((truncated, bad_length, lambda reply: [reply])):
            collector = SnmpCollector(SnmpSettings(timeout=0.5, retries=0))
            relay = UdpRelay(v3_agent, on_reply=mangle)
            try:
                params = SnmpParams.model_validate({
                    "host": "127.41.3.4", "port": 161, "version": 3, "interface": {"name": "lo"},
                    "v3": {"user": USER, "auth_key": "env:EGOV_TEST_V3_AUTH", "priv_key": "env:EGOV_TEST_V3_PRIV"}})
                params = at(params, await relay.start(f"127.41.3.{4 + i}"))
                out.append((await run_probe(collector, "v3", params, 5.0), dict(collector.snmp.dropped)))
            finally:
                await collector.close()
                relay.close()
        return out

    (short, short_dropped), (long, long_dropped), (clean, _) = asyncio.run(run())
    assert (short.up, short.reason) == (False, "snmp_malformed"), short
    assert (long.up, long.reason) == (False, "snmp_malformed"), long
    assert short_dropped["malformed"] >= 1 and long_dropped["malformed"] >= 1
    assert clean.up, clean  # the same path, unmangled, reads the router


def test_over_ipv6_the_source_check_accepts_the_device_and_drops_a_neighbour() -> None:
    """A lab router reached over ::1 (a relay there), with a forged answer from another IPv6 socket sent
    first: pysnmp's IPv6 addresses are 4-tuples, the check compares host and port and still matches."""

    async def run() -> tuple[ProbeResult, ProbeResult, dict[str, int]]:
        simulator = SnmpSimulator(AddressPool(NETWORK))
        collector = SnmpCollector(SnmpSettings(timeout=1.0, retries=0))
        loop = asyncio.get_running_loop()
        spoofer, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("::1", 0))
        relay: UdpRelay | None = None
        try:
            params = await lab_router(simulator, "v6-snmp")
            relay = UdpRelay(simulator.endpoint("v6-snmp"), delay=0.1,
                             on_request=lambda request, agent: spoofer.sendto(forged_reply(request), agent))
            params = at(params, await relay.start("::1", upstream_side="127.41.3.9"))
            first = await run_probe(collector, "v6", params, 5.0)
            second = await run_probe(collector, "v6", params, 5.0)
            return first, second, dict(collector.snmp.dropped)
        finally:
            await collector.close()
            spoofer.close()
            if relay is not None:
                relay.close()
            await simulator.close()

    first, second, dropped = asyncio.run(run())
    assert first.up and second.up, (first, second)
    assert {s.family: s.value for s in second.samples if not s.labels}["snmp_reboots"] == 0
    assert dropped["wrong_source"] >= 2, dropped
