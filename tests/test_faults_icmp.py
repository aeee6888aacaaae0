"""ICMP against a router that answers wrongly: duplicates, reordering, floods, wrong sources, errors, junk.

The router is a network namespace of the test's own (``egovh5-*``) whose kernel no longer answers
echoes (``net.ipv4.icmp_echo_ignore_all``, a per-namespace sysctl); tests/support/icmp_faulty_router.py
answers instead, over raw sockets, with packets it builds itself, so their source address and
contents are whatever the fault needs. The agent's real ICMP collector probes the router over the
veth link, as it would a commune's router. What an operator expects: each echo counted once,
however many replies or in whatever order; a reply counts only from the pinged address and only if
it is intact; an ICMP error says which error; junk and floods change nothing and log no traceback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.faults import H5Namespace
from support.icmp_netns import require_netns

from collectors.api import ProbeResult
from collectors.icmp.probe import IcmpCollector, IcmpParams, IcmpSettings, UpRule
from collectors.runner import run_probe

RESPONDER = Path(__file__).parent / "support" / "icmp_faulty_router.py"
ECHOES = 10


class FaultyRouter(H5Namespace):
    """The router namespace with its kernel silent, tests/support/icmp_faulty_router.py answering instead."""

    def __init__(self) -> None:
        super().__init__()
        self.responder: subprocess.Popen | None = None

    def create(self) -> None:
        super().create()
        self.ns("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1")

    def answer(self, mode: str) -> None:
        self.stop_answering()
        self.responder = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, str(RESPONDER), mode, self.router, self.absent],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.responder.stdout is not None
        line = self.responder.stdout.readline()
        assert line.strip() == "ready", (line, self.responder.stderr.read() if self.responder.stderr else "")

    def stop_answering(self) -> None:
        if self.responder is not None:
            self.responder.terminate()
            try:
                self.responder.wait(5)
            except subprocess.TimeoutExpired:
                self.responder.kill()
                self.responder.wait(5)
            self.responder = None

    def destroy(self) -> None:
        self.stop_answering()
        super().destroy()


@pytest.fixture(scope="module")
def router() -> Iterator[FaultyRouter]:
    require_netns()
    made = FaultyRouter()
    try:
        made.create()
        yield made
    finally:
        made.destroy()


def probe(router: FaultyRouter, timeout: float = 1.0, count: int = ECHOES) -> tuple[ProbeResult, float, float]:
    """One probe of the router by the real collector on raw sockets: (result, seconds, CPU seconds)."""

    async def run() -> ProbeResult:
        collector = IcmpCollector(IcmpSettings(privileged=True, up_rule=UpRule(max_loss=0.5, over_probes=1)))
        try:
            return await run_probe(collector, "r1", IcmpParams(host=router.router, count=count, interval=0.01), timeout)
        finally:
            await collector.close()

    started, cpu = time.monotonic(), time.process_time()
    result = asyncio.run(run())
    return result, time.monotonic() - started, time.process_time() - cpu


def value(result: ProbeResult, family: str, *labels: str) -> float:
    (found,) = [s.value for s in result.samples if s.family == family and s.labels == labels]
    return found


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not bad, [r.getMessage() for r in bad]


def test_the_faulty_router_answers_like_a_router_when_it_behaves(router, caplog):
    """The harness itself: a well-formed reply from the router counts (else the rest proves nothing)."""
    router.answer("duplicate")
    result, elapsed, _ = probe(router)
    assert (result.up, result.reason) == (True, ""), result.detail
    assert value(result, "icmp_echo_replies") == ECHOES
    assert elapsed < 1.0  # every echo answered: the probe ends without waiting for its timeout
    no_errors_logged(caplog)


def test_duplicate_replies_count_once(router, caplog):
    router.answer("duplicate")
    result, _, _ = probe(router)
    assert value(result, "icmp_echo_requests") == ECHOES
    assert value(result, "icmp_echo_replies") == ECHOES  # not 3x: loss can never go below 0
    assert value(result, "icmp_loss_ratio") == 0
    no_errors_logged(caplog)


def test_replies_in_reverse_order_all_count_with_their_own_round_trip(router, caplog):
    router.answer("reorder")
    result, _, _ = probe(router)
    assert (result.up, value(result, "icmp_echo_replies")) == (True, ECHOES), result.detail
    low, high = value(result, "icmp_rtt_seconds", "min"), value(result, "icmp_rtt_seconds", "max")
    # The last echo was answered first, ~0.2 s after it left; the first one last, ~0.09 s later still.
    assert 0.15 < low < high and high - low > 0.05, (low, high)
    no_errors_logged(caplog)


def test_replies_from_another_address_do_not_make_the_link_up(router, caplog):
    router.answer("wrong_source")
    result, _, _ = probe(router)
    assert (result.up, result.reason) == (False, "timeout"), result.detail
    assert value(result, "icmp_echo_replies") == 0
    assert value(result, "icmp_loss_ratio") == 1
    no_errors_logged(caplog)


def test_half_the_replies_from_another_address_is_half_lost(router):
    router.answer("half_wrong")
    result, _, _ = probe(router)
    assert value(result, "icmp_echo_replies") == ECHOES / 2
    assert value(result, "icmp_loss_ratio") == 0.5
    assert (result.up, result.reason) == (False, "loss")  # 50 % is not below max_loss 0.5


def test_a_flood_of_foreign_replies_hides_no_reply_and_costs_little(router, caplog):
    router.answer("flood")
    result, elapsed, cpu = probe(router, timeout=2.0)
    assert (result.up, value(result, "icmp_echo_replies")) == (True, ECHOES), result.detail
    assert value(result, "icmp_loss_ratio") == 0
    assert elapsed < 2.0
    print(f"flood: {ECHOES * 1000} foreign replies, probe {elapsed:.2f} s, {cpu:.2f} CPU s")
    no_errors_logged(caplog)


@pytest.mark.parametrize(("mode", "reason"), [("unreachable", "unreachable"), ("ttl", "ttl_exceeded")])
def test_an_icmp_error_is_down_with_its_reason(router, caplog, mode: str, reason: str):
    router.answer(mode)
    result, elapsed, _ = probe(router)
    assert (result.up, result.reason) == (False, reason), result.detail
    assert value(result, "icmp_echo_replies") == 0
    assert value(result, "icmp_loss_ratio") == 1
    assert f"{ECHOES} {reason}" in result.detail
    assert not [s for s in result.samples if s.family == "icmp_rtt_seconds"]  # an error has no round trip
    assert elapsed < 1.0  # every echo got its answer (an error): no waiting for the timeout
    no_errors_logged(caplog)


def test_a_reply_with_a_broken_checksum_is_not_a_reply(router, caplog):
    """Corrupted on the way: the kernel hands raw sockets ICMP packets before checking their checksum."""
    router.answer("bad_checksum")
    result, _, _ = probe(router)
    assert (result.up, result.reason) == (False, "timeout"), result.detail
    assert value(result, "icmp_echo_replies") == 0
    no_errors_logged(caplog)


def test_a_reply_whose_ip_header_has_options_still_counts(router, caplog):
    router.answer("ip_options")
    result, _, _ = probe(router)
    assert (result.up, value(result, "icmp_echo_replies")) == (True, ECHOES), result.detail
    no_errors_logged(caplog)


def test_truncated_packets_and_errors_are_ignored_without_a_traceback(router, caplog):
    router.answer("truncated")
    result, _, _ = probe(router)
    assert (result.up, value(result, "icmp_echo_replies")) == (True, ECHOES), result.detail
    assert value(result, "icmp_loss_ratio") == 0
    no_errors_logged(caplog)


class Ipv6Router(H5Namespace):
    """The router namespace on IPv6 as well: a ULA /64 on the veth, and a prefix behind the router that its
    kernel routes as ``unreachable`` (it answers with ICMPv6 destination unreachable) or ``prohibit``."""

    def create(self) -> None:
        super().create()
        tag = secrets.token_hex(2)
        self.host6, self.router6 = f"fd45:{tag}::1", f"fd45:{tag}::2"
        self.no_route, self.prohibited = f"fd45:{tag}:1::1", f"fd45:{tag}:2::1"
        subprocess.run(["ip", "-6", "addr", "add", f"{self.host6}/64", "dev", self.host_if, "nodad"], check=True)
        self.ns("ip", "-6", "addr", "add", f"{self.router6}/64", "dev", self.ns_if, "nodad")
        self.ns("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.ns("ip", "-6", "route", "add", "unreachable", f"fd45:{tag}:1::/64")
        self.ns("ip", "-6", "route", "add", "prohibit", f"fd45:{tag}:2::/64")
        # Routes on the host side go with the veth when the fixture deletes it.
        for prefix in (f"fd45:{tag}:1::/64", f"fd45:{tag}:2::/64"):
            subprocess.run(["ip", "-6", "route", "add", prefix, "via", self.router6, "dev", self.host_if], check=True)


@pytest.fixture(scope="module")
def router6() -> Iterator[Ipv6Router]:
    require_netns()
    made = Ipv6Router()
    try:
        made.create()
        yield made
    finally:
        made.destroy()


def probe6(host: str, privileged: bool = True) -> ProbeResult:
    async def run() -> ProbeResult:
        collector = IcmpCollector(IcmpSettings(privileged=privileged, up_rule=UpRule(max_loss=0.5, over_probes=1)))
        try:
            return await run_probe(collector, "r6", IcmpParams(host=host, count=4, interval=0.01), 1.0)
        finally:
            await collector.close()

    return asyncio.run(run())


def test_ipv6_router_answers_and_its_icmpv6_errors_are_down_with_their_reason(router6, caplog):
    live = probe6(router6.router6)
    assert (live.up, value(live, "icmp_echo_replies")) == (True, 4), live.detail
    for host in (router6.no_route, router6.prohibited):  # ICMPv6 destination unreachable, codes 0 and 1
        result = probe6(host)
        # The router's kernel rate-limits its errors (net.ipv6.icmp.ratelimit), as routers do: some echoes get
        # an error, the rest nothing, and the reason is still the error, not a timeout.
        assert (result.up, result.reason) == (False, "unreachable"), (host, result.detail)
        assert value(result, "icmp_echo_replies") == 0
        assert re.search(r", [1-4] unreachable$", result.detail), result.detail
    no_errors_logged(caplog)
