"""The v2c receive path against net-snmp's snmpd: answers that arrived in time are never read as
timeouts because the agent's own loop was busy.

asyncio's datagram transport read one datagram per wake-up, and a timer due in the same pass ran
before the rest: after a stall of the loop (a GC pass, a burst of decoding, the machine's load)
every answer but one waiting in the socket became a false ``snmp_timeout``. The fast path reads
every waiting datagram per wake-up, and a request's timer reads the socket before it gives up.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.snmp_peers import snmpd

from collectors.runner import run_probe
from collectors.snmp import ber as snmp_ber
from collectors.snmp.probe import SYS_UPTIME, SnmpCollector, SnmpParams, SnmpSettings
from collectors.snmp.v2c import V2cClient

COMMUNITY = "receive-path-test"
os.environ["EGOV_TEST_RECEIVE_COMMUNITY"] = COMMUNITY
DEVICES = 200


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with snmpd(f"rocommunity {COMMUNITY} 127.0.0.1\n", tmp_path_factory.mktemp("snmpd"),
               ["-v2c", "-c", COMMUNITY]) as endpoint:
        yield endpoint


def test_answers_waiting_behind_a_stalled_loop_are_not_timeouts(agent: tuple[str, int]) -> None:
    params = SnmpParams.model_validate({"host": agent[0], "port": agent[1], "version": "2c",
                                        "community": "env:EGOV_TEST_RECEIVE_COMMUNITY",
                                        "interface": {"name": "lo"}, "timeout": 0.5, "retries": 0})

    async def run() -> list[str]:
        collector = SnmpCollector(SnmpSettings(timeout=0.5, retries=0))
        try:
            for i in range(DEVICES):  # names once per device, one at a time: no stall here
                result = await run_probe(collector, f"router-{i}", params, 5.0)
                assert result.up, result
            probes = [asyncio.ensure_future(run_probe(collector, f"router-{i}", params, 5.0)) for i in range(DEVICES)]
            await asyncio.sleep(0.15)  # every GET sent (and answered by snmpd, into our socket)
            time.sleep(0.8)  # the loop stalls past every request's 0.5 s timeout
            return [r.reason for r in await asyncio.gather(*probes)]
        finally:
            await collector.close()

    reasons = asyncio.run(run())
    assert reasons == [""] * DEVICES, {r: reasons.count(r) for r in set(reasons)}


def test_the_receive_buffer_holds_a_burst_of_answers(tmp_path: Path) -> None:
    async def run() -> int:
        collector = SnmpCollector(SnmpSettings())
        try:
            return collector.snmp.receive_buffer()
        finally:
            await collector.close()

    assert asyncio.run(run()) >= 2 * 1024 * 1024  # thousands of 200-byte answers, not the default ~200


def test_sends_are_paced_and_a_request_waits_from_when_it_left(agent: tuple[str, int]) -> None:
    """40 requests at 100 a second (a burst of 2): they leave over about 0.38 s, and each one's 0.2 s
    timeout counts from its own send, so none times out while it waited for its turn."""

    async def run() -> tuple[int, float]:
        client = V2cClient(lambda reason, source: None, 1 << 20, send_rate=100.0, burst=2)
        template = snmp_ber.request(COMMUNITY.encode(), snmp_ber.GET, [SYS_UPTIME])
        started = time.monotonic()
        try:
            answers = await asyncio.gather(*(client.request(agent, COMMUNITY.encode(), template, 0.2, 0)
                                             for _ in range(40)))
        finally:
            client.close()
        return sum(a.varbinds[0][1] == snmp_ber.TIMETICKS for a in answers), time.monotonic() - started

    answered, took = asyncio.run(run())
    assert answered == 40
    assert took >= 0.35, took  # not all in one burst
